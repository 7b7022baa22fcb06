"""Layout helpers shared by every figure: text measurement, ticks, codes and fixed figures.

Nothing here draws data. The figures of :mod:`hairtrial.plots` compute their geometry in
inches from measured text; this module holds what they share for it: a text measurer
(:class:`Measurer`), tick choice (:func:`tick_decimals`, :func:`fit_ticks`,
:func:`axis_limits`), provenance-code parsing (:func:`parse_codes`, :func:`derived_codes`),
display text (:func:`clean_text`, :func:`method_text`), and figures whose geometry is fixed
by the caller (:func:`fixed_figure`, :func:`top_transform`, :func:`wrap_title`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Affine2D, Transform

from hairtrial.core import vocab
from hairtrial.plots.metrics import text_metrics
from hairtrial.plots.style import as_float, fmt, fmt_count, fmt_p, fmt_sig, sig_decimals

__all__ = [
    "NO_MARK_CODES",
    "as_mapping",
    "axis_limits",
    "clean_text",
    "derived_codes",
    "family",
    "FigureText",
    "fit_ticks",
    "fixed_figure",
    "get_renderer",
    "mark_symbol",
    "Measurer",
    "method_text",
    "nice_sizes",
    "parse_codes",
    "q_text",
    "tick_decimals",
    "top_transform",
    "wrap_title",
]

#: Provenance codes that mean "as printed in the paper": never marked, drawn filled.
NO_MARK_CODES = frozenset({"reported", ""})

_MEASURE_DPI = 300.0

# --------------------------------------------------------------------------
# Provenance codes and display text
# --------------------------------------------------------------------------


def parse_codes(value: Any) -> list[str]:
    """Provenance codes of a ``;``-joined cell, in order, without repeats.

    Parameters
    ----------
    value : object
        The cell (None or NaN: no codes).

    Returns
    -------
    list of str

    Examples
    --------
    >>> parse_codes("from_se; reported;from_se")
    ['from_se', 'reported']
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    out: list[str] = []
    for part in str(value).split(";"):
        code = part.strip()
        if code and code not in out:
            out.append(code)
    return out


def derived_codes(value: Any) -> list[str]:
    """The codes of a cell that mark a derived number (all but :data:`NO_MARK_CODES`).

    Examples
    --------
    >>> derived_codes("reported;from_se")
    ['from_se']
    """
    return [c for c in parse_codes(value) if c not in NO_MARK_CODES]


def mark_symbol(i: int) -> str:
    """Footnote mark number `i` (from 0): a, b, ..., z, aa, ab, ...

    Examples
    --------
    >>> [mark_symbol(i) for i in (0, 25, 26)]
    ['a', 'z', 'aa']
    """
    s = ""
    i += 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


