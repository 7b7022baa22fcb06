"""The forest plot.

Nothing in this module computes statistics. :func:`forest_plot` draws the
study effects and the pooled model exactly as the meta-analysis engine
returns them; it only lays them out, formats the numbers and explains where
derived numbers come from (labels from :data:`hairtrial.data.provenance.PROVENANCE`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.patches import Polygon
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator
from matplotlib.transforms import Affine2D, Transform

from hairtrial.data.provenance import PROVENANCE
from hairtrial.plots.style import (
    _BLUE,
    _DASH,
    _GREY,
    _VERMILLION,
    _as_float,
    _fmt,
    _fmt_count,
    _fmt_p,
    _fmt_sig,
    _sig_decimals,
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
    "combined_arms": ("n", "msd"),
    "split_scalp_r": ("effect",),
}

_NO_MARK_CODES = frozenset({"reported", ""})
_DESIGN_MARK = "\u2020"  # dagger
_DESIGN_NOTE = "Split-scalp (within-patient) design: both columns are the same patients"


def _parse_codes(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    out: list[str] = []
    for part in str(value).split(";"):
        code = part.strip()
        if code and code not in out:
            out.append(code)
    return out


def _mark_symbol(i: int) -> str:
    """a, b, ..., z, aa, ab, ..."""
    s = ""
    i += 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


# --------------------------------------------------------------------------
# Text measurement and layout helpers
# --------------------------------------------------------------------------

_MEASURE_DPI = 300.0


class _Measurer:
    """Width of single-line text in inches, as Agg lays it out."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._renderer = RendererAgg(10, 10, _MEASURE_DPI)
        self._cache: dict[tuple[str, float, str, str], float] = {}

    def prop(self, size: float, weight: str = "normal", style: str = "normal") -> FontProperties:
        return FontProperties(family=self.family, size=size, weight=weight, style=style)

    def width(self, text: str, size: float, weight: str = "normal", style: str = "normal") -> float:
        if not text:
            return 0.0
        key = (text, size, weight, style)
        if key not in self._cache:
            w, _, _ = self._renderer.get_text_width_height_descent(
                text, self.prop(size, weight, style), ismath=False
            )
            self._cache[key] = w / _MEASURE_DPI
        return self._cache[key]

    def ellipsize(self, text: str, max_w: float, size: float, weight: str = "normal") -> str:
        if self.width(text, size, weight) <= max_w:
            return text
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.width(text[:mid].rstrip() + "\u2026", size, weight) <= max_w:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo].rstrip() + "\u2026"

    def wrap(
        self,
        text: str,
        max_w: float,
        size: float,
        style: str = "normal",
        weight: str = "normal",
    ) -> list[str]:
        """Greedy word wrap; words longer than a line are cut with an ellipsis."""
        lines: list[str] = []
        current = ""
        for word in text.split():
            trial = f"{current} {word}" if current else word
            if self.width(trial, size, weight, style) <= max_w:
                current = trial
                continue
            if current:
                lines.append(current)
            current = word
            if self.width(current, size, weight, style) > max_w:
                current = self.ellipsize(current, max_w, size, weight)
        if current or not lines:
            lines.append(current)
        return lines


