"""The table-plus-interval engine of every forest-type figure.

The forest plot (:mod:`.forest`), the leave-one-out and cumulative plots (:mod:`.influence`)
and the subgroup forest plot (:mod:`.subgroup_forest`) are one kind of figure: a table of
text in rows, measured and laid out in inches from the top of a fixed-size figure, and an
interval column beside it in which each row may have an estimate (square or diamond) and an
interval (whisker, cut with an arrowhead where it leaves the axis). :class:`Table` writes the
text (cells, superscript marks, rules, footnotes) and :class:`IntervalAxes` draws the
interval column; the figure modules only decide which rows and columns there are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter

from hairtrial.plots.layout import Measurer, fixed_figure, tick_decimals, top_transform
from hairtrial.plots.style import BLUE, GREY, fmt

__all__ = [
    "FS",
    "FS_MARK",
    "FS_TITLE",
    "LINE_H",
    "MARGIN",
    "ROW_H",
    "IntervalAxes",
    "Table",
    "footnote_lines",
    "header_lines",
    "square_side",
]

#: Type sizes (points): table, axis and footer; title; superscript marks.
FS = 7.0
FS_TITLE = 9.0
FS_MARK = 5.5
#: Geometry (inches): height of a table row and of a text line; figure margin.
ROW_H = 0.17
LINE_H = FS * 1.3 / 72
MARGIN = 0.08
#: Raise of a superscript mark above the text centre and its gap after the text (inches).
MARK_RAISE = 0.032
MARK_GAP = 0.012


class Table:
    """Text and rules of a fixed-geometry figure, placed in inches from the top-left corner.

    The table of the forest-type figures (cells, superscript marks, rules, title and
    footnotes, beside an :class:`IntervalAxes`); the PRISMA diagram writes its boxes with it.

    Parameters
    ----------
    width, height : float
        Figure size in inches.
    family : str, optional
        Font family written into every text (default: the style's).
    """

    def __init__(self, width: float, height: float, family: str | None = None) -> None:
        self.width, self.height = width, height
        self.family = family
        self.fig: Figure = fixed_figure(width, height)
        self.tr = top_transform(self.fig, height)

    def text(
        self,
        x: float,
        y: float,
        s: str,
        *,
        ha: str = "left",
        size: float = FS,
        weight: str = "normal",
        style: str = "normal",
        color: str = "black",
        gid: str | None = None,
        **kw: Any,
    ) -> None:
        """Write `s` vertically centred on `y` (nothing for empty text)."""
        if not s:
            return
        if self.family is not None:
            kw["fontfamily"] = self.family
        t = self.fig.text(
            x,
            y,
            s,
            transform=self.tr,
            ha=ha,
            va="center",
            fontsize=size,
            fontweight=weight,
            fontstyle=style,
            color=color,
            parse_math=False,
            **kw,
        )
        if gid:
            t.set_gid(gid)

    def marks(self, x: float, y: float, marks: Sequence[str]) -> None:
        """Superscript marks (``a,b``) starting at `x` on the row centred on `y`."""
        if marks:
            self.text(x + MARK_GAP, y - MARK_RAISE, ",".join(marks), size=FS_MARK)

    def rule(self, x0: float, x1: float, y: float, lw: float = 0.6) -> None:
        """A horizontal black rule from `x0` to `x1` at `y`."""
        self.fig.add_artist(
            mpl.lines.Line2D([x0, x1], [y, y], transform=self.tr, color="black", lw=lw)
        )

    def title(
        self, lines: Sequence[str], centres: Sequence[float], x: float = MARGIN, **kw: Any
    ) -> None:
        """The bold title lines, left-aligned at `x` (default the margin)."""
        for line, y in zip(lines, centres, strict=True):
            self.text(x, y, line, size=FS_TITLE, weight="bold", **kw)

    def write_footnotes(self, lines: Sequence[tuple[float, str, str, str | None, float]]) -> None:
        """Draw the lines made by :func:`footnote_lines`."""
        for fy, sym, text, gid, x in lines:
            if sym:
                self.text(MARGIN, fy - MARK_RAISE, sym, size=FS_MARK)
            self.text(MARGIN + x, fy, text, gid=gid)

    def interval_axes(
        self, x: float, top: float, w: float, bottom: float, ylim: tuple[float, float]
    ) -> IntervalAxes:
        """The interval column: an axes from `x` to `x + w` and `top` to `bottom` inches."""
        ax = self.fig.add_axes(
            (
                x / self.width,
                (self.height - bottom) / self.height,
                w / self.width,
                (bottom - top) / self.height,
            )
        )
        return IntervalAxes(ax, ylim)


class IntervalAxes:
    """The interval column of a forest-type figure: estimates and intervals by row.

    Only the x axis is shown; y data are row positions (``ylim`` top to bottom).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes to draw into.
    ylim : tuple of float
        ``(bottom, top)`` y limits: inches from the figure top, or row slots.
    """

    def __init__(self, ax: Axes, ylim: tuple[float, float]) -> None:
        self.ax = ax
        ax.set_ylim(*ylim)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.patch.set_visible(False)
        self.lo, self.hi = ax.get_xlim()

    def scale(
        self,
        lo: float,
        hi: float,
        ticks: Sequence[float],
        family: str | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        """Set the x range and ticks (labels with the fewest exact decimals, or `labels`).

        `labels` names each tick (e.g. the ratios of a log axis whose data are logs).
        """
        ax = self.ax
        self.lo, self.hi = lo, hi
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator(list(ticks)))
        if labels is not None:
            ax.xaxis.set_major_formatter(FixedFormatter(list(labels)))
        else:
            d = tick_decimals(ticks)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt(v, d)))
        if family is not None:
            ax.tick_params(axis="x", labelsize=FS, labelfontfamily=family)
        ax.axvline(0.0, color="black", lw=0.6, zorder=1)

    def whisker(
        self,
        a: float,
        b: float,
        y: float,
        *,
        color: str = "black",
        lw: float = 0.8,
        caps: float | None = None,
    ) -> None:
        """Interval from a to b at row `y`, cut at the axis with an arrowhead where cut.

        `caps` is the half height of end caps in y data units (None: no caps).
        """
        if not (math.isfinite(a) and math.isfinite(b)):
            return
        lo, hi = self.lo, self.hi
        x0, x1 = max(a, lo), min(b, hi)
        if x1 < x0:
            return
        ax = self.ax
        ax.plot([x0, x1], [y, y], color=color, lw=lw, solid_capstyle="butt", zorder=2)
        for x, cut, marker in ((x0, a < lo, "<"), (x1, b > hi, ">")):
            if cut:
                ax.plot([x], [y], marker=marker, ms=4.0, mfc=color, mec=color, mew=0,
                        ls="none", zorder=2, clip_on=False)  # fmt: skip
            elif caps is not None:
                ax.plot([x, x], [y - caps, y + caps], color=color, lw=lw * 0.8, zorder=2)

    def square(self, x: float, y: float, side: float) -> None:
        """An estimate as a blue square of `side` points (nothing outside the axis)."""
        if self.lo <= x <= self.hi:
            self.ax.plot([x], [y], marker="s", ms=side, mfc=BLUE, mec=BLUE, mew=0, ls="none",
                         zorder=3)  # fmt: skip

    def diamond(
        self, lo: float, est: float, hi: float, y: float, h: float, color: str, **kw: Any
    ) -> None:
        """A pooled estimate and its CI as a diamond of half height `h` (y units)."""
        self.ax.add_patch(
            Polygon(
                [(lo, y), (est, y - h), (hi, y), (est, y + h)],
                closed=True, facecolor=color, edgecolor=color, lw=0.5, zorder=3, **kw,
            )
        )  # fmt: skip

    def favours(
        self,
        table: Table,
        plot_x: float,
        plot_w: float,
        y: float,
        texts: tuple[str, str],
        limits: tuple[float, float] | None = None,
        gids: tuple[str | None, str | None] = (None, None),
    ) -> None:
        """'Favours' texts under the axis, left and right of 0, with arrows.

        `limits` (inches from the left) keep the texts inside the figure.
        """
        lo, hi = self.lo, self.hi
        x0 = plot_x + (0 - lo) / (hi - lo) * plot_w if lo < 0 < hi else plot_x + plot_w / 2
        left = f"\u2190 {texts[0]}" if texts[0] else ""
        right = f"{texts[1]} \u2192" if texts[1] else ""
        x_left, x_right = x0 - 0.05, x0 + 0.05
        if limits is not None:
            m = Measurer(table.family or "DejaVu Sans")
            x_left = max(x_left, limits[0] + m.width(left, FS))
            x_right = min(x_right, limits[1] - m.width(right, FS))
        table.text(x_left, y, left, ha="right", color=GREY, gid=gids[0])
        table.text(x_right, y, right, color=GREY, gid=gids[1])


def header_lines(y: float, n: int, gap: float) -> tuple[list[float], float, float]:
    """`n` column-head lines from `y` inches and the rule under them.

    Returns
    -------
    tuple
        The centres of the lines, the y of the rule and the y `gap` below the lines.
    """
    centres = []
    for _ in range(n):
        centres.append(y + LINE_H / 2)
        y += LINE_H
    return centres, y + 0.02, y + gap


def footnote_lines(
    notes: Sequence[tuple[str, str, str | None]], max_w: float, y: float, m: Measurer
) -> tuple[list[tuple[float, str, str, str | None, float]], float]:
    """Lay out footnotes ``(mark, text, gid)`` wrapped to `max_w` inches from `y`.

    A note with a mark is indented and its mark hangs at the margin; the gid goes to the
    first line of a note.

    Returns
    -------
    tuple
        ``(y, mark, line, gid, indent)`` per line, for :meth:`Table.write_footnotes`, and
        the y below the last line.
    """
    indent = m.width("mm", FS_MARK) + 0.03
    out = []
    for sym, text, gid in notes:
        x = indent if sym else 0.0
        for j, line in enumerate(m.wrap(text, max_w - x, FS) if text else []):
            out.append((y + LINE_H / 2, sym if j == 0 else "", line, gid if j == 0 else None, x))
            y += LINE_H
    return out, y


def square_side(weight: float, w_max: float, row_h: float = ROW_H) -> float:
    """Side (points) of a study square: area proportional to the weight, at least 2.5 pt.

    Examples
    --------
    >>> round(square_side(25.0, 100.0), 3)
    4.406
    """
    max_side = 0.72 * row_h * 72
    if math.isfinite(weight) and w_max > 0:
        return max(2.5, max_side * math.sqrt(max(weight, 0.0) / w_max))
    return 0.45 * max_side
