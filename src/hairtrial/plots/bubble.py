"""Bubble plot of a meta-regression on one moderator.

Nothing here computes statistics: :func:`bubble_plot` draws the study effects against the
moderator, with marker area proportional to the study weight, and the fitted line with its
confidence and prediction bands exactly as :func:`hairtrial.models.metareg.predict` returns them.
Studies whose numbers were derived (provenance other than ``reported``) are drawn hollow and
explained in a footnote, as in the forest plot.
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
from matplotlib.patches import Patch
from matplotlib.transforms import Bbox

from hairtrial.data.provenance import PROVENANCE
from hairtrial.plots.labels import best_position
from hairtrial.plots.layout import Measurer, clean_text, get_renderer, parse_codes
from hairtrial.plots.style import BLUE, GREY, VERMILLION, use_style

__all__ = ["bubble_plot"]

_FS = 7.0
_FS_TITLE = 9.0
_LINE_H = _FS * 1.35 / 72
_NO_MARK = frozenset({"", "reported"})
_PRED_COLS = ("pred", "ci_lower", "ci_upper", "pi_lower", "pi_upper")


def _derived_codes(value: Any) -> list[str]:
    return [c for c in parse_codes(value) if c not in _NO_MARK]


def bubble_plot(
    studies: pd.DataFrame,
    moderator_values: Sequence[float] | np.ndarray | pd.Series,
    prediction_frame: pd.DataFrame,
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    x_column: str | None = None,
    provenance_labels: Mapping[str, str] | None = None,
    annotation: str | None = None,
    reference_line: float | None = 0.0,
    show_labels: bool = True,
    width: float = 7.0,
    height: float = 4.2,
    ax: Axes | None = None,
) -> Figure:
    """Draw a meta-regression bubble plot.

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study: ``yi`` required; used when present: ``label`` (else ``study``) for
        point labels, ``weight_pct`` (marker area; else ``1 / vi``; else equal) and
        ``provenance`` (';'-joined codes; derived numbers -> hollow marker).
    moderator_values : array_like
        Moderator value of each study (same order as `studies`).
    prediction_frame : pandas.DataFrame
        Output of :func:`hairtrial.models.metareg.predict` over a grid of the moderator: the
        moderator column plus ``pred, ci_lower, ci_upper, pi_lower, pi_upper``.
    xlabel, ylabel : str
        Axis labels (moderator with unit; effect measure with unit).
    title : str, optional
        Title above the axes.
    x_column : str, optional
        Column of `prediction_frame` with the moderator (default: its first column that is
        not a prediction column).
    provenance_labels : mapping, optional
        Explanations of provenance codes (override/extend
        :data:`hairtrial.data.provenance.PROVENANCE`).
    annotation : str, optional
        Text for the footer, e.g. ``"Slope −0.029 per degree [−0.043, −0.015]; QM p < 0.001;
        R² = 76%"``.
    reference_line : float or None
        Horizontal line of no effect (None: none).
    show_labels : bool
        Label points with the study label where the label does not overlap another label or a
        marker and stays inside the axes.
    width, height : float
        Figure size in inches (the height grows with the footer).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes: their figure keeps its size and layout, the title goes above
        the axes, the legend inside them, and the footer (annotation, provenance note) is
        not drawn. Default: a new figure with the legend right of the axes and the footer.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (new and Agg-backed, not registered with pyplot, or that of
        `ax`); save with
        :func:`hairtrial.plots.style.save_figure`. ``fig.hairtrial_labelled`` lists the
        studies that got a label.

    Raises
    ------
    ValueError
        Missing columns or length mismatch.

    Examples
    --------
    >>> studies = pd.DataFrame({"label": ["A", "B", "C"], "yi": [0.1, 0.4, 0.9],
    ...                         "weight_pct": [30, 30, 40], "provenance": ["reported"] * 3})
    >>> grid = pd.DataFrame({"dose": [0.0, 10.0], "pred": [0.0, 1.0], "ci_lower": [-0.2, 0.8],
    ...                      "ci_upper": [0.2, 1.2], "pi_lower": [-0.5, 0.5],
    ...                      "pi_upper": [0.5, 1.5]})
    >>> fig = bubble_plot(studies, [1, 4, 9], grid, xlabel="Dose", ylabel="MD")
    >>> float(fig.get_figwidth())
    7.0
    """
    if "yi" not in studies.columns:
        raise ValueError("studies lacks column 'yi'")
    missing = [c for c in _PRED_COLS if c not in prediction_frame.columns]
    if missing:
        raise ValueError(f"prediction_frame lacks column(s) {missing}")
    x = np.asarray(moderator_values, dtype=float)
    st = studies.reset_index(drop=True)
    if x.shape != (len(st),):
        raise ValueError(f"moderator_values has {x.size} values for {len(st)} studies")
    if x_column is None:
        others = [c for c in prediction_frame.columns if c not in (*_PRED_COLS, "se")]
        if not others:
            raise ValueError("prediction_frame has no moderator column; give x_column")
        x_column = str(others[0])
    pf = prediction_frame.sort_values(x_column)
    gx = pf[x_column].to_numpy(dtype=float)
    yi = st["yi"].to_numpy(dtype=float)
    if "weight_pct" in st.columns:
        w = st["weight_pct"].to_numpy(dtype=float)
    elif "vi" in st.columns:
        w = 1 / st["vi"].to_numpy(dtype=float)
    else:
        w = np.ones(len(st))
    w = np.where(np.isfinite(w) & (w > 0), w, np.nanmin(w[w > 0]) if np.any(w > 0) else 1.0)
    labels_map = {**PROVENANCE, **dict(provenance_labels or {})}
    codes = [
        _derived_codes(st["provenance"].iloc[i]) if "provenance" in st.columns else []
        for i in range(len(st))
    ]
    derived = np.array([bool(c) for c in codes])
    used_codes: list[str] = []
    for cs in codes:
        used_codes.extend(c for c in cs if c not in used_codes)

    with use_style():
        m = Measurer("DejaVu Sans")
        # footer: annotation + provenance explanation, wrapped to the figure width
        foot_w = width - 0.2
        foot: list[str] = []
        if annotation:
            foot.extend(m.wrap(clean_text(annotation), foot_w, _FS))
        if used_codes:
            text = "Hollow markers: studies with derived numbers \u2014 " + "; ".join(
                clean_text(labels_map.get(c, c)) for c in used_codes
            )
            foot.extend(m.wrap(text, foot_w, _FS))
        foot.append(
            "Marker area proportional to the study weight. Line: fitted meta-regression; "
            "dark band: 95% CI; light band: 95% prediction interval."
        )
        own = ax is None
        if ax is None:
            foot_h = len(foot) * _LINE_H + 0.1
            title_h = 0.3 if title else 0.1
            fig_h = height + foot_h
            fig = Figure(figsize=(width, fig_h), layout="none")
            FigureCanvasAgg(fig)
            left, right, bottom = 0.62, 1.75, foot_h + 0.45
            ax = fig.add_axes(
                (
                    left / width,
                    bottom / fig_h,
                    (width - left - right) / width,
                    (fig_h - bottom - title_h) / fig_h,
                )
            )
            if title:
                fig.text(0.1 / width, 1 - 0.08 / fig_h, clean_text(title), ha="left", va="top",
                         fontsize=_FS_TITLE, fontweight="bold")  # fmt: skip
        else:
            fig = ax.figure  # type: ignore[assignment]
            if title:
                ax.set_title(clean_text(title), loc="left", fontsize=_FS_TITLE, fontweight="bold")
        pi_l, pi_u = pf["pi_lower"].to_numpy(float), pf["pi_upper"].to_numpy(float)
        ci_l, ci_u = pf["ci_lower"].to_numpy(float), pf["ci_upper"].to_numpy(float)
        ax.fill_between(gx, pi_l, pi_u, color=BLUE, alpha=0.10, lw=0, zorder=1)
        ax.fill_between(gx, ci_l, ci_u, color=BLUE, alpha=0.25, lw=0, zorder=2)
        ax.plot(gx, pf["pred"].to_numpy(float), color=BLUE, lw=1.2, zorder=3)
        if reference_line is not None:
            ax.axhline(reference_line, color="black", lw=0.6, ls=(0, (4, 3)), zorder=0)
        # marker area proportional to weight: s in points^2
        s = 14 + 260 * w / np.max(w)
        order = np.argsort(-s)  # big markers first, small on top
        for filled in (True, False):
            sel = [i for i in order if derived[i] != filled]
            if not sel:
                continue
            ax.scatter(
                x[sel],
                yi[sel],
                s=s[sel],
                facecolors=VERMILLION if filled else "white",
                edgecolors=VERMILLION,
                linewidths=0.8,
                alpha=0.85 if filled else 1.0,
                zorder=4,
            )
        # limits: data, bands and the reference line
        ys = np.concatenate([yi, pi_l, pi_u] + ([[reference_line]] if reference_line else []))
        ys = ys[np.isfinite(ys)]
        pad = 0.06 * (ys.max() - ys.min() or 1.0)
        ax.set_ylim(ys.min() - pad, ys.max() + pad)
        xs = np.concatenate([x, gx])
        xpad = 0.04 * (xs.max() - xs.min() or 1.0)
        ax.set_xlim(xs.min() - xpad, xs.max() + xpad)
        ax.set_xlabel(clean_text(xlabel))
        ax.set_ylabel(clean_text(ylabel))
        handles = [
            Line2D([], [], color=BLUE, lw=1.2, label="Fitted line"),
            Patch(facecolor=BLUE, alpha=0.25, lw=0, label="95% CI"),
            Patch(facecolor=BLUE, alpha=0.10, lw=0, label="95% prediction interval"),
            Line2D([], [], ls="none", marker="o", ms=6, mfc=VERMILLION, mec=VERMILLION,
                   label="Study (reported numbers)"),
        ]  # fmt: skip
        if derived.any():
            handles.append(
                Line2D([], [], ls="none", marker="o", ms=6, mfc="white", mec=VERMILLION,
                       label="Study (derived numbers)")
            )  # fmt: skip
        ax.legend(
            handles=handles,
            loc="upper left" if own else "best",
            bbox_to_anchor=(1.02, 1.0) if own else None,
            borderaxespad=0.0 if own else 0.5,
            handlelength=1.6,
            fontsize=_FS,
        )
        for i, line in enumerate(foot if own else []):
            fig.text(
                0.1 / width,
                (foot_h - 0.05 - (i + 0.5) * _LINE_H) / fig_h,
                line,
                ha="left",
                va="center",
                fontsize=_FS,
                color="black" if i < len(foot) - 1 else GREY,
            )
        fig.hairtrial_labelled = (  # type: ignore[attr-defined]
            _place_labels(fig, ax, st, x, yi, s, reference_line) if show_labels else []
        )
    return fig


def _place_labels(
    fig: Figure,
    ax: Any,
    st: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    s: np.ndarray,
    reference_line: float | None,
) -> list[str]:
    """Greedy labelling around each marker (right, left, above, below, diagonals).

    A label is kept only if it stays inside the axes and overlaps no marker, no other label
    and not the reference line; otherwise the study is left unlabelled.
    """
    renderer = get_renderer(fig)
    ax_box = ax.get_window_extent(renderer)
    to_px = ax.transData
    dpi = fig.dpi
    taken: list[Bbox] = []
    centres = to_px.transform(np.column_stack([x, y]))
    radii = np.sqrt(s / math.pi) * dpi / 72  # marker radius in pixels
    for (cx, cy), r in zip(centres, radii, strict=True):
        taken.append(Bbox.from_extents(cx - r, cy - r, cx + r, cy + r))
    if reference_line is not None:
        ry = float(to_px.transform((0.0, reference_line))[1])
        line_box = Bbox.from_extents(ax_box.x0, ry - 1, ax_box.x1, ry + 1)
    done: list[str] = []
    order = np.argsort(-s)
    for i in order:
        name = ""
        if "label" in st.columns:
            name = clean_text(st["label"].iloc[i])
        if not name and "study" in st.columns:
            name = clean_text(st["study"].iloc[i])
        if not name or not (math.isfinite(x[i]) and math.isfinite(y[i])):
            continue
        cx, cy = centres[i]
        r = radii[i] + 2
        d = r * 0.75
        ring = [
            (r, 0, "left", "center"),
            (-r, 0, "right", "center"),
            (0, r, "center", "bottom"),
            (0, -r, "center", "top"),
            (d, d, "left", "bottom"),
            (d, -d, "left", "top"),
            (-d, d, "right", "bottom"),
            (-d, -d, "right", "top"),
        ]

        def label(cand: tuple, i: int = i, name: str = name) -> Any:
            dx, dy, ha, va = cand
            return ax.annotate(name, (x[i], y[i]), xytext=(dx * 72 / dpi, dy * 72 / dpi),
                               textcoords="offset points", ha=ha, va=va, fontsize=_FS,
                               color="#333333", zorder=5)  # fmt: skip

        def cost(_r: int, _k: int, cand: tuple, i: int = i) -> tuple[float, Any]:
            t = label(cand)
            bb = t.get_window_extent(renderer).padded(1.5)
            t.remove()
            inside = (
                bb.x0 >= ax_box.x0
                and bb.x1 <= ax_box.x1
                and bb.y0 >= ax_box.y0
                and bb.y1 <= ax_box.y1
            )
            own = taken[i]
            clash = any(bb.overlaps(b) for b in taken if b is not own)
            if reference_line is not None:
                clash = clash or bb.overlaps(line_box)
            return (0.0 if inside and not clash else 1.0), bb

        best = best_position([ring], cost)
        if best.cost == 0:
            label(best.candidate)
            taken.append(best.info)
            done.append(name)
    return done
