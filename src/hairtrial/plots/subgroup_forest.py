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

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.patches import Polygon
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from hairtrial.data.provenance import PROVENANCE
from hairtrial.plots.forest import (
    _axis_limits,
    _clean_text,
    _mapping,
    _mark_symbol,
    _Measurer,
    _method_text,
    _parse_codes,
    _tick_decimals,
    _top_transform,
)
from hairtrial.plots.style import (
    _BLUE,
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

__all__ = ["subgroup_forest_plot"]

_FS = 7.0
_FS_SMALL = 6.5
_FS_TITLE = 9.0
_FS_MARK = 5.5
_ROW_H = 0.17
_LINE_H = _FS * 1.3 / 72
_MARGIN = 0.08
_GAP = 0.12
_MIN_PLOT_W = 2.0
_MAX_LABEL_W = 2.2
_NO_MARK = frozenset({"", "reported"})

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
    tau2 = _as_float(row.get("tau2"))
    if with_tau2 and math.isfinite(tau2):
        parts.append(f"\u03c4\u00b2 = {_fmt(tau2, _sig_decimals(tau2))}")
    i2 = _as_float(row.get("I2"))
    if with_tau2 and math.isfinite(i2):
        parts.append(f"I\u00b2 = {i2:.0f}%")
    q = _as_float(row.get("Q"))
    if math.isfinite(q):
        s = f"Q = {_fmt_sig(q)}"
        qdf = _as_float(row.get("Q_df"))
        if math.isfinite(qdf):
            s += f" (df = {_fmt_count(qdf)})"
        qp = _as_float(row.get("Q_pvalue"))
        if math.isfinite(qp):
            s += f", {_fmt_p(qp)}"
        parts.append(s)
    return ("Heterogeneity: " + "; ".join(parts)) if parts else ""


def _test_text(t: Mapping[str, Any]) -> str:
    option = _clean_text(t.get("tau2_option"))
    how = _TAU2_TEXT.get(option, option)
    q = _as_float(t.get("Q_between"))
    df = _as_float(t.get("df"))
    df2 = _as_float(t.get("df2"))
    dist = _clean_text(t.get("distribution")) or "chi2"
    head = "Test for subgroup differences" + (f" ({how})" if how else "")
    if not math.isfinite(q):
        return f"{head}: not estimable"
    if dist == "F" and math.isfinite(df2):
        stat = f"F = {_fmt_sig(q)}, df = ({_fmt_count(df)}, {_fmt_count(df2)})"
    else:
        stat = f"Q = {_fmt_sig(q)}, df = {_fmt_count(df)}"
    return f"{head}: {stat}, {_fmt_p(_as_float(t.get('pvalue')))}"


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
            test=_mapping(test),
            overall=_mapping(overall),
            xlabel=_clean_text(xlabel),
            group_column=group_column,
            title=_clean_text(title),
            effect_label=_clean_text(effect_label),
            level_labels=dict(level_labels or {}),
            labels={**PROVENANCE, **dict(provenance_labels or {})},
            favours=(_clean_text(favours[0]), _clean_text(favours[1])),
            xlim=xlim,
            width=float(width),
        ).draw()


