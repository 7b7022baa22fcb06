"""The forest plot.

Nothing in this module computes statistics. :func:`forest_plot` draws the study effects and
the pooled model exactly as the meta-analysis engine returns them; it only lays them out,
formats the numbers and explains where derived numbers come from (labels from
:data:`hairtrial.data.provenance.PROVENANCE`). Table and intervals are drawn by the engine
of :mod:`hairtrial.plots.intervals`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hairtrial.core import vocab
from hairtrial.data.provenance import FLAGS_NOT_SHOWN, PROVENANCE, flag_text
from hairtrial.plots.intervals import FS as _FS
from hairtrial.plots.intervals import FS_MARK as _FS_MARK
from hairtrial.plots.intervals import FS_TITLE as _FS_TITLE
from hairtrial.plots.intervals import LINE_H as _LINE_H
from hairtrial.plots.intervals import MARGIN as _MARGIN
from hairtrial.plots.intervals import MARK_GAP as _MARK_GAP
from hairtrial.plots.intervals import ROW_H as _ROW_H
from hairtrial.plots.intervals import Table, footnote_lines, header_lines, square_side
from hairtrial.plots.layout import (
    NO_MARK_CODES,
    Measurer,
    as_mapping,
    axis_limits,
    clean_text,
    family,
    fit_ticks,
    mark_symbol,
    method_text,
    parse_codes,
    ratio_label,
    ratio_ticks,
    wrap_title,
)
from hairtrial.plots.style import (
    DASH,
    GREY,
    VERMILLION,
    as_float,
    fmt,
    fmt_count,
    format_decimals,
    use_style,
)

# --------------------------------------------------------------------------
# Provenance marks
# --------------------------------------------------------------------------

#: Which cells carry the mark of each code: "n" (both n cells), "msd" (both
#: mean (SD) cells), "effect" (effect estimate), "label" (study label).
_MARK_TARGETS: dict[str, tuple[str, ...]] = {
    "n_split_equally": ("n",),
    "from_p_value": ("msd",),
    "from_p_bound": ("msd",),
    "unit_converted": ("msd",),
    "from_se": ("msd",),
    "from_ci": ("msd",),
    "from_median_iqr": ("msd",),
    "change_from_levels": ("msd",),
    "change_from_levels_r": ("msd",),
    "from_median_range": ("msd",),
    "from_five_numbers": ("msd",),
    "from_t": ("msd",),
    "combined_arms": ("n", "msd", "events"),
    "events_from_percent": ("events",),
    "split_scalp_r": ("effect",),
}

_DESIGN_MARK = "\u2020"  # dagger
_DESIGN_NOTE = "Split-scalp (within-patient) design: both columns are the same patients"
_FLAG_MARK = "\u00a7"  # section sign: the study's extraction caveats, listed in a footnote


@dataclass
class _Cell:
    text: str = ""
    weight: str = "normal"
    style: str = "normal"
    marks: list[str] = field(default_factory=list)
    color: str = "black"


@dataclass
class _Row:
    kind: str  # "study", "pooled", "pi", "message"
    cells: dict[str, _Cell] = field(default_factory=dict)
    y: float = 0.0  # row centre, inches from the top
    yi: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    weight: float = math.nan


# Geometry (inches), beside the engine's (type sizes, row height, margin).
_COL_GAP = 0.08
#: narrower gaps inside "est [lo, hi]" so it reads as one phrase
_SUB_GAP = {"est": 0.045, "lo": 0.03}
_BLOCK_GAP = 0.12
_MIN_PLOT_W = 1.8
_MAX_LABEL_W = 1.6

_LEFT_COLS = ("label", "n_e", "msd_e", "n_c", "msd_c")
_RIGHT_COLS = ("est", "lo", "hi", "w")


def _gap(col: str) -> float:
    """Space after a table column."""
    return _SUB_GAP.get(col, _COL_GAP)


# --------------------------------------------------------------------------
# Forest plot
# --------------------------------------------------------------------------


def forest_plot(
    studies: pd.DataFrame,
    pooled: Mapping[str, Any] | pd.Series | None,
    *,
    xlabel: str,
    title: str | None = None,
    provenance_labels: Mapping[str, str] | None = None,
    favours: tuple[str, str] = vocab.FAVOURS,
    effect_label: str = "MD [95% CI]",
    arm_labels: tuple[str, str] = vocab.ARM_LABELS,
    xlim: tuple[float, float] | None = None,
    width: float = 7.0,
    counts: bool = False,
    log_scale: bool = False,
) -> Figure:
    """Draw a journal-style forest plot of one comparison.

    The figure has, from left to right, a table (study; n and mean change
    (SD) of each arm), the effect plot (squares with area proportional to
    the weight, 95% CI whiskers, arrows where a CI leaves the axis, the
    pooled diamond, the prediction interval as a bar below it, the line of
    no effect at 0 and the 'favours' labels under the axis) and a table of
    effect [95% CI] and weight. Below it: model, CI method and heterogeneity
    on one line, and one footnote for each provenance mark used. Derived
    numbers carry a superscript letter after the number (n), after the mean
    (SD) cell, after the effect or after the study label, depending on the
    code; split-scalp studies carry a dagger.

    Numbers: the effect column uses one number of decimals for the whole
    table, chosen by :func:`format_decimals` from the largest absolute study
    or pooled estimate (2 below 10, e.g. SMD; 1 below 1000, e.g. MD in
    hairs/cm²; else 0). Means and SDs use the same rule row by row (from the
    larger absolute mean of the two arms), so reported precision is kept.
    Weights are percentages with 1 decimal; heterogeneity statistics have
    1 decimal from 100, 2 from 1 and 3 significant digits below 1.

    The layout is computed from the measured text: column widths fit the
    widest cell, over-long study labels are shortened with an ellipsis, the
    height grows with the number of rows and footnotes are wrapped, so
    nothing overlaps or is clipped. The width is `width` (7 in, a full page
    width or 1.5 columns) unless the content needs more.

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study, in display order. Required columns: ``study``,
        ``yi``, ``ci_lower``, ``ci_upper``. Used when present: ``label``
        (falls back to ``study``), ``weight_pct``, ``n_experimental``,
        ``n_control``, ``mean_experimental``, ``mean_control``,
        ``sd_experimental``, ``sd_control``, ``provenance`` (codes joined by
        ';'), ``design`` (``'parallel'`` or ``'split_scalp'``), ``flags``
        (extraction caveats, codes joined by ';': a section sign after the
        label and one footnote listing each flagged study's caveats, in words
        from :data:`hairtrial.data.provenance.FLAGS`). ``vi`` is not used:
        the CI bounds are drawn as given. Weights are shown only beside a
        pooled estimate (a single trial's "weight" is 100% or, for
        Mantel-Haenszel with a zero cell, 0/0).
    pooled : mapping or pandas.Series or None
        One row of the meta-analysis table (keys ``method``, ``ci_method``,
        ``k``, ``estimate``, ``ci_lower``, ``ci_upper``, ``pvalue``,
        ``pi_lower``, ``pi_upper``, ``tau2``, ``tau2_ci_lower``,
        ``tau2_ci_upper``, ``I2`` (percent), ``Q``, ``Q_df``, ``Q_pvalue``,
        ``notes``; optional ``tau2_ci_method``, default ``'Q-profile'``).
        ``None`` or a non-finite estimate: no pooled row ("no pooled
        estimate"); ``k == 1``: no diamond ("single study: no pooled
        estimate"); a NaN prediction interval is not drawn.
    xlabel : str
        Label of the effect axis, e.g. ``"Mean difference, hairs/cm²"``.
    title : str, optional
        Title printed above the table.
    provenance_labels : mapping of str to str, optional
        Explanation of provenance codes; overrides and extends
        :data:`PROVENANCE`. Unknown codes without a label are
        explained by their code. The code ``reported`` is never marked.
    favours : tuple of str, default :data:`hairtrial.core.vocab.FAVOURS`
        Texts under the axis left and right of 0 (effects are experimental
        minus control).
    effect_label : str, default "MD [95% CI]"
        Header of the effect column.
    arm_labels : tuple of str, default :data:`hairtrial.core.vocab.ARM_LABELS`
        Headers of the experimental and control arm columns.
    xlim : tuple of float, optional
        Axis limits; by default chosen from the data so that every estimate,
        the pooled CI and 0 are visible and wide CIs end in arrows.
    width : float, default 7.0
        Figure width in inches.
    counts : bool, default False
        Binary outcomes: the arm columns show ``events_experimental`` / ``n_experimental``
        and ``events_control`` / ``n_control`` (events and total) instead of n and mean
        change (SD); the pooled row shows the totals.
    log_scale : bool, default False
        Ratio measures (RR, OR): ``yi``, the CIs, the pooled estimate and `xlim` are on the
        log scale; the axis is a log axis labelled with ratios and every number in the
        table is the ratio (exp of the value). No effect is at ratio 1.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with an Agg canvas, not registered with pyplot (no need to
        close it). Save it with :func:`save_figure`. Its attribute
        ``hairtrial_footnotes`` lists the footnotes drawn, as
        ``(mark, explanation, gid)`` with gid ``"provenance:<code>"``,
        ``"design:split_scalp"`` or ``"flags"``; the footnote texts carry the
        same gid.

    Raises
    ------
    ValueError
        If a required column is missing or `pooled` is a multi-row table.
    """
    missing = {"study", "yi", "ci_lower", "ci_upper"} - set(studies.columns)
    if missing:
        raise ValueError(f"studies lacks column(s) {sorted(missing)}")
    with use_style():
        return _ForestPlot(
            studies=studies.reset_index(drop=True),
            pooled=as_mapping(pooled),
            xlabel=xlabel,
            title=title,
            labels={**PROVENANCE, **dict(provenance_labels or {})},
            favours=favours,
            effect_label=effect_label,
            arm_labels=arm_labels,
            xlim=xlim,
            width=width,
            counts=counts,
            log_scale=log_scale,
        ).draw()


class _ForestPlot:
    """Layout and drawing of :func:`forest_plot` (one instance per figure)."""

    def __init__(
        self,
        *,
        studies: pd.DataFrame,
        pooled: dict[str, Any],
        xlabel: str,
        title: str | None,
        labels: dict[str, str],
        favours: tuple[str, str],
        effect_label: str,
        arm_labels: tuple[str, str],
        xlim: tuple[float, float] | None,
        width: float,
        counts: bool = False,
        log_scale: bool = False,
    ) -> None:
        self.counts = counts
        self.log = log_scale
        self.studies = studies
        self.pooled = pooled
        self.xlabel = clean_text(xlabel)
        self.title = clean_text(title)
        self.labels = labels
        self.favours = (clean_text(favours[0]), clean_text(favours[1]))
        self.effect_label = clean_text(effect_label)
        self.arm_labels = (clean_text(arm_labels[0]), clean_text(arm_labels[1]))
        self.xlim = xlim
        self.width = float(width)
        self.family = family()
        self.m = Measurer(self.family)
        self.marks: dict[str, str] = {}  # code -> symbol, in order of first use
        self.has_split_scalp = False
        self.caveats: dict[str, list[str]] = {}  # study label -> its extraction caveats
        self.show_weight = True

    # ---- data to rows -----------------------------------------------------

    def _col(self, row: pd.Series, name: str) -> Any:
        return row[name] if name in row.index else math.nan

    def _mark(self, code: str) -> str:
        if code not in self.marks:
            self.marks[code] = mark_symbol(len(self.marks))
        return self.marks[code]

    def _shown(self, v: Any) -> float:
        """A number as the table prints it: the ratio on a log axis."""
        x = as_float(v)
        return math.exp(x) if self.log and math.isfinite(x) else x

    def _study_rows(self) -> list[_Row]:
        rows: list[_Row] = []
        ests = list(self.studies["yi"]) + [self.pooled.get("estimate", math.nan)]
        # ratios with 2 decimals (as RevMan prints them), other effects by their size
        self.dec = 2 if self.log else format_decimals(np.array([as_float(v) for v in ests]))
        for i, r in self.studies.iterrows():
            label = clean_text(self._col(r, "label")) or clean_text(r["study"])
            label = label or f"Study {int(str(i)) + 1}"
            cells = {c: _Cell() for c in _LEFT_COLS + _RIGHT_COLS}
            # letters are given in reading order: label, n, mean (SD), effect
            codes = [c for c in parse_codes(self._col(r, "provenance")) if c not in NO_MARK_CODES]
            targets: dict[str, list[str]] = {
                "label": [], "events": [], "n": [], "msd": [], "effect": []
            }  # fmt: skip
            for target in targets:
                if target == ("msd" if self.counts else "events"):
                    continue  # no such cell
                for code in codes:
                    if target in _MARK_TARGETS.get(code, ("label",)):
                        targets[target].append(self._mark(code))
            order = {sym: i for i, sym in enumerate(self.marks.values())}
            for syms in targets.values():
                syms.sort(key=lambda m: order[m])
            if clean_text(self._col(r, "design")).lower().replace("-", "_") == "split_scalp":
                self.has_split_scalp = True
                targets["label"].append(_DESIGN_MARK)
            flags = [f for f in parse_codes(self._col(r, "flags")) if f not in FLAGS_NOT_SHOWN]
            if flags:
                self.caveats.setdefault(label, [])
                self.caveats[label] += [t for t in map(flag_text, flags)
                                        if t not in self.caveats[label]]  # fmt: skip
                targets["label"].append(_FLAG_MARK)
            cells["label"] = _Cell(label, marks=targets["label"])
            means = [as_float(self._col(r, f"mean_{a}")) for a in ("experimental", "control")]
            sds = [as_float(self._col(r, f"sd_{a}")) for a in ("experimental", "control")]
            d = format_decimals(means if any(map(math.isfinite, means)) else sds)
            for arm, suffix in (("experimental", "e"), ("control", "c")):
                if self.counts:  # events, then total
                    ev = self._col(r, f"events_{arm}")
                    cells[f"n_{suffix}"] = _Cell(fmt_count(ev), marks=list(targets["events"]))
                    n = self._col(r, f"n_{arm}")
                    cells[f"msd_{suffix}"] = _Cell(fmt_count(n), marks=list(targets["n"]))
                    continue
                n = self._col(r, f"n_{arm}")
                cells[f"n_{suffix}"] = _Cell(fmt_count(n), marks=list(targets["n"]))
                mean = as_float(self._col(r, f"mean_{arm}"))
                sd = as_float(self._col(r, f"sd_{arm}"))
                text = fmt(mean, d)
                if math.isfinite(sd):
                    text += f" ({fmt(sd, d)})"
                marks = list(targets["msd"]) if text != DASH else []
                cells[f"msd_{suffix}"] = _Cell(text, marks=marks)
            yi, lo, hi = (as_float(r[c]) for c in ("yi", "ci_lower", "ci_upper"))
            if math.isfinite(yi):
                cells["est"] = _Cell(fmt(self._shown(yi), self.dec))
                if math.isfinite(lo) and math.isfinite(hi):
                    cells["lo"] = _Cell(f"[{fmt(self._shown(lo), self.dec)},")
                    cells["hi"] = _Cell(
                        f"{fmt(self._shown(hi), self.dec)}]", marks=targets["effect"]
                    )
                else:
                    cells["est"].marks = targets["effect"]
            else:
                cells["hi"] = _Cell("not estimable", style="italic", color=GREY)
            w = as_float(self._col(r, "weight_pct"))
            cells["w"] = _Cell(f"{w:.1f}%" if math.isfinite(w) else DASH)
            rows.append(_Row("study", cells, yi=yi, lo=lo, hi=hi, weight=w))
        return rows

    def _summary_rows(self, n_studies: int) -> list[_Row]:
        p = self.pooled
        k = as_float(p.get("k"))
        est = as_float(p.get("estimate"))
        if n_studies == 0 and not p:
            text = "No studies for this comparison"
            return [_Row("message", {"label": _Cell(text, style="italic")})]
        if k == 1:
            text = "Single study: no pooled estimate"
            return [_Row("message", {"label": _Cell(text, style="italic")})]
        if not p or not math.isfinite(est):
            text = "No pooled estimate: comparison not poolable"
            return [_Row("message", {"label": _Cell(text, style="italic")})]
        lo, hi = as_float(p.get("ci_lower")), as_float(p.get("ci_upper"))
        bold = "bold"
        k_text = f" (k = {fmt_count(k)})" if math.isfinite(k) else ""
        cells = {
            "label": _Cell(f"Pooled estimate{k_text}", weight=bold),
            "est": _Cell(fmt(self._shown(est), self.dec), weight=bold),
            "lo": _Cell(f"[{fmt(self._shown(lo), self.dec)},", weight=bold),
            "hi": _Cell(f"{fmt(self._shown(hi), self.dec)}]", weight=bold),
        }
        if self.counts:  # total events and participants per arm
            for arm, suffix in (("experimental", "e"), ("control", "c")):
                for col, key in ((f"events_{arm}", f"n_{suffix}"), (f"n_{arm}", f"msd_{suffix}")):
                    if col in self.studies.columns:
                        total = pd.to_numeric(self.studies[col], errors="coerce").sum()
                        cells[key] = _Cell(fmt_count(total), weight=bold)
        weights = pd.to_numeric(
            self.studies.get("weight_pct", pd.Series(dtype=float)), errors="coerce"
        ).to_numpy(dtype=float)
        if weights.size and bool(np.isfinite(weights).all()):
            cells["w"] = _Cell("100.0%", weight=bold)
        rows = [_Row("pooled", cells, yi=est, lo=lo, hi=hi)]
        pi_lo, pi_hi = as_float(p.get("pi_lower")), as_float(p.get("pi_upper"))
        if math.isfinite(pi_lo) and math.isfinite(pi_hi):
            pi_cells = {
                "label": _Cell("95% prediction interval"),
                "lo": _Cell(f"[{fmt(self._shown(pi_lo), self.dec)},"),
                "hi": _Cell(f"{fmt(self._shown(pi_hi), self.dec)}]"),
            }
            rows.append(_Row("pi", pi_cells, yi=math.nan, lo=pi_lo, hi=pi_hi))
        return rows

    # ---- measurement ------------------------------------------------------

    def _cell_width(self, cell: _Cell) -> tuple[float, float]:
        """(text width, hanging mark width incl. gap)."""
        tw = self.m.width(cell.text, _FS, cell.weight, cell.style)
        mw = 0.0
        if cell.marks:
            mw = _MARK_GAP + self.m.width(",".join(cell.marks), _FS_MARK)
        return tw, mw

    def _layout_columns(self, rows: list[_Row]) -> None:
        headers = self._headers()
        widths: dict[str, float] = {}
        gutters: dict[str, float] = {}
        for col in _LEFT_COLS + _RIGHT_COLS:
            text_w = [
                self.m.width(headers[col], _FS, "bold"),
                self.m.width(self._HEADERS_TOP.get(col, ""), _FS, "bold"),
            ]
            mark_w = [0.0]
            for row in rows:
                if row.kind == "message" or col not in row.cells:
                    continue
                if (
                    row.kind != "study"
                    and col == "label"
                    and not (self.counts and "n_e" in row.cells)
                ):
                    continue  # summary labels may extend over the empty arm columns
                tw, mw = self._cell_width(row.cells[col])
                if col == "label":
                    text_w.append(tw + mw)
                else:
                    text_w.append(tw)
                    mark_w.append(mw)
            widths[col] = max(text_w) + max(mark_w)
            gutters[col] = max(mark_w)
        # the effect header spans est..hi; the arm headers span n..msd
        span = widths["est"] + widths["lo"] + widths["hi"] + _gap("est") + _gap("lo")
        need = self.m.width(self.effect_label, _FS, "bold")
        if need > span:
            widths["est"] += need - span
        # Arm headers span n..msd. The experimental one may also use the empty
        # space above the study column; the control one may not (it would
        # run into the experimental header).
        for (n, msd), name, extra in zip(
            (("n_e", "msd_e"), ("n_c", "msd_c")),
            self.arm_labels,
            (widths["label"] + _COL_GAP, 0.0),
            strict=True,
        ):
            need = self.m.width(name, _FS, "bold")
            have = widths[n] + widths[msd] - gutters[msd] + _COL_GAP + extra
            if need > have:
                widths[msd] += need - have
        self.widths, self.gutters = widths, gutters

    def _headers(self) -> dict[str, str]:
        """Column heads (bottom header line)."""
        if self.counts:
            arm = {"n_e": "Events", "msd_e": "Total", "n_c": "Events", "msd_c": "Total"}
        else:
            arm = {"n_e": "n", "msd_e": "(SD)", "n_c": "n", "msd_c": "(SD)"}
        w = "Weight" if self.show_weight else ""
        return {"label": "Study", **arm, "est": "", "lo": "", "hi": "", "w": w}

    @property
    def _HEADERS_TOP(self) -> dict[str, str]:  # noqa: N802 (was a class constant)
        """Upper header line, right-aligned over the column like the head below it."""
        return {} if self.counts else {"msd_e": "Mean change", "msd_c": "Mean change"}

    def _fit_width(self, rows: list[_Row]) -> None:
        """Shorten labels, then widen the figure, until the plot column is wide enough."""
        study_rows = [r for r in rows if r.kind == "study"]
        for r in study_rows:
            cell = r.cells["label"]
            cell.text = self.m.ellipsize(cell.text, _MAX_LABEL_W, _FS)
        self._layout_columns(rows)

        def plot_w() -> float:
            left = sum(self.widths[c] + _gap(c) for c in _LEFT_COLS[:-1])
            left += self.widths[_LEFT_COLS[-1]]
            right = sum(self.widths[c] + _gap(c) for c in _RIGHT_COLS[:-1])
            right += self.widths[_RIGHT_COLS[-1]]
            self.left_w, self.right_w = left, right
            return self.width - 2 * _MARGIN - left - right - 2 * _BLOCK_GAP

        deficit = _MIN_PLOT_W - plot_w()
        if deficit > 0 and study_rows:
            target = max(0.9, self.widths["label"] - deficit)
            for r in study_rows:
                cell = r.cells["label"]
                _, mw = self._cell_width(cell)
                cell.text = self.m.ellipsize(cell.text, max(0.3, target - mw), _FS)
            self._layout_columns(rows)
        deficit = _MIN_PLOT_W - plot_w()
        if deficit > 0:
            self.width += deficit
        self.plot_w = plot_w()
        # x positions (inches from the left) of each column's left edge
        x = _MARGIN
        self.col_x: dict[str, float] = {}
        for c in _LEFT_COLS:
            self.col_x[c] = x
            x += self.widths[c] + _gap(c)
        self.plot_x = _MARGIN + self.left_w + _BLOCK_GAP
        x = self.plot_x + self.plot_w + _BLOCK_GAP
        for c in _RIGHT_COLS:
            self.col_x[c] = x
            x += self.widths[c] + _gap(c)

    # ---- drawing ----------------------------------------------------------

    def _put_cell(self, col: str, y: float, cell: _Cell) -> None:
        t = self.table
        x0 = self.col_x[col]
        if col == "label":
            t.text(x0, y, cell.text, weight=cell.weight, style=cell.style, color=cell.color)
            x_mark = x0 + self.m.width(cell.text, _FS, cell.weight, cell.style)
        else:
            right = x0 + self.widths[col] - self.gutters[col]
            t.text(right, y, cell.text, ha="right", weight=cell.weight, style=cell.style,
                   color=cell.color)  # fmt: skip
            x_mark = right
        t.marks(x_mark, y, cell.marks)

    def draw(self) -> Figure:
        rows = self._study_rows()
        n_studies = len(rows)
        rows += self._summary_rows(n_studies)
        if not self._has_pooled(rows):
            # a weight is a trial's share of a pooled estimate: none is drawn, none is shown
            # (a single trial's weight is 100% or, for Mantel-Haenszel with a zero cell, 0/0)
            self.show_weight = False
            for row in rows[:n_studies]:
                row.cells["w"] = _Cell()
                row.weight = math.nan
        self._fit_width(rows)
        width = self.width
        full_w = width - 2 * _MARGIN

        # ---- vertical layout, inches from the top ----
        title_lines, title_y, y = wrap_title(self.m, self.title, full_w, _MARGIN, _FS_TITLE, 0.06)
        group_y = y + _ROW_H / 2
        y += _ROW_H
        (header_top_y, header_y), rule_y, y = header_lines(y, 2, 0.05)
        axes_top = y
        for row in rows:
            if row.kind != "study" and rows[0].kind == "study" and row is rows[n_studies]:
                y += _ROW_H * 0.4  # air between studies and summary
            row.y = y + _ROW_H / 2
            y += _ROW_H
        axes_bottom = y + 0.04
        y = axes_bottom
        self.has_axis = self.xlim is not None or any(
            math.isfinite(v) for r in rows if r.kind != "message" for v in (r.yi, r.lo, r.hi)
        )
        tick_h = (3 + 2) / 72 + _LINE_H  # tick length + pad + label
        favours_y = y + tick_h + 0.03 + _LINE_H / 2
        xlabel_y = favours_y + _LINE_H / 2 + 0.01 + _LINE_H / 2
        y = xlabel_y + _LINE_H / 2 + 0.10 if self.has_axis else y + 0.06

        method = method_text(self.pooled) if self._has_pooled(rows) else []
        notes = clean_text(self.pooled.get("notes")) if self.pooled else ""
        blocks: list[tuple[str, str, str | None]] = [
            ("", m, f"method{i}") for i, m in enumerate(method)
        ]
        blocks.append(("", f"Note: {notes}" if notes else "", "notes"))
        foot_lines, y = footnote_lines(blocks, full_w, y, self.m)
        if foot_lines and (self.marks or self.has_split_scalp or self.caveats):
            y += 0.05
        footer = [
            (sym, self._explain(code), f"provenance:{code}") for code, sym in self.marks.items()
        ]
        if self.has_split_scalp:
            footer.append((_DESIGN_MARK, _DESIGN_NOTE, "design:split_scalp"))
        if self.caveats:
            text = "Extraction caveats: " + " ".join(
                f"{label}: {'; '.join(texts)}." for label, texts in self.caveats.items()
            )
            footer.append((_FLAG_MARK, text, "flags"))
        more, y = footnote_lines(footer, full_w, y, self.m)
        foot_lines += more
        height = y + _MARGIN - 0.04

        # ---- figure ----
        t = self.table = Table(width, height, self.family)
        t.title(title_lines, title_y, gid="title")

        # header: arm group labels with a rule under each, then column heads
        for (n, msd), name in zip(
            (("n_e", "msd_e"), ("n_c", "msd_c")), self.arm_labels, strict=True
        ):
            x0 = self.col_x[n]
            x1 = self.col_x[msd] + self.widths[msd] - self.gutters[msd]
            need = self.m.width(name, _FS, "bold")
            if need > x1 - x0:  # too wide for its columns: right-align, extend left
                x0 = x1 - need
            t.text((x0 + x1) / 2, group_y, name, ha="center", weight="bold")
            t.rule(x0, x1, group_y + _ROW_H / 2 - 0.01, lw=0.4)
        heads = self._headers()
        self._put_cell("label", header_y, _Cell(heads["label"], weight="bold"))
        for c in ("n_e", "msd_e", "n_c", "msd_c", "w"):
            style = "italic" if heads[c] == "n" else "normal"
            self._put_cell(c, header_y, _Cell(heads[c], weight="bold", style=style))
            if c in self._HEADERS_TOP:
                self._put_cell(c, header_top_y, _Cell(self._HEADERS_TOP[c], weight="bold"))
        x0 = self.col_x["est"]
        x1 = self.col_x["hi"] + self.widths["hi"] - self.gutters["hi"]
        t.text((x0 + x1) / 2, header_y, self.effect_label, ha="center", weight="bold")
        t.rule(_MARGIN, width - _MARGIN, rule_y)

        for row in rows:
            if row.kind == "message":
                cell = row.cells["label"]
                t.text(self.col_x["label"], row.y, cell.text, style=cell.style, color=GREY)
                continue
            for col, cell in row.cells.items():
                self._put_cell(col, row.y, cell)

        self._draw_plot(rows, axes_top, axes_bottom, favours_y, xlabel_y)

        t.write_footnotes(foot_lines)
        t.fig.hairtrial_footnotes = footer  # type: ignore[attr-defined]
        return t.fig

    def _has_pooled(self, rows: list[_Row]) -> bool:
        return any(r.kind == "pooled" for r in rows)

    def _explain(self, code: str) -> str:
        text = clean_text(self.labels.get(code))
        return text or f"Derived value (provenance code \u2018{code}\u2019)"

    def _draw_plot(
        self,
        rows: list[_Row],
        top: float,
        bottom: float,
        favours_y: float,
        xlabel_y: float,
    ) -> None:
        iv = self.table.interval_axes(self.plot_x, top, self.plot_w, bottom, (bottom, top))
        if not self.has_axis:
            iv.ax.set_visible(False)  # nothing to show: no empty axis, no 'favours'
            return

        # limits and ticks
        if self.xlim is not None:
            lo, hi = float(self.xlim[0]), float(self.xlim[1])
            ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            ticks = [t for t in ticks if lo - 1e-12 <= t <= hi + 1e-12]
        else:
            points = [r.yi for r in rows if r.kind in ("study", "pooled")]
            points += [r.lo for r in rows if r.kind == "pooled"]
            points += [r.hi for r in rows if r.kind == "pooled"]
            intervals = [(r.lo, r.hi) for r in rows if r.kind in ("study", "pi")]
            if self.log:  # every CI in full (arrows only beyond ratios 1e-4 and 1e4)
                ends = [v for v in points + [x for iv_ in intervals for x in iv_]
                        if math.isfinite(v)] + [0.0]  # fmt: skip
                cap = math.log(1e4)
                lo, hi = max(min(ends), -cap), min(max(ends), cap)
                pad = 0.04 * (hi - lo or 1.0)
                lo, hi = lo - pad, hi + pad
            else:
                lo, hi = axis_limits(points, intervals)
            if self.log:
                ticks = ratio_ticks(lo, hi, self.plot_w, self.m, _FS)
            else:
                ticks = fit_ticks(lo, hi, self.plot_w, self.m, _FS)
            lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        labels = [ratio_label(t) for t in ticks] if self.log else None
        iv.scale(lo, hi, ticks, family=self.family, labels=labels)

        weights = [r.weight for r in rows if r.kind == "study" and math.isfinite(r.weight)]
        w_max = max(weights) if weights else math.nan
        for r in rows:
            if r.kind == "study" and math.isfinite(r.yi):
                iv.whisker(r.lo, r.hi, r.y)
                iv.square(r.yi, r.y, square_side(r.weight, w_max))
            elif r.kind == "pooled":
                iv.diamond(r.lo, r.yi, r.hi, r.y, 0.36 * _ROW_H, VERMILLION)
            elif r.kind == "pi":
                iv.whisker(r.lo, r.hi, r.y, color=VERMILLION, lw=1.2, caps=0.22 * _ROW_H)

        iv.favours(self.table, self.plot_x, self.plot_w, favours_y, self.favours,
                   limits=(_MARGIN, self.width - _MARGIN),
                   gids=("favours-left", "favours-right"))  # fmt: skip
        self.table.text(self.plot_x + self.plot_w / 2, xlabel_y, self.xlabel, ha="center",
                        gid="xlabel")  # fmt: skip
