"""Figures of the simulation study, drawn from ``results/simulation/performance.csv``.

* :func:`coverage_by_k`: coverage against the number of trials, one panel per CI method (rows)
  and heterogeneity (columns), one line per tau2 estimator or prior; the grey band is the
  nominal level +- 2 Monte Carlo SEs.
* :func:`width_vs_coverage`: mean interval width against coverage, one panel per named
  scenario; colour = CI method, marker = estimator.
"""

from __future__ import annotations

import math
import textwrap

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hairtrial.plots.style import BLUE, GREEN, GREY, PURPLE, VERMILLION, use_style

__all__ = ["coverage_by_k", "width_vs_coverage"]

# Okabe-Ito plus black and two greys: nine estimators stay distinguishable (with markers)
_COLOURS = [
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#D55E00",
    "#0072B2",
    "#CC79A7",
    "#999999",
    "#F0E442",
]
_MARKERS = ["o", "s", "^", "v", "D", "P", "X", "<", ">", "*", "h"]
_CI_STYLE = {  # label and colour of each CI method
    "z": ("Wald (z)", VERMILLION),
    "knha": ("Hartung-Knapp", BLUE),
    "adhoc": ("ad hoc Hartung-Knapp", GREEN),
    "posterior": ("Bayesian (posterior)", PURPLE),
}


def _method_styles(perf: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Colour and marker per method: estimators from the palette, priors in colours of their
    own (purple, magenta, brown: none of the estimators')."""
    out: dict[str, tuple[str, str]] = {}
    freq = list(dict.fromkeys(perf.loc[perf["family"] != "bayesian", "method"]))
    for i, m in enumerate(freq):
        out[m] = (_COLOURS[i % len(_COLOURS)], _MARKERS[i % 9])
    bayes = list(dict.fromkeys(perf.loc[perf["family"] == "bayesian", "method"]))
    for i, m in enumerate(bayes):
        out[m] = (["#6A3D9A", "#E7298A", "#8C510A"][i % 3], ["*", "h", "p"][i % 3])
    return out


def _nominal_band(ax, level: float, n: int, xlim: tuple[float, float]) -> None:
    half = 2 * math.sqrt(level * (1 - level) / n)
    ax.axhspan(level - half, level + half, color="0.88", zorder=0, lw=0)
    ax.axhline(level, color=GREY, lw=0.8, zorder=1)
    ax.set_xlim(*xlim)


def coverage_by_k(perf: pd.DataFrame, level: float = 0.95) -> Figure:
    """Coverage against k (log axis) for the grid scenarios (rows with an I2)."""
    grid = perf[(perf["outcome"] == "continuous") & perf["i2"].notna()]
    cis = [c for c in _CI_STYLE if c in set(grid["ci"])]
    i2s = sorted(grid["i2"].unique())
    methods = list(dict.fromkeys(grid["method"]))
    style = _method_styles(grid)
    ks = sorted(grid["k"].unique())
    n = int(grid["replicates"].max())
    with use_style():
        fig = Figure(figsize=(2.6 * len(i2s) + 0.9, 1.9 * len(cis) + 1.5))
        axes = fig.subplots(len(cis), len(i2s), sharex=True, sharey=True, squeeze=False)
        lows = []
        for r, ci in enumerate(cis):
            for c, i2 in enumerate(i2s):
                ax = axes[r][c]
                _nominal_band(ax, level, n, (min(ks) / 1.25, max(ks) * 1.25))
                d = grid[(grid["ci"] == ci) & (grid["i2"] == i2)]
                for m, g in d.groupby("method", sort=False):
                    g = g.sort_values("k")
                    col, mk = style[m]
                    ax.plot(g["k"], g["coverage"], color=col, marker=mk, ms=3.5, lw=1.0)
                    lows.append(g["coverage"].min())
                ax.set_xscale("log")
                ax.set_xticks(ks, [str(k) for k in ks])
                ax.minorticks_off()
                if r == 0:
                    ax.set_title(f"I\u00b2 = {i2:g}", fontsize=9)
                if c == 0:
                    ax.set_ylabel(f"{_CI_STYLE[ci][0]}\ncoverage", fontsize=8)
                if r == len(cis) - 1:
                    ax.set_xlabel("trials (k)")
        lo = max(0.0, math.floor(min(lows) * 20) / 20)
        axes[0][0].set_ylim(lo, 1.0)
        handles = [
            Line2D([], [], color=style[m][0], marker=style[m][1], ms=4, lw=1, label=m)
            for m in methods
        ]
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=min(len(handles), 6),
            frameon=False,
            fontsize=7.5,
            title="tau\u00b2 estimator (frequentist rows) / prior of tau (Bayesian row)",
            title_fontsize=8,
        )
        fig.suptitle(
            f"Coverage of the {level:.0%} interval of the pooled effect ({n} replicates; "
            "band: nominal \u00b1 2 MC SE)",
            fontsize=9,
        )
    return fig


def width_vs_coverage(perf: pd.DataFrame, scenarios: list[str], level: float = 0.95) -> Figure:
    """Mean interval width against coverage in the named scenarios (one panel each)."""
    n_p = len(scenarios)
    sel = perf[perf["scenario"].isin(scenarios)]
    methods = list(dict.fromkeys(sel["method"]))
    marker = {m: st[1] for m, st in _method_styles(sel).items()}
    with use_style():
        fig = Figure(figsize=(3.3 * n_p + 1.8, 3.4))
        axes = fig.subplots(1, n_p, squeeze=False)[0]
        for ax, scen in zip(axes, scenarios, strict=True):
            d = perf[perf["scenario"] == scen]
            n = int(d["replicates"].max())
            xmin = min(d["coverage"].min(), level) - 0.02
            # nominal coverage as a vertical band (x is coverage here)
            half = 2 * math.sqrt(level * (1 - level) / n)
            ax.axvspan(level - half, level + half, color="0.88", zorder=0, lw=0)
            ax.axvline(level, color=GREY, lw=0.8)
            for _, row in d.iterrows():
                col = _CI_STYLE[row["ci"]][1] if row["ci"] in _CI_STYLE else "#000000"
                mk = marker.get(row["method"], "*")
                ax.plot(
                    row["coverage"], row["width"], marker=mk, color=col, ms=5, ls="none", alpha=0.85
                )
            ax.set_xlim(xmin, 1.005)
            ax.set_xlabel("coverage")
            ax.set_title(textwrap.fill(str(d["label"].iloc[0]), 36), fontsize=8.5)
            unit = "log OR" if d["measure"].iloc[0] == "logOR" else str(d["measure"].iloc[0])
            ax.set_ylabel(f"mean width ({unit})")
            ax.set_ylim(bottom=0)
        ci_handles = [
            Line2D([], [], color=colour, marker="o", ls="none", ms=5, label=label)
            for c, (label, colour) in _CI_STYLE.items()
            if c in set(perf.loc[perf["scenario"].isin(scenarios), "ci"])
        ]
        m_handles = [
            Line2D([], [], color="0.3", marker=marker[m], ls="none", ms=5, label=m) for m in methods
        ]
        fig.legend(
            handles=ci_handles + [Line2D([], [], ls="none", label="")] + m_handles,
            loc="outside right center",
            frameon=False,
            fontsize=7.5,
        )
        fig.suptitle(
            "Interval width against coverage: wide but honest, or narrow and wrong", fontsize=9
        )
    return fig