class _Plot:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)
        self.m = _Measurer(str(mpl.rcParams["font.sans-serif"][0]))
        self.marks: dict[str, str] = {}
        option = ""
        if "tau2_option" in self.subgroups.columns and len(self.subgroups):
            option = _clean_text(self.subgroups["tau2_option"].iloc[0])
        self.option = option or _clean_text(self.test.get("tau2_option"))

    # ---- rows ------------------------------------------------------------
    def _mark(self, code: str) -> str:
        if code not in self.marks:
            self.marks[code] = _mark_symbol(len(self.marks))
        return self.marks[code]

    def _interval_text(self, est: float, lo: float, hi: float) -> str:
        if not math.isfinite(est):
            return "not estimable"
        return f"{_fmt(est, self.dec)} [{_fmt(lo, self.dec)}, {_fmt(hi, self.dec)}]"

    def _lines(self) -> list[_Line]:
        st, sg = self.studies, self.subgroups
        vals = [*st["yi"], *sg["estimate"], _as_float(self.overall.get("estimate"))]
        self.dec = format_decimals(np.array([_as_float(v) for v in vals]))
        lines: list[_Line] = []
        common = self.option == "common"
        for _, g in sg.iterrows():
            level = g["level"]
            name = _clean_text(self.level_labels.get(level, level))
            lines.append(_Line("heading", label=name))
            for _, r in st[st[self.group_column] == level].iterrows():
                label = _clean_text(r.get("label")) or _clean_text(r.get("study")) or "Study"
                codes = [c for c in _parse_codes(r.get("provenance")) if c not in _NO_MARK]
                yi, lo, hi = (_as_float(r[c]) for c in ("yi", "ci_lower", "ci_upper"))
                w = _as_float(r.get("weight_pct"))
                lines.append(
                    _Line(
                        "study",
                        label=label,
                        est=yi,
                        lo=lo,
                        hi=hi,
                        weight=w,
                        right=self._interval_text(yi, lo, hi),
                        wtext=f"{w:.1f}%" if math.isfinite(w) else "",
                        marks=sorted(self._mark(c) for c in codes),
                    )
                )
            est, lo, hi = (_as_float(g[c]) for c in ("estimate", "ci_lower", "ci_upper"))
            lines.append(
                _Line(
                    "subtotal",
                    label=f"Subtotal (k = {_fmt_count(g['k'])})",
                    est=est,
                    lo=lo,
                    hi=hi,
                    right=self._interval_text(est, lo, hi),
                )
            )
            het = _het_text(dict(g.items()), with_tau2=not common)
            if het:
                lines.append(_Line("het", label=het))
            lines.append(_Line("gap"))
        o = self.overall
        est = _as_float(o.get("estimate"))
        if o and math.isfinite(est):
            lo, hi = _as_float(o.get("ci_lower")), _as_float(o.get("ci_upper"))
            k = _as_float(o.get("k"))
            kt = f" (k = {_fmt_count(k)})" if math.isfinite(k) else ""
            total_w = pd.to_numeric(st.get("weight_pct"), errors="coerce")
            wtext = "100.0%" if total_w is not None and total_w.notna().all() else ""
            lines.append(
                _Line(
                    "overall",
                    label=f"Overall{kt}",
                    est=est,
                    lo=lo,
                    hi=hi,
                    right=self._interval_text(est, lo, hi),
                    wtext=wtext,
                )
            )
            pl, pu = _as_float(o.get("pi_lower")), _as_float(o.get("pi_upper"))
            if math.isfinite(pl) and math.isfinite(pu):
                lines.append(
                    _Line(
                        "pi",
                        label="95% prediction interval",
                        lo=pl,
                        hi=pu,
                        right=f"[{_fmt(pl, self.dec)}, {_fmt(pu, self.dec)}]",
                    )
                )
            het = _het_text(o, with_tau2=True)
            if het:
                lines.append(_Line("het", label=het))
        elif lines and lines[-1].kind == "gap":
            lines.pop()
        return lines

    # ---- drawing -----------------------------------------------------------
    def _text(self, x: float, y: float, s: str, **kw: Any) -> None:
        if s:
            kw.setdefault("fontsize", _FS)
            self.fig.text(x, y, s, transform=self.tr, va="center", parse_math=False, **kw)

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
        y = _MARGIN
        title_lines = m.wrap(self.title, full_w, _FS_TITLE, weight="bold") if self.title else []
        title_y = []
        for _ in title_lines:
            title_y.append(y + _FS_TITLE * 1.3 / 72 / 2)
            y += _FS_TITLE * 1.3 / 72
        if title_lines:
            y += 0.06
        header_y = y + _LINE_H / 2
        y += _LINE_H
        rule_y = y + 0.02
        y += 0.06
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
        foot: list[tuple[str, str, float]] = []  # (mark, text, indent)
        foot_texts = []
        if self.test:
            foot_texts.append(_test_text(self.test))
        overall_text = _method_text(self.overall)[:1] if self.overall else []
        if self.option == "common" and "tau2" in self.subgroups.columns:
            tau2 = _as_float(self.subgroups["tau2"].iloc[0])
            if math.isfinite(tau2):
                foot_texts.append(
                    f"Subgroup estimates from a mixed-effects model with a common "
                    f"\u03c4\u00b2 = {_fmt(tau2, _sig_decimals(tau2))}"
                )
        if overall_text and not overall_text[0].startswith("Heterogeneity"):
            foot_texts.append(f"Overall: {overall_text[0][0].lower()}{overall_text[0][1:]}")
        for text in foot_texts:
            for line in m.wrap(text, full_w, _FS):
                foot.append(("", line, 0.0))
        indent = m.width("mm", _FS_MARK) + 0.03
        footnotes = []
        for code, sym in self.marks.items():
            text = _clean_text(self.labels.get(code)) or f"Derived value ({code})"
            footnotes.append((sym, text))
            for j, line in enumerate(m.wrap(text, full_w - indent, _FS)):
                foot.append((sym if j == 0 else "", line, indent))
        foot_y0 = y
        height = y + len(foot) * _LINE_H + _MARGIN

        fig = Figure(
            figsize=(width, height),
            layout=PlaceHolderLayoutEngine(adjust_compatible=True, colorbar_gridspec=True),
        )
        FigureCanvasAgg(fig)
        self.fig, self.tr = fig, _top_transform(fig, height)
        for line, ty in zip(title_lines, title_y, strict=True):
            self._text(_MARGIN, ty, line, fontsize=_FS_TITLE, fontweight="bold")
        self._text(_MARGIN, header_y, "Study", fontweight="bold")
        self._text(est_right, header_y, self.effect_label, fontweight="bold", ha="right")
        if has_w:
            self._text(w_right, header_y, "Weight", fontweight="bold", ha="right")
        fig.add_artist(
            mpl.lines.Line2D(
                [_MARGIN, width - _MARGIN], [rule_y, rule_y], transform=self.tr, color="black",
                lw=0.6,
            )
        )  # fmt: skip
        for ln in lines:
            if ln.kind == "heading":
                self._text(_MARGIN, ln.y, ln.label, fontweight="bold")
            elif ln.kind == "het":
                # white backing: the line may run under the plot column (reference lines)
                self._text(
                    _MARGIN + 0.1,
                    ln.y,
                    ln.label,
                    fontsize=_FS_SMALL,
                    color=_GREY,
                    zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 2.0},
                )
            elif ln.kind in ("study", "subtotal", "overall", "pi"):
                bold = "bold" if ln.kind in ("subtotal", "overall") else "normal"
                x0 = _MARGIN + (0.1 if ln.kind in ("study", "subtotal", "pi") else 0.0)
                self._text(x0, ln.y, ln.label, fontweight=bold)
                if ln.marks:
                    xm = x0 + m.width(ln.label, _FS, bold) + 0.012
                    self._text(xm, ln.y - 0.032, ",".join(ln.marks), fontsize=_FS_MARK)
                self._text(est_right, ln.y, ln.right, fontweight=bold, ha="right")
                if ln.wtext:
                    self._text(w_right, ln.y, ln.wtext, fontweight=bold, ha="right")
        self._axes(lines, plot_x, plot_w, top, bottom, width, height, favours_y, xlabel_y)
        for i, (sym, text, x) in enumerate(foot):
            fy = foot_y0 + (i + 0.5) * _LINE_H
            if sym:
                self._text(_MARGIN, fy - 0.032, sym, fontsize=_FS_MARK)
            self._text(_MARGIN + x, fy, text)
        fig.hairtrial_footnotes = footnotes  # type: ignore[attr-defined]
        return fig

    def _axes(
        self,
        lines: list[_Line],
        plot_x: float,
        plot_w: float,
        top: float,
        bottom: float,
        width: float,
        height: float,
        favours_y: float,
        xlabel_y: float,
    ) -> None:
        fig = self.fig
        # 'het' lines may run into the plot column: the axes start below the header only
        ax = fig.add_axes(
            (plot_x / width, (height - bottom) / height, plot_w / width, (bottom - top) / height)
        )
        ax.set_ylim(bottom, top)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.patch.set_visible(False)
        drawn = [ln for ln in lines if ln.kind in ("study", "subtotal", "overall", "pi")]
        if self.xlim is not None:
            lo, hi = float(self.xlim[0]), float(self.xlim[1])
        else:
            points = [ln.est for ln in drawn if ln.kind != "pi"]
            points += [
                v for ln in drawn if ln.kind in ("subtotal", "overall") for v in (ln.lo, ln.hi)
            ]
            intervals = [(ln.lo, ln.hi) for ln in drawn if ln.kind in ("study", "pi")]
            lo, hi = _axis_limits(points, intervals)
        ticks = [
            t
            for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            if lo - 1e-12 <= t <= hi + 1e-12
        ]
        if self.xlim is None and ticks:
            lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        ax.set_xlim(lo, hi)
        d = _tick_decimals(ticks)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _fmt(v, d)))
        ax.axvline(0.0, color="black", lw=0.6, zorder=1)
        oe = [ln.est for ln in drawn if ln.kind == "overall"]
        if oe and math.isfinite(oe[0]):
            ax.axvline(oe[0], color=_GREY, lw=0.5, ls=(0, (3, 2)), zorder=1)
        weights = [ln.weight for ln in drawn if ln.kind == "study" and math.isfinite(ln.weight)]
        w_max = max(weights) if weights else math.nan
        max_side = 0.72 * _ROW_H * 72
        for ln in drawn:
            if ln.kind in ("study", "pi"):
                colour = "black" if ln.kind == "study" else _VERMILLION
                self._whisker(ax, ln, lo, hi, colour, caps=ln.kind == "pi")
                if ln.kind == "study" and lo <= ln.est <= hi:
                    side = 0.45 * max_side
                    if math.isfinite(ln.weight) and w_max > 0:
                        side = max(2.5, max_side * math.sqrt(max(ln.weight, 0) / w_max))
                    ax.plot([ln.est], [ln.y], marker="s", ms=side, mfc=_BLUE, mec=_BLUE, mew=0,
                            ls="none", zorder=3)  # fmt: skip
            elif math.isfinite(ln.est):
                h = 0.36 * _ROW_H
                colour = _VERMILLION if ln.kind == "subtotal" else "black"
                ax.add_patch(
                    Polygon(
                        [(ln.lo, ln.y), (ln.est, ln.y - h), (ln.hi, ln.y), (ln.est, ln.y + h)],
                        closed=True, facecolor=colour, edgecolor=colour, lw=0.5, zorder=3,
                    )
                )  # fmt: skip
        # favours and axis label
        x0 = plot_x + (0 - lo) / (hi - lo) * plot_w if lo < 0 < hi else plot_x + plot_w / 2
        if self.favours[0]:
            self._text(x0 - 0.05, favours_y, f"\u2190 {self.favours[0]}", ha="right", color=_GREY)
        if self.favours[1]:
            self._text(x0 + 0.05, favours_y, f"{self.favours[1]} \u2192", color=_GREY)
        self._text(plot_x + plot_w / 2, xlabel_y, self.xlabel, ha="center")

    @staticmethod
    def _whisker(ax: Any, ln: _Line, lo: float, hi: float, colour: str, caps: bool) -> None:
        if not (math.isfinite(ln.lo) and math.isfinite(ln.hi)):
            return
        a, b = max(ln.lo, lo), min(ln.hi, hi)
        if b < a:
            return
        lw = 0.8 if not caps else 1.2
        ax.plot([a, b], [ln.y, ln.y], color=colour, lw=lw, solid_capstyle="butt", zorder=2)
        for x, cut, marker in ((a, ln.lo < lo, "<"), (b, ln.hi > hi, ">")):
            if cut:
                ax.plot([x], [ln.y], marker=marker, ms=4, mfc=colour, mec=colour, mew=0,
                        ls="none", zorder=2, clip_on=False)  # fmt: skip
            elif caps:
                c = 0.22 * _ROW_H
                ax.plot([x, x], [ln.y - c, ln.y + c], color=colour, lw=lw * 0.8, zorder=2)
