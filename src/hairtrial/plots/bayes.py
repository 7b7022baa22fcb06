"""Figures of the Bayesian analysis: posterior of mu, prior sensitivity, the next trial.

Each function draws rows of the run's tables (``bayes.csv``, ``bayes_sensitivity.csv``,
``next_trial.csv``) and figure data (``bayes_posterior.csv``); nothing is fitted here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hairtrial.plots.style import BLUE, GREY, VERMILLION, use_style

GREEN = "#009E73"  # Okabe-Ito bluish green: noticeable benefit
ORANGE = "#E69F00"  # Okabe-Ito orange


def _pct(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    if p > 0.999:
        return "> 99.9%"
    if p < 0.001:
        return "< 0.1%"
    return f"{100 * p:.1f}%"


def posterior_plot(
    grid: pd.DataFrame,
    row: pd.Series,
    *,
    xlabel: str,
    title: str,
    benefit_direction: int = 1,
    mid_label: str = "MID",
    mu_prior: str = "flat",
) -> Figure:
    """Posterior density of mu with its 95% credible interval, the MIDs and the probabilities.

    Parameters
    ----------
    grid : pandas.DataFrame
        Rows of ``bayes_posterior.csv`` for one analysis (``x, mu_density,
        predictive_density, mid_upper, mid_lower``).
    row : pandas.Series
        Its row of ``bayes.csv``.
    xlabel, title : str
        Axis label and title.
    benefit_direction : {1, -1}
        1 when larger values are a benefit (shading and legend words follow it).
    mid_label : str
        What the thresholds are called in the legend (e.g. ``"MID"``, ``"SMD ±0.2"``).
    mu_prior : str
        The prior of mu in words (footer).
    """
    x = grid["x"].to_numpy(float)
    d = grid["mu_density"].to_numpy(float)
    pdens = grid["predictive_density"].to_numpy(float)
    up, lo = float(grid["mid_upper"].iloc[0]), float(grid["mid_lower"].iloc[0])
    with use_style():
        fig = Figure(figsize=(7.2, 4.0))
        fig.set_layout_engine("none")
        ax = fig.add_axes((0.07, 0.25, 0.60, 0.66))
        ax.plot(x, d, color=BLUE, lw=1.6, label="Posterior of the mean effect μ")
        ax.plot(
            x, pdens, color=GREY, lw=1.0, ls="--", label="Predictive: a new trial's true effect"
        )
        has_mid = math.isfinite(up) and math.isfinite(lo)
        good, bad = (GREEN, VERMILLION) if benefit_direction == 1 else (VERMILLION, GREEN)
        if has_mid:
            ax.fill_between(x, 0, d, where=x >= up, color=good, alpha=0.35, lw=0)
            ax.fill_between(x, 0, d, where=x <= lo, color=bad, alpha=0.35, lw=0)
            for t in (up, lo):
                ax.axvline(t, color=GREY, lw=0.8, ls=":")
        else:
            ax.fill_between(x, 0, d, where=x >= 0, color=good, alpha=0.18, lw=0)
            ax.fill_between(x, 0, d, where=x <= 0, color=bad, alpha=0.18, lw=0)
        ax.axvline(0, color="black", lw=0.8)
        top = float(max(np.nanmax(d), np.nanmax(pdens)))
        ax.set_ylim(0, top * 1.18)
        ci = (float(row["mu_ci_lower"]), float(row["mu_ci_upper"]))
        yb = top * 1.08
        ax.plot(ci, (yb, yb), color=BLUE, lw=2.2, solid_capstyle="butt")
        ax.plot([float(row["mu_median"])], [yb], "o", color=BLUE, ms=4)
        ax.text(ci[1], yb, "  95% credible interval", va="center", ha="left", fontsize=7,
                color=BLUE, clip_on=False)  # fmt: skip
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Density")
        ax.set_yticks([])
        ax.set_title(title, loc="left", fontsize=9)
        words = ("benefit", "loss") if benefit_direction == 1 else ("harm", "reduction")
        lines = [
            f"Median μ {row['mu_median']:.3g} [{ci[0]:.3g} to {ci[1]:.3g}]",
            f"P(μ > 0) = {_pct(float(row['p_positive']))}",
            f"P(μ < 0) = {_pct(1 - float(row['p_positive']))}",
        ]
        if has_mid:
            lines += [
                f"P(μ > {up:.3g}): noticeable {words[0]}",
                f"    = {_pct(float(row['p_mid']))}",
                f"P(μ < {lo:.3g}): noticeable {words[1]}",
                f"    = {_pct(float(row['p_minus_mid']))}",
            ]
        else:
            lines += ["No MID established:", "a noticeable effect", "cannot be judged"]
        lines += [
            f"τ median {row['tau_median']:.3g}",
            f"(97.5% quantile {row['tau_ci_upper']:.3g})",
            f"k = {int(row['k'])} trials",
        ]
        fig.text(0.70, 0.91, "\n".join(lines).replace("-", "\u2212"), va="top", ha="left",
                 fontsize=7, linespacing=1.45)  # fmt: skip
        handles, labels = ax.get_legend_handles_labels()
        from matplotlib.patches import Patch

        handles += [Patch(color=good, alpha=0.5), Patch(color=bad, alpha=0.5)]
        if has_mid:
            labels += [f"{w.capitalize()} beyond the {mid_label}" for w in words]
        else:
            labels += [
                f"{words[0].capitalize()} (μ {'>' if benefit_direction == 1 else '<'} 0)",
                f"{words[1].capitalize()} (μ {'<' if benefit_direction == 1 else '>'} 0)",
            ]
        fig.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.06, 0.035), ncol=2,
                   fontsize=7, frameon=False)  # fmt: skip
        prior = str(row["prior"])
        fig.text(0.07, 0.01, f"Prior of τ: {prior}; prior of μ: {mu_prior}.", ha="left",
                 va="bottom", fontsize=6.5, color=GREY)  # fmt: skip
    return fig


def prior_label(row: pd.Series) -> str:
    """A prior of ``bayes_sensitivity.csv`` in words, with its scale as a multiple of the default.

    Examples
    --------
    >>> prior_label(pd.Series({"prior_family": "half-normal", "tau_prior_scale": 2.83911,
    ...                        "scale_factor": 1.0, "prior": "half-normal(scale=2.83911)"}))
    'half-normal, scale 2.84 (default)'
    >>> prior_label(pd.Series({"prior_family": "fixed", "tau_prior_scale": 0.0,
    ...                        "scale_factor": 0.0, "prior": "fixed(tau=0)"}))
    'τ fixed at 0 (common effect)'
    """
    fam, s, f = str(row["prior_family"]), float(row["tau_prior_scale"]), float(row["scale_factor"])
    times = "default" if f == 1 else f"{f:g} × default"
    if fam == "fixed":
        return "τ fixed at 0 (common effect)" if s == 0 else f"τ fixed at {s:.3g}"
    if fam == "log-normal":
        return "log-normal (Turner et al.)"
    if fam == "uniform":
        return f"uniform on [0, {s:.3g}] ({times})"
    if fam == "half-t":
        return f"half-t(3), scale {s:.3g} ({times})"
    return f"{fam.replace('cauchy', 'Cauchy')}, scale {s:.3g} ({times})"


def prior_sensitivity_plot(
    rows: pd.DataFrame, *, xlabel: str, title: str, mu_prior: str = "flat"
) -> Figure:
    """Median and 95% credible interval of mu under each prior, with P(mu > 0) and P(> MID).

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows of ``bayes_sensitivity.csv`` for one analysis (the panel's order is kept).
    """
    rows = rows.reset_index(drop=True)
    n = len(rows)
    with use_style():
        H = 1.1 + 0.26 * n
        fig = Figure(figsize=(7.0, H))
        fig.set_layout_engine("none")
        ax = fig.add_axes((0.32, 0.72 / H, 0.43, 0.26 * n / H))
        y = np.arange(n)[::-1]
        for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
            col = VERMILLION if bool(r["primary"]) else BLUE
            ax.plot([r["mu_ci_lower"], r["mu_ci_upper"]], [yi, yi], color=col, lw=1.4)
            ax.plot([r["mu_median"]], [yi], "s" if bool(r["primary"]) else "o", color=col, ms=4.5)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels(
            [("▶ " if bool(r["primary"]) else "") + prior_label(r) for _, r in rows.iterrows()],
            fontsize=7,
        )
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlabel(xlabel, fontsize=8)
        fig.text(0.01, 1 - 0.08 / H, title, fontsize=9, weight="bold", va="top", ha="left")
        has_mid = rows["p_mid"].notna().any()
        trans = ax.get_yaxis_transform()
        heads = ["P(μ>0)", "P(>MID)", "P(<−MID)"] if has_mid else ["P(μ>0)"]
        for j, head in enumerate(heads):
            ax.text(1.04 + 0.17 * j, n - 0.35, head, transform=trans, fontsize=7, ha="left",
                    va="bottom", weight="bold")  # fmt: skip
        for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
            vals = [r["p_positive"]] + ([r["p_mid"], r["p_minus_mid"]] if has_mid else [])
            for j, v in enumerate(vals):
                ax.text(1.04 + 0.17 * j, yi, _pct(float(v)), transform=trans, fontsize=7,
                        ha="left", va="center")  # fmt: skip
        fig.text(0.01, 0.01,
                 "Median and central 95% credible interval of the mean effect μ under each "
                 "prior of the between-trial SD τ\n"
                 f"(prior of μ: {mu_prior}). ▶ and square: the primary prior.",
                 fontsize=6.5, color=GREY, ha="left", va="bottom")  # fmt: skip
    return fig


def next_trial_plot(
    power: pd.DataFrame,
    trial_sizes: pd.DataFrame,
    *,
    title: str,
    sample_size: pd.DataFrame | None = None,
) -> Figure:
    """Probability of each criterion against the new trial's n per arm (log scale).

    Parameters
    ----------
    power : pandas.DataFrame
        Rows of ``next_trial.csv`` for one analysis.
    trial_sizes : pandas.DataFrame
        The existing trials (``label``, ``n_per_arm``): marked on the axis.
    sample_size : pandas.DataFrame, optional
        Its rows of ``next_trial_sample_size.csv`` (the n for 80% and 90%, in the footer).
    """
    series = [
        ("p_trial_benefit", "New trial alone shows benefit (p < 0.05)", BLUE, "-"),
        ("p_meta_benefit", "Updated meta-analysis: 95% CI excludes 0 (benefit)", VERMILLION, "-"),
        ("p_posterior_mid", "Updated Bayesian: P(μ beyond MID) > {thr}", GREEN, "--"),
    ]
    thr = power["posterior_threshold"].iloc[0] if "posterior_threshold" in power else math.nan
    mid = float(power["mid"].iloc[0]) if "mid" in power else math.nan
    if math.isfinite(mid):
        harm = str(power["direction"].iloc[0]) == "harm" if "direction" in power else False
        beyond = f"μ < {-mid:.3g}" if harm else f"μ > {mid:.3g}"
        series[2] = (series[2][0], f"Updated Bayesian: P({beyond}) > {{thr}}", *series[2][2:])
    series = [(c, lab.format(thr=f"{thr:.0%}"), col, ls) for c, lab, col, ls in series]
    with use_style():
        fig = Figure(figsize=(6.4, 4.2))
        fig.set_layout_engine("none")
        ax = fig.add_axes((0.10, 0.34, 0.83, 0.56))
        n = power["n_per_arm"].to_numpy(float)
        for col, label, color, ls in series:
            p = power[col].to_numpy(float)
            if np.all(np.isnan(p)):
                continue
            ax.plot(n, p, ls, color=color, lw=1.5, marker="o", ms=3, label=label)
        for t in (0.8, 0.9):
            ax.axhline(t, color=GREY, lw=0.7, ls=":")
            ax.text(1.005, t, f"{t:.0%}", va="center", ha="left", fontsize=7, color=GREY,
                    transform=ax.get_yaxis_transform())  # fmt: skip
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(n.min() / 1.3, n.max() * 1.3)
        ax.set_xlabel("Participants per arm of the new trial (log scale)")
        ax.set_ylabel("Probability")
        ax.set_title(title, loc="left", fontsize=9)
        for i, (_, t) in enumerate(trial_sizes.sort_values("n_per_arm").iterrows()):
            ax.axvline(float(t["n_per_arm"]), color=GREY, lw=0.6, ls="-", alpha=0.6)
            ax.text(float(t["n_per_arm"]), 0.02 + 0.07 * (i % 3), f" {t['label']}", fontsize=6.5,
                    color=GREY, rotation=0, ha="left", va="bottom")  # fmt: skip
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), fontsize=7, frameon=False)
        foot = "Grey lines: the existing trials' participants per arm."
        if sample_size is not None and len(sample_size):
            parts = []
            names = {"p_trial_benefit": "trial alone", "p_meta_benefit": "meta-analysis",
                     "p_posterior_mid": "Bayesian"}  # fmt: skip
            for crit, g in sample_size.groupby("criterion", sort=False):
                vals = []
                for _, r in g.iterrows():
                    v = float(r["n_per_arm"])
                    if not math.isfinite(v):
                        txt = "—"
                    elif str(r["note"]).startswith("already"):
                        txt = f"≤ {v:.0f}"
                    else:
                        txt = f"{v:.0f}"
                    vals.append(f"{r['target']:.0%}: {txt}")
                if g["note"].fillna("").str.startswith("no MID").all():
                    continue
                parts.append(f"{names.get(str(crit), crit)} " + ", ".join(vals))
            if parts:
                foot += " n per arm needed: " + "; ".join(parts) + " (— not reached)."
        fig.text(0.01, 0.01, foot, fontsize=6.5, color=GREY, ha="left", va="bottom", wrap=True)
    return fig