def clean_text(value: Any) -> str:
    """Single-line display text from any value (``""`` for missing).

    Examples
    --------
    >>> clean_text("  Smith\\n 2019 ")
    'Smith 2019'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    return " ".join(str(value).split())


def as_mapping(row: Mapping[str, Any] | pd.Series | pd.DataFrame | None) -> dict[str, Any]:
    """One table row (mapping, Series or one-row DataFrame) as a dict; None gives ``{}``.

    Raises
    ------
    ValueError
        For a DataFrame with other than one row.
    """
    if row is None:
        return {}
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"pooled must be one row, got a table of {len(row)} rows")
        row = row.iloc[0]
    return dict(row.items())


_FIXED_METHODS = vocab.FIXED_METHODS
_TAU2_METHODS = vocab.TAU2_METHOD_LABELS
_CI_METHODS = vocab.CI_METHOD_LABELS


def q_text(row: Mapping[str, Any]) -> str:
    """The Q test of a table row (``Q``, ``Q_df``, ``Q_pvalue``), ``""`` when Q is missing.

    Examples
    --------
    >>> q_text({"Q": 16.7, "Q_df": 2, "Q_pvalue": 0.0002})
    'Q = 16.70 (df = 2), p < 0.001'
    """
    q = as_float(row.get("Q"))
    if not math.isfinite(q):
        return ""
    s = f"Q = {fmt_sig(q)}"
    qdf = as_float(row.get("Q_df"))
    if math.isfinite(qdf):
        s += f" (df = {fmt_count(qdf)})"
    qp = as_float(row.get("Q_pvalue"))
    if math.isfinite(qp):
        s += f", {fmt_p(qp)}"
    return s


def method_text(p: Mapping[str, Any]) -> list[str]:
    """Model and heterogeneity lines for the footer of a pooled forest plot.

    Parameters
    ----------
    p : mapping
        One row of the meta-analysis table (``method``, ``ci_method``, ``pvalue``,
        ``pi_lower``, ``tau2``, ``tau2_ci_lower``, ``tau2_ci_upper``, ``I2``, ``Q``,
        ``Q_df``, ``Q_pvalue``; optional ``tau2_ci_method``).

    Returns
    -------
    list of str
        Up to two lines, e.g. ``"Random effects, REML; 95% CI: Hartung–Knapp (ad hoc);
        test for overall effect p = 0.04"`` and ``"Heterogeneity: τ² = 123.4 [Q-profile
        95% CI 12.3, 4567.8]; I² = 88%; Q = 16.70 (df = 2), p < 0.001"``; parts whose
        numbers are missing are left out.
    """
    model: list[str] = []
    method = clean_text(p.get("method"))
    fixed = method.upper() in _FIXED_METHODS or method in ("MH", "Peto")
    if method in vocab.BINARY_MODEL_TEXT:  # pooling of counts
        model.append(vocab.BINARY_MODEL_TEXT[method])
    elif fixed:
        model.append("Common effect (inverse variance)")
    elif method:
        model.append(f"Random effects, {_TAU2_METHODS.get(method.upper(), method)}")
    ci = clean_text(p.get("ci_method"))
    if ci:
        model.append(f"95% CI: {_CI_METHODS.get(ci.lower(), ci)}")
    pv = as_float(p.get("pvalue"))
    if math.isfinite(pv):
        model.append(f"test for overall effect {fmt_p(pv)}")
    if not fixed and method and math.isnan(as_float(p.get("pi_lower"))):
        model.append("prediction interval not estimable")

    het: list[str] = []
    tau2 = as_float(p.get("tau2"))
    if not fixed and math.isfinite(tau2):
        d = sig_decimals(tau2)
        s = f"\u03c4\u00b2 = {fmt(tau2, d)}"
        lo, hi = as_float(p.get("tau2_ci_lower")), as_float(p.get("tau2_ci_upper"))
        if not (math.isnan(lo) or math.isnan(hi)):
            how = clean_text(p.get("tau2_ci_method", "Q-profile"))
            how = f"{how} " if how else ""
            s += f" [{how}95% CI {fmt(lo, d)}, {fmt(hi, d)}]"
        het.append(s)
    i2 = as_float(p.get("I2"))
    if math.isfinite(i2):
        het.append(f"I\u00b2 = {i2:.0f}%")
    if q_text(p):
        het.append(q_text(p))
    lines = []
    if model:
        text = "; ".join(model)
        lines.append(text[0].upper() + text[1:])
    if het:
        lines.append("Heterogeneity: " + "; ".join(het))
    return lines


# --------------------------------------------------------------------------
# Text measurement
# --------------------------------------------------------------------------


def family() -> str:
    """The house sans-serif font family (first of ``font.sans-serif``)."""
    return str(mpl.rcParams["font.sans-serif"][0])


class Measurer:
    """Width of single-line text in inches, as Agg lays it out.

    Parameters
    ----------
    family : str
        Font family of the measured text.
    """

    def __init__(self, family: str) -> None:
        self.family = family

    def prop(self, size: float, weight: str = "normal", style: str = "normal") -> FontProperties:
        """Font properties of text of this family at `size` points."""
        return FontProperties(family=self.family, size=size, weight=weight, style=style)

    def width(self, text: str, size: float, weight: str = "normal", style: str = "normal") -> float:
        """Width of `text` in inches (0 for empty text)."""
        if not text:
            return 0.0
        rc = mpl.rcParams  # what the font and its layout depend on, besides the key
        return _text_width(
            self.family, text, float(size), weight, style,
            rc["text.hinting"], rc["text.hinting_factor"], rc["text.kerning_factor"],
        )  # fmt: skip

    def ellipsize(self, text: str, max_w: float, size: float, weight: str = "normal") -> str:
        """`text`, cut and ended with an ellipsis where it is wider than `max_w` inches."""
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
        """Greedy word wrap; words longer than a line are cut with an ellipsis.

        A line takes the next word while the line with it is at most ``max_w`` inches wide.
        A line only grows with its words (its glyphs are added to the right), so the first
        word that does not fit is found from an estimate (the widths of the words, measured
        once a process) confirmed by measuring the line without and with that word, rather
        than by measuring the line once a word (the lines of the word-by-word greedy wrap: a
        test compares the two).
        """
        words = text.split()
        lines: list[str] = []
        current = ""
        i = 0
        while i < len(words):
            if not current:  # a line's first word: cut when it is too long for any line
                word, i = words[i], i + 1
                fits = self.width(word, size, weight, style) <= max_w
                current = word if fits else self.ellipsize(word, max_w, size, weight)
                continue
            taken = self._words_that_fit(current, words[i:], max_w, size, style, weight)
            if taken:
                current = " ".join([current, *words[i : i + taken]])
                i += taken
            if i < len(words):
                lines.append(current)
                current = ""
        if current or not lines:
            lines.append(current)
        return lines

    def _words_that_fit(
        self, line: str, words: list[str], max_w: float, size: float, style: str, weight: str
    ) -> int:
        """How many of ``words`` the greedy wrap adds to ``line``: the largest n such that
        ``line`` with ``words[:n]`` is at most ``max_w`` wide (widths grow with n)."""

        def fits(n: int) -> bool:
            return self.width(" ".join([line, *words[:n]]), size, weight, style) <= max_w

        space = self.width("a a", size, weight, style) - 2 * self.width("a", size, weight, style)
        estimate, width = 0, self.width(line, size, weight, style)
        for word in words:
            width += space + self.width(word, size, weight, style)
            if width > max_w:
                break
            estimate += 1
        n = estimate
        if n >= 1 and not fits(n):
            n -= 1
            while n >= 1 and not fits(n):
                n -= 1
            return n
        while n < len(words) and fits(n + 1):
            n += 1
        return n

    def join_items(self, items: Sequence[str], max_w: float, size: float) -> list[str]:
        """Key items (``"1 Study A"``) joined on lines of `max_w` inches, never split."""
        lines: list[str] = []
        current = ""
        for item in items:
            trial = f"{current}    {item}" if current else item
            if current and self.width(trial, size) > max_w:
                lines.append(current)
                current = item
            else:
                current = trial
        if current:
            lines.append(current)
        return lines


@functools.lru_cache(maxsize=1 << 16)
def _text_width(
    family: str,
    text: str,
    size: float,
    weight: str,
    style: str,
    hinting: str,
    hinting_factor: int,
    kerning_factor: int,
) -> float:
    """Width in inches of single-line text as Agg lays it out, for every Measurer of the process.

    Agg shapes the whole string on each measurement (~20 microseconds a character); the
    figures of a run measure the same labels, ticks and wrapped lines many times over, in
    one figure and across figures (a figure job draws many in one process). The settings
    that change the result enter the key (the font by family, size, weight and style; the
    rcParams the renderer reads).
    """
    prop = FontProperties(family=family, size=size, weight=weight, style=style)
    return float(text_metrics(text, prop, _MEASURE_DPI)[0]) / _MEASURE_DPI


# --------------------------------------------------------------------------
# Figures of fixed geometry
# --------------------------------------------------------------------------


def fixed_figure(width: float, height: float) -> Figure:
    """An Agg-backed figure whose geometry the caller computes (no automatic layout).

    A no-op layout engine rather than None: matplotlib restores None after savefig as
    "whatever rcParams say", which is constrained layout in the house style and would
    fight the computed geometry.
    """
    fig = Figure(
        figsize=(width, height),
        layout=PlaceHolderLayoutEngine(adjust_compatible=True, colorbar_gridspec=True),
    )
    FigureCanvasAgg(fig)
    return fig


def get_renderer(fig: Figure) -> Any:
    """The renderer of `fig`, for measuring drawn artists.

    A figure made without pyplot has no renderer of its own: it gets an Agg canvas.
    """
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()  # type: ignore[attr-defined]


def top_transform(fig: Figure, height: float) -> Transform:
    """Figure coordinates in inches measured from the top-left corner."""
    return Affine2D().scale(1.0, -1.0).translate(0.0, height) + fig.dpi_scale_trans


def wrap_title(
    m: Measurer, title: str, width: float, y: float, size: float, gap: float
) -> tuple[list[str], list[float], float]:
    """A bold title wrapped to `width` inches, from `y` inches below the top.

    Returns
    -------
    tuple
        The lines, their centres (inches from the top) and the y below them (plus `gap`
        when there is a title).
    """
    lines = m.wrap(title, width, size, weight="bold") if title else []
    centres = []
    for _ in lines:
        centres.append(y + size * 1.3 / 72 / 2)
        y += size * 1.3 / 72
    if lines:
        y += gap
    return lines, centres, y


# --------------------------------------------------------------------------
# Scales and ticks
# --------------------------------------------------------------------------


def tick_decimals(ticks: Sequence[float]) -> int:
    """Fewest decimals (up to 3) that print every tick exactly.

    Examples
    --------
    >>> tick_decimals([0.0, 0.5, 1.0])
    1
    """
    for d in range(0, 4):
        if all(abs(round(t, d) - t) < 1e-9 for t in ticks):
            return d
    return 3


def fit_ticks(lo: float, hi: float, plot_w: float, m: Measurer, size: float) -> list[float]:
    """Round ticks covering [lo, hi], as many as fit `plot_w` inches without crowding.

    Parameters
    ----------
    lo, hi : float
        The data range.
    plot_w : float
        Axis length in inches.
    m : Measurer
        Measures the tick labels.
    size : float
        Tick label size in points.

    Returns
    -------
    list of float
    """
    ticks: list[float] = [lo, hi]
    for nbins in (6, 5, 4, 3, 2):
        ticks = list(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
        while len(ticks) > 2 and ticks[1] <= lo:
            ticks.pop(0)
        while len(ticks) > 2 and ticks[-2] >= hi:
            ticks.pop()
        labels = [fmt(t, tick_decimals(ticks)) for t in ticks]
        widest = max(m.width(s, size) for s in labels)
        if widest + 0.08 <= plot_w / max(len(ticks) - 1, 1):
            return ticks
    return ticks


def ratio_label(log_value: float) -> str:
    """The label of a log-axis tick: the ratio, as few digits as it needs.

    Examples
    --------
    >>> [ratio_label(math.log(r)) for r in (0.05, 0.5, 1, 2, 100)]
    ['0.05', '0.5', '1', '2', '100']
    >>> [ratio_label(math.log(r)) for r in (1e-4, 1e6)]
    ['10⁻⁴', '10⁶']
    """
    r = math.exp(log_value)
    e = math.log10(r)
    if abs(e - round(e)) < 1e-9 and not -4 < round(e) < 5:  # a power of 10, written as one
        sup = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
        return "10" + str(int(round(e))).translate(sup)
    return f"{r:.6g}"


def ratio_ticks(lo: float, hi: float, plot_w: float, m: Measurer, size: float) -> list[float]:
    """Ticks of a log axis (positions are logs) at round ratios covering [lo, hi].

    Ratios 1, 2, 5 x 10^k from the one below `lo` to the one above `hi`; where their labels
    do not fit `plot_w` inches, powers of 10, then every second power of 10 (1 is always a
    tick: no effect).

    Examples
    --------
    >>> m = Measurer(family())
    >>> [ratio_label(t) for t in ratio_ticks(math.log(0.3), math.log(8), 2.0, m, 7.0)]
    ['0.2', '0.5', '1', '2', '5', '10']
    >>> [ratio_label(t) for t in ratio_ticks(math.log(4), math.log(1300), 1.6, m, 7.0)]
    ['1', '10', '100', '1000', '10000']
    """
    for mantissas, every in (((1, 2, 5), 1), ((1,), 1), ((1,), 2)):
        logs = [
            math.log(mant * 10.0**e) for e in range(-6, 7) if e % every == 0 for mant in mantissas
        ]
        below = [v for v in logs if v < lo - 1e-12]
        above = [v for v in logs if v > hi + 1e-12]
        inside = [v for v in logs if lo - 1e-12 <= v <= hi + 1e-12]
        ticks = sorted({*([below[-1]] if below else []), *inside, *([above[0]] if above else []),
                        0.0})  # fmt: skip
        labels = [ratio_label(t) for t in ticks]
        widest = max(m.width(s, size) for s in labels)
        span = (ticks[-1] - ticks[0]) or 1.0
        gap = min(b - a for a, b in zip(ticks, ticks[1:], strict=False)) if len(ticks) > 1 else span
        if widest + 0.08 <= plot_w * gap / span:
            return ticks
    return ticks


def axis_limits(points: list[float], intervals: list[tuple[float, float]]) -> tuple[float, float]:
    """Data range to show: all points and 0, intervals capped at one core span beyond.

    `points` (study estimates, pooled estimate and CI, 0) are always shown. Interval ends
    beyond ``core ± span`` are cut and drawn with an arrow, so one very wide CI does not
    squeeze the others.

    Examples
    --------
    >>> axis_limits([1.0, 2.0], [(0.5, 9.0)])
    (-0.32, 4.0)
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


