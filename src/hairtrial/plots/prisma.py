"""PRISMA 2020 flow diagram drawn from the counts file.

:func:`prisma_diagram` draws the PRISMA 2020 flow diagram for new systematic
reviews (Page et al. 2021, BMJ 372:n71): the databases-and-registers column
always, the 'other methods' column when any of its counts is given, and the
optional 'studies included in meta-analysis' box when the counts file lists
it. Counts come from :func:`hairtrial.data.prisma.read_prisma` (format in that
module); a count that is not known is drawn as "n = not reported", never as
0, and the footer says so. Counts that do not add up are listed in the footer
in vermillion (see :mod:`hairtrial.data.prisma` for the rules).

The layout is computed from the measured text (boxes grow with their wrapped
text, rows share one height, the phase bars are at least as tall as their
rotated labels), so nothing overlaps or is clipped at any size of the counts.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from hairtrial.data.prisma import BOXES, PrismaCounts, read_prisma
from hairtrial.plots.intervals import Table
from hairtrial.plots.layout import Measurer, wrap_title
from hairtrial.plots.style import GREY, VERMILLION, use_style

# Geometry (inches) and type sizes (points).
_W = 7.0
_MARGIN = 0.1
_FS = 7.0
_FS_HEAD = 8.0
_FS_TITLE = 9.0
_LINE_H = _FS * 1.25 / 72
_PAD_X = 0.08
_PAD_Y = 0.07
_INDENT = 0.12
_BAR_W = 0.27
_BAR_GAP = 0.1
_ROW_GAP = 0.3
_ARROW_W = 0.45  # horizontal arrow between the boxes of a row (two-column diagram)
_ARROW_W4 = 0.26  # the same with the other-methods column
_BLOCK_GAP = 0.22  # between the two identification columns
_RIGHT_RATIO = 1.3  # width of a right-hand box / left-hand box (four columns)
_ROUND = 0.05
_LW = 0.7

#: Fills: tints (30 % on white) of Okabe-Ito orange and sky blue, as the
#: template's yellow header and blue phase bars; grey for the other-methods header.
_FILL_HEAD = "#F8E2B2"
_FILL_HEAD_OTHER = "#E3E3E3"
_FILL_BAR = "#CCE8F8"

NOT_REPORTED = "not reported"

_Para = tuple[str, int]  # (text, indent level)

#: Wrapping units: a count in parentheses stays on one line.
_TOKEN = re.compile(r"\(n = [^)]*\):?|\S+")


def _n(value: int | None) -> str:
    return f"n = {value}" if value is not None else f"n = {NOT_REPORTED}"


def _single(text: str, value: int | None) -> list[_Para]:
    return [(text, 0), (f"({_n(value)})", 0)]


def _listing(head: str, items: list[tuple[str, int | None]]) -> list[_Para]:
    return [(head, 0), *((f"{label} ({_n(v)})", 1) for label, v in items)]


def _excluded(c: PrismaCounts, box: str) -> list[_Para]:
    rows = c.items.get(box, [])
    if not rows:
        return _single("Reports excluded", None)
    total = c.total(box)
    head = f"Reports excluded ({_n(total)}):" if total is not None else "Reports excluded:"
    return _listing(head, rows)


def _contents(c: PrismaCounts) -> dict[str, list[_Para]]:
    """Box key -> paragraphs. Keys: row letter + column (e.g. 'A0', 'D3')."""
    out: dict[str, list[_Para]] = {
        "A0": _listing(
            "Records identified from:",
            [
                ("Databases", c["identified_databases"]),
                ("Registers", c["identified_registers"]),
            ],
        ),
        "A1": _listing(
            "Records removed before screening:",
            [
                (BOXES["removed_duplicates"].text, c["removed_duplicates"]),
                (BOXES["removed_automation"].text, c["removed_automation"]),
                (BOXES["removed_other"].text, c["removed_other"]),
            ],
        ),
        "B0": _single("Records screened", c["records_screened"]),
        "B1": _single("Records excluded", c["records_excluded"]),
        "C0": _single("Reports sought for retrieval", c["reports_sought"]),
        "C1": _single("Reports not retrieved", c["reports_not_retrieved"]),
        "D0": _single("Reports assessed for eligibility", c["reports_assessed"]),
        "D1": _excluded(c, "reports_excluded"),
        "E0": [
            *_single("Studies included in review", c["studies_included"]),
            *_single("Reports of included studies", c["reports_included"]),
        ],
    }
    if "studies_meta_analysis" in c.present:
        out["F0"] = _single("Studies included in meta-analysis", c["studies_meta_analysis"])
    if c.has_other_methods:
        items = c.items.get("other_identified", [])
        out["A2"] = (
            _listing("Records identified from:", items)
            if items
            else _single("Records identified from other methods", None)
        )
        out["C2"] = _single("Reports sought for retrieval", c["other_reports_sought"])
        out["C3"] = _single("Reports not retrieved", c["other_reports_not_retrieved"])
        out["D2"] = _single("Reports assessed for eligibility", c["other_reports_assessed"])
        out["D3"] = _excluded(c, "other_reports_excluded")
    return out


def prisma_diagram(
    counts: PrismaCounts | str | Path,
    *,
    title: str | None = None,
    width: float = _W,
) -> Figure:
    """Draw the PRISMA 2020 flow diagram.

    Layout as the PRISMA 2020 template for new systematic reviews: a header
    bar over each identification column ("via databases and registers";
    "via other methods" only when any ``other_*`` count is given), phase bars
    (Identification, Screening, Included) on the left, rounded boxes joined
    by arrows, and the optional "Studies included in meta-analysis" box below
    "Studies included in review" when the counts file lists it. Reasons for
    excluding reports are listed one per line with their counts. Unknown
    counts read "n = not reported" and a footnote explains it; counts that
    do not add up (:attr:`PrismaCounts.problems`) are listed in the footer
    in vermillion.

    Parameters
    ----------
    counts : PrismaCounts or str or pathlib.Path
        Counts, or the path of a counts file (read with
        :func:`hairtrial.data.prisma.read_prisma`, non-strict).
    title : str, optional
        Title above the diagram.
    width : float, default 7.0
        Figure width in inches (full page width); the height follows the
        content.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with an Agg canvas, not registered with pyplot. Save it with
        :func:`hairtrial.plots.save_figure`. Its attribute
        ``hairtrial_boxes`` maps box keys (row letter A-F + column 0-3) to
        their text, for tests.

    Examples
    --------
    >>> from hairtrial.data.prisma import PrismaCounts
    >>> c = PrismaCounts.from_mapping({"reports_sought": 12, "reports_not_retrieved": 1,
    ...     "reports_assessed": 11, "studies_included": 11, "reports_included": 11,
    ...     "studies_meta_analysis": 3})
    >>> fig = prisma_diagram(c)
    >>> fig.hairtrial_boxes["C1"]
    'Reports not retrieved\\n(n = 1)'
    >>> fig.hairtrial_boxes["B0"]
    'Records screened\\n(n = not reported)'
    """
    if not isinstance(counts, PrismaCounts):
        counts = read_prisma(counts)
    with use_style():
        return _Diagram(counts, title=title, width=float(width)).draw()


class _Diagram:
    """Layout and drawing of :func:`prisma_diagram` (one instance per figure)."""

    def __init__(self, counts: PrismaCounts, *, title: str | None, width: float) -> None:
        self.c = counts
        self.title = " ".join(str(title).split()) if title else ""
        self.width = width
        self.family = str(mpl.rcParams["font.sans-serif"][0])
        self.m = Measurer(self.family)
        self.other = counts.has_other_methods
        self.contents = _contents(counts)

    # ---- layout -----------------------------------------------------------

    def _columns(self) -> list[tuple[float, float]]:
        """(left x, width) of the 2 or 4 box columns."""
        x0 = _MARGIN + _BAR_W + _BAR_GAP
        avail = self.width - _MARGIN - x0
        if not self.other:
            w = (avail - _ARROW_W) / 2
            return [(x0, w), (x0 + w + _ARROW_W, w)]
        # the right-hand boxes list reasons and sources: give them more room
        unit = (avail - _BLOCK_GAP - 2 * _ARROW_W4) / (2 * (1 + _RIGHT_RATIO))
        wl, wr = unit, unit * _RIGHT_RATIO
        xs = [x0, x0 + wl + _ARROW_W4]
        xs += [xs[1] + wr + _BLOCK_GAP, xs[1] + wr + _BLOCK_GAP + wl + _ARROW_W4]
        return list(zip(xs, [wl, wr, wl, wr], strict=True))

    def _wrap(self, paras: list[_Para], box_w: float) -> list[tuple[str, float]]:
        """Wrapped lines as (text, x offset); a count "(n = ...)" is never broken."""
        lines: list[tuple[str, float]] = []
        for text, level in paras:
            indent = level * _INDENT
            max_w = box_w - 2 * _PAD_X - indent
            current = ""
            for token in _TOKEN.findall(text):
                trial = f"{current} {token}" if current else token
                if not current or self.m.width(trial, _FS) <= max_w:
                    current = trial
                else:
                    lines.append((current, indent))
                    current = token
                if self.m.width(current, _FS) > max_w:
                    current = self.m.ellipsize(current, max_w, _FS)
            lines.append((current, indent))
        return lines

    def draw(self) -> Figure:
        cols = self._columns()
        wrapped = {k: self._wrap(v, cols[int(k[1])][1]) for k, v in self.contents.items()}
        rows = ["A", "B", "C", "D", "E"] + (["F"] if "F0" in self.contents else [])
        height_of = {
            r: max(len(wrapped[k]) * _LINE_H + 2 * _PAD_Y for k in wrapped if k.startswith(r))
            for r in rows
        }
        # phases: the bar must be as tall as its rotated label
        phases = [("Identification", ["A"]), ("Screening", ["B", "C", "D"])]
        phases.append(("Included", [r for r in rows if r in ("E", "F")]))
        for name, members in phases:
            need = self.m.width(name, _FS_HEAD, "bold") + 2 * _PAD_Y + 0.1
            have = sum(height_of[r] for r in members) + _ROW_GAP * (len(members) - 1)
            if need > have:
                for r in members:
                    height_of[r] += (need - have) / len(members)

        full_w = self.width - 2 * _MARGIN
        y = _MARGIN
        title_lines, title_y, y = wrap_title(self.m, self.title, full_w, y, _FS_TITLE, 0.08)
        # header bars over the identification columns
        heads = [("Identification of studies via databases and registers", 0, 1, _FILL_HEAD)]
        if self.other:
            heads.append(("Identification of studies via other methods", 2, 3, _FILL_HEAD_OTHER))
        head_lines = []
        for text, a, b, fill in heads:
            x0, x1 = cols[a][0], cols[b][0] + cols[b][1]
            lines = self.m.wrap(text, x1 - x0 - 2 * _PAD_X, _FS_HEAD, weight="bold")
            head_lines.append((lines, x0, x1, fill))
        head_h = max(len(h[0]) for h in head_lines) * _FS_HEAD * 1.25 / 72 + 2 * _PAD_Y
        head_top = y
        y += head_h + 0.16
        row_top: dict[str, float] = {}
        for r in rows:
            row_top[r] = y
            y += height_of[r] + _ROW_GAP
        body_bottom = y - _ROW_GAP

        # footer
        foot: list[tuple[str, str]] = []  # (line, colour)
        shown = "\n".join("\n".join(t for t, _ in v) for v in wrapped.values())
        if NOT_REPORTED in shown:
            foot.append(
                (
                    f"n = {NOT_REPORTED}: the count is not documented (empty in the counts "
                    "file); it is not zero.",
                    GREY,
                )
            )
        for p in self.c.problems:
            where = f"line {p.line}: " if p.line is not None else ""
            foot.append((f"Counts do not add up ({where}{p.rule}).", VERMILLION))
        foot_lines: list[tuple[str, str]] = []
        for text, colour in foot:
            foot_lines += [(ln, colour) for ln in self.m.wrap(text, full_w, _FS)]
        y = body_bottom + (0.14 if foot_lines else 0.0)
        foot_y = []
        for _ in foot_lines:
            foot_y.append(y + _LINE_H / 2)
            y += _LINE_H
        height = y + _MARGIN

        self.table = Table(self.width, height, self.family)
        fig, self.fig, self.tr = self.table.fig, self.table.fig, self.table.tr

        self.table.title(title_lines, title_y, x=_MARGIN)
        for lines, x0, x1, fill in head_lines:
            self._box(x0, head_top, x1 - x0, head_h, fill=fill, edge="none")
            ly = head_top + head_h / 2 - (len(lines) - 1) * _FS_HEAD * 1.25 / 72 / 2
            for line in lines:
                self.table.text((x0 + x1) / 2, ly, line, ha="center", size=_FS_HEAD, weight="bold")
                ly += _FS_HEAD * 1.25 / 72

        # phase bars
        for name, members in phases:
            top = row_top[members[0]]
            bottom = row_top[members[-1]] + height_of[members[-1]]
            self._box(_MARGIN, top, _BAR_W, bottom - top, fill=_FILL_BAR, edge="none")
            self.table.text(
                _MARGIN + _BAR_W / 2, (top + bottom) / 2, name, ha="center", size=_FS_HEAD,
                weight="bold", rotation=90, rotation_mode="anchor",
            )  # fmt: skip

        # boxes
        geom: dict[str, tuple[float, float, float, float]] = {}  # key -> x, top, w, h
        for key, lines in wrapped.items():
            r, ci = key[0], int(key[1])
            x, w = cols[ci]
            top, h = row_top[r], height_of[r]
            geom[key] = (x, top, w, h)
            self._box(x, top, w, h, fill="white", edge="black")
            ty = top + h / 2 - (len(lines) - 1) * _LINE_H / 2  # centred vertically
            for text, dx in lines:
                self.table.text(x + _PAD_X + dx, ty, text)
                ty += _LINE_H
        fig.hairtrial_boxes = {  # type: ignore[attr-defined]
            k: "\n".join(t for t, _ in v) for k, v in wrapped.items()
        }

        # arrows: down the first column of each block, across each row
        def down(a: str, b: str) -> None:
            xa, ta, wa, ha = geom[a]
            xb, tb, _, _ = geom[b]
            self._arrow([(xa + wa / 2, ta + ha), (xa + wa / 2, tb)])

        def across(a: str, b: str) -> None:
            xa, ta, wa, ha = geom[a]
            xb, _, _, _ = geom[b]
            self._arrow([(xa + wa, ta + ha / 2), (xb, ta + ha / 2)])

        chain = ["A0", "B0", "C0", "D0", "E0"] + (["F0"] if "F0" in geom else [])
        for a, b in zip(chain, chain[1:], strict=False):
            down(a, b)
        for r in "ABCD":
            across(f"{r}0", f"{r}1")
        if self.other:
            down("A2", "C2")
            down("C2", "D2")
            across("C2", "C3")
            across("D2", "D3")
            xd, td, wd, hd = geom["D2"]
            xe, te, we, he = geom["E0"]
            ye = te + he / 2
            self._arrow([(xd + wd / 2, td + hd), (xd + wd / 2, ye), (xe + we, ye)])

        for (line, colour), fy in zip(foot_lines, foot_y, strict=True):
            self.table.text(_MARGIN, fy, line, color=colour)
        return fig

    # ---- drawing helpers --------------------------------------------------

    def _box(self, x: float, top: float, w: float, h: float, *, fill: str, edge: str) -> None:
        # in top-down inches the box spans [top, top + h]; the transform flips it
        patch = FancyBboxPatch(
            (x, top),
            w,
            h,
            boxstyle=f"round,pad=0,rounding_size={_ROUND}",
            transform=self.tr,
            facecolor=fill,
            edgecolor=edge,
            linewidth=_LW if edge != "none" else 0,
        )
        self.fig.add_artist(patch)

    def _arrow(self, points: list[tuple[float, float]]) -> None:
        """Polyline ending in an arrowhead at the last point."""
        if len(points) > 2:
            xs, ys = zip(*points[:-1], strict=True)
            self.fig.add_artist(
                Line2D(list(xs), list(ys), transform=self.tr, color="black", lw=_LW)
            )
        arrow = FancyArrowPatch(
            points[-2],
            points[-1],
            transform=self.tr,
            arrowstyle="-|>,head_length=0.45,head_width=0.22",
            mutation_scale=10,
            shrinkA=0,
            shrinkB=0,
            color="black",
            lw=_LW,
        )
        self.fig.add_artist(arrow)
