"""The legend builder: titled legend blocks under the axes, flowed into centred rows.

The L'Abbé plot (:mod:`.labbe`) and the trajectory plot (:mod:`.trajectory`) explain their
markers in several small legends (treatment or week colours, marker fill, marker size), each
with a bold title, set side by side under the axes and wrapped onto further rows when they do
not fit the figure width. :class:`LegendBlocks` builds, measures and places them;
:func:`size_handles` makes the marker-size key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D

from hairtrial.plots.layout import nice_sizes
from hairtrial.plots.style import GREY

__all__ = ["LegendBlocks", "size_handles"]


def size_handles(
    ns: Sequence[float] | np.ndarray, area: Callable[[float], Any], mew: float
) -> tuple[list[Line2D], list[str]]:
    """Hollow grey circles of round reference n for a marker-area key.

    Parameters
    ----------
    ns : sequence of float
        The n of the drawn markers (the references are :func:`~.layout.nice_sizes` of them).
    area : callable
        Marker area in points² of an n, as the plot draws it.
    mew : float
        Edge width of the circles.

    Returns
    -------
    tuple
        The handles and their labels.
    """
    refs = nice_sizes(np.asarray(ns, dtype=float))
    handles = [
        Line2D([], [], ls="none", marker="o", ms=math.sqrt(float(area(v))), mfc="none", mec=GREY,
               mew=mew)
        for v in refs
    ]  # fmt: skip
    return handles, [f"{v}" for v in refs]


class LegendBlocks:
    """Titled legends of one figure, measured and flowed into centred rows.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (with an Agg canvas, for measuring).
    family : str
        Font family of the legend text.
    size : float
        Font size (points) of entries and titles.
    handletextpad, handlelength : float
        Space between handle and text, and the least handle length (font-size units).
    gap : float
        Space between the legends of a row (inches).
    """

    def __init__(
        self,
        fig: Figure,
        family: str,
        *,
        size: float = 7.0,
        handletextpad: float = 0.4,
        handlelength: float = 1.6,
        gap: float = 0.18,
    ) -> None:
        self.fig, self.family, self.size = fig, family, size
        self.handletextpad, self.handlelength, self.gap = handletextpad, handlelength, gap
        self.legends: list[Legend] = []

    def add(self, handles: list, labels: list[str], title: str, ncol: int = 1) -> Legend:
        """A legend block with a bold title; tuple handles draw their parts side by side."""
        fs = self.size
        # room for the largest marker (a size key's markers exceed the text height)
        sizes = [h.get_markersize() for h in handles if isinstance(h, Line2D)]
        ms = max([*sizes, 0.0]) / fs
        leg = self.fig.legend(
            handles,
            labels,
            title=title,
            loc="upper left",
            bbox_to_anchor=(0.0, 1.0),
            bbox_transform=self.fig.transFigure,
            frameon=False,
            fontsize=fs,
            title_fontproperties={"size": fs, "weight": "bold", "family": self.family},
            alignment="left",
            handletextpad=self.handletextpad,
            labelspacing=0.35 if ms <= 1.0 else 0.25,
            borderpad=0.0,
            borderaxespad=0.0,
            handlelength=max(self.handlelength, ms),
            handleheight=max(0.7, ms),
            prop={"size": fs, "family": self.family},
            handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)},
            ncols=ncol,
            columnspacing=1.0,
        )
        self.legends.append(leg)
        return leg

    def flow(self, max_w: float, row_gap: float) -> float:
        """Measure the blocks and flow them into rows of at most `max_w` inches.

        Returns
        -------
        float
            Height of the rows in inches (with `row_gap` between rows).
        """
        renderer = self.fig.canvas.get_renderer()  # type: ignore[attr-defined]
        dpi = self.fig.dpi
        self.sizes = []
        for leg in self.legends:
            bb = leg.get_window_extent(renderer)
            self.sizes.append((bb.width / dpi, bb.height / dpi))
        rows: list[list[int]] = [[]]
        used = 0.0
        for i, (w, _) in enumerate(self.sizes):
            need = w if not rows[-1] else used + self.gap + w
            if rows[-1] and need > max_w:
                rows.append([i])
                used = w
            else:
                rows[-1].append(i)
                used = need
        self.rows = [r for r in rows if r]
        heights = [max(self.sizes[i][1] for i in row) for row in self.rows]
        return sum(heights) + row_gap * (len(self.rows) - 1)

    def place(self, y: float, width: float, row_gap: float, fy: Callable[[float], float]) -> float:
        """Anchor the rows, centred, from `y` inches below the top; `fy` maps to figure y.

        Returns
        -------
        float
            `y` below the last row plus `row_gap`.
        """
        for row in self.rows:
            row_w = sum(self.sizes[i][0] for i in row) + self.gap * (len(row) - 1)
            x = (width - row_w) / 2
            for i in row:
                self.legends[i].set_bbox_to_anchor(
                    (x / width, fy(y)), transform=self.fig.transFigure
                )
                x += self.sizes[i][0] + self.gap
            y += max(self.sizes[i][1] for i in row) + row_gap
        return y

    def labels(self) -> list[str]:
        """Every entry text of every block."""
        return [t.get_text() for leg in self.legends for t in leg.get_texts()]