def nice_sizes(ns: np.ndarray) -> list[int]:
    """Up to three round reference n (1, 2, 5 x 10^k) for a marker-size legend.

    The one nearest the largest n (on a log scale), then smaller ones down to half the
    smallest n.

    Examples
    --------
    >>> nice_sizes(np.array([36.0, 68.0, 100.0]))
    [20, 50, 100]
    >>> nice_sizes(np.array([36.0]))
    [20, 50]
    """
    nmax, nmin = float(np.max(ns)), float(np.min(ns))
    nice = sorted({m * 10**e for e in range(0, 7) for m in (1, 2, 5)}, reverse=True)
    top = min(nice, key=lambda v: (abs(math.log(v / nmax)), v))
    out = [top]
    for v in nice:
        if len(out) == 3 or v < nmin / 2:
            break
        if v < top and v <= out[-1] / 1.9:
            out.append(v)
    return sorted(int(v) for v in out)


class FigureText:
    """Text on a figure placed in inches from the top-left corner, as figure fractions.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    width, height : float
        Its size in inches.
    family : str
        Font family of every text.
    """

    def __init__(self, fig: Figure, width: float, height: float, family: str) -> None:
        self.fig, self.width, self.height, self.family = fig, width, height, family

    def fy(self, y: float) -> float:
        """Figure fraction of `y` inches below the top."""
        return (self.height - y) / self.height

    def put(
        self, x: float, y: float, s: str, *, size: float = 7.0, ha: str = "left", **kw: Any
    ) -> Any:
        """Write `s` at `x` inches from the left, vertically centred `y` inches from the top."""
        kw.setdefault("va", "center")
        return self.fig.text(
            x / self.width, self.fy(y), s, ha=ha, fontsize=size, fontfamily=self.family, **kw
        )

    def stack(self, x: float, y: float, lines: Sequence[str], line_h: float, **kw: Any) -> float:
        """Lines one under the other from `y`; returns the y below the last."""
        for i, line in enumerate(lines):
            self.put(x, y + (i + 0.5) * line_h, line, **kw)
        return y + len(lines) * line_h

    def title(self, lines: Sequence[str], margin: float, size: float) -> None:
        """Bold title lines at the top-left margin."""
        for i, line in enumerate(lines):
            self.put(margin, margin + (i + 0.5) * size * 1.3 / 72, line, size=size,
                     fontweight="bold")  # fmt: skip

    def vertical(self, x: float, y: float, lines: Sequence[str], line_h: float, **kw: Any) -> None:
        """Rotated (axis label) lines centred on `y`, the last one's centre at `x`."""
        for i, line in enumerate(lines):
            self.put(x - (len(lines) - i - 0.5) * line_h, y, line, ha="center", rotation=90, **kw)
