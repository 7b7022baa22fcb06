"""Spaghetti plot of participant-level data: every participant's change, and the model's means.

One panel per trial (columns), weeks on the x axis, change from baseline on the y axis. Each
participant (each side, in a split-scalp trial) is a thin, light line in the colour of its
treatment, starting at 0 at the baseline; over them the trial model's mean change per arm and
week is a point with its CI bar, joined by a thicker line that starts at 0. A footer names
the data source (synthetic data say so). Nothing is computed here: lines and means are drawn
from the frames passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hairtrial.plots.style import BLUE, GREY, VERMILLION, use_style

__all__ = ["spaghetti_plot"]

_COLOURS = {"control": BLUE, "experimental": VERMILLION}


def spaghetti_plot(
    trajectories: pd.DataFrame,
    means: pd.DataFrame,
    *,
    control: str,
    experimental: str,
    labels: dict[str, str],
    unit_label: str,
    title: str,
    footer: str = "",
    studies: Sequence[str] | None = None,
) -> Figure:
    """Participants' trajectories (thin lines) and model-based arm means with CIs per trial.

    Parameters
    ----------
    trajectories : pandas.DataFrame
        ``study, unit_id, treatment, week, change`` (week 0 rows with change 0).
    means : pandas.DataFrame
        ``study, arm (control/experimental), week, mean, ci_lower, ci_upper``.
    control, experimental : str
        Treatment codes of ``trajectories``.
    labels : dict
        ``control`` / ``experimental`` -> legend text.
    unit_label : str
        Unit of the y axis.
    title, footer : str
        Figure title; footer (data source, e.g. "Synthetic data ...").
    studies : sequence of str, optional
        Panel order (default: sorted studies of ``trajectories``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    studies = list(studies) if studies is not None else sorted(trajectories["study"].unique())
    arm_of = {control: "control", experimental: "experimental"}
    with use_style():
        n = max(1, len(studies))
        # fixed margins for the legend and footer (no layout engine)
        fig = Figure(figsize=(2.6 * n + 0.6, 3.4), layout="none")  # type: ignore[arg-type]
        axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
        two_lines = False
        for ax, study in zip(axes, studies, strict=True):
            t = trajectories[trajectories["study"] == study]
            for (_, trt), g in t.groupby(["unit_id", "treatment"], sort=True):
                arm = arm_of.get(trt)
                if arm is None:
                    continue
                g = g.sort_values("week")
                ax.plot(g["week"], g["change"], color=_COLOURS[arm], lw=0.4, alpha=0.25, zorder=1)
            m = means[means["study"] == study]
            for arm, off in (("control", -0.25), ("experimental", 0.25)):
                a = m[m["arm"] == arm].sort_values("week")
                if a.empty:
                    continue
                w = np.concatenate([[0.0], a["week"].to_numpy(float)])
                y = np.concatenate([[0.0], a["mean"].to_numpy(float)])
                ax.plot(w, y, color=_COLOURS[arm], lw=1.6, zorder=3)
                ax.errorbar(
                    a["week"].to_numpy(float) + off,
                    a["mean"],
                    yerr=[a["mean"] - a["ci_lower"], a["ci_upper"] - a["mean"]],
                    fmt="o",
                    ms=3.5,
                    color=_COLOURS[arm],
                    mec="white",
                    mew=0.5,
                    elinewidth=1.0,
                    capsize=0,
                    zorder=4,
                )
            weeks = sorted(set(t["week"]))
            ax.set_xticks(weeks)
            ax.axhline(0, color=GREY, lw=0.5, ls=":", zorder=0)
            n_part = t["unit_id"].str.split("|", regex=False).str[0].nunique()
            split = t["unit_id"].str.contains("|", regex=False).any()
            # a second line: one line overran a panel's width (and the figure's edge)
            what = ",\nsplit-scalp (two lines each)" if split else ""
            two_lines = two_lines or split
            ax.set_title(f"{study}: {n_part} participants{what}", fontsize=7.5)
            ax.set_xlabel("Week")
        axes[0].set_ylabel(f"Change from baseline ({unit_label})")
        handles = [
            Line2D([], [], color=_COLOURS[a], marker="o", ms=3.5, lw=1.6, label=labels[a])
            for a in ("experimental", "control")
        ]
        handles.append(Line2D([], [], color=GREY, lw=0.4, alpha=0.6, label="One participant"))
        fig.legend(
            handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.07), ncol=3,
            frameon=False, fontsize=7,
        )  # fmt: skip
        fig.suptitle(title, fontsize=9)
        if footer:
            fig.text(0.01, 0.01, footer, fontsize=6.5, color=GREY, ha="left", va="bottom")
        fig.subplots_adjust(left=0.8 / fig.get_figwidth(), right=0.99,
                            top=0.80 if two_lines else 0.84, bottom=0.3,
                            wspace=0.08)  # fmt: skip
    return fig
