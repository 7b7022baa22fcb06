"""Robustness figure: the pooled estimate and CI under every scenario, on one axis.

Draws rows of :func:`hairtrial.analyses.robustness.robustness_table` for one outcome x
week x measure, grouped by what was varied, with the primary analysis as a
shaded reference band and the line of no effect. Scenarios that cannot change
anything for these data (no trial uses the assumption) are not drawn; the
footer names them, so nothing disappears silently.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator

from hairtrial.plots.layout import Measurer, family, ratio_label, ratio_ticks
from hairtrial.plots.style import BLUE, GREY, VERMILLION, fmt, format_decimals, use_style

SAME_AS_PRIMARY = "same as primary"


def robustness_plot(
    rows: pd.DataFrame,
    *,
    xlabel: str,
    title: str | None = None,
    ax: Axes | None = None,
    log_scale: bool = False,
) -> Figure:
    """Dot-and-whisker plot of pooled estimates across scenarios.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows of the robustness table for one outcome x week x measure
        (columns ``group, scenario, k, estimate, ci_lower, ci_upper, primary, notes``).
    xlabel : str
        Axis label (effect measure and unit).
    title : str, optional
        Figure title.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes: their figure keeps its size and layout; scenarios become the
        y tick labels (groups in bold) and the title goes above the axes; the k and
        estimate columns, the column heads and the footer are not drawn. Default: a new
        figure with the table beside the axes.
    log_scale : bool, default False
        Ratio measures: the estimates and CIs are logs; the axis is labelled with ratios,
        the text gives the ratios, and no effect is ratio 1.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (new, or that of `ax`).
    """
    rows = rows.reset_index(drop=True)
    hidden = rows[rows["notes"].fillna("").str.contains(SAME_AS_PRIMARY)]
    shown = rows.drop(hidden.index)
    groups = list(dict.fromkeys(shown["group"]))
    lines: list[tuple[str, pd.Series | None]] = []
    for gname in groups:
        lines.append((gname, None))
        for _, r in shown[shown["group"] == gname].iterrows():
            lines.append((str(r["scenario"]), r))
    n = len(lines)
    row_h = 0.16
    prim = shown[shown["primary"].astype(bool)]
    band = bool(len(prim)) and math.isfinite(prim["ci_lower"].iloc[0])
    with use_style():  # the footer's lines, wrapped to the figure's width in its font
        foot_lines = _footer(hidden, groups, band, Measurer(family()))
    # one line 0.35 in, two 0.55 in (as before lines were wrapped), 0.14 in for each further
    foot = 0.35 if len(foot_lines) == 1 else 0.55 + 0.14 * (len(foot_lines) - 2)
    height = 0.85 + foot + row_h * n
    vals = shown[["estimate", "ci_lower", "ci_upper"]].to_numpy(float).ravel()
    vals = vals[np.isfinite(vals)]

    def disp(v: float) -> float:
        return math.exp(v) if log_scale and math.isfinite(v) else v

    dec = 2 if log_scale else format_decimals(vals)  # ratios with 2 decimals, as RevMan
    with use_style():
        own = ax is None
        if ax is None:
            fig = Figure(figsize=(7.0, height), layout="none")
            ax = fig.add_axes((0.34, (foot + 0.25) / height, 0.42, (row_h * n) / height))
        else:
            fig = ax.figure  # type: ignore[assignment]
        lo = min([0.0, *vals]) if len(vals) else -1.0
        hi = max([0.0, *vals]) if len(vals) else 1.0
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        if log_scale:
            w_in = ax.get_position().width * fig.get_figwidth()
            ticks = ratio_ticks(lo - pad, hi + pad, w_in, Measurer(family()), 7.0)
            ax.set_xlim(min(lo - pad, ticks[0]), max(hi + pad, ticks[-1]))
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_major_formatter(FixedFormatter([ratio_label(t) for t in ticks]))
        ax.set_ylim(n - 0.5, -0.5)
        ax.axvline(0, color="black", lw=0.6)
        if band:
            p = prim.iloc[0]
            ax.axvspan(p["ci_lower"], p["ci_upper"], color=BLUE, alpha=0.10, lw=0)
            ax.axvline(p["estimate"], color=BLUE, lw=0.6, ls="--")
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel(xlabel)
        tx = fig.transFigure

        def cell(x: float, i: int, s: str, **kw: object) -> None:
            if own:  # the table beside the axes
                y_fig = ax.transData.transform((0, i))[1] / fig.dpi / height
                fig.text(x, y_fig, s, transform=tx, va="center", **kw)  # type: ignore[arg-type]

        for i, (label, r) in enumerate(lines):
            if r is None:
                cell(0.02, i, label, fontweight="bold")
                continue
            cell(0.04, i, label)
            cell(0.31, i, f"{int(r['k'])}", ha="right")
            est, cl, cu = (float(r[c]) for c in ("estimate", "ci_lower", "ci_upper"))
            if not math.isfinite(est):
                cell(0.78, i, "not estimable", color=GREY)
                continue
            colour = VERMILLION if bool(r["primary"]) else "black"
            if math.isfinite(cl) and math.isfinite(cu):
                ax.plot([cl, cu], [i, i], color=colour, lw=0.9, solid_capstyle="butt")
                ci_txt = f"[{fmt(disp(cl), dec)}, {fmt(disp(cu), dec)}]"
            else:
                ci_txt = "[CI not defined]"
            ax.plot([est], [i], marker="D" if bool(r["primary"]) else "s", ms=4, color=colour)
            cell(0.78, i, f"{fmt(disp(est), dec)}  {ci_txt}")
        if not own:
            ax.set_yticks(range(n), [label for label, _ in lines])
            for tick, (_, r) in zip(ax.get_yticklabels(), lines, strict=True):
                tick.set_fontweight("bold" if r is None else "normal")
            if title:
                ax.set_title(title, loc="left", fontsize=9, fontweight="bold")
            return fig
        top = 1 - 0.42 / height
        fig.text(0.02, top, "Scenario", transform=tx, fontweight="bold", va="bottom")
        fig.text(0.31, top, "k", transform=tx, fontweight="bold", ha="right", va="bottom")
        fig.text(0.78, top, "Estimate [95% CI]", transform=tx, fontweight="bold", va="bottom")
        if title:
            fig.text(0.02, 1 - 0.12 / height, title, transform=tx, fontsize=9,
                     fontweight="bold", va="top")  # fmt: skip
        for j, text in enumerate(foot_lines):
            fig.text(0.02, (foot - 0.12 - 0.14 * j) / height, text, transform=tx,
                     color=GREY, va="top")  # fmt: skip
    return fig


#: Width of the footer's lines (inches): the 7 in figure less 0.14 in on either side.
_FOOT_WIDTH = 7.0 - 2 * 0.14


def _footer(hidden: pd.DataFrame, groups: list, band: bool, m: Measurer) -> list[str]:
    """The footer's lines: what the reference lines are, and the scenarios not drawn (a
    group left out whole by its name, otherwise its scenarios left out), wrapped to the
    figure's width (a long list of scenarios ran past the right edge)."""
    texts = [
        "Shaded band and dashed line: primary analysis; vertical line: no effect."
        if band
        else "Vertical line: no effect (the primary analysis has no estimate or CI here).",
    ]
    if len(hidden):
        parts = []
        for gname, g in hidden.groupby("group", sort=False):
            if gname in groups:  # the group keeps drawn scenarios
                parts += list(g["scenario"].astype(str))
            else:
                parts.append(f"{gname} ({', '.join(g['scenario'].astype(str))})"
                             if len(g) <= 2 else str(gname))  # fmt: skip
        names = "; ".join(dict.fromkeys(parts))
        texts.append(f"Not drawn (no trial here uses the assumption varied): {names}.")
    return [line for text in texts for line in m.wrap(text, _FOOT_WIDTH, 7.0)]
