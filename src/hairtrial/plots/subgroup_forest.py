"""Forest plot grouped by subgroup, with per-subgroup and overall diamonds.

Nothing here computes statistics: :func:`subgroup_forest_plot` draws the study rows, the
subgroup estimates and the test for subgroup differences exactly as
:func:`hairtrial.models.subgroups.subgroup_analysis` returns them (one ``tau2_option`` at a time),
and the overall estimate as :func:`hairtrial.models.univariate.fit` / ``results_frame`` returns it.
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

from hairtrial.data.provenance import PROVENANCE
from hairtrial.plots import layout
from hairtrial.plots.intervals import FS as _FS
from hairtrial.plots.intervals import FS_MARK as _FS_MARK
from hairtrial.plots.intervals import FS_TITLE as _FS_TITLE
from hairtrial.plots.intervals import LINE_H as _LINE_H
from hairtrial.plots.intervals import MARGIN as _MARGIN
from hairtrial.plots.intervals import ROW_H as _ROW_H
from hairtrial.plots.intervals import Table, footnote_lines, header_lines, square_side
from hairtrial.plots.style import (
    GREY,
    VERMILLION,
    as_float,
    fmt,
    fmt_count,
    fmt_p,
    fmt_sig,
    format_decimals,
    sig_decimals,
    use_style,
)

__all__ = ["subgroup_forest_plot"]

_FS_SMALL = 6.5
_GAP = 0.12
_MIN_PLOT_W = 2.0
_MAX_LABEL_W = 2.2

_TAU2_TEXT = {
    "separate": "random effects, separate \u03c4\u00b2 per subgroup",
    "common": "mixed-effects model, common \u03c4\u00b2",
}


@dataclass
class _Line:
    kind: str  # heading, study, subtotal, het, overall, pi, gap
    label: str = ""
    est: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    weight: float = math.nan
    right: str = ""
    wtext: str = ""
    marks: list[str] = field(default_factory=list)
    y: float = 0.0


def _het_text(row: Mapping[str, Any], with_tau2: bool) -> str:
    parts = []
    tau2 = as_float(row.get("tau2"))
    if with_tau2 and math.isfinite(tau2):
        parts.append(f"\u03c4\u00b2 = {fmt(tau2, sig_decimals(tau2))}")
    i2 = as_float(row.get("I2"))
    if with_tau2 and math.isfinite(i2):
        parts.append(f"I\u00b2 = {i2:.0f}%")
    if layout.q_text(row):
        parts.append(layout.q_text(row))
    return ("Heterogeneity: " + "; ".join(parts)) if parts else ""


def _test_text(t: Mapping[str, Any]) -> str:
    option = layout.clean_text(t.get("tau2_option"))
    how = _TAU2_TEXT.get(option, option)
    q = as_float(t.get("Q_between"))
    df = as_float(t.get("df"))
    df2 = as_float(t.get("df2"))
    dist = layout.clean_text(t.get("distribution")) or "chi2"
    head = "Test for subgroup differences" + (f" ({how})" if how else "")
    if not math.isfinite(q):
        return f"{head}: not estimable"
    if dist == "F" and math.isfinite(df2):
        stat = f"F = {fmt_sig(q)}, df = ({fmt_count(df)}, {fmt_count(df2)})"
    else:
        stat = f"Q = {fmt_sig(q)}, df = {fmt_count(df)}"
    return f"{head}: {stat}, {fmt_p(as_float(t.get('pvalue')))}"


def subgroup_forest_plot(
    studies: pd.DataFrame,
    subgroups: pd.DataFrame,
    test: Mapping[str, Any] | pd.Series | pd.DataFrame | None,
    overall: Mapping[str, Any] | pd.Series | pd.DataFrame | None = None,
    *,
    xlabel: str,
    group_column: str = "subgroup",
    title: str | None = None,
    effect_label: str = "Estimate [95% CI]",
    level_labels: Mapping[Any, str] | None = None,
    provenance_labels: Mapping[str, str] | None = None,
    favours: tuple[str, str] = ("", ""),
    xlim: tuple[float, float] | None = None,
    width: float = 7.0,
) -> Figure:
    """Draw a forest plot with studies grouped by subgroup.

    Layout, top to bottom: one block per subgroup (bold heading, study rows with squares of
    area proportional to the weight and CI whiskers, the subgroup diamond and its
    heterogeneity line), the overall diamond (and prediction interval if given), the axis,
    then the footer: the test for subgroup differences, the model, and one footnote per
    provenance code used (superscript letters after the study labels).

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study: ``yi``, ``ci_lower``, ``ci_upper``, `group_column`; used when
        present: ``label`` (else ``study``), ``weight_pct``, ``provenance``.
    subgroups : pandas.DataFrame
        Rows of :attr:`hairtrial.models.subgroups.SubgroupResult.table` for one ``tau2_option``
        (``level``, ``k``, ``estimate``, ``ci_lower``, ``ci_upper``; optional ``tau2``,
        ``I2``, ``Q``, ``Q_df``, ``Q_pvalue``). Subgroups are drawn in this order.
    test : mapping or pandas.Series or one-row DataFrame or None
        The matching row of :attr:`hairtrial.models.subgroups.SubgroupResult.test`.
    overall : mapping or pandas.Series or one-row DataFrame, optional
        Overall model (``estimate``, ``ci_lower``, ``ci_upper``, ``k``; optional
        ``pi_lower``, ``pi_upper``, ``tau2``, ``I2``, ``Q``, ``Q_df``, ``Q_pvalue``,
        ``method``), e.g. a row of :func:`hairtrial.models.univariate.results_frame`.
    xlabel : str
        Label of the effect axis.
    group_column : str
        Column of `studies` holding the subgroup level.
    title : str, optional
        Title.
    effect_label : str
        Header of the estimate column.
    level_labels : mapping, optional
        Display names of the levels (default: the level itself).
    provenance_labels : mapping, optional
        Explanations of provenance codes (override/extend :data:`PROVENANCE`).
    favours : tuple of str
        Texts under the axis left and right of 0 (empty: none).
    xlim : tuple of float, optional
        Axis limits (default: from the data; whiskers beyond are cut with arrows).
    width : float
        Figure width in inches (grows if the content needs it).

    Returns
    -------
    matplotlib.figure.Figure
        Agg-backed figure; save with :func:`hairtrial.plots.style.save_figure`.
        ``fig.hairtrial_footnotes`` lists ``(mark, text)`` of the footnotes.

    Raises
    ------
    ValueError
        Missing columns, several ``tau2_option`` values in `subgroups`, or study levels that
        are not in `subgroups`.

    Examples
    --------
    >>> studies = pd.DataFrame({"study": ["A", "B", "C", "D"], "yi": [0.1, 0.3, -0.2, 0.0],
    ...     "ci_lower": [-0.2, 0.0, -0.5, -0.3], "ci_upper": [0.4, 0.6, 0.1, 0.3],
    ...     "subgroup": ["x", "x", "y", "y"]})
    >>> sub = pd.DataFrame({"level": ["x", "y"], "k": [2, 2], "estimate": [0.2, -0.1],
    ...     "ci_lower": [0.0, -0.3], "ci_upper": [0.4, 0.1]})
    >>> test = {"tau2_option": "separate", "Q_between": 4.0, "df": 1, "pvalue": 0.0455}
    >>> fig = subgroup_forest_plot(studies, sub, test, xlabel="SMD")
    >>> float(fig.get_figwidth())
    7.0
    """
    need = {"yi", "ci_lower", "ci_upper", group_column}
    missing = need - set(studies.columns)
    if missing:
        raise ValueError(f"studies lacks column(s) {sorted(missing)}")
    missing = {"level", "k", "estimate", "ci_lower", "ci_upper"} - set(subgroups.columns)
    if missing:
        raise ValueError(f"subgroups lacks column(s) {sorted(missing)}")
    if "tau2_option" in subgroups.columns and subgroups["tau2_option"].nunique() > 1:
        raise ValueError("subgroups has several tau2_option values; pass one option's rows")
    unknown = set(studies[group_column]) - set(subgroups["level"])
    if unknown:
        raise ValueError(f"study subgroups {sorted(map(str, unknown))} not in subgroups")
    with use_style():
        return _Plot(
            studies=studies.reset_index(drop=True),
            subgroups=subgroups.reset_index(drop=True),
            test=layout.as_mapping(test),
            overall=layout.as_mapping(overall),
            xlabel=layout.clean_text(xlabel),
            group_column=group_column,
            title=layout.clean_text(title),
            effect_label=layout.clean_text(effect_label),
            level_labels=dict(level_labels or {}),
            labels={**PROVENANCE, **dict(provenance_labels or {})},
            favours=(layout.clean_text(favours[0]), layout.clean_text(favours[1])),
            xlim=xlim,
            width=float(width),
        ).draw()


class _Plot:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)
        self.m = layout.Measurer(layout.family())
        self.marks: dict[str, str] = {}
        option = ""
        if "tau2_option" in self.subgroups.columns and len(self.subgroups):
            option = layout.clean_text(self.subgroups["tau2_option"].iloc[0])
        self.option = option or layout.clean_text(self.test.get("tau2_option"))

    # ---- rows ------------------------------------------------------------
    def _mark(self, code: str) -> str:
        if code not in self.marks:
            self.marks[code] = layout.mark_symbol(len(self.marks))
        return self.marks[code]

    def _interval_text(self, est: float, lo: float, hi: float) -> str:
        if not math.isfinite(est):
            return "not estimable"
        return f"{fmt(est, self.dec)} [{fmt(lo, self.dec)}, {fmt(hi, self.dec)}]"

    def _estimate(
        self, kind: str, label: str, est: float, lo: float, hi: float, **kw: Any
    ) -> _Line:
        """A row with an estimate and its interval, written out on the right."""
        return _Line(kind, label=label, est=est, lo=lo, hi=hi,
                     right=self._interval_text(est, lo, hi), **kw)  # fmt: skip

    def _lines(self) -> list[_Line]:
        st, sg = self.studies, self.subgroups
        vals = [*st["yi"], *sg["estimate"], as_float(self.overall.get("estimate"))]
        self.dec = format_decimals(np.array([as_float(v) for v in vals]))
        lines: list[_Line] = []
        common = self.option == "common"
        for _, g in sg.iterrows():
            level = g["level"]
            name = layout.clean_text(self.level_labels.get(level, level))
            lines.append(_Line("heading", label=name))
            for _, r in st[st[self.group_column] == level].iterrows():
                label = (
                    layout.clean_text(r.get("label"))
                    or layout.clean_text(r.get("study"))
                    or "Study"
                )
                codes = layout.derived_codes(r.get("provenance"))
                yi, lo, hi = (as_float(r[c]) for c in ("yi", "ci_lower", "ci_upper"))
                w = as_float(r.get("weight_pct"))
                lines.append(
                    self._estimate(
                        "study", label, yi, lo, hi, weight=w,
                        wtext=f"{w:.1f}%" if math.isfinite(w) else "",
                        marks=sorted(self._mark(c) for c in codes),
                    )
                )  # fmt: skip
            est, lo, hi = (as_float(g[c]) for c in ("estimate", "ci_lower", "ci_upper"))
            lines.append(
                self._estimate("subtotal", f"Subtotal (k = {fmt_count(g['k'])})", est, lo, hi)
            )
            het = _het_text(dict(g.items()), with_tau2=not common)
            if het:
                lines.append(_Line("het", label=het))
            lines.append(_Line("gap"))
        o = self.overall
        est = as_float(o.get("estimate"))
        if o and math.isfinite(est):
            lo, hi = as_float(o.get("ci_lower")), as_float(o.get("ci_upper"))
            k = as_float(o.get("k"))
            kt = f" (k = {fmt_count(k)})" if math.isfinite(k) else ""
            total_w = pd.to_numeric(st.get("weight_pct"), errors="coerce")
            wtext = "100.0%" if total_w is not None and total_w.notna().all() else ""
            lines.append(self._estimate("overall", f"Overall{kt}", est, lo, hi, wtext=wtext))
            pl, pu = as_float(o.get("pi_lower")), as_float(o.get("pi_upper"))
            if math.isfinite(pl) and math.isfinite(pu):
                lines.append(
                    _Line(
                        "pi",
                        label="95% prediction interval",
                        lo=pl,
                        hi=pu,
                        right=f"[{fmt(pl, self.dec)}, {fmt(pu, self.dec)}]",
                    )
                )
            het = _het_text(o, with_tau2=True)
            if het:
                lines.append(_Line("het", label=het))
        elif lines and lines[-1].kind == "gap":
            lines.pop()
        return lines

    # ---- drawing -----------------------------------------------------------
    def draw(self) -> Figure:
        lines = self._lines()
        m = self.m
        # column widths from the measured text
        label_w = max(
            [m.width("Study", _FS, "bold")]
            + [
                m.width(ln.label, _FS, "bold" if ln.kind != "study" else "normal")
                + (m.width(",".join(ln.marks), _FS_MARK) + 0.02 if ln.marks else 0)
                for ln in lines
                if ln.kind in ("study", "heading", "subtotal", "overall")
            ]
        )
        label_w = min(label_w, _MAX_LABEL_W)
        for ln in lines:
            if ln.kind == "study":
                mw = m.width(",".join(ln.marks), _FS_MARK) + 0.02 if ln.marks else 0
                ln.label = m.ellipsize(ln.label, label_w - mw, _FS)
        est_w = max([m.width(self.effect_label, _FS, "bold")] + [
            m.width(ln.right, _FS, "bold") for ln in lines if ln.right
        ])  # fmt: skip
        has_w = any(ln.wtext for ln in lines)
        w_w = max(m.width("Weight", _FS, "bold"), m.width("100.0%", _FS, "bold")) if has_w else 0
        width = self.width
        plot_w = width - 2 * _MARGIN - label_w - est_w - w_w - 3 * _GAP
        if plot_w < _MIN_PLOT_W:
            width += _MIN_PLOT_W - plot_w
            plot_w = _MIN_PLOT_W
        full_w = width - 2 * _MARGIN
        plot_x = _MARGIN + label_w + _GAP
        est_right = plot_x + plot_w + _GAP + est_w
        w_right = est_right + _GAP + w_w

        # vertical layout (inches from the top)
        title_lines, title_y, y = layout.wrap_title(m, self.title, full_w, _MARGIN, _FS_TITLE, 0.06)
        (header_y,), rule_y, y = header_lines(y, 1, 0.06)
        top = y
        # the heterogeneity lines of a subgroup sit in the (narrow) label column and may
        # run under the plot: they are short and drawn in small grey type
        for ln in lines:
            h = _ROW_H * (0.5 if ln.kind == "gap" else 1.0)
            if ln.kind == "overall":
                y += 0.04
            ln.y = y + h / 2
            y += h
        bottom = y + 0.04
        tick_h = (3 + 2) / 72 + _LINE_H
        has_fav = any(self.favours)
        favours_y = bottom + tick_h + 0.03 + _LINE_H / 2
        xlabel_y = favours_y + _LINE_H if has_fav else bottom + tick_h + 0.03 + _LINE_H / 2
        y = xlabel_y + _LINE_H / 2 + 0.12
        foot_texts = []
        if self.test:
            foot_texts.append(_test_text(self.test))
        overall_text = layout.method_text(self.overall)[:1] if self.overall else []
        if self.option == "common" and "tau2" in self.subgroups.columns:
            tau2 = as_float(self.subgroups["tau2"].iloc[0])
            if math.isfinite(tau2):
                foot_texts.append(
                    f"Subgroup estimates from a mixed-effects model with a common "
                    f"\u03c4\u00b2 = {fmt(tau2, sig_decimals(tau2))}"
                )
        if overall_text and not overall_text[0].startswith("Heterogeneity"):
            foot_texts.append(f"Overall: {overall_text[0][0].lower()}{overall_text[0][1:]}")
        footnotes = []
        for code, sym in self.marks.items():
            text = layout.clean_text(self.labels.get(code)) or f"Derived value ({code})"
            footnotes.append((sym, text))
        notes = [("", text, None) for text in foot_texts]
        notes += [(sym, text, None) for sym, text in footnotes]
        foot, _ = footnote_lines(notes, full_w, y, m)
        height = y + len(foot) * _LINE_H + _MARGIN  # (sums differ in the last bit)

        t = self.table = Table(width, height)
        t.title(title_lines, title_y)
        t.text(_MARGIN, header_y, "Study", weight="bold")
        t.text(est_right, header_y, self.effect_label, weight="bold", ha="right")
        if has_w:
            t.text(w_right, header_y, "Weight", weight="bold", ha="right")
        t.rule(_MARGIN, width - _MARGIN, rule_y)
        for ln in lines:
            if ln.kind == "heading":
                t.text(_MARGIN, ln.y, ln.label, weight="bold")
            elif ln.kind == "het":
                # white backing: the line may run under the plot column (reference lines)
                t.text(_MARGIN + 0.1, ln.y, ln.label, size=_FS_SMALL, color=GREY, zorder=5,
                       bbox={"facecolor": "white", "edgecolor": "none", "pad": 2.0})  # fmt: skip
            elif ln.kind in ("study", "subtotal", "overall", "pi"):
                bold = "bold" if ln.kind in ("subtotal", "overall") else "normal"
                x0 = _MARGIN + (0.1 if ln.kind in ("study", "subtotal", "pi") else 0.0)
                t.text(x0, ln.y, ln.label, weight=bold)
                t.marks(x0 + m.width(ln.label, _FS, bold), ln.y, ln.marks)
                t.text(est_right, ln.y, ln.right, weight=bold, ha="right")
                if ln.wtext:
                    t.text(w_right, ln.y, ln.wtext, weight=bold, ha="right")
        self._axes(lines, plot_x, plot_w, top, bottom, favours_y, xlabel_y)
        t.write_footnotes(foot)
        t.fig.hairtrial_footnotes = footnotes  # type: ignore[attr-defined]
        return t.fig

    def _axes(
        self,
        lines: list[_Line],
        plot_x: float,
        plot_w: float,
        top: float,
        bottom: float,
        favours_y: float,
        xlabel_y: float,
    ) -> None:
        # 'het' lines may run into the plot column: the axes start below the header only
        iv = self.table.interval_axes(plot_x, top, plot_w, bottom, (bottom, top))
        drawn = [ln for ln in lines if ln.kind in ("study", "subtotal", "overall", "pi")]
        if self.xlim is not None:
            lo, hi = float(self.xlim[0]), float(self.xlim[1])
        else:
            points = [ln.est for ln in drawn if ln.kind != "pi"]
            points += [
                v for ln in drawn if ln.kind in ("subtotal", "overall") for v in (ln.lo, ln.hi)
            ]
            intervals = [(ln.lo, ln.hi) for ln in drawn if ln.kind in ("study", "pi")]
            lo, hi = layout.axis_limits(points, intervals)
        ticks = [
            t
            for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            if lo - 1e-12 <= t <= hi + 1e-12
        ]
        if self.xlim is None and ticks:
            lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        iv.scale(lo, hi, ticks)
        oe = [ln.est for ln in drawn if ln.kind == "overall"]
        if oe and math.isfinite(oe[0]):
            iv.ax.axvline(oe[0], color=GREY, lw=0.5, ls=(0, (3, 2)), zorder=1)
        weights = [ln.weight for ln in drawn if ln.kind == "study" and math.isfinite(ln.weight)]
        w_max = max(weights) if weights else math.nan
        for ln in drawn:
            if ln.kind == "study":
                iv.whisker(ln.lo, ln.hi, ln.y)
                iv.square(ln.est, ln.y, square_side(ln.weight, w_max))
            elif ln.kind == "pi":
                iv.whisker(ln.lo, ln.hi, ln.y, color=VERMILLION, lw=1.2, caps=0.22 * _ROW_H)
            elif math.isfinite(ln.est):
                colour = VERMILLION if ln.kind == "subtotal" else "black"
                iv.diamond(ln.lo, ln.est, ln.hi, ln.y, 0.36 * _ROW_H, colour)
        iv.favours(self.table, plot_x, plot_w, favours_y, self.favours)
        self.table.text(plot_x + plot_w / 2, xlabel_y, self.xlabel, ha="center")
