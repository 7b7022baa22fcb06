"""The contour-enhanced funnel plot.

Nothing in this module computes statistics: :func:`funnel_plot` draws the studies, the
pooled estimate, the trim-and-fill result and the Egger regression line from the numbers it
is given (table rows and plain mappings, e.g. the fields of the results of
:mod:`hairtrial.diagnostics.smallstudy`). The significance contours and the pseudo confidence
funnel are the drawing itself (``x = centre -/+ z * SE``).

References
----------
.. [1] Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L (2008). Contour-enhanced
   meta-analysis funnel plots help distinguish publication bias from other causes of
   asymmetry. Journal of Clinical Epidemiology 61:991-996.
.. [2] Sterne JAC, Sutton AJ, Ioannidis JPA, et al. (2011). Recommendations for examining
   and interpreting funnel plot asymmetry in meta-analyses of randomised controlled trials.
   BMJ 343:d4002.
.. [3] Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected
   by a simple, graphical test. BMJ 315:629-634.
.. [4] Duval S, Tweedie R (2000). Trim and fill: a simple funnel-plot-based method of
   testing and adjusting for publication bias in meta-analysis. Biometrics 56:455-463.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from hairtrial.core import distributions as dist
from hairtrial.plots.layout import Measurer, derived_codes
from hairtrial.plots.style import BLUE, GREY, MINUS, VERMILLION, as_float, use_style

__all__ = ["CONTOUR_SHADES", "funnel_plot"]

#: Fill colours of the significance regions, from the innermost (p above the largest
#: alpha) outwards; darker = more significant.
CONTOUR_SHADES: tuple[str, ...] = ("#ffffff", "#ececec", "#d9d9d9", "#bfbfbf")

# margins in inches
_LEFT, _RIGHT, _TOP, _TITLE = 0.52, 0.14, 0.10, 0.22
_LABEL_SIZE = 6.5  # study labels, pt
#: Fewest studies for a funnel-asymmetry test to be informative (Sterne et al. 2011).
MIN_K_INFORMATIVE = 10


def _given(result: Mapping[str, Any] | pd.Series | None) -> dict[str, Any] | None:
    """A result mapping as a dict; None when absent or marked not computable."""
    if result is None:
        return None
    out = dict(result.items())
    return out if bool(out.get("computable", True)) else None


def _pooled(estimate: float | Mapping[str, Any] | pd.Series | None) -> tuple[float, str]:
    if estimate is None:
        return math.nan, ""
    if isinstance(estimate, Mapping | pd.Series):
        value = as_float(estimate.get("estimate"))
        method = estimate.get("method")
        name = "common effect" if method == "FE" else (str(method) if method else "")
        return value, name
    return as_float(estimate), ""


def _p_text(alpha: float) -> str:
    return f"{alpha:.2f}" if alpha >= 0.01 else f"{alpha:.2g}"


def _num(x: float, _pos: Any = None) -> str:
    s = f"{x:g}"
    return s.replace("-", MINUS)


def funnel_plot(
    studies: pd.DataFrame,
    *,
    estimate: float | Mapping[str, Any] | pd.Series | None = None,
    trimfill: Mapping[str, Any] | pd.Series | None = None,
    egger: Mapping[str, Any] | pd.Series | None = None,
    levels: Sequence[float] = (0.90, 0.95, 0.99),
    refline: float = 0.0,
    xlabel: str = "Effect size",
    title: str | None = None,
    label_studies: bool | None = None,
    note: str | None = None,
    xlim: tuple[float, float] | None = None,
    width: float = 3.5,
    ax: Axes | None = None,
) -> Figure:
    """Draw a contour-enhanced funnel plot (Peters et al. 2008).

    Effects are on the x axis and standard errors on the y axis (0 at the top). Shaded
    regions show where a study would be statistically significant in a two-sided z-test
    of ``effect = refline``: white for p > 0.10, then increasingly dark grey for
    0.05 < p <= 0.10, 0.01 < p <= 0.05 and p <= 0.01 (``levels`` = 0.90, 0.95, 0.99, as
    metafor's ``funnel(level = c(90, 95, 99), refline = 0)``). On top: the pooled estimate
    (vertical line) with its pseudo 95% confidence funnel (``estimate -/+ 1.96 SE``,
    dashed), the studies (filled circles; hollow circles for studies with derived numbers,
    i.e. a provenance other than ``reported``), trim-and-fill's imputed studies (open grey
    diamonds) with the adjusted estimate (grey dashed line), and optionally the Egger
    regression line ``x = b0 + b1 * SE`` (vermillion). The legend and a note are placed
    under the axes so that nothing overlaps the data.

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study with ``yi`` and ``vi``; optional ``provenance`` (codes joined by
        ';') and ``label`` (falls back to ``study``) for the point labels.
    estimate : float or mapping or pandas.Series, optional
        Pooled estimate, or a row of the meta-analysis table (``estimate``, ``method``).
        None: no pooled line and no pseudo confidence funnel.
    trimfill : mapping or pandas.Series, optional
        The trim-and-fill numbers: ``estimate`` (the adjusted pooled estimate), ``k0``,
        ``estimator`` (for the legend), ``filled_yi`` and ``filled_vi`` (the imputed
        studies), e.g. ``vars()`` of a :func:`hairtrial.diagnostics.smallstudy.trimfill`
        result. Drawn when k0 > 0; ``computable`` False (when present): not drawn.
    egger : mapping or pandas.Series, optional
        Egger's regression line: ``intercept``, ``slope`` and ``predictor`` (``"sei"``: a
        straight line; ``"vi"``: a parabola; other predictors cannot be drawn on these axes
        and are ignored), e.g. ``vars()`` of a :func:`hairtrial.diagnostics.smallstudy.regtest`
        result; ``computable`` False (when present): not drawn.
    levels : sequence of float
        Confidence levels of the significance contours (two-sided p = 1 - level).
    refline : float
        Centre of the significance contours (the null effect).
    xlabel : str
        Label of the effect axis, e.g. ``"Mean difference, hairs/cm²"``.
    title : str, optional
        Title above the axes.
    label_studies : bool, optional
        Write study labels next to the points; default: only when there are at most 6.
    note : str, optional
        Text under the legend. Default: for k < 10 a statement that funnel asymmetry cannot
        be assessed reliably (Sterne et al. 2011); ``""`` for none.
    xlim : tuple of float, optional
        Effect axis limits (default: every point, the pseudo confidence funnel and the
        innermost contour at the largest SE, with a margin).
    width : float
        Figure width in inches (3.5 = one journal column; up to 7).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes; their figure keeps its size and layout, the legend goes inside
        the axes and the note is not drawn. Default: a new figure whose height follows from
        the measured legend and note.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (new, or that of `ax`); the caller saves it
        (:func:`hairtrial.plots.save_figure`).

    Raises
    ------
    ValueError
        If ``yi``/``vi`` are missing, no study has a finite ``yi`` and positive ``vi``, or
        ``levels`` is empty or not in (0, 1).

    References
    ----------
    Peters et al. (2008); Sterne et al. (2011); Egger et al. (1997); Duval & Tweedie (2000).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"yi": [43.2, 69.2, 1.65], "vi": [143.9, 1093.9, 0.158]})
    >>> fig = funnel_plot(df, estimate=35.0, xlabel="MD, hairs/cm²")
    >>> len(fig.axes)
    1
    """
    for col in ("yi", "vi"):
        if col not in studies.columns:
            raise ValueError(f"studies needs a {col!r} column")
    yi = studies["yi"].to_numpy(dtype=float)
    vi = studies["vi"].to_numpy(dtype=float)
    ok = np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    if not ok.any():
        raise ValueError("no study with a finite yi and a positive vi")
    sei = np.sqrt(np.where(ok, vi, np.nan))
    prov = studies["provenance"] if "provenance" in studies.columns else [None] * len(studies)
    derived = np.array([bool(derived_codes(p)) for p in prov], dtype=bool)
    if "label" in studies.columns:
        labels = [str(x) for x in studies["label"]]
    elif "study" in studies.columns:
        labels = [str(x) for x in studies["study"]]
    else:
        labels = [f"Study {i + 1}" for i in range(len(studies))]
    k = int(ok.sum())
    if label_studies is None:
        label_studies = k <= 6

    est, est_method = _pooled(estimate)
    tf, eg = _given(trimfill) or {}, _given(egger) or {}
    has_fill = as_float(tf.get("k0")) > 0
    fill_y = np.asarray(tf["filled_yi"], dtype=float) if has_fill else np.empty(0)
    fill_se = np.sqrt(np.asarray(tf["filled_vi"], dtype=float)) if has_fill else np.empty(0)
    levels = sorted(float(lv) for lv in levels)
    if not levels or not all(0 < lv < 1 for lv in levels):
        raise ValueError("levels must be confidence levels in (0, 1), e.g. (0.90, 0.95, 0.99)")
    zs = [float(dist.norm_isf((1 - lv) / 2)) for lv in levels]

    se_top = float(np.nanmax(np.concatenate([sei[ok], fill_se]))) * 1.08
    z95 = float(dist.norm_isf(0.025))

    # --- x limits ------------------------------------------------------------------------
    clip = xlim is not None  # automatic limits hold every point: let markers at SE ~ 0 show whole
    if xlim is None:
        xs = [*yi[ok], *fill_y, refline - zs[0] * se_top, refline + zs[0] * se_top]
        if math.isfinite(est):
            xs += [est - z95 * se_top, est + z95 * se_top]
        lo, hi = min(xs), max(xs)
        pad = 0.04 * (hi - lo if hi > lo else 1.0)
        xlim = (lo - pad, hi + pad)

    # --- legend content and note ------------------------------------------------------------
    handles, names = _legend_entries(
        levels,
        has_est=math.isfinite(est),
        est_method=est_method,
        any_reported=bool((ok & ~derived).any()),
        any_derived=bool((ok & derived).any()),
        trimfill=tf if has_fill else None,
        egger=eg if _egger_drawable(eg) else None,
    )
    if note is None:
        note = (
            f"k = {k}: too few studies to assess funnel plot asymmetry (at least "
            f"{MIN_K_INFORMATIVE} are needed; Sterne et al. 2011)."
            if k < MIN_K_INFORMATIVE
            else ""
        )

    with use_style():
        # Geometry in inches, from the top: title, axes, x axis, legend, note.
        own = ax is None
        if ax is None:
            fig = Figure(figsize=(width, 4.0), layout="none")
            FigureCanvasAgg(fig)
            ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
            axes_w = width - _LEFT - _RIGHT
        else:
            fig = ax.figure  # type: ignore[assignment]
            axes_w = ax.get_position().width * fig.get_figwidth()

        # --- contours ----------------------------------------------------------------------
        ax.set_xlim(*xlim)
        ax.set_ylim(se_top, 0.0)
        ax.add_patch(_background(ax, CONTOUR_SHADES[min(len(zs), len(CONTOUR_SHADES) - 1)]))
        se_grid = np.array([0.0, se_top])
        for i, z in enumerate(reversed(zs)):  # widest funnel first
            shade = CONTOUR_SHADES[min(len(zs) - 1 - i, len(CONTOUR_SHADES) - 1)]
            ax.fill_betweenx(
                se_grid,
                refline - z * se_grid,
                refline + z * se_grid,
                facecolor=shade,
                edgecolor="none",
                zorder=0.5,
            )
        ax.axvline(refline, color=GREY, lw=0.5, ls=":", zorder=1)

        # --- pooled estimate and pseudo confidence funnel ------------------------------------
        if math.isfinite(est):
            ax.plot([est, est], [0, se_top], color="black", lw=0.8, zorder=2)
            ax.plot(
                [est - z95 * se_top, est, est + z95 * se_top],
                [se_top, 0, se_top],
                color="black",
                lw=0.6,
                ls=(0, (4, 2)),
                zorder=2,
            )
        if has_fill:
            ax.axvline(as_float(tf["estimate"]), color=GREY, lw=0.8, ls=(0, (1.5, 1.5)), zorder=2)

        # --- Egger line --------------------------------------------------------------------
        if _egger_drawable(eg):
            s = np.linspace(0.0, se_top, 101)
            b0, b1 = as_float(eg["intercept"]), as_float(eg["slope"])
            x = b0 + b1 * (s if eg["predictor"] == "sei" else s**2)
            ax.plot(x, s, color=VERMILLION, lw=0.9, zorder=2.5)

        # --- points ------------------------------------------------------------------------
        if has_fill:  # imputed studies: open grey diamonds
            ax.scatter(fill_y, fill_se, marker="D", s=16, facecolors="white", edgecolors=GREY,
                       linewidths=0.7, zorder=3)  # fmt: skip
        rep = ok & ~derived
        der = ok & derived
        ax.scatter(
            yi[rep], sei[rep], marker="o", s=18, color=BLUE, linewidths=0, zorder=4, clip_on=clip
        )
        ax.scatter(yi[der], sei[der], marker="o", s=18, facecolors="white", edgecolors=BLUE,
                   linewidths=1.0, zorder=4, clip_on=clip)  # fmt: skip
        if label_studies:
            # Each label goes on the side away from the pooled estimate (so that it does not
            # cover the estimate and the apex of the pseudo CI funnel), unless it would leave
            # the axes there.
            x0, x1 = xlim
            per_inch = (x1 - x0) / axes_w
            measure = Measurer("DejaVu Sans")
            centre = est if math.isfinite(est) else (x0 + x1) / 2
            for i in np.flatnonzero(ok):
                need = (measure.width(labels[i], _LABEL_SIZE) + 8 / 72) * per_inch
                room_right, room_left = x1 - yi[i], yi[i] - x0
                right_side = yi[i] >= centre
                if right_side and need > room_right and room_left > room_right:
                    right_side = False
                elif not right_side and need > room_left and room_right > room_left:
                    right_side = True
                ax.annotate(
                    labels[i],
                    (yi[i], sei[i]),
                    xytext=(5 if right_side else -5, 0),
                    textcoords="offset points",
                    ha="left" if right_side else "right",
                    va="center",
                    fontsize=_LABEL_SIZE,
                    color="black",
                    zorder=5,
                    annotation_clip=clip,
                    bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.4},
                )

        # --- axes --------------------------------------------------------------------------
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Standard error")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        ax.xaxis.set_major_formatter(FuncFormatter(_num))
        ax.yaxis.set_major_formatter(FuncFormatter(_num))
        ax.set_ylim(se_top, 0.0)
        ax.set_xlim(*xlim)
        ax.spines["top"].set_visible(True)
        ax.spines["right"].set_visible(True)
        if title:
            ax.set_title(title, loc="left", pad=6)

        if own:
            top = _TOP + (_TITLE if title else 0.0)
            plot_h = min(0.72 * width, 3.2)
            _layout(fig, ax, handles, names, note, width=width, left=_LEFT, right=_RIGHT, top=top,
                    plot_h=plot_h)  # fmt: skip
        else:
            ax.legend(handles, names, loc="lower left", fontsize=_LABEL_SIZE, framealpha=0.9)
    return fig


def _layout(
    fig: Figure,
    ax: Any,
    handles: list[Any],
    names: list[str],
    note: str,
    *,
    width: float,
    left: float,
    right: float,
    top: float,
    plot_h: float,
) -> None:
    """Place axes, legend and note from measured sizes, so that nothing overlaps or is cut."""
    avail = width - left - right
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    dpi = fig.dpi

    def place(height: float) -> None:
        fig.set_size_inches(width, height)
        ax.set_position(
            (left / width, (height - top - plot_h) / height, avail / width, plot_h / height)
        )

    place(6.0)
    # depth of tick labels + x label below the axes, and width of the y labels to the left
    ax_box = ax.get_window_extent(renderer)
    tight = ax.get_tightbbox(renderer)
    depth = (ax_box.y0 - tight.y0) / dpi
    x_legend = max(0.04, left - (ax_box.x0 - tight.x0) / dpi)  # align with the y label

    ncol = 3 if width >= 5.5 else 2
    while True:
        legend = fig.legend(
            handles,
            names,
            loc="upper left",
            bbox_to_anchor=(0, 1),
            ncol=ncol,
            frameon=False,
            handlelength=1.8,
            handleheight=0.9,
            columnspacing=1.2,
            labelspacing=0.35,
            borderaxespad=0.0,
            borderpad=0.0,
        )
        box = legend.get_window_extent(renderer)
        if box.width / dpi <= width - x_legend - 0.05 or ncol == 1:
            break
        legend.remove()
        ncol -= 1
    legend_h = box.height / dpi
    note_size = 6.5
    lines = Measurer("DejaVu Sans").wrap(note, width - x_legend - 0.1, note_size) if note else []
    note_h = len(lines) * note_size * 1.3 / 72
    gap = 0.10
    height = top + plot_h + depth + gap + legend_h + (gap + note_h if lines else 0.0) + 0.06
    place(height)
    legend_top = height - top - plot_h - depth - gap
    legend.set_bbox_to_anchor((x_legend / width, legend_top / height), transform=fig.transFigure)
    if lines:
        fig.text(
            x_legend / width,
            (legend_top - legend_h - gap) / height,
            "\n".join(lines),
            ha="left",
            va="top",
            fontsize=note_size,
            color=GREY,
            linespacing=1.3,
        )


def _background(ax: Any, colour: str) -> Rectangle:
    return Rectangle(
        (0, 0), 1, 1, transform=ax.transAxes, facecolor=colour, edgecolor="none", zorder=0
    )


def _egger_drawable(egger: Mapping[str, Any]) -> bool:
    return (
        egger.get("predictor") in ("sei", "vi")
        and math.isfinite(as_float(egger.get("intercept")))
        and math.isfinite(as_float(egger.get("slope")))
    )


def _legend_entries(
    levels: Sequence[float],
    *,
    has_est: bool,
    est_method: str,
    any_reported: bool,
    any_derived: bool,
    trimfill: Mapping[str, Any] | None,
    egger: Mapping[str, Any] | None,
) -> tuple[list[Any], list[str]]:
    handles: list[Any] = []
    names: list[str] = []
    if any_reported:
        handles.append(Line2D([], [], ls="", marker="o", ms=4.2, color=BLUE, mew=0))
        names.append("Study")
    if any_derived:
        handles.append(Line2D([], [], ls="", marker="o", ms=4.2, mfc="white", mec=BLUE, mew=1.0))
        names.append("Study with derived numbers")
    if trimfill is not None:
        handles.append(Line2D([], [], ls="", marker="D", ms=3.6, mfc="white", mec=GREY, mew=0.7))
        k0 = int(as_float(trimfill["k0"]))
        names.append(f"Imputed (trim-and-fill {trimfill.get('estimator', '')}, k0 = {k0})")
    if has_est:
        handles.append(Line2D([], [], color="black", lw=0.8))
        names.append(f"Pooled estimate ({est_method})" if est_method else "Pooled estimate")
        handles.append(Line2D([], [], color="black", lw=0.6, ls=(0, (4, 2))))
        names.append("Pseudo 95% CI")
    if trimfill is not None:
        handles.append(Line2D([], [], color=GREY, lw=0.8, ls=(0, (1.5, 1.5))))
        names.append("Trim-and-fill estimate")
    if egger is not None:
        handles.append(Line2D([], [], color=VERMILLION, lw=0.9))
        names.append("Egger regression line")
    alphas = [1 - lv for lv in sorted(levels)]  # e.g. 0.10, 0.05, 0.01
    bounds = [*alphas]
    for i in range(len(bounds) + 1):
        shade = CONTOUR_SHADES[min(i, len(CONTOUR_SHADES) - 1)]
        if i == 0:
            name = f"p > {_p_text(bounds[0])}"
        elif i == len(bounds):
            name = f"p \u2264 {_p_text(bounds[-1])}"
        else:
            name = f"{_p_text(bounds[i])} < p \u2264 {_p_text(bounds[i - 1])}"
        handles.append(Patch(facecolor=shade, edgecolor="#8c8c8c", linewidth=0.4))
        names.append(name)
    return handles, names
