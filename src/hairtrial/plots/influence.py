"""Sensitivity figures: leave-one-out, cumulative, Baujat and influence-diagnostic plots.

Nothing in this module computes statistics: every function draws a table returned by
:mod:`hairtrial.diagnostics.influence` (and, where given, one row of the meta-analysis table for the
full-data reference), in the house style of :func:`hairtrial.plots.forest_plot`.

* :func:`leave_one_out_plot`, :func:`cumulative_plot`: compact forest plots, one row per
  omitted study / cumulative step (estimate and CI, CIs leaving the axis end in arrows), the
  full-data estimate as a dashed line with its CI as a shaded band and as a diamond, the
  line of no effect, and columns of estimate [CI], tau^2 and I^2.
* :func:`baujat_plot`: contribution to heterogeneity against influence on the pooled result,
  points labelled by study without overlaps, hollow markers for studies with derived numbers.
* :func:`influence_plot`: the eight panels of metafor's ``plot.infl.rma.uni`` with metafor's
  cut-off lines and the influential studies highlighted.

References
----------
.. [1] Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for
   meta-analysis. Research Synthesis Methods 1:112-125.
.. [2] Baujat B, Mahé C, Pignon J-P, Hill C (2002). A graphical method for exploring
   heterogeneity in meta-analyses. Statistics in Medicine 21:2641-2652.
.. [3] Lau J, Antman EM, Jimenez-Silva J, et al. (1992). Cumulative meta-analysis of
   therapeutic trials for myocardial infarction. New England Journal of Medicine 327:248-254.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator
from matplotlib.transforms import Bbox

from hairtrial.data.provenance import PROVENANCE
from hairtrial.plots.intervals import FS as _FS
from hairtrial.plots.intervals import FS_TITLE as _FS_TITLE
from hairtrial.plots.intervals import LINE_H as _LINE_H
from hairtrial.plots.intervals import MARGIN as _MARGIN
from hairtrial.plots.intervals import ROW_H as _ROW_H
from hairtrial.plots.intervals import Table
from hairtrial.plots.labels import best_position, crowded_first
from hairtrial.plots.layout import (
    Measurer,
    as_mapping,
    axis_limits,
    clean_text,
    derived_codes,
    family,
    fit_ticks,
    get_renderer,
    method_text,
    tick_decimals,
    top_transform,
)
from hairtrial.plots.style import (
    BLUE,
    DASH,
    GREY,
    VERMILLION,
    as_float,
    fmt,
    format_decimals,
    sig_decimals,
    use_style,
)

__all__ = ["baujat_plot", "cumulative_plot", "influence_plot", "leave_one_out_plot"]

# Geometry (inches) and type sizes (points) beside the forest engine's.
_FS_PANEL = 8.0
_GAP = 0.14
_MIN_PLOT_W = 2.0
_MAX_LABEL_W = 2.0


# --------------------------------------------------------------------------
# Compact forest (leave-one-out and cumulative)
# --------------------------------------------------------------------------


@dataclass
class _FRow:
    label: str
    cells: dict[str, str] = field(default_factory=dict)
    est: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    kind: str = "row"  # "row" or "pooled"


def _i2_text(x: Any) -> str:
    v = as_float(x)
    return f"{v:.0f}%" if math.isfinite(v) else DASH


def _tau2_decimals(values: Sequence[Any]) -> int:
    """One number of decimals for a tau^2 column, from its largest value."""
    finite = [abs(as_float(v)) for v in values if math.isfinite(as_float(v))]
    return sig_decimals(max(finite)) if finite else 2


def _model_rows(
    table: pd.DataFrame, labels: Sequence[str], dec: int, show_tau2: bool, dec_tau2: int
) -> tuple[list[_FRow], list[str]]:
    rows: list[_FRow] = []
    notes: list[str] = []
    for label, (_, r) in zip(labels, table.iterrows(), strict=True):
        est, lo, hi = (as_float(r[c]) for c in ("estimate", "ci_lower", "ci_upper"))
        row = _FRow(label, est=est, lo=lo, hi=hi)
        if not math.isfinite(est):
            row.cells["effect"] = "not estimable"
            notes.append("not estimable")
        elif math.isfinite(lo) and math.isfinite(hi):
            row.cells["effect"] = f"{fmt(est, dec)} [{fmt(lo, dec)}, {fmt(hi, dec)}]"
        else:
            row.cells["effect"] = f"{fmt(est, dec)} [{DASH}]"
        tau2 = as_float(r.get("tau2"))
        single = as_float(r.get("k")) == 1  # tau2 fixed at 0, not estimated
        if show_tau2:
            row.cells["tau2"] = (
                "" if not math.isfinite(est) else DASH if single else fmt(tau2, dec_tau2)
            )
        row.cells["i2"] = _i2_text(r.get("I2")) if math.isfinite(est) else ""
        row.cells["k"] = str(int(r["k"])) if math.isfinite(as_float(r.get("k"))) else ""
        rows.append(row)
    return rows, notes


def _compact_forest(
    *,
    rows: list[_FRow],
    reference: tuple[float, float, float],
    left_cols: list[tuple[str, str, str]],
    right_cols: list[tuple[str, str, str]],
    xlabel: str,
    title: str | None,
    footer: list[str],
    width: float,
    gid: str,
) -> Figure:
    """Draw rows of (label, estimate, CI) with the full-data reference; no statistics."""
    m = Measurer(family())
    n = len(rows)
    # column widths from the measured text (header bold)
    widths: dict[str, float] = {}
    for key, header, _align in left_cols + right_cols:
        cells = [r.cells.get(key, "") if key != "label" else r.label for r in rows]
        w_cells = max(
            [m.width(c, _FS, "bold" if i == n - 1 else "normal") for i, c in enumerate(cells)]
            + [0.0]
        )
        widths[key] = max(w_cells, m.width(header, _FS, "bold"))
    if "label" in widths and widths["label"] > _MAX_LABEL_W:
        widths["label"] = _MAX_LABEL_W
        for r in rows:
            r.label = m.ellipsize(
                r.label, _MAX_LABEL_W, _FS, "bold" if r.kind == "pooled" else "normal"
            )
    left_w = sum(widths[c] for c, _, _ in left_cols) + _GAP * len(left_cols)
    right_w = sum(widths[c] for c, _, _ in right_cols) + _GAP * len(right_cols)
    plot_w = width - 2 * _MARGIN - left_w - right_w
    if plot_w < _MIN_PLOT_W:
        width += _MIN_PLOT_W - plot_w
        plot_w = _MIN_PLOT_W
    text_w = width - 2 * _MARGIN
    foot_lines: list[str] = []
    for line in footer:
        foot_lines.extend(m.wrap(line, text_w, _FS))

    title_h = 0.32 if title else 0.06
    header_h = 0.26
    rows_top = title_h + header_h
    has_pooled = rows[-1].kind == "pooled"
    n_slots = n + 1 if has_pooled else n  # a blank slot before the full-data row
    rows_h = n_slots * _ROW_H
    axis_h = 0.44
    foot_h = len(foot_lines) * _LINE_H + 0.08
    height = rows_top + rows_h + axis_h + foot_h

    t = Table(width, height)
    if title:
        t.title([title], [0.2], gid="title")

    # column x positions
    xpos: dict[str, float] = {}
    x = _MARGIN
    for key, _, _ in left_cols:
        xpos[key] = x
        x += widths[key] + _GAP
    plot_x = x
    x = plot_x + plot_w + _GAP
    for key, _, _ in right_cols:
        xpos[key] = x
        x += widths[key] + _GAP

    def cell_x(key: str, align: str) -> float:
        return xpos[key] + (widths[key] if align == "right" else 0.0)

    header_y = rows_top - 0.1
    for key, header, align in left_cols + right_cols:
        t.text(cell_x(key, align), header_y, header, ha=align, weight="bold")

    slots = list(range(n - 1)) + [n] if has_pooled else list(range(n))
    for slot, r in zip(slots, rows, strict=True):
        y = rows_top + (slot + 0.5) * _ROW_H
        bold = "bold" if r.kind == "pooled" else "normal"
        t.text(xpos[left_cols[0][0]], y, r.label, weight=bold)
        for key, _, align in left_cols[1:] + right_cols:
            s = r.cells.get(key, "")
            colour = GREY if s in ("not estimable", "") else "black"
            t.text(cell_x(key, align), y, s, ha=align, weight=bold, color=colour)

    # the plot: y data are row slots
    iv = t.interval_axes(plot_x, rows_top, plot_w, rows_top + rows_h, (n_slots - 0.5, -0.5))
    ax = iv.ax
    ref_est, ref_lo, ref_hi = reference
    points = [r.est for r in rows] + [ref_est, ref_lo, ref_hi]
    intervals = [(r.lo, r.hi) for r in rows if r.kind != "pooled"]
    lo, hi = axis_limits(points, intervals)
    ticks = fit_ticks(lo, hi, plot_w, m, _FS)
    iv.scale(min(lo, ticks[0]), max(hi, ticks[-1]), ticks)
    ax.set_xlabel(xlabel, fontsize=_FS, labelpad=3)
    if math.isfinite(ref_est):
        if math.isfinite(ref_lo) and math.isfinite(ref_hi):
            ax.axvspan(ref_lo, ref_hi, color=VERMILLION, alpha=0.10, lw=0, zorder=0)
        ax.axvline(ref_est, color=VERMILLION, lw=0.7, ls=(0, (4, 2)), zorder=1, gid="reference")
    for slot, r in zip(slots, rows, strict=True):
        if not math.isfinite(r.est):
            continue
        if r.kind == "pooled":
            if math.isfinite(r.lo) and math.isfinite(r.hi):
                iv.diamond(r.lo, r.est, r.hi, slot, 0.36, VERMILLION, gid="full-data")
            else:
                ax.plot([r.est], [slot], marker="D", ms=4.5, color=VERMILLION, ls="none", zorder=3)
            continue
        iv.whisker(r.lo, r.hi, float(slot))
        iv.square(r.est, slot, 4.0)

    foot_y = height - foot_h + 0.02 + _LINE_H / 2
    for j, line in enumerate(foot_lines):
        t.text(_MARGIN, foot_y + j * _LINE_H, line, color=GREY, gid=f"{gid}-footer")
    t.fig.set_gid(gid)
    return t.fig


def _influence_forest(
    rows: list[_FRow],
    p: dict[str, Any],
    *,
    left: list[tuple[str, str, str]],
    effect_label: str,
    show_tau2: bool,
    footer: list[str],
    xlabel: str,
    title: str | None,
    width: float,
    gid: str,
) -> Figure:
    """A compact forest of refits against the full-data fit `p` (reference and footer)."""
    right = [("effect", effect_label, "left")]
    if show_tau2:
        right.append(("tau2", "\u03c4\u00b2", "right"))
    right.append(("i2", "I\u00b2", "right"))
    return _compact_forest(
        rows=rows,
        reference=(
            as_float(p.get("estimate")),
            as_float(p.get("ci_lower")),
            as_float(p.get("ci_upper")),
        ),
        left_cols=left,
        right_cols=right,
        xlabel=xlabel,
        title=title,
        footer=footer + (method_text(p) if p else []),
        width=width,
        gid=gid,
    )


def _pooled_row(
    pooled: dict[str, Any], label: str, dec: int, show_tau2: bool, dec_tau2: int
) -> _FRow:
    est = as_float(pooled.get("estimate"))
    lo, hi = as_float(pooled.get("ci_lower")), as_float(pooled.get("ci_upper"))
    r = _FRow(label, est=est, lo=lo, hi=hi, kind="pooled")
    if not math.isfinite(est):
        r.cells["effect"] = "not estimable"
    elif math.isfinite(lo) and math.isfinite(hi):
        r.cells["effect"] = f"{fmt(est, dec)} [{fmt(lo, dec)}, {fmt(hi, dec)}]"
    else:
        r.cells["effect"] = f"{fmt(est, dec)} [{DASH}]"
    tau2 = as_float(pooled.get("tau2"))
    if show_tau2:
        r.cells["tau2"] = fmt(tau2, dec_tau2) if math.isfinite(tau2) else DASH
    r.cells["i2"] = _i2_text(pooled.get("I2"))
    k = as_float(pooled.get("k"))
    r.cells["k"] = str(int(k)) if math.isfinite(k) else ""
    return r


def _single_study_note(table: pd.DataFrame, pooled: dict[str, Any], what: str) -> list[str]:
    """Footnote for rows fitted to one study (heterogeneity and knha CI not defined)."""
    if not (pd.to_numeric(table["k"], errors="coerce") == 1).any():
        return []
    ci = clean_text(pooled.get("ci_method")).lower()
    extra = (
        "; no Hartung\u2013Knapp CI (no residual degrees of freedom)"
        if ci in ("knha", "adhoc")
        else ""
    )
    return [f"Rows with k = 1 ({what}): \u03c4\u00b2 and I\u00b2 not defined ({DASH}){extra}."]


def _is_fixed(pooled: dict[str, Any], table: pd.DataFrame) -> bool:
    method = clean_text(pooled.get("method")).upper()
    if method:
        return method in {"FE", "EE", "CE"}
    tau2 = pd.to_numeric(table.get("tau2", pd.Series(dtype=float)), errors="coerce")
    return bool((tau2.fillna(0) == 0).all())


def leave_one_out_plot(
    loo: pd.DataFrame,
    pooled: Mapping[str, Any] | pd.Series | pd.DataFrame | None,
    *,
    xlabel: str,
    title: str | None = None,
    effect_label: str = "MD [95% CI]",
    study_labels: Mapping[str, str] | None = None,
    width: float = 7.0,
) -> Figure:
    """Compact forest plot of a leave-one-out analysis.

    Parameters
    ----------
    loo : pandas.DataFrame
        :func:`hairtrial.diagnostics.influence.leave_one_out` output (columns ``study``, ``k``,
        ``estimate``, ``ci_lower``, ``ci_upper``, ``tau2``, ``I2``).
    pooled : mapping or pandas.Series or one-row DataFrame or None
        The full-data fit as a meta-analysis row (``method``, ``ci_method``, ``k``,
        ``estimate``, ``ci_lower``, ``ci_upper``, ``tau2``, ``I2``, ``Q``, ... as in
        :func:`hairtrial.models.univariate.results_frame`): drawn as the reference line and
        band, as the
        "All studies" row and in the footer.
    xlabel : str
        Effect axis label, e.g. ``"Mean difference, hairs/cm²"``.
    title : str, optional
        Figure title.
    effect_label : str, default "MD [95% CI]"
        Header of the estimate column.
    study_labels : mapping, optional
        Display label per ``study`` value (e.g. ``"Smith 2019"``); default the value itself.
    width : float, default 7.0
        Figure width in inches (grown if the columns need more).

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot; save it with :func:`hairtrial.plots.save_figure`.

    Examples
    --------
    >>> from hairtrial.diagnostics.influence import leave_one_out
    >>> from hairtrial.models.univariate import fit, results_frame
    >>> y, v = [12.0, 20.5, 8.1], [9.0, 16.0, 12.0]
    >>> fig = leave_one_out_plot(leave_one_out(y, v), results_frame([fit(y, v)]).iloc[0],
    ...                          xlabel="MD, hairs/cm²")
    >>> float(fig.get_figwidth())
    7.0
    """
    p = as_mapping(pooled)
    loo = loo.reset_index(drop=True)
    labels = [clean_text((study_labels or {}).get(s, s)) for s in loo["study"]]
    vals = [*loo["estimate"], p.get("estimate", math.nan)]
    dec = format_decimals(np.array([as_float(x) for x in vals]))
    show_tau2 = not _is_fixed(p, loo)
    dec_tau2 = _tau2_decimals([*loo["tau2"], p.get("tau2", math.nan)])
    with use_style():
        rows, notes = _model_rows(loo, labels, dec, show_tau2, dec_tau2)
        k_full = as_float(p.get("k"))
        all_label = f"All studies (k = {int(k_full)})" if math.isfinite(k_full) else "All studies"
        rows.append(_pooled_row(p, all_label, dec, show_tau2, dec_tau2))
        return _influence_forest(
            rows,
            p,
            left=[("label", "Omitted study", "left")],
            effect_label=effect_label,
            show_tau2=show_tau2,
            footer=[
                "Each row: the model refitted without the study named. Dashed line and shaded "
                "band: estimate and 95% CI with all studies; solid line: no effect.",
                *_single_study_note(loo, p, "one study remains"),
                *(["Not estimable: the model cannot be refitted without that study."] if notes
                  else []),
            ],
            xlabel=xlabel,
            title=title,
            width=width,
            gid="leave-one-out",
        )  # fmt: skip


def cumulative_plot(
    cum: pd.DataFrame,
    pooled: Mapping[str, Any] | pd.Series | pd.DataFrame | None = None,
    *,
    xlabel: str,
    title: str | None = None,
    effect_label: str = "MD [95% CI]",
    order_label: str | None = "Year",
    study_labels: Mapping[str, str] | None = None,
    width: float = 7.0,
) -> Figure:
    """Compact forest plot of a cumulative meta-analysis.

    Parameters
    ----------
    cum : pandas.DataFrame
        :func:`hairtrial.diagnostics.influence.cumulative` output (columns ``step``, ``study``,
        ``order``, ``k``, ``estimate``, ``ci_lower``, ``ci_upper``, ``tau2``, ``I2``).
    pooled : mapping or pandas.Series or one-row DataFrame, optional
        The full-data fit (meta-analysis row) for the reference line, band and footer;
        default: the last cumulative step (which is the full-data fit).
    xlabel : str
        Effect axis label.
    title : str, optional
        Figure title.
    effect_label : str, default "MD [95% CI]"
        Header of the estimate column.
    order_label : str or None, default "Year"
        Header of a column showing ``order`` (the sort key); None: no such column.
    study_labels : mapping, optional
        Display label per ``study`` value.
    width : float, default 7.0
        Figure width in inches (grown if the columns need more).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from hairtrial.diagnostics.influence import cumulative
    >>> y, v = [12.0, 20.5, 8.1], [9.0, 16.0, 12.0]
    >>> cum = cumulative(y, v, ["A", "B", "C"], order_by=[2019, 2016, 2021])
    >>> cumulative_plot(cum, xlabel="MD, hairs/cm²").get_gid()
    'cumulative'
    """
    cum = cum.reset_index(drop=True)
    if pooled is None and len(cum):
        last = cum.iloc[-1]
        p: dict[str, Any] = {c: last[c] for c in cum.columns if c not in ("step", "study")}
    else:
        p = as_mapping(pooled)
    names = [clean_text((study_labels or {}).get(s, s)) for s in cum["study"]]
    labels = [s if i == 0 else f"+ {s}" for i, s in enumerate(names)]
    dec = format_decimals(np.array([as_float(x) for x in cum["estimate"]]))
    show_tau2 = not _is_fixed(p, cum)
    dec_tau2 = _tau2_decimals(list(cum["tau2"]))
    with use_style():
        rows, notes = _model_rows(cum, labels, dec, show_tau2, dec_tau2)
        for r, (_, c) in zip(rows, cum.iterrows(), strict=True):
            o = c.get("order")
            ov = as_float(o)
            if math.isfinite(ov) and float(ov).is_integer():
                r.cells["order"] = str(int(ov))
            elif math.isfinite(ov):
                r.cells["order"] = fmt(ov, sig_decimals(ov))
            else:
                r.cells["order"] = clean_text(o)
        left = [("label", "Study added", "left")]
        if order_label:
            left.append(("order", order_label, "right"))
        left.append(("k", "k", "right"))
        return _influence_forest(
            rows,
            p,
            left=left,
            effect_label=effect_label,
            show_tau2=show_tau2,
            footer=[
                "Each row: the model fitted to the studies up to and including that row "
                "(Lau et al. 1992); the last row uses all studies. Dashed line and shaded band: "
                "estimate and 95% CI with all studies; solid line: no effect.",
                *_single_study_note(cum, p, "a single study"),
                *(["Not estimable: the model cannot be fitted at that step."] if notes else []),
            ],
            xlabel=xlabel,
            title=title,
            width=width,
            gid="cumulative",
        )


# --------------------------------------------------------------------------
# Baujat plot
# --------------------------------------------------------------------------

#: Directions (degrees) tried around a point, in order of preference, and distances (points).
_LABEL_ANGLES: tuple[float, ...] = (
    35,
    -35,
    145,
    -145,
    0,
    180,
    90,
    -90,
    60,
    120,
    -60,
    -120,
    15,
    165,
    -15,
    -165,
)
_LABEL_RADII: tuple[float, ...] = (5, 10, 16, 24, 34, 46, 60, 76, 94)


def _overlap(a: Bbox, others: list[Bbox]) -> float:
    total = 0.0
    for b in others:
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        if w > 0 and h > 0:
            total += w * h
    return total


def _align(angle: float) -> tuple[str, str]:
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ha = "left" if c > 0.3 else "right" if c < -0.3 else "center"
    va = "bottom" if s > 0.3 else "top" if s < -0.3 else "center"
    return ha, va


def _segments_cross(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    def orient(p: Any, q: Any, r: Any) -> float:
        return float((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    (p1, p2), (p3, p4) = a, b
    d1, d2 = orient(p3, p4, p1), orient(p3, p4, p2)
    d3, d4 = orient(p1, p2, p3), orient(p1, p2, p4)
    return d1 * d2 < 0 and d3 * d4 < 0


def _segment_hits(seg: tuple[Any, Any], box: Bbox) -> bool:
    (x0, y0), (x1, y1) = seg
    for t in np.linspace(0.0, 1.0, 25):
        if box.contains(x0 + t * (x1 - x0), y0 + t * (y1 - y0)):
            return True
    return False


def _place_labels(
    fig: Figure, ax: Axes, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str]
) -> tuple[float, int, list[Any]]:
    """Label each point without overlapping points, other labels, leader lines or the frame.

    Positions are tried at growing distances in fixed directions; the first distance with a
    free position wins. Labels set further away get a thin leader line, which must not cross
    another label, point or leader line. Deterministic.

    Returns
    -------
    tuple
        Total penalty of the chosen positions (0: nothing overlaps), number of leader lines
        and the annotation artists.
    """
    renderer = get_renderer(fig)
    frame = ax.get_window_extent(renderer)
    px_per_pt = fig.dpi / 72
    r_pt = 3.2 * px_per_pt  # marker radius (ms 4.5) plus clearance, in pixels
    pts = [tuple(ax.transData.transform((x, y))) for x, y in zip(xs, ys, strict=True)]
    point_boxes = [Bbox.from_extents(px - r_pt, py - r_pt, px + r_pt, py + r_pt) for px, py in pts]
    label_boxes: list[Bbox] = []
    leaders: list[tuple[Any, Any]] = []
    # points in crowded places first: they have the fewest free positions
    order = crowded_first(pts, 40 * px_per_pt)
    probe = ax.text(0, 0, "", fontsize=_FS, transform=mpl.transforms.IdentityTransform())
    penalty, n_leaders, artists = 0.0, 0, []
    rings = [[(radius, angle) for angle in _LABEL_ANGLES] for radius in _LABEL_RADII]
    for i in order:
        probe.set_text(labels[i])
        others = [b for j, b in enumerate(point_boxes) if j != i]

        def cost(_r: int, _k: int, cand: tuple[float, float], i: int = i, others=others) -> Any:
            radius, angle = cand
            ha, va = _align(angle)
            dx = radius * math.cos(math.radians(angle))
            dy = radius * math.sin(math.radians(angle))
            anchor = (pts[i][0] + dx * px_per_pt, pts[i][1] + dy * px_per_pt)
            probe.set_ha(ha)
            probe.set_va(va)
            probe.set_position(anchor)
            bb = probe.get_window_extent(renderer).expanded(1.06, 1.15)
            out = (
                max(0.0, frame.x0 - bb.x0)
                + max(0.0, bb.x1 - frame.x1)
                + max(0.0, frame.y0 - bb.y0)
                + max(0.0, bb.y1 - frame.y1)
            )
            # penalties: overlapping labels and labels crossed by leader lines are worst,
            # a leader line passing a point is tolerated in dense clusters
            c = 1e3 * _overlap(bb, label_boxes) + 20 * _overlap(bb, point_boxes)
            c += 1e6 * out * bb.height
            c += 1e5 * sum(_segment_hits(seg, bb) for seg in leaders)
            if radius > _LABEL_RADII[1]:
                seg = (pts[i], anchor)
                c += 1e5 * sum(_segment_hits(seg, b) for b in label_boxes)
                c += 1e4 * sum(_segments_cross(seg, s2) for s2 in leaders)
                c += 200 * sum(_segment_hits(seg, b) for b in others)
            return c, (ha, va, bb, (dx, dy))

        best = best_position(rings, cost)
        radius = best.candidate[0]
        ha, va, bb, (dx, dy) = best.info
        leader = radius > _LABEL_RADII[1]
        arrow = {"arrowstyle": "-", "color": GREY, "lw": 0.5, "shrinkA": 1.0, "shrinkB": 3.0}
        artists.append(
            ax.annotate(
                labels[i],
                (xs[i], ys[i]),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=_FS,
                gid=f"label-{i}",
                arrowprops=arrow if leader else None,
            )
        )
        label_boxes.append(bb)
        penalty += best.cost
        if leader:
            n_leaders += 1
            leaders.append((pts[i], (pts[i][0] + dx * px_per_pt, pts[i][1] + dy * px_per_pt)))
    probe.remove()
    return penalty, n_leaders, artists


def baujat_plot(
    bj: pd.DataFrame,
    *,
    provenance: Mapping[str, str] | Sequence[str] | None = None,
    provenance_labels: Mapping[str, str] | None = None,
    study_labels: Mapping[str, str] | None = None,
    point_labels: str = "auto",
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    width: float = 7.0,
    height: float = 4.2,
    ax: Axes | None = None,
) -> Figure:
    """Baujat plot: contribution to heterogeneity against influence on the pooled result.

    Each point is labelled next to it without overlaps. With ``point_labels="auto"`` the
    study labels are used when they all fit close to their points; otherwise (dense
    clusters) the points are numbered and a key below the plot names the studies, as
    metafor's default ``symbol = "ids"``.

    Parameters
    ----------
    bj : pandas.DataFrame
        :func:`hairtrial.diagnostics.influence.baujat` output (``study``, ``x``, ``y``; axis
        titles from
        ``bj.attrs`` when present). A ``provenance`` column is used when `provenance` is None.
    provenance : mapping or sequence, optional
        Provenance codes (``;``-joined) per study (mapping by ``study`` value, or a sequence in
        row order). Studies with any code other than ``reported`` are drawn hollow and the
        codes are explained below the plot.
    provenance_labels : mapping, optional
        Explanations of codes, overriding :data:`hairtrial.data.provenance.PROVENANCE`.
    study_labels : mapping, optional
        Display label per ``study`` value.
    point_labels : {"auto", "study", "id"}, default "auto"
        Label points by study label, by number (with a key) or choose automatically.
    title, xlabel, ylabel : str, optional
        Figure title and axis titles (default: metafor's, from ``bj.attrs``).
    width, height : float
        Figure width and the height of the plot part, in inches (footnotes and key are
        added below).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes: their figure keeps its size and layout, the title goes above
        the axes and the legend inside them; footnotes and key are not drawn, so
        ``point_labels="auto"`` labels the points by study. Default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (new, or that of `ax`).

    Raises
    ------
    ValueError
        For an unknown `point_labels` or a `provenance` sequence of the wrong length.

    Examples
    --------
    >>> from hairtrial.diagnostics.influence import baujat
    >>> bj = baujat([12.0, 20.5, 8.1, 30.2], [9.0, 16.0, 12.0, 20.0], ["A", "B", "C", "D"])
    >>> baujat_plot(bj, provenance=["reported", "from_se", "reported", "reported"]).get_gid()
    'baujat'
    """
    if point_labels not in ("auto", "study", "id"):
        raise ValueError("point_labels must be 'auto', 'study' or 'id'")
    bj = bj.reset_index(drop=True)
    studies = [str(s) for s in bj["study"]]
    names = [clean_text((study_labels or {}).get(s, s)) for s in studies]
    if provenance is None and "provenance" in bj.columns:
        prov = [str(c) if isinstance(c, str) else "" for c in bj["provenance"]]
    elif isinstance(provenance, Mapping):
        prov = [str(provenance.get(s, "")) for s in studies]
    elif provenance is not None:
        prov = [str(c) for c in provenance]
        if len(prov) != len(studies):
            raise ValueError(f"provenance has {len(prov)} entries for {len(studies)} studies")
    else:
        prov = [""] * len(studies)
    xs = pd.to_numeric(bj["x"], errors="coerce").to_numpy(float)
    ys = pd.to_numeric(bj["y"], errors="coerce").to_numpy(float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    derived = np.array([bool(derived_codes(c)) for c in prov], dtype=bool) & ok
    labels_map = {**PROVENANCE, **dict(provenance_labels or {})}
    xlabel = xlabel or bj.attrs.get("xlabel", "Contribution to heterogeneity")
    ylabel = ylabel or bj.attrs.get("ylabel", "Influence on overall result")

    with use_style():
        m = Measurer(family())
        footer: list[str] = []
        if derived.any():
            codes: list[str] = []
            for c, d in zip(prov, derived, strict=True):
                for code in derived_codes(c) if d else []:
                    if code not in codes:
                        codes.append(code)
            expl = "; ".join(labels_map.get(c, c) for c in codes)
            footer.append(f"Hollow markers: study uses derived numbers ({expl}).")
        missing = [n for n, o in zip(names, ok, strict=True) if not o]
        if missing:
            footer.append(
                "Not shown (model cannot be refitted without the study): "
                + ", ".join(missing)
                + "."
            )
        footer.append(
            "x: squared Pearson residual (for the common-effect model: contribution to Q); "
            "y: squared change of the pooled estimate when the study is left out, relative to "
            "its variance (Baujat et al. 2002)."
        )
        lines: list[str] = []
        for f in footer:
            lines.extend(m.wrap(f, width - 2 * _MARGIN, _FS))
        key = m.join_items([f"{i + 1} {n}" for i, n in enumerate(names)], width - 2 * _MARGIN, _FS)

        def handles() -> list[Line2D]:
            def dot(mfc: str, label: str, **kw: Any) -> Line2D:
                return Line2D([], [], ls="none", marker="o", ms=4.5, mec=BLUE, mfc=mfc,
                              label=label, **kw)  # fmt: skip

            reported = [] if derived.all() else [dot(BLUE, "Reported numbers")]
            return [*reported, dot("white", "Derived numbers", mew=0.9)]

        def draw(use_ids: bool, ax: Axes | None = None) -> tuple[Figure, float, int]:
            key_h = (0.06 + len(key) * _LINE_H) if use_ids else 0.0
            foot_h = 0.1 + len(lines) * _LINE_H
            own = ax is None
            if ax is None:
                title_h = 0.34 if title else 0.1
                legend_h = 0.22 if derived.any() else 0.0
                H = height + key_h + foot_h
                fig = Figure(figsize=(width, H), layout="none")
                FigureCanvasAgg(fig)
                fig.set_gid("baujat")
                tr = top_transform(fig, H)
                left, right = 0.62, 0.25
                plot_bottom = H - (key_h + foot_h + 0.5)  # inches from the top
                top = title_h + legend_h + 0.08
                ax = fig.add_axes(
                    (
                        left / width,
                        (H - plot_bottom) / H,
                        (width - left - right) / width,
                        (plot_bottom - top) / H,
                    )
                )
                ax.set_xlabel(xlabel)
                ax.set_ylabel(ylabel)
                if title:
                    fig.text(_MARGIN, 0.2, title, transform=tr, fontsize=_FS_TITLE,
                             fontweight="bold", va="center")  # fmt: skip
                if derived.any():
                    fig.legend(
                        handles=handles(),
                        loc="center left",
                        ncol=2,
                        handletextpad=0.3,
                        columnspacing=1.2,
                        borderaxespad=0.0,
                        borderpad=0.0,
                        bbox_to_anchor=(left / width, 1 - (title_h + legend_h / 2) / H),
                    )
            else:
                fig = ax.figure  # type: ignore[assignment]
                ax.set_xlabel(xlabel)
                ax.set_ylabel(ylabel)
                if title:
                    ax.set_title(title, loc="left", fontsize=_FS_TITLE, fontweight="bold")
                if derived.any():
                    ax.legend(handles=handles(), loc="upper left", handletextpad=0.3)
            penalty, n_leaders = 0.0, 0
            if ok.any():
                xmax = float(np.max(xs[ok])) or 1.0
                ymax = float(np.max(ys[ok])) or 1.0
                ax.set_xlim(-0.04 * xmax, 1.1 * xmax)
                ax.set_ylim(-0.05 * ymax, 1.12 * ymax)
                for d in (False, True):
                    sel = ok & (derived == d)
                    if sel.any():
                        ax.plot(xs[sel], ys[sel], ls="none", marker="o", ms=4.5, mec=BLUE,
                                mfc="white" if d else BLUE, mew=0.9, zorder=3,
                                gid="derived" if d else "reported")  # fmt: skip
                idx = np.flatnonzero(ok)
                point_text = [str(i + 1) if use_ids else names[i] for i in idx]
                penalty, n_leaders, _ = _place_labels(fig, ax, xs[idx], ys[idx], point_text)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.text(0.5, 0.5, "not estimable", transform=ax.transAxes, ha="center",
                        va="center", color=GREY)  # fmt: skip
            if not own:
                return fig, penalty, n_leaders
            y = H - key_h - foot_h + 0.06 + _LINE_H / 2
            if use_ids:
                for line in key:
                    fig.text(_MARGIN, y, line, transform=tr, va="center", gid="key")
                    y += _LINE_H
            y = H - foot_h + 0.1 + _LINE_H / 2 - 0.04
            for line in lines:
                fig.text(_MARGIN, y, line, transform=tr, va="center", color=GREY)
                y += _LINE_H
            return fig, penalty, n_leaders

        if ax is not None:  # no room for a key: study labels unless numbers are asked for
            fig, _, _ = draw(point_labels == "id", ax)
            return fig
        fig, penalty, n_leaders = draw(point_labels == "id")
        if point_labels == "auto" and (penalty > 0 or n_leaders > 0):
            fig, _, _ = draw(True)
    return fig


# --------------------------------------------------------------------------
# Influence diagnostics (metafor plot.infl.rma.uni)
# --------------------------------------------------------------------------

#: (column, panel title, reference lines from the cut-offs / full fit)
_PANELS: tuple[tuple[str, str], ...] = (
    ("rstudent", "Studentised deleted residual"),
    ("dffits", "DFFITS"),
    ("cook_d", "Cook\u2019s distance"),
    ("cov_r", "Covariance ratio"),
    ("tau2_del", "\u03c4\u00b2 without the study"),
    ("QE_del", "Q without the study"),
    ("hat", "Hat value (leverage)"),
    ("weight", "Weight (%)"),
)


def _panel_lines(col: str, attrs: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """(dashed reference lines, dotted cut-off lines) of metafor's panel for `col`."""
    cut = attrs.get("cutoffs", {})
    if col == "rstudent":
        z = float(cut.get("rstudent", 1.959963984540054))
        return [0.0], [-z, z]
    if col == "dffits":
        c = float(cut.get("dffits", math.nan))
        return [0.0], [-c, c] if math.isfinite(c) else []
    if col == "cook_d":
        return [], [float(cut.get("cook_d", math.nan))]
    if col == "cov_r":
        return [1.0], []
    if col == "tau2_del":
        return [float(attrs.get("tau2", math.nan))], []
    if col == "QE_del":
        return [float(attrs.get("QE", math.nan))], []
    if col == "hat":
        return [float(cut.get("hat_mean", math.nan))], [float(cut.get("hat", math.nan))]
    if col == "weight":
        return [float(cut.get("weight_mean", math.nan))], []
    return [], []


def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    """Round ticks for a log axis on [lo, hi]: 1-2-5 decades when wide, linear steps if not."""
    ratio = hi / lo
    if ratio > 2.5:
        subs = (1, 2, 3, 5) if ratio < 10 else (1, 2, 5) if ratio < 1000 else (1,)
        ticks = []
        for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            ticks.extend(f * 10.0**e for f in subs)
        ticks = [t for t in ticks if lo <= t <= hi]
    else:
        ticks = [
            t
            for t in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            if lo <= t <= hi and t > 0
        ]
    return ticks or [lo, hi]


def influence_plot(
    infl: pd.DataFrame,
    *,
    title: str | None = None,
    study_labels: Mapping[str, str] | None = None,
    width: float = 7.0,
) -> Figure:
    """Eight-panel influence plot, as metafor ``plot.infl.rma.uni``.

    Panels: studentised deleted residuals (dotted: ±1.96), DFFITS (dotted:
    ±3 sqrt(p / (k - p))), Cook's distances (dotted: median of chi^2_p), covariance ratios
    (log scale; dashed: 1), tau^2 and Q without the study (dashed: full-data values), hat
    values (dashed: p / k; dotted: 3 p / k) and weights (dashed: 100 / k). Studies are
    numbered on the x axes (key below the panels); influential studies (``inf``) are drawn in
    vermillion. NaN values (refit not possible) are left out; a panel without values says
    "not estimable".

    Parameters
    ----------
    infl : pandas.DataFrame
        :func:`hairtrial.diagnostics.influence.influence_diagnostics` output, with its ``attrs``
        (``k``, ``p``, ``tau2``, ``QE``, ``cutoffs``).
    title : str, optional
        Figure title.
    study_labels : mapping, optional
        Display label per ``study`` value (for the key).
    width : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If `infl` lacks a diagnostic column.

    Examples
    --------
    >>> from hairtrial.diagnostics.influence import influence_diagnostics
    >>> d = influence_diagnostics([12.0, 20.5, 8.1, 30.2], [9.0, 16.0, 12.0, 20.0])
    >>> len(influence_plot(d).axes)
    8
    """
    missing = [c for c, _ in _PANELS if c not in infl.columns] + (
        [] if "inf" in infl.columns else ["inf"]
    )
    if missing:
        raise ValueError(f"influence table lacks column(s) {missing}")
    infl = infl.reset_index(drop=True)
    attrs = dict(infl.attrs)
    k = len(infl)
    names = [clean_text((study_labels or {}).get(s, s)) for s in infl["study"]]
    is_inf = infl["inf"].fillna(False).astype(bool).to_numpy()
    idx = np.arange(1, k + 1)

    with use_style():
        m = Measurer(family())
        key_lines = m.join_items(
            [f"{i} {n}" for i, n in zip(idx, names, strict=True)], width - 2 * _MARGIN, _FS
        )
        text_w = width - 2 * _MARGIN
        p = attrs.get("p", math.nan)
        foot = [
            "Vermillion: influential study (metafor: |DFFITS| > 3\u221a(p/(k\u2212p)), Cook\u2019s "
            "distance above the median of \u03c7\u00b2(p), hat > 3p/k or any |DFBETAS| > 1"
            + (
                f"; p = {int(p)}, k = {k}"
                if isinstance(p, int | float) and math.isfinite(p)
                else ""
            )
            + "). Dotted lines: cut-offs; dashed lines: reference values (0, 1, full-data "
            "\u03c4\u00b2 and Q, mean hat value p/k, mean weight 100/k)."
        ]
        nan_rows = [
            n
            for n, (_, r) in zip(names, infl.iterrows(), strict=True)
            if not math.isfinite(as_float(r["dffits"]))
        ]
        if k == 2:
            foot.append(
                "k = 2: every refit has one study, so Q without the study is not defined and "
                "the cut-offs are weak guides only."
            )
        if nan_rows and k > 1:
            foot.append(
                "Not shown (model cannot be refitted without the study): "
                + ", ".join(nan_rows)
                + "."
            )
        foot_lines: list[str] = []
        for f in foot:
            foot_lines.extend(m.wrap(f, text_w, _FS))

        panel_h = 1.3
        title_h = 0.34 if title else 0.1
        key_h = 0.12 + len(key_lines) * _LINE_H
        foot_h = 0.06 + len(foot_lines) * _LINE_H + 0.06
        grid_h = 4 * panel_h
        H = title_h + grid_h + key_h + foot_h
        fig = Figure(figsize=(width, H), layout="none")
        FigureCanvasAgg(fig)
        fig.set_gid("influence")
        tr = top_transform(fig, H)
        if title:
            fig.text(
                _MARGIN,
                0.2,
                title,
                transform=tr,
                fontsize=_FS_TITLE,
                fontweight="bold",
                va="center",
            )
        col_w = (width - 2 * _MARGIN) / 2
        ax_left_pad, ax_right_pad = 0.5, 0.12
        ax_top_pad, ax_bottom_pad = 0.22, 0.22
        for j, (col, panel_title) in enumerate(_PANELS):
            r_, c_ = divmod(j, 2)
            x0 = _MARGIN + c_ * col_w + ax_left_pad
            y_top = title_h + r_ * panel_h + ax_top_pad
            w = col_w - ax_left_pad - ax_right_pad
            h = panel_h - ax_top_pad - ax_bottom_pad
            ax = fig.add_axes((x0 / width, (H - y_top - h) / H, w / width, h / H))
            ax.set_gid(f"panel-{col}")
            ax.set_title(panel_title, fontsize=_FS_PANEL, fontweight="bold", loc="left", pad=4)
            vals = pd.to_numeric(infl[col], errors="coerce").to_numpy(float)
            fin = np.isfinite(vals)
            ax.set_xlim(0.5, k + 0.5)
            ax.xaxis.set_major_locator(
                FixedLocator(list(idx)) if k <= 20 else MaxNLocator(integer=True)
            )
            ax.xaxis.set_minor_locator(NullLocator())
            if not fin.any():
                ax.set_yticks([])
                ax.text(
                    0.5,
                    0.5,
                    "not estimable",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    color=GREY,
                )
                continue
            dashed, dotted = _panel_lines(col, attrs)
            dashed = [v for v in dashed if math.isfinite(v)]
            dotted = [v for v in dotted if math.isfinite(v)]
            span_vals = list(vals[fin]) + dashed + dotted
            if col in ("hat", "weight", "tau2_del", "cook_d"):
                span_vals.append(0.0)  # non-negative measures: show their distance from 0
            lo, hi = min(span_vals), max(span_vals)
            if col == "cov_r":
                lo, hi = min(lo, 1.0), max(hi, 1.0)
                ax.set_yscale("log")
                pad = (hi / lo) ** 0.08 if hi > lo else 1.2
                ax.set_ylim(lo / pad, hi * pad)
                ticks = _nice_log_ticks(lo / pad, hi * pad)
                ax.yaxis.set_major_locator(FixedLocator(ticks))
                ax.yaxis.set_minor_locator(NullLocator())
                d = tick_decimals(ticks)
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p, d=d: fmt(v, d)))
            else:
                pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
                ax.set_ylim(lo - pad, hi + pad)
                ax.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
                ticks = [t for t in ax.get_yticks() if lo - pad <= t <= hi + pad]
                d = tick_decimals(ticks) if ticks else 2
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p, d=d: fmt(v, d)))
            for v in dashed:
                ax.axhline(v, color=GREY, lw=0.6, ls=(0, (4, 2)), zorder=1)
            for v in dotted:
                ax.axhline(v, color="black", lw=0.6, ls=(0, (1, 1.5)), zorder=1)
            ax.plot(idx[fin], vals[fin], color=GREY, lw=0.6, zorder=2)
            # the other studies in blue, then the influential ones bigger and in vermillion
            for sel, ms, colour, extra in (
                (fin & ~is_inf, 3.6, BLUE, {"zorder": 3}),
                (fin & is_inf, 4.6, VERMILLION, {"zorder": 4, "gid": "influential"}),
            ):
                if sel.any() or colour == BLUE:
                    ax.plot(idx[sel], vals[sel], ls="none", marker="o", ms=ms, mfc=colour,
                            mec="white", mew=0.4, **extra)  # fmt: skip
        # key and footer
        y = title_h + grid_h + 0.12 + _LINE_H / 2
        for line in key_lines:
            fig.text(_MARGIN, y, line, transform=tr, va="center", gid="key")
            y += _LINE_H
        y += 0.06
        for line in foot_lines:
            fig.text(_MARGIN, y, line, transform=tr, va="center", color=GREY)
            y += _LINE_H
    return fig
