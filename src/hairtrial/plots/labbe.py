"""L'Abbé-style plot of a continuous outcome: experimental vs control mean change.

L'Abbé et al. (1987, Ann Intern Med 107:224) plotted the event rate of the
treated arm against that of the control arm, one point per trial. For a
continuous outcome the same picture uses the arm means: x = control-arm mean
change, y = experimental-arm mean change, so the vertical distance of a point
from the line of no effect y = x is the trial's mean difference, and a common
effect would put every point on the parallel line y = x + MD. The plot shows
what a forest plot hides: whether the benefit depends on how much the control
arm improved (baseline-risk-like heterogeneity) and whether the arms of some
trial are on a different scale from the others.

Nothing is computed here: the points are the arm means as given in
``study_effects.csv`` and the pooled line uses the pooled MD it is given.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.path import Path as MplPath
from matplotlib.text import Annotation, Text
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator
from matplotlib.transforms import Bbox

from hairtrial.core import vocab
from hairtrial.plots.labels import best_position, crowded_first
from hairtrial.plots.layout import (
    FigureText,
    Measurer,
    fixed_figure,
    get_renderer,
    parse_codes,
    tick_decimals,
)
from hairtrial.plots.legends import LegendBlocks, size_handles
from hairtrial.plots.style import BLUE, GREY, VERMILLION, fmt, format_decimals, use_style

#: Codes that mean "as printed in the paper" (filled marker).
REPORTED_CODES = frozenset({"reported", ""})

#: Okabe-Ito colours for weeks (vermillion is kept for the pooled line).
_WEEK_COLOURS = (BLUE, "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000")

# Geometry (inches) and type sizes (points).
_FS = 7.0
_FS_LABEL = 6.5
_FS_TITLE = 9.0
_LINE_H = _FS * 1.3 / 72
_MARGIN = 0.08
_S_MAX = 200.0  # marker area (pt²) of the largest total n in the figure
_LEG_GAP = 0.18  # between legend blocks
_RING_GAP = 1.5  # points between a marker's edge and its label
#: White halo behind labels, so a label crossing a line stays legible.
_HALO = [patheffects.withStroke(linewidth=2.0, foreground="white")]


def labbe_plot(
    studies: pd.DataFrame,
    pooled_md: float | None,
    *,
    unit_label: str,
    title: str | None = None,
    arm_labels: tuple[str, str] = vocab.ARM_LABELS,
    pooled_label: str | None = None,
    derived_codes: Collection[str] | None = None,
    width: float = 4.2,
    ax: mpl.axes.Axes | None = None,
    risk_measure: str | None = None,
) -> Figure:
    """Draw a L'Abbé-style plot of experimental vs control mean change, or the classic one.

    With ``risk_measure`` (``"RR"``, ``"OR"`` or ``"RD"``), the classic plot of L'Abbé et
    al. (1987) for a binary outcome: x = risk of the event in the control arm
    (``events_control / n_control``), y = risk in the experimental arm, both from 0 to 1;
    `pooled_md` is then the pooled effect on that measure's scale (log RR, log OR or RD),
    drawn as the curve of experimental risks it implies at each control risk
    (y = RR x; y = OR x / (1 - x + OR x); y = x + RD), and named in the legend.

    One point per trial and week: x = control-arm mean change, y =
    experimental-arm mean change. The point *area* is proportional to the
    total n (``n_control + n_experimental``; the largest trial of the figure
    gets a fixed area and a size legend gives reference values). Points whose
    ``provenance`` holds a derived number (any code but ``reported``; see
    :data:`hairtrial.data.provenance.PROVENANCE`) are hollow. Several weeks get one
    Okabe-Ito colour each; the points of one trial are then joined by a thin
    grey line in week order and the trial is labelled once, at its last week.
    The solid line is no effect (y = x); the dashed vermillion line is
    y = x + pooled MD, labelled with its value. Both axes have the same
    limits (all points and 0 included) and the same length, so the aspect is
    equal and the lines run at 45°. Study labels are placed next to their
    points where they overlap nothing (points, other labels, line labels), or
    where they overlap least, with a leader line when pushed away.

    Parameters
    ----------
    studies : pandas.DataFrame
        Rows of ``study_effects.csv`` for one outcome. Rows with a
        ``measure`` column other than ``"MD"`` are ignored (the SMD rows
        repeat the same points). Required columns: ``study``,
        ``mean_experimental``, ``mean_control``, ``n_experimental``,
        ``n_control``; used when present: ``label`` (falls back to
        ``study``), ``week``, ``provenance``, ``outcome``. Rows without both
        means or with no positive total n are not drawn (the footer names
        them).
    pooled_md : float or None
        Pooled mean difference (experimental minus control) drawn as
        y = x + MD; None or NaN: no pooled line.
    unit_label : str
        Unit of the outcome for the axis labels, e.g. ``"hairs/cm²"``.
    title : str, optional
        Figure title.
    arm_labels : tuple of str, default :data:`hairtrial.core.vocab.ARM_LABELS`
        Names of the experimental (y) and control (x) arms.
    pooled_label : str, optional
        Text on the pooled line; default ``"Pooled MD = <value> <unit>"``.
        With several weeks, say which week it pools.
    derived_codes : collection of str, optional
        Provenance codes that make a point hollow; default every code except
        ``reported``.
    width : float, default 4.2
        Figure width in inches; the plot is square and the height follows
        (about the width).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes: their figure keeps its size and layout; axis titles and
        title are the axes' own, one legend inside the axes explains weeks and marker
        fill (no size key), and the footer notes are not drawn. Default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into: new (an Agg canvas, not registered with pyplot), or that
        of `ax`; save it with :func:`hairtrial.plots.save_figure`. Attribute ``hairtrial_labels``
        maps each drawn study label to its text artist, for tests.

    Raises
    ------
    ValueError
        If a required column is missing or the rows mix outcomes.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({
    ...     "study": ["a2013", "b2018"], "label": ["A 2013", "B 2018"],
    ...     "mean_experimental": [91.4, 40.0], "mean_control": [22.2, 25.0],
    ...     "n_experimental": [50, 18], "n_control": [50, 18],
    ...     "provenance": ["n_split_equally", "reported"]})
    >>> fig = labbe_plot(rows, 30.0, unit_label="hairs/cm²")
    >>> sorted(fig.hairtrial_labels)
    ['A 2013', 'B 2018']
    """
    if risk_measure is None:
        required = {"study", "mean_experimental", "mean_control", "n_experimental", "n_control"}
    else:
        if risk_measure not in ("RR", "OR", "RD"):
            raise ValueError(f"risk_measure must be 'RR', 'OR' or 'RD', got {risk_measure!r}")
        required = {"study", "events_experimental", "events_control", "n_experimental",
                    "n_control"}  # fmt: skip
    missing = required - set(studies.columns)
    if missing:
        raise ValueError(f"studies lacks column(s) {sorted(missing)}")
    df = studies
    if "measure" in df.columns:
        keep = "MD" if risk_measure is None else risk_measure
        df = df[df["measure"].astype(str) == keep]
    if "outcome" in df.columns and df["outcome"].nunique() > 1:
        raise ValueError(
            f"labbe_plot draws one outcome; got {sorted(df['outcome'].astype(str).unique())}"
        )
    with use_style():
        return _Labbe(
            df.reset_index(drop=True),
            pooled_md,
            unit_label=unit_label,
            title=title,
            arm_labels=arm_labels,
            pooled_label=pooled_label,
            derived_codes=derived_codes,
            width=float(width),
            risk_measure=risk_measure,
        ).draw(ax)


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


class _Labbe:
    """Layout and drawing of :func:`labbe_plot` (one instance per figure)."""

    def __init__(
        self,
        df: pd.DataFrame,
        pooled_md: float | None,
        *,
        unit_label: str,
        title: str | None,
        arm_labels: tuple[str, str],
        pooled_label: str | None,
        derived_codes: Collection[str] | None,
        width: float,
        risk_measure: str | None = None,
    ) -> None:
        self.risk = risk_measure
        self.width = width
        self.title = " ".join(str(title).split()) if title else ""
        self.unit = " ".join(str(unit_label).split())
        self.arm_labels = arm_labels
        self.family = str(mpl.rcParams["font.sans-serif"][0])
        self.m = Measurer(self.family)
        md = math.nan if pooled_md is None else float(pooled_md)
        self.md = md if math.isfinite(md) else None
        self.pooled_label = pooled_label
        self.notes: list[str] = []
        self.effect: float | None = None
        if self.risk is not None:  # the pooled effect is a curve, named in the legend
            self.effect, self.md = self.md, None
            x = _num(df["events_control"]) / _num(df["n_control"])
            y = _num(df["events_experimental"]) / _num(df["n_experimental"])
        else:
            x, y = _num(df["mean_control"]), _num(df["mean_experimental"])
        n = _num(df["n_control"]) + _num(df["n_experimental"])
        labels = [
            " ".join(str(v).split()) if isinstance(v, str) and v.strip() else str(s)
            for v, s in zip(
                df["label"] if "label" in df.columns else df["study"], df["study"], strict=True
            )
        ]
        weeks = _num(df["week"]) if "week" in df.columns else np.zeros(len(df))
        ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(n) & (n > 0)
        dropped = [labels[i] for i in range(len(df)) if not ok[i]]
        if dropped:
            self.notes.append(
                "Not drawn (arm means or n missing): " + ", ".join(dict.fromkeys(dropped)) + "."
            )
        codes_set = None if derived_codes is None else set(derived_codes)
        derived = []
        for v in df["provenance"] if "provenance" in df.columns else [""] * len(df):
            codes = [c for c in parse_codes(v) if c not in REPORTED_CODES]
            if codes_set is not None:
                codes = [c for c in codes if c in codes_set]
            derived.append(bool(codes))
        keep = np.flatnonzero(ok)
        self.x, self.y, self.n = x[keep], y[keep], n[keep]
        self.weeks = weeks[keep]
        self.labels = [labels[i] for i in keep]
        self.study = [str(df["study"].iloc[i]) for i in keep]
        self.derived = np.array([derived[i] for i in keep], dtype=bool)
        finite_weeks = sorted({w for w in self.weeks.tolist() if math.isfinite(w)})
        self.week_list = finite_weeks
        self.multi_week = len(finite_weeks) > 1

    # ---- scales -----------------------------------------------------------

    def _limits(self) -> tuple[float, float, list[float]]:
        if self.risk is not None:  # risks: from 0 to a round value above the largest
            top = float(np.max(np.concatenate([self.x, self.y]))) if len(self.x) else 1.0
            ticks = list(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(0.0, top))
            ticks = [t for t in ticks if 0.0 <= t <= 1.0 + 1e-9]
            while ticks[-1] < top * 1.08 and ticks[-1] < 1.0:  # room above the largest point
                ticks.append(min(1.0, ticks[-1] + (ticks[1] - ticks[0])))
            hi = ticks[-1]
            return -0.03 * hi, hi * 1.03, ticks
        vals = np.concatenate([self.x, self.y, [0.0]])
        lo, hi = float(np.min(vals)), float(np.max(vals))
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        lo, hi = lo - 0.12 * span, hi + 0.12 * span
        ticks = list(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
        ticks = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
        return lo, hi, ticks

    def _area(self, n: float | np.ndarray) -> float | np.ndarray:
        return _S_MAX * np.asarray(n, dtype=float) / self.n_ref

    # ---- drawing ----------------------------------------------------------

    def draw(self, ax: mpl.axes.Axes | None = None) -> Figure:
        has_points = len(self.x) > 0
        self.n_ref = float(np.max(self.n)) if has_points else 1.0
        lo, hi, ticks = self._limits() if has_points else (-1.0, 1.0, [-1.0, 0.0, 1.0])
        what = "mean change" if self.risk is None else "risk (events / participants)"
        unit = f" ({self.unit})" if self.unit else ""
        dec = tick_decimals(ticks)
        tick_txt = [fmt(t, dec) for t in ticks]
        tick_w = max(self.m.width(t, _FS) for t in tick_txt)
        tick_h = (3 + 2) / 72  # tick length + pad

        if ax is None:
            # Axis labels, wrapped to the axis length.
            ylab_text = f"{self.arm_labels[0]}: {what}{unit}"
            xlab_text = f"{self.arm_labels[1]}: {what}{unit}"
            left = _MARGIN + tick_w + tick_h + 0.06
            side = self.width - left - 0.14
            ylab = self.m.wrap(ylab_text, side, _FS)
            left += len(ylab) * _LINE_H
            side = self.width - left - 0.14
            ylab = self.m.wrap(ylab_text, side, _FS)
            xlab = self.m.wrap(xlab_text, side, _FS)

            title_lines = (
                self.m.wrap(self.title, self.width - 2 * _MARGIN, _FS_TITLE, weight="bold")
                if self.title
                else []
            )
            top = _MARGIN + len(title_lines) * _FS_TITLE * 1.3 / 72 + (0.1 if title_lines else 0.04)
            axes_bottom_gap = tick_h + _LINE_H + 0.04 + len(xlab) * _LINE_H + 0.1

            # Provisional figure; the legend is measured, then the height is fixed.
            fig = fixed_figure(self.width, self.width)
            renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
            legends = self._legends(fig)
            leg_h = legends.flow(self.width - 2 * _MARGIN, 0.04)
            if self.md is not None and abs(self.md) >= hi - lo:
                self.notes.append("The pooled line y = x + MD lies outside the plotted range.")
            foot_lines = [
                ln for note in self.notes for ln in self.m.wrap(note, self.width - 0.16, _FS)
            ]
            foot_h = len(foot_lines) * _LINE_H + (0.06 if foot_lines else 0.0)
            height = top + side + axes_bottom_gap + leg_h + foot_h + _MARGIN
            fig.set_size_inches(self.width, height)

            ax = fig.add_axes(
                (
                    left / self.width,
                    (height - (top + side)) / height,
                    side / self.width,
                    side / height,
                )
            )
            self._frame(ax, lo, hi, ticks, dec)

            # axis labels at fixed distances (the ticks are known in advance)
            ft = FigureText(fig, self.width, height, self.family)
            y0 = top + side + tick_h + _LINE_H + 0.04
            ft.stack(left + side / 2, y0, xlab, _LINE_H, ha="center")
            ft.vertical(left - tick_w - tick_h - 0.06, top + side / 2, ylab, _LINE_H)
            ft.title(title_lines, _MARGIN, _FS_TITLE)

            # legends under the axes, rows centred
            y = top + side + axes_bottom_gap
            y = legends.place(y, self.width, 0.04, ft.fy)
            y += 0.06 if foot_lines else 0.0
            ft.stack(_MARGIN, y, foot_lines, _LINE_H, color=GREY)
        else:
            fig = ax.figure  # type: ignore[assignment]
            renderer = get_renderer(fig)
            self._frame(ax, lo, hi, ticks, dec)
            ax.set_xlabel(f"{self.arm_labels[1]}: {what}{unit}", fontsize=_FS)
            ax.set_ylabel(f"{self.arm_labels[0]}: {what}{unit}", fontsize=_FS)
            if self.title:
                ax.set_title(self.title, loc="left", fontsize=_FS_TITLE, fontweight="bold")
            specs = [sp for sp in self._legend_specs() if sp[2] != "Total n (area)"]
            ax.legend([h for hs, _, _ in specs for h in hs], [n for _, ns, _ in specs for n in ns],
                      loc="lower right", fontsize=_FS_LABEL)  # fmt: skip

        # reference lines, points, labels
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.7, zorder=1)
        if self.md is not None:
            ax.plot(
                [lo, hi],
                [lo + self.md, hi + self.md],
                color=VERMILLION,
                lw=1.0,
                ls=(0, (4, 2.5)),
                zorder=1,
            )
        if self.effect is not None:
            xs, ys = self._curve()
            ax.plot(xs, ys, color=VERMILLION, lw=1.0, ls=(0, (4, 2.5)), zorder=1)
        if has_points:
            self._points(ax)
        fig.canvas.draw()  # fixes every transform before measuring text
        obstacles = self._point_boxes(ax, renderer)
        polys = self._line_labels(ax, renderer, lo, hi, obstacles)
        self._study_labels(ax, renderer, obstacles, polys, lo, hi)
        return fig

    def _curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Experimental risk implied by the pooled effect at each control risk (inside [0, 1])."""
        assert self.effect is not None
        xs = np.linspace(0.0, 1.0, 2001)
        if self.risk == "RR":
            ys = math.exp(self.effect) * xs
        elif self.risk == "OR":
            r = math.exp(self.effect)
            ys = r * xs / (1.0 - xs + r * xs)
        else:
            ys = xs + self.effect
        ok = (ys >= 0.0) & (ys <= 1.0)
        return xs[ok], ys[ok]

    def _curve_label(self) -> str:
        assert self.effect is not None
        value = math.exp(self.effect) if self.risk in ("RR", "OR") else self.effect
        name = self.pooled_label or f"Pooled {self.risk}"
        return f"{name} = {fmt(value, format_decimals([value]))}"

    def _frame(self, ax: mpl.axes.Axes, lo: float, hi: float, ticks: list, dec: int) -> None:
        """Equal x and y scales with the same ticks; a full box."""
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(FixedLocator(ticks))
            axis.set_major_formatter(FuncFormatter(lambda v, _p, d=dec: fmt(v, d)))
        ax.tick_params(labelsize=_FS, labelfontfamily=self.family)
        ax.spines["top"].set_visible(True)
        ax.spines["right"].set_visible(True)

    def _points(self, ax: mpl.axes.Axes) -> None:
        colours = {w: _WEEK_COLOURS[i % len(_WEEK_COLOURS)] for i, w in enumerate(self.week_list)}
        self.colour = [colours.get(w, BLUE) if self.multi_week else BLUE for w in self.weeks]
        self.trajectories: list[tuple[np.ndarray, np.ndarray]] = []
        if self.multi_week:
            for s in dict.fromkeys(self.study):
                idx = [i for i, t in enumerate(self.study) if t == s]
                idx.sort(key=lambda i: self.weeks[i])
                if len(idx) > 1:
                    self.trajectories.append((self.x[idx], self.y[idx]))
                    ax.plot(self.x[idx], self.y[idx], color=GREY, lw=0.5, alpha=0.7, zorder=2)
        # big points first so small ones stay visible on top
        order = np.argsort(-self.n, kind="stable")
        for i in order:
            c = self.colour[i]
            ax.scatter(
                [self.x[i]],
                [self.y[i]],
                s=[float(self._area(self.n[i]))],
                marker="o",
                facecolors="none" if self.derived[i] else c,
                edgecolors=c,
                linewidths=1.1 if self.derived[i] else 0.6,
                alpha=1.0 if self.derived[i] else 0.85,
                zorder=3,
            )

    # ---- legends ----------------------------------------------------------

    def _legend_specs(self) -> list[tuple[list, list[str], str]]:
        """(handles, labels, title) of each legend block."""
        out: list[tuple[list, list[str], str]] = []
        if len(self.n):
            out.append((*size_handles(self.n, self._area, 0.8), "Total n (area)"))
        if self.multi_week:
            handles = [
                Line2D([], [], ls="none", marker="o", ms=6, mfc=c, mec=c)
                for c in _WEEK_COLOURS[: len(self.week_list)]
            ]
            names = [f"Week {fmt(w, 0) if float(w).is_integer() else w}" for w in self.week_list]
            out.append((handles, names, "Week"))
        if len(self.n):
            handles, names = [], []
            if (~self.derived).any():
                handles.append(Line2D([], [], ls="none", marker="o", ms=6, mfc=GREY, mec=GREY))
                names.append("All numbers as reported")
            if self.derived.any():
                handles.append(
                    Line2D([], [], ls="none", marker="o", ms=6, mfc="none", mec=GREY, mew=1.1)
                )
                names.append("Some numbers derived\n(see provenance)")
            out.append((handles, names, "Marker"))
        if self.effect is not None:
            line = Line2D([], [], color=VERMILLION, lw=1.0, ls=(0, (4, 2.5)))
            out.append(([line], [self._curve_label()], "Pooled effect"))
        return out

    def _legends(self, fig: Figure) -> LegendBlocks:
        out = LegendBlocks(fig, self.family, gap=_LEG_GAP)
        for handles, names, title in self._legend_specs():
            out.add(handles, names, title)
        return out

    # ---- label placement --------------------------------------------------

    def _label_kw(self, i: int, ox: float, oy: float, ha: str, va: str) -> dict[str, Any]:
        """Study label `i` offset by (ox, oy) points from its point."""
        return {
            "text": self.labels[i],
            "xy": (self.x[i], self.y[i]),
            "xytext": (ox, oy),
            "textcoords": "offset points",
            "ha": ha,
            "va": va,
            "fontsize": _FS_LABEL,
            "fontfamily": self.family,
            "annotation_clip": False,
        }

    def _radius_px(self, i: int, ax: mpl.axes.Axes) -> float:
        return math.sqrt(float(self._area(self.n[i]))) / 2 * ax.figure.dpi / 72

    def _traj_paths(self, ax: mpl.axes.Axes) -> list[MplPath]:
        """The lines joining one trial's weeks, in display coordinates."""
        return [
            MplPath(ax.transData.transform(np.column_stack([x, y])))
            for x, y in getattr(self, "trajectories", [])
        ]

    def _point_boxes(self, ax: mpl.axes.Axes, renderer) -> list[Bbox]:
        boxes = []
        for i in range(len(self.x)):
            px, py = ax.transData.transform((self.x[i], self.y[i]))
            r = self._radius_px(i, ax)
            boxes.append(Bbox.from_extents(px - r, py - r, px + r, py + r))
        return boxes

    def _line_labels(
        self,
        ax: mpl.axes.Axes,
        renderer,
        lo: float,
        hi: float,
        obstacles: list[Bbox],
    ) -> list[MplPath]:
        """Rotated labels along the two lines; returns their outlines (display)."""
        dpi = ax.figure.dpi
        ax_bb = ax.get_window_extent(renderer)
        md = self.md
        lines = [("No effect (y = x)", 0.0, "black", -1)]
        if md is not None:
            dec = format_decimals([md])
            text = self.pooled_label or f"Pooled MD = {fmt(md, dec)} {self.unit}".strip()
            lines.append((text, md, VERMILLION, 1 if md >= 0 else -1))
        # the no-effect label goes on the side away from the pooled line
        if md is not None and md < 0:
            lines[0] = ("No effect (y = x)", 0.0, "black", 1)
        polys: list[MplPath] = []
        for text, c, colour, side in lines:
            t = ax.text(
                0,
                0,
                text,
                rotation=45,
                rotation_mode="anchor",
                ha="center",
                va="bottom" if side > 0 else "top",
                fontsize=_FS_LABEL,
                color=colour,
                fontfamily=self.family,
                transform=ax.transData,
                zorder=4,
                path_effects=_HALO,
            )
            probe = Text(0, 0, text, fontsize=_FS_LABEL, fontfamily=self.family)
            probe.set_figure(ax.figure)
            bb = probe.get_window_extent(renderer)
            w, h = bb.width, bb.height
            # visible part of y = x + c inside [lo, hi]^2
            xa, xb = max(lo, lo - c), min(hi, hi - c)
            best = None
            for frac in np.linspace(0.88, 0.12, 31):
                xm = xa + frac * (xb - xa)
                px, py = ax.transData.transform((xm, xm + c))
                off = 1.5 * dpi / 72
                nx, ny = -side * math.sqrt(0.5), side * math.sqrt(0.5)
                ax_, ay_ = px + nx * off, py + ny * off
                poly = _rotated_rect(ax_, ay_, w, h, side)
                inside = all(ax_bb.contains(*p) for p in poly.vertices[:4])
                hits = sum(poly.intersects_bbox(b, filled=True) for b in obstacles)
                hits += sum(poly.intersects_path(p, filled=True) for p in polys)
                hits += sum(poly.intersects_path(p, filled=True) for p in self._traj_paths(ax))
                score = (0 if inside else 1000) + 10 * hits
                if best is None or score < best[0]:
                    best = (score, ax_, ay_, poly)
                if score == 0:
                    break
            assert best is not None
            _, bx, by, poly = best
            # back to data coordinates: pixel positions change with the saving dpi
            t.set_position(tuple(ax.transData.inverted().transform((bx, by))))
            polys.append(poly)
        return polys

    def _study_labels(
        self,
        ax: mpl.axes.Axes,
        renderer,
        obstacles: list[Bbox],
        polys: list[MplPath],
        lo: float,
        hi: float,
    ) -> None:
        fig = ax.figure
        dpi = fig.dpi
        ax_bb = ax.get_window_extent(renderer)
        line_paths = [
            MplPath(ax.transData.transform([(lo, lo), (hi, hi)])),
        ]
        if self.md is not None:
            line_paths.append(
                MplPath(ax.transData.transform([(lo, lo + self.md), (hi, hi + self.md)]))
            )
        # one label per study (at its last week when there are several)
        targets: dict[str, int] = {}
        for i, s in enumerate(self.study):
            if s not in targets or self.weeks[i] >= self.weeks[targets[s]]:
                targets[s] = i
        # crowded points first: they have the fewest good places
        idx = list(targets.values())
        pts = np.array([ax.transData.transform((self.x[i], self.y[i])) for i in idx])
        order = [idx[j] for j in crowded_first(pts, 60, lambda j: (-self.n[idx[j]],))]
        placed: list[Bbox] = []
        dirs = [(1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1), (0, 1), (0, -1)]
        rings = [[(extra, d) for d in dirs] for extra in (0.0, 9.0, 18.0)]
        self.label_artists: dict[str, Annotation] = {}
        for i in order:
            r_pt = self._radius_px(i, ax) * 72 / dpi

            def cost(ring: int, k: int, cand: tuple, i: int = i, r_pt: float = r_pt) -> Any:
                extra, (dx, dy) = cand
                norm = math.hypot(dx, dy)
                dist = r_pt + _RING_GAP + extra
                ox, oy = dx / norm * dist, dy / norm * dist
                ha = {1: "left", -1: "right", 0: "center"}[dx]
                va = {1: "bottom", -1: "top", 0: "center"}[dy]
                ann = Annotation(**self._label_kw(i, ox, oy, ha, va), xycoords="data")
                ann.set_figure(fig)
                ann.axes = ax
                bb = ann.get_window_extent(renderer)
                bb_pad = bb.expanded(1.0, 1.0).padded(1.0)
                score = ring * 3 + k * 0.1
                if not (
                    ax_bb.x0 <= bb.x0
                    and bb.x1 <= ax_bb.x1
                    and ax_bb.y0 <= bb.y0
                    and bb.y1 <= ax_bb.y1
                ):
                    score += 1000
                for j, ob in enumerate(obstacles):
                    if j != i or ring > 0:
                        score += 50 * _overlap(bb_pad, ob) / max(bb.width * bb.height, 1)
                for ob in placed:
                    score += 100 * _overlap(bb_pad, ob) / max(bb.width * bb.height, 1)
                score += sum(20 for p in polys if p.intersects_bbox(bb_pad, filled=True))
                score += sum(2 for p in line_paths if p.intersects_bbox(bb_pad, filled=False))
                score += sum(
                    2 for p in self._traj_paths(ax) if p.intersects_bbox(bb_pad, filled=False)
                )
                return score, (ox, oy, ha, va, bb)

            best = best_position(rings, cost, lambda b, ring: b.cost < 3 * (ring + 1))
            ring = best.ring
            ox, oy, ha, va, bb = best.info
            props = None
            if ring > 0:
                props = {
                    "arrowstyle": "-",
                    "color": GREY,
                    "lw": 0.4,
                    "shrinkA": 1.0,
                    "shrinkB": r_pt + 0.5,
                }
            ann = ax.annotate(
                **self._label_kw(i, ox, oy, ha, va),
                arrowprops=props,
                zorder=5,
                path_effects=_HALO,
            )
            placed.append(bb)
            self.label_artists[self.labels[i]] = ann
        fig.hairtrial_labels = self.label_artists  # type: ignore[attr-defined]


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _rotated_rect(x: float, y: float, w: float, h: float, side: int) -> MplPath:
    """Outline of a 45°-rotated text box anchored at its bottom (side 1) or top centre."""
    c = s = math.sqrt(0.5)
    y0, y1 = (0.0, h) if side > 0 else (-h, 0.0)
    local = [(-w / 2, y0), (w / 2, y0), (w / 2, y1), (-w / 2, y1)]
    pts = [(x + u * c - v * s, y + u * s + v * c) for u, v in local]
    return MplPath([*pts, pts[0]], closed=True)
