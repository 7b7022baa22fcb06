"""Summary-of-findings figure: the GRADE judgements of every outcome at a glance.

One row per outcome of ``summary_of_findings.csv``: the five domains as coloured marks (not
serious, serious, very serious; a ring marks a person's judgement rather than a rule's), the
certainty with GRADE's circles, the number of trials and participants. Nothing is computed
here.
"""

from __future__ import annotations

import textwrap

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hairtrial.plots.style import GREEN, GREY, ORANGE, VERMILLION, use_style

DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
HEADS = (
    "Risk of\nbias",
    "Incon-\nsistency",
    "Indirect-\nness",
    "Impre-\ncision",
    "Publication\nbias",
)
COLOURS = {"not serious": GREEN, "serious": ORANGE, "very serious": VERMILLION,
           "not assessable": "#BBBBBB"}  # fmt: skip
MARKS = {"not serious": "✓", "serious": "−1", "very serious": "−2", "not assessable": "?"}


def _shown(judgement: str, reason: str) -> str:
    """The mark of a judgement: not serious because not assessable (one trial, k < 10) is grey."""
    if judgement == "not serious" and reason.startswith(("not assessable", "not applicable")):
        return "not assessable"
    return judgement


def sof_plot(sof: pd.DataFrame, *, title: str) -> Figure:
    """Grid of the GRADE domain judgements and the certainty of each outcome.

    Parameters
    ----------
    sof : pandas.DataFrame
        ``summary_of_findings.csv``.
    title : str
        Figure title.
    """
    items: list[tuple[str, pd.Series | None]] = []
    for direction, heading in (("benefit", "Benefits"), ("harm", "Harms")):
        part = sof[sof["direction"].astype(str) == direction]
        if len(part):
            items.append((heading, None))
            items += [("", r) for _, r in part.iterrows()]
    rest = sof[~sof["direction"].astype(str).isin(["benefit", "harm"])]
    items += [("", r) for _, r in rest.iterrows()]
    n = len(items)
    row_h = 0.40
    height = 1.35 + row_h * max(n, 1)
    with use_style():
        fig = Figure(figsize=(8.6, height))
        fig.set_layout_engine("none")
        ax = fig.add_axes((0.01, 0.45 / height, 0.98, (row_h * (n + 1.0)) / height))
        ax.set_xlim(0, 10.5)
        ax.set_ylim(-0.5, n + 0.5)
        ax.axis("off")
        x_trials = 3.35
        xs = [4.3 + 0.95 * j for j in range(5)]
        x_cert = 9.6
        top = n
        ax.text(0.05, top, "Outcome (week)", fontsize=7.5, weight="bold", va="center")
        ax.text(x_trials, top, "Trials\n(people)", fontsize=7.5, weight="bold", va="center",
                ha="center")  # fmt: skip
        for x, head in zip(xs, HEADS, strict=True):
            ax.text(x, top, head, fontsize=7, weight="bold", ha="center", va="center")
        ax.text(x_cert, top, "Certainty", fontsize=7.5, weight="bold", ha="center", va="center")
        shade = 0
        for i, (heading, r) in enumerate(items):
            y = n - 1 - i
            if r is None:
                ax.text(0.05, y, heading, fontsize=8, weight="bold", va="center", color=GREY)
                ax.plot([0.05, 10.45], [y - 0.45, y - 0.45], color=GREY, lw=0.5)
                shade = 0
                continue
            if shade % 2 == 0:
                ax.axhspan(y - 0.5, y + 0.5, color="#f2f2f2", zorder=0)
            shade += 1
            label = f"{r['label']} ({int(r['week'])})"
            ax.text(0.05, y, "\n".join(textwrap.wrap(label, 34, max_lines=2, placeholder="…")),
                    fontsize=7, va="center", linespacing=1.0)  # fmt: skip
            ax.text(x_trials, y, f"{int(r['k'])} ({int(r['participants'])})", fontsize=7.5,
                    va="center", ha="center")  # fmt: skip
            for x, d in zip(xs, DOMAINS, strict=True):
                j = _shown(str(r[d]), str(r[f"{d}_reason"]))
                person = str(r[f"{d}_by"]) == "person"
                ax.scatter([x], [y], s=230, color=COLOURS[j], zorder=2,
                           edgecolors="black" if person else "none",
                           linewidths=1.6 if person else 0)  # fmt: skip
                ax.text(x, y, MARKS[j], fontsize=7, ha="center", va="center", color="white",
                        weight="bold", zorder=3)  # fmt: skip
            ax.text(x_cert, y, f"{r['certainty_symbols']}\n{r['certainty']}", fontsize=7.5,
                    ha="center", va="center", linespacing=1.1)  # fmt: skip
        fig.text(0.01, 1 - 0.1 / height, title, fontsize=9, weight="bold", va="top")
        handles = [
            Line2D([], [], marker="o", ls="", color=COLOURS[k], ms=8, label=k) for k in COLOURS
        ] + [
            Line2D([], [], marker="o", ls="", color="white", markeredgecolor="black", ms=8,
                   markeredgewidth=1.4, label="a person's judgement (data/grade.csv)")
        ]  # fmt: skip
        fig.legend(handles=handles, loc="lower left", ncol=5, fontsize=6.5, frameon=False,
                   bbox_to_anchor=(0.0, 0.12 / height), columnspacing=1.0)  # fmt: skip
        fig.text(0.01, 0.04 / height,
                 "The rules are stated in the report's methods; every reason is in "
                 "summary_of_findings.csv. ?: not assessable, not rated down.",
                 fontsize=6, color=GREY, ha="left", va="bottom")  # fmt: skip
    return fig