def _clean_text(value: Any) -> str:
    """Single-line display text from any value ('' for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    return " ".join(str(value).split())


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


# Geometry (inches) and type sizes (points).
_FS = 7.0  # table, axis, footer
_FS_TITLE = 9.0
_FS_MARK = 5.5
_MARK_RAISE = 0.032  # superscript raise
_MARK_GAP = 0.012
_MARGIN = 0.08
_COL_GAP = 0.08
#: narrower gaps inside "est [lo, hi]" so it reads as one phrase
_SUB_GAP = {"est": 0.045, "lo": 0.03}
_BLOCK_GAP = 0.12
_ROW_H = 0.17
_LINE_H = _FS * 1.3 / 72
_MIN_PLOT_W = 1.8
_MAX_LABEL_W = 1.6

_LEFT_COLS = ("label", "n_e", "msd_e", "n_c", "msd_c")
_RIGHT_COLS = ("est", "lo", "hi", "w")


def _gap(col: str) -> float:
    """Space after a table column."""
    return _SUB_GAP.get(col, _COL_GAP)


def _top_transform(fig: Figure, height: float) -> Transform:
    """Figure coordinates in inches measured from the top-left corner."""
    return Affine2D().scale(1.0, -1.0).translate(0.0, height) + fig.dpi_scale_trans


def _mapping(pooled: Mapping[str, Any] | pd.Series | pd.DataFrame | None) -> dict[str, Any]:
    if pooled is None:
        return {}
    if isinstance(pooled, pd.DataFrame):
        if len(pooled) != 1:
            raise ValueError(f"pooled must be one row, got a table of {len(pooled)} rows")
        pooled = pooled.iloc[0]
    return dict(pooled.items())


_FIXED_METHODS = {"FE", "EE", "CE"}
_TAU2_METHODS = {
    "REML": "REML",
    "ML": "ML",
    "DL": "DerSimonian\u2013Laird",
    "PM": "Paule\u2013Mandel",
    "PMM": "median-unbiased Paule\u2013Mandel",
    "HE": "Hedges",
    "HS": "Hunter\u2013Schmidt",
    "HSK": "Hunter\u2013Schmidt (small-sample corrected)",
    "SJ": "Sidik\u2013Jonkman",
    "EB": "empirical Bayes",
    "GENQ": "generalised Q-statistic",
}
_CI_METHODS = {
    "z": "Wald-type (normal)",
    "t": "t distribution",
    "knha": "Hartung\u2013Knapp",
    "adhoc": "Hartung\u2013Knapp (ad hoc)",
}


def _method_text(p: Mapping[str, Any]) -> list[str]:
    """Model and heterogeneity lines for the footer of a pooled forest plot.

    Returns two lines, e.g. ``"Random effects, REML; 95% CI: Hartung–Knapp
    (ad hoc); test for overall effect p = 0.04"`` and ``"Heterogeneity:
    τ² = 123.4 [Q-profile 95% CI 12.3, 4567.8]; I² = 88%; Q = 16.70
    (df = 2), p < 0.001"``; parts whose numbers are missing are left out.
    """
    model: list[str] = []
    method = _clean_text(p.get("method"))
    fixed = method.upper() in _FIXED_METHODS
    if fixed:
        model.append("Common effect (inverse variance)")
    elif method:
        model.append(f"Random effects, {_TAU2_METHODS.get(method.upper(), method)}")
    ci = _clean_text(p.get("ci_method"))
    if ci:
        model.append(f"95% CI: {_CI_METHODS.get(ci.lower(), ci)}")
    pv = _as_float(p.get("pvalue"))
    if math.isfinite(pv):
        model.append(f"test for overall effect {_fmt_p(pv)}")
    if not fixed and method and math.isnan(_as_float(p.get("pi_lower"))):
        model.append("prediction interval not estimable")

    het: list[str] = []
    tau2 = _as_float(p.get("tau2"))
    if not fixed and math.isfinite(tau2):
        d = _sig_decimals(tau2)
        s = f"\u03c4\u00b2 = {_fmt(tau2, d)}"
        lo, hi = _as_float(p.get("tau2_ci_lower")), _as_float(p.get("tau2_ci_upper"))
        if not (math.isnan(lo) or math.isnan(hi)):
            how = _clean_text(p.get("tau2_ci_method", "Q-profile"))
            how = f"{how} " if how else ""
            s += f" [{how}95% CI {_fmt(lo, d)}, {_fmt(hi, d)}]"
        het.append(s)
    i2 = _as_float(p.get("I2"))
    if math.isfinite(i2):
        het.append(f"I\u00b2 = {i2:.0f}%")
    q, qdf = _as_float(p.get("Q")), _as_float(p.get("Q_df"))
    if math.isfinite(q):
        s = f"Q = {_fmt_sig(q)}"
        if math.isfinite(qdf):
            s += f" (df = {_fmt_count(qdf)})"
        qp = _as_float(p.get("Q_pvalue"))
        if math.isfinite(qp):
            s += f", {_fmt_p(qp)}"
        het.append(s)
    lines = []
    if model:
        text = "; ".join(model)
        lines.append(text[0].upper() + text[1:])
    if het:
        lines.append("Heterogeneity: " + "; ".join(het))
    return lines


def _axis_limits(points: list[float], intervals: list[tuple[float, float]]) -> tuple[float, float]:
    """Data range to show: all points and 0, intervals capped at one core span beyond.

    `points` (study estimates, pooled estimate and CI, 0) are always shown.
    Interval ends beyond ``core ± span`` are cut and drawn with an arrow, so
    one very wide CI does not squeeze the others.
    """
    pts = [v for v in points if math.isfinite(v)] + [0.0]
    core_lo, core_hi = min(pts), max(pts)
    ends = [v for pair in intervals for v in pair if math.isfinite(v)]
    span = core_hi - core_lo
    if span <= 0:
        widths = [abs(b - a) for a, b in intervals if math.isfinite(a) and math.isfinite(b)]
        span = float(np.median(widths)) if widths else 1.0
        span = span if span > 0 else 1.0
    lo = max(min([core_lo, *ends]), core_lo - span)
    hi = min(max([core_hi, *ends]), core_hi + span)
    # keep the line of no effect off the frame edge, so both 'favours' sides exist
    pad = 0.08 * (hi - lo) if hi > lo else span
    if lo >= -pad:
        lo = -pad
    if hi <= pad:
        hi = pad
    return lo, hi


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
    favours: tuple[str, str] = ("Favours minoxidil alone", "Favours minoxidil + microneedling"),
    effect_label: str = "MD [95% CI]",
    arm_labels: tuple[str, str] = ("Microneedling + minoxidil", "Minoxidil alone"),
    xlim: tuple[float, float] | None = None,
    width: float = 7.0,
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
        ';'), ``design`` (``'parallel'`` or ``'split_scalp'``). ``vi`` is
        not used: the CI bounds are drawn as given.
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
    favours : tuple of str, default ("Favours minoxidil alone", "Favours minoxidil + microneedling")
        Texts under the axis left and right of 0 (effects are experimental
        minus control).
    effect_label : str, default "MD [95% CI]"
        Header of the effect column.
    arm_labels : tuple of str, default ("Microneedling + minoxidil", "Minoxidil alone")
        Headers of the experimental and control arm columns.
    xlim : tuple of float, optional
        Axis limits; by default chosen from the data so that every estimate,
        the pooled CI and 0 are visible and wide CIs end in arrows.
    width : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with an Agg canvas, not registered with pyplot (no need to
        close it). Save it with :func:`save_figure`. Its attribute
        ``hairtrial_footnotes`` lists the footnotes drawn, as
        ``(mark, explanation, gid)`` with gid ``"provenance:<code>"`` or
        ``"design:split_scalp"``; the footnote texts carry the same gid.

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
            pooled=_mapping(pooled),
            xlabel=xlabel,
            title=title,
            labels={**PROVENANCE, **dict(provenance_labels or {})},
            favours=favours,
            effect_label=effect_label,
            arm_labels=arm_labels,
            xlim=xlim,
            width=width,
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
    ) -> None:
        self.studies = studies
        self.pooled = pooled
        self.xlabel = _clean_text(xlabel)
        self.title = _clean_text(title)
        self.labels = labels
        self.favours = (_clean_text(favours[0]), _clean_text(favours[1]))
        self.effect_label = _clean_text(effect_label)
        self.arm_labels = (_clean_text(arm_labels[0]), _clean_text(arm_labels[1]))
        self.xlim = xlim
        self.width = float(width)
        self.family = str(mpl.rcParams["font.sans-serif"][0])
        self.m = _Measurer(self.family)
        self.marks: dict[str, str] = {}  # code -> symbol, in order of first use
        self.has_split_scalp = False

    # ---- data to rows -----------------------------------------------------

    def _col(self, row: pd.Series, name: str) -> Any:
        return row[name] if name in row.index else math.nan

    def _mark(self, code: str) -> str:
        if code not in self.marks:
            self.marks[code] = _mark_symbol(len(self.marks))
        return self.marks[code]

    def _study_rows(self) -> list[_Row]:
        rows: list[_Row] = []
        ests = list(self.studies["yi"]) + [self.pooled.get("estimate", math.nan)]
        self.dec = format_decimals(np.array([_as_float(v) for v in ests]))
        for i, r in self.studies.iterrows():
            label = _clean_text(self._col(r, "label")) or _clean_text(r["study"])
            label = label or f"Study {int(str(i)) + 1}"
            cells = {c: _Cell() for c in _LEFT_COLS + _RIGHT_COLS}
            # letters are given in reading order: label, n, mean (SD), effect
            codes = [c for c in _parse_codes(self._col(r, "provenance")) if c not in _NO_MARK_CODES]
            targets: dict[str, list[str]] = {"label": [], "n": [], "msd": [], "effect": []}
            for target in targets:
                for code in codes:
                    if target in _MARK_TARGETS.get(code, ("label",)):
                        targets[target].append(self._mark(code))
            order = {sym: i for i, sym in enumerate(self.marks.values())}
            for syms in targets.values():
                syms.sort(key=lambda m: order[m])
            if _clean_text(self._col(r, "design")).lower().replace("-", "_") == "split_scalp":
                self.has_split_scalp = True
                targets["label"].append(_DESIGN_MARK)
            cells["label"] = _Cell(label, marks=targets["label"])
            means = [_as_float(self._col(r, f"mean_{a}")) for a in ("experimental", "control")]
            sds = [_as_float(self._col(r, f"sd_{a}")) for a in ("experimental", "control")]
            d = format_decimals(means if any(map(math.isfinite, means)) else sds)
            for arm, suffix in (("experimental", "e"), ("control", "c")):
                n = self._col(r, f"n_{arm}")
                cells[f"n_{suffix}"] = _Cell(_fmt_count(n), marks=list(targets["n"]))
                mean = _as_float(self._col(r, f"mean_{arm}"))
                sd = _as_float(self._col(r, f"sd_{arm}"))
                text = _fmt(mean, d)
                if math.isfinite(sd):
                    text += f" ({_fmt(sd, d)})"
                marks = list(targets["msd"]) if text != _DASH else []
                cells[f"msd_{suffix}"] = _Cell(text, marks=marks)
            yi, lo, hi = (_as_float(r[c]) for c in ("yi", "ci_lower", "ci_upper"))
            if math.isfinite(yi):
                cells["est"] = _Cell(_fmt(yi, self.dec))
                if math.isfinite(lo) and math.isfinite(hi):
                    cells["lo"] = _Cell(f"[{_fmt(lo, self.dec)},")
                    cells["hi"] = _Cell(f"{_fmt(hi, self.dec)}]", marks=targets["effect"])
                else:
                    cells["est"].marks = targets["effect"]
            else:
                cells["hi"] = _Cell("not estimable", style="italic", color=_GREY)
            w = _as_float(self._col(r, "weight_pct"))
            cells["w"] = _Cell(f"{w:.1f}%" if math.isfinite(w) else _DASH)
            rows.append(_Row("study", cells, yi=yi, lo=lo, hi=hi, weight=w))
        return rows

    def _summary_rows(self, n_studies: int) -> list[_Row]:
        p = self.pooled
        k = _as_float(p.get("k"))
        est = _as_float(p.get("estimate"))
        if n_studies == 0 and not p:
            text = "No studies for this comparison"
            return [_Row("message", {"label": _Cell(text, style="italic")})]
        if k == 1:
            text = "Single study: no pooled estimate"
            return [_Row("message", {"label": _Cell(text, style="italic")})]
        if not p or not math.isfinite(est):
            text = "No pooled estimate: comparison not poolable"
            return [_Row("message", {"label": _Cell(text, style="italic")})]
        lo, hi = _as_float(p.get("ci_lower")), _as_float(p.get("ci_upper"))
        bold = "bold"
        k_text = f" (k = {_fmt_count(k)})" if math.isfinite(k) else ""
        cells = {
            "label": _Cell(f"Pooled estimate{k_text}", weight=bold),
            "est": _Cell(_fmt(est, self.dec), weight=bold),
            "lo": _Cell(f"[{_fmt(lo, self.dec)},", weight=bold),
            "hi": _Cell(f"{_fmt(hi, self.dec)}]", weight=bold),
        }
        weights = pd.to_numeric(
            self.studies.get("weight_pct", pd.Series(dtype=float)), errors="coerce"
        ).to_numpy(dtype=float)
        if weights.size and bool(np.isfinite(weights).all()):
            cells["w"] = _Cell("100.0%", weight=bold)
        rows = [_Row("pooled", cells, yi=est, lo=lo, hi=hi)]
        pi_lo, pi_hi = _as_float(p.get("pi_lower")), _as_float(p.get("pi_upper"))
        if math.isfinite(pi_lo) and math.isfinite(pi_hi):
            pi_cells = {
                "label": _Cell("95% prediction interval"),
                "lo": _Cell(f"[{_fmt(pi_lo, self.dec)},"),
                "hi": _Cell(f"{_fmt(pi_hi, self.dec)}]"),
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
                if row.kind != "study" and col == "label":
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

    @staticmethod
    def _headers() -> dict[str, str]:
        """Column heads (bottom header line)."""
        return {
            "label": "Study",
            "n_e": "n",
            "msd_e": "(SD)",
            "n_c": "n",
            "msd_c": "(SD)",
            "est": "",
            "lo": "",
            "hi": "",
            "w": "Weight",
        }

    #: Upper header line, right-aligned over the column like the head below it.
    _HEADERS_TOP = {"msd_e": "Mean change", "msd_c": "Mean change"}

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

    def _text(
        self,
        x: float,
        y: float,
        s: str,
        *,
        ha: str = "left",
        size: float = _FS,
        weight: str = "normal",
        style: str = "normal",
        color: str = "black",
        gid: str | None = None,
    ) -> None:
        if not s:
            return
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
            fontfamily=self.family,
            color=color,
            parse_math=False,
        )
        if gid:
            t.set_gid(gid)

    def _put_cell(self, col: str, y: float, cell: _Cell) -> None:
        x0 = self.col_x[col]
        if col == "label":
            self._text(x0, y, cell.text, weight=cell.weight, style=cell.style, color=cell.color)
            x_mark = x0 + self.m.width(cell.text, _FS, cell.weight, cell.style) + _MARK_GAP
        else:
            right = x0 + self.widths[col] - self.gutters[col]
            self._text(
                right,
                y,
                cell.text,
                ha="right",
                weight=cell.weight,
                style=cell.style,
                color=cell.color,
            )
            x_mark = right + _MARK_GAP
        if cell.marks:
            self._text(x_mark, y - _MARK_RAISE, ",".join(cell.marks), size=_FS_MARK)

    def _hline(self, x0: float, x1: float, y: float, lw: float = 0.6) -> None:
        self.fig.add_artist(
            mpl.lines.Line2D([x0, x1], [y, y], transform=self.tr, color="black", lw=lw)
        )

    def draw(self) -> Figure:
        rows = self._study_rows()
        n_studies = len(rows)
        rows += self._summary_rows(n_studies)
        self._fit_width(rows)
        width = self.width
        full_w = width - 2 * _MARGIN

        # ---- vertical layout, inches from the top ----
        y = _MARGIN
        title_lines = (
            self.m.wrap(self.title, full_w, _FS_TITLE, weight="bold") if self.title else []
        )
        title_y = []
        for _ in title_lines:
            title_y.append(y + _FS_TITLE * 1.3 / 72 / 2)
            y += _FS_TITLE * 1.3 / 72
        if title_lines:
            y += 0.06
        group_y = y + _ROW_H / 2
        y += _ROW_H
        header_top_y = y + _LINE_H / 2
        y += _LINE_H
        header_y = y + _LINE_H / 2
        y += _LINE_H
        rule_y = y + 0.02
        y += 0.05
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

        footer: list[tuple[str, str, str]] = []  # (mark, text, gid)
        method = _method_text(self.pooled) if self._has_pooled(rows) else []
        notes = _clean_text(self.pooled.get("notes")) if self.pooled else ""
        indent = self.m.width("mm", _FS_MARK) + 0.03
        foot_lines: list[tuple[float, str, str, str | None, float]] = []
        # (y, mark, text, gid, x)
        blocks = [(m, f"method{i}") for i, m in enumerate(method)]
        blocks.append((f"Note: {notes}" if notes else "", "notes"))
        for text, gid in blocks:
            for j, line in enumerate(self.m.wrap(text, full_w, _FS) if text else []):
                foot_lines.append((y + _LINE_H / 2, "", line, gid if j == 0 else None, 0.0))
                y += _LINE_H
        if foot_lines and (self.marks or self.has_split_scalp):
            y += 0.05
        notes_list = [
            (sym, self._explain(code), f"provenance:{code}") for code, sym in self.marks.items()
        ]
        if self.has_split_scalp:
            notes_list.append((_DESIGN_MARK, _DESIGN_NOTE, "design:split_scalp"))
        for sym, text, gid in notes_list:
            for j, line in enumerate(self.m.wrap(text, full_w - indent, _FS)):
                foot_lines.append(
                    (y + _LINE_H / 2, sym if j == 0 else "", line, gid if j == 0 else None, indent)
                )
                y += _LINE_H
            footer.append((sym, text, gid))
        height = y + _MARGIN - 0.04

        # ---- figure ----
        # A no-op layout engine rather than None: matplotlib restores None after
        # savefig as "whatever rcParams say", which is constrained layout in
        # the house style and would fight the computed geometry.
        fig = Figure(
            figsize=(width, height),
            layout=PlaceHolderLayoutEngine(adjust_compatible=True, colorbar_gridspec=True),
        )
        FigureCanvasAgg(fig)
        self.fig = fig
        self.tr = _top_transform(fig, height)

        for line, ty in zip(title_lines, title_y, strict=True):
            self._text(_MARGIN, ty, line, size=_FS_TITLE, weight="bold", gid="title")

        # header: arm group labels with a rule under each, then column heads
        for (n, msd), name in zip(
            (("n_e", "msd_e"), ("n_c", "msd_c")), self.arm_labels, strict=True
        ):
            x0 = self.col_x[n]
            x1 = self.col_x[msd] + self.widths[msd] - self.gutters[msd]
            need = self.m.width(name, _FS, "bold")
            if need > x1 - x0:  # too wide for its columns: right-align, extend left
                x0 = x1 - need
            self._text((x0 + x1) / 2, group_y, name, ha="center", weight="bold")
            self._hline(x0, x1, group_y + _ROW_H / 2 - 0.01, lw=0.4)
        heads = self._headers()
        self._put_cell("label", header_y, _Cell(heads["label"], weight="bold"))
        for c in ("n_e", "msd_e", "n_c", "msd_c", "w"):
            style = "italic" if heads[c] == "n" else "normal"
            self._put_cell(c, header_y, _Cell(heads[c], weight="bold", style=style))
            if c in self._HEADERS_TOP:
                self._put_cell(c, header_top_y, _Cell(self._HEADERS_TOP[c], weight="bold"))
        x0 = self.col_x["est"]
        x1 = self.col_x["hi"] + self.widths["hi"] - self.gutters["hi"]
        self._text((x0 + x1) / 2, header_y, self.effect_label, ha="center", weight="bold")
        self._hline(_MARGIN, width - _MARGIN, rule_y)

        for row in rows:
            if row.kind == "message":
                cell = row.cells["label"]
                self._text(self.col_x["label"], row.y, cell.text, style=cell.style, color=_GREY)
                continue
            for col, cell in row.cells.items():
                self._put_cell(col, row.y, cell)

        self._draw_plot(rows, axes_top, axes_bottom, favours_y, xlabel_y)

        for fy, sym, text, gid, x in foot_lines:
            if sym:
                self._text(_MARGIN, fy - _MARK_RAISE, sym, size=_FS_MARK)
            self._text(_MARGIN + x, fy, text, gid=gid)
        fig.hairtrial_footnotes = footer  # type: ignore[attr-defined]
        return fig

    def _has_pooled(self, rows: list[_Row]) -> bool:
        return any(r.kind == "pooled" for r in rows)

    def _explain(self, code: str) -> str:
        text = _clean_text(self.labels.get(code))
        return text or f"Derived value (provenance code \u2018{code}\u2019)"

    def _draw_plot(
        self,
        rows: list[_Row],
        top: float,
        bottom: float,
        favours_y: float,
        xlabel_y: float,
    ) -> None:
        fig, height = self.fig, self.fig.get_figheight()
        ax = fig.add_axes(
            (
                self.plot_x / self.width,
                (height - bottom) / height,
                self.plot_w / self.width,
                (bottom - top) / height,
            )
        )
        ax.set_ylim(bottom, top)  # data y = inches from the top of the figure
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.patch.set_visible(False)

        if not self.has_axis:
            ax.set_visible(False)  # nothing to show: no empty axis, no 'favours'
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
            lo, hi = _axis_limits(points, intervals)
            ticks = self._ticks(lo, hi)
            lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        d_ticks = _tick_decimals(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _fmt(v, d_ticks)))
        ax.tick_params(axis="x", labelsize=_FS, labelfontfamily=self.family)

        ax.axvline(0.0, color="black", lw=0.6, zorder=1)

        row_pts = _ROW_H * 72
        max_side = 0.72 * row_pts
        weights = [r.weight for r in rows if r.kind == "study" and math.isfinite(r.weight)]
        w_max = max(weights) if weights else math.nan
        for r in rows:
            if r.kind == "study" and math.isfinite(r.yi):
                self._whisker(ax, r.lo, r.hi, r.y, lo, hi, color="black", lw=0.8)
                if math.isfinite(r.weight) and w_max > 0:
                    side = max(2.5, max_side * math.sqrt(max(r.weight, 0.0) / w_max))
                else:
                    side = 0.45 * max_side
                if lo <= r.yi <= hi:
                    ax.plot(
                        [r.yi],
                        [r.y],
                        marker="s",
                        ms=side,
                        mfc=_BLUE,
                        mec=_BLUE,
                        mew=0,
                        ls="none",
                        zorder=3,
                    )
            elif r.kind == "pooled":
                h = 0.36 * _ROW_H
                diamond = Polygon(
                    [(r.lo, r.y), (r.yi, r.y - h), (r.hi, r.y), (r.yi, r.y + h)],
                    closed=True,
                    facecolor=_VERMILLION,
                    edgecolor=_VERMILLION,
                    lw=0.5,
                    zorder=3,
                )
                ax.add_patch(diamond)
            elif r.kind == "pi":
                self._whisker(ax, r.lo, r.hi, r.y, lo, hi, color=_VERMILLION, lw=1.2, caps=True)

        # favours labels: right-aligned left of 0, left-aligned right of 0
        gap = 0.05
        if lo < 0 < hi:
            x0 = self.plot_x + (0 - lo) / (hi - lo) * self.plot_w
        else:
            x0 = self.plot_x + self.plot_w / 2
        left_txt = f"\u2190 {self.favours[0]}" if self.favours[0] else ""
        right_txt = f"{self.favours[1]} \u2192" if self.favours[1] else ""
        lw_ = self.m.width(left_txt, _FS)
        rw_ = self.m.width(right_txt, _FS)
        left_end = max(x0 - gap, _MARGIN + lw_)
        right_start = min(x0 + gap, self.width - _MARGIN - rw_)
        self._text(left_end, favours_y, left_txt, ha="right", color=_GREY, gid="favours-left")
        self._text(right_start, favours_y, right_txt, color=_GREY, gid="favours-right")
        self._text(self.plot_x + self.plot_w / 2, xlabel_y, self.xlabel, ha="center", gid="xlabel")

    def _ticks(self, lo: float, hi: float) -> list[float]:
        """Round ticks covering [lo, hi], as many as fit without crowding the labels."""
        for nbins in (6, 5, 4, 3, 2):
            ticks = list(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
            while len(ticks) > 2 and ticks[1] <= lo:
                ticks.pop(0)
            while len(ticks) > 2 and ticks[-2] >= hi:
                ticks.pop()
            labels = [_fmt(t, _tick_decimals(ticks)) for t in ticks]
            widest = max(self.m.width(s, _FS) for s in labels)
            spacing = self.plot_w / max(len(ticks) - 1, 1)
            if widest + 0.08 <= spacing:
                return ticks
        return ticks

    @staticmethod
    def _whisker(
        ax: Any,
        a: float,
        b: float,
        y: float,
        lo: float,
        hi: float,
        *,
        color: str,
        lw: float,
        caps: bool = False,
    ) -> None:
        """CI line from a to b, cut at [lo, hi] with an arrowhead where cut."""
        if not (math.isfinite(a) and math.isfinite(b)):
            return
        a_cut, b_cut = a < lo, b > hi
        x0, x1 = max(a, lo), min(b, hi)
        if x1 < x0:
            return
        ax.plot([x0, x1], [y, y], color=color, lw=lw, solid_capstyle="butt", zorder=2)
        cap = 0.22 * _ROW_H
        for x, cut, marker in ((x0, a_cut, "<"), (x1, b_cut, ">")):
            if cut:
                ax.plot(
                    [x],
                    [y],
                    marker=marker,
                    ms=4.0,
                    mfc=color,
                    mec=color,
                    mew=0,
                    ls="none",
                    zorder=2,
                    clip_on=False,
                )
            elif caps:
                ax.plot([x, x], [y - cap, y + cap], color=color, lw=lw * 0.8, zorder=2)


def _tick_decimals(ticks: Sequence[float]) -> int:
    """Fewest decimals that print every tick exactly."""
    for d in range(0, 4):
        if all(abs(round(t, d) - t) < 1e-9 for t in ticks):
            return d
    return 3
