"""Trajectory plot: mean change from baseline over weeks, per treatment.

The picture of the longitudinal (arm-based) analysis. Time in weeks runs along
the x axis (week 0 = baseline, where every change from baseline is 0 by
definition); the y axis is the mean change from baseline. For each treatment
(minoxidil + microneedling, minoxidil alone) the model-based mean change is a
line with its 95% CI as a shaded band; behind it, every study arm's observed
means are points (area proportional to n) joined by thin lines in week order,
starting from the baseline. An optional lower panel shows the model-based
difference between the treatments at each week with its CI.

Nothing is computed here: lines, bands and differences are drawn from the
frames the caller passes (see :func:`trajectory_plot`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from hairtrial.core import vocab
from hairtrial.plots.labels import best_position, crowded_first
from hairtrial.plots.layout import FigureText, Measurer, fixed_figure, parse_codes, tick_decimals
from hairtrial.plots.legends import LegendBlocks, size_handles
from hairtrial.plots.style import (
    BLUE,
    GREY,
    MINUS,
    VERMILLION,
    fmt,
    fmt_p,
    format_decimals,
    use_style,
)

#: Codes that mean "as printed in the paper" (filled marker).
REPORTED_CODES = frozenset({"reported", ""})

#: Treatments in drawing order (control first, so the experimental arm is on top).
TREATMENTS = ("experimental", "control")

#: Label of the legend entry of hollow markers (tests look for it).
DERIVED_LABEL = "Derived numbers (see provenance)"

_COLOURS = {"experimental": VERMILLION, "control": BLUE}

# Geometry (inches) and type sizes (points).
_FS = 7.0
_FS_LABEL = 6.5
_FS_SMALL = 6.0
_FS_TITLE = 9.0
_LINE_H = _FS * 1.3 / 72
_SMALL_H = _FS_SMALL * 1.3 / 72
_TEXT_H = 1.17 / 72  # glyph box height (ascent + descent) per point of font size
_MARGIN = 0.08
_S_MAX = 110.0  # marker area (pt²) of the largest arm n in the figure
_LEG_GAP = 0.22  # between legend blocks
_CROSS_W = 0.09  # width (in) of the crossbar of a week estimated alone
_MAX_FULL_LABELS = 8  # more studies than this: numbered key
_HALO = [patheffects.withStroke(linewidth=2.0, foreground="white")]


def trajectory_plot(
    means: pd.DataFrame,
    observed: pd.DataFrame,
    *,
    unit_label: str,
    title: str | None = None,
    arm_labels: tuple[str, str] = vocab.ARM_LABELS,
    contrasts: pd.DataFrame | None = None,
    width: float = 5.5,
) -> Figure:
    """Draw mean change from baseline over weeks: model per treatment and observed arms.

    x is the week on a linear axis, ticked at every week that has data, with
    week 0 the baseline (a black point at change 0, which is the change of
    every arm there by definition, and a thin zero line). For each treatment
    (experimental in vermillion, control in blue) the model-based mean change
    is drawn as a line through the estimable weeks with the 95% CI as a
    shaded band; a week estimated alone (no estimable neighbour) gets a
    crossbar (CI box with the estimate as a line) instead. Each study arm's
    observed means are points whose *area* is proportional to n (the largest
    arm of the figure gets a fixed area; a size legend gives reference
    values), joined in week order by thin lines that start at the baseline.
    Points with a derived number (any provenance code other than ``reported``,
    see :data:`hairtrial.data.provenance.PROVENANCE`) are hollow, and only then
    does the legend have a "derived numbers" entry. Each arm's path is
    labelled at its last week with the study label, in the treatment colour,
    where it overlaps nothing (points, lines, other labels), with a leader
    line when pushed away; with more than eight studies, or when full labels
    would overlap, the labels are numbers and a key lists the studies. With
    `contrasts`, a lower panel sharing the x axis shows the difference
    (experimental minus control) and its 95% CI at each week against a zero
    line, with the estimates written beside the points. Missing pieces are
    said in a note under the legend: model not fitted, CIs not estimable,
    rows not drawn.

    Parameters
    ----------
    means : pandas.DataFrame
        Model-based mean change per treatment and week. Columns ``treatment``
        (``"experimental"`` or ``"control"``), ``week``, ``estimate``; used
        when present: ``ci_lower``, ``ci_upper`` (``se`` is ignored). May be
        empty (or all NaN): the model was not fitted, only observed arms are
        drawn and a note says so. NaN CIs leave a gap in the band.
    observed : pandas.DataFrame
        Observed arm means of change from baseline. Columns ``study``,
        ``treatment``, ``week``, ``mean``, ``n``; used when present: ``label``
        (falls back to ``study``), ``arm`` (arms of one study and treatment
        with different names are separate paths), ``provenance``
        (``;``-joined codes). Rows of other treatments, or without a finite
        mean, week or positive n, are not drawn (the note names them). A
        week-0 row with mean 0 is the baseline and not drawn again.
    unit_label : str
        Unit of the outcome for the axis labels, e.g. ``"hairs/cm²"``.
    title : str, optional
        Figure title.
    arm_labels : tuple of str, default :data:`hairtrial.core.vocab.ARM_LABELS`
        Names of the experimental and control treatments (legend, lower panel).
    contrasts : pandas.DataFrame, optional
        Model-based difference, experimental minus control, per week:
        ``week``, ``estimate``, ``ci_lower``, ``ci_upper``; ``pvalue`` is
        written beside the estimate when there is room. None, empty or all
        NaN: no lower panel.
    width : float, default 5.5
        Figure width in inches (1.5 journal columns); the height follows.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with an Agg canvas, not registered with pyplot; save it with
        :func:`hairtrial.plots.save_figure`. Attributes for tests:
        ``hairtrial_labels`` (list of the study-label text artists, one per
        arm path), ``hairtrial_legend_labels`` (all legend entry texts),
        ``hairtrial_notes`` (the note lines) and ``hairtrial_key`` (study
        label by number, empty when the labels are the study labels).

    Raises
    ------
    ValueError
        If a required column is missing.

    Examples
    --------
    >>> import pandas as pd
    >>> obs = pd.DataFrame({
    ...     "study": ["a", "a", "b", "b"], "label": ["A 2013"] * 2 + ["B 2018"] * 2,
    ...     "treatment": ["experimental", "control"] * 2, "week": [12] * 4,
    ...     "mean": [91.4, 22.2, 40.0, 25.0], "n": [50, 50, 18, 18],
    ...     "provenance": ["n_split_equally"] * 2 + ["reported"] * 2})
    >>> means = pd.DataFrame({"treatment": ["experimental", "control"], "week": [12, 12],
    ...     "estimate": [60.0, 23.0], "ci_lower": [20.0, 5.0], "ci_upper": [100.0, 41.0]})
    >>> fig = trajectory_plot(means, obs, unit_label="hairs/cm²")
    >>> sorted({t.get_text() for t in fig.hairtrial_labels})
    ['A 2013', 'B 2018']
    """
    _require(observed, {"study", "treatment", "week", "mean", "n"}, "observed")
    if means is not None and len(means.columns):
        _require(means, {"treatment", "week", "estimate"}, "means")
    if contrasts is not None and len(contrasts.columns):
        _require(contrasts, {"week", "estimate"}, "contrasts")
    with use_style():
        return _Trajectory(
            means,
            observed,
            unit_label=unit_label,
            title=title,
            arm_labels=arm_labels,
            contrasts=contrasts,
            width=float(width),
        ).draw()


def _require(df: pd.DataFrame, cols: set[str], name: str) -> None:
    missing = cols - set(df.columns)
    if missing:
        raise ValueError(f"{name} lacks column(s) {sorted(missing)}")


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)


def _clean(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _week_text(w: float) -> str:
    return str(int(w)) if float(w).is_integer() else fmt(w, 1)


def _runs(ok: np.ndarray) -> list[np.ndarray]:
    """Index runs of consecutive True values.

    Examples
    --------
    >>> [r.tolist() for r in _runs(np.array([True, True, False, True]))]
    [[0, 1], [3]]
    """
    out: list[np.ndarray] = []
    start = None
    for i, v in enumerate([*ok.tolist(), False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append(np.arange(start, i))
            start = None
    return out


def _segs_hit_box(segs: np.ndarray, boxes: Sequence[float] | np.ndarray) -> int:
    """How many (segment, box) pairs meet; rows x0, y0, x1, y1 (one box may be a tuple).

    Liang-Barsky clipping, vectorised over segments and boxes.

    Examples
    --------
    >>> _segs_hit_box(np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 3.0, 1.0, 3.0]]), (0.5, 0.5, 1, 1))
    1
    """
    bx = np.asarray(boxes, dtype=float).reshape(-1, 4)
    if not len(segs) or not len(bx):
        return 0
    px, py = segs[:, 0:1], segs[:, 1:2]
    dx, dy = segs[:, 2:3] - px, segs[:, 3:4] - py
    shape = (len(segs), len(bx))
    t0 = np.zeros(shape)
    t1 = np.ones(shape)
    hit = np.ones(shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for pk, qk in (
            (-dx, px - bx[:, 0]),
            (dx, bx[:, 2] - px),
            (-dy, py - bx[:, 1]),
            (dy, bx[:, 3] - py),
        ):
            pk = np.broadcast_to(pk, shape)
            zero = pk == 0
            hit &= ~(zero & (qk < 0))
            t = qk / pk
            t0 = np.where(~zero & (pk < 0), np.maximum(t0, t), t0)
            t1 = np.where(~zero & (pk > 0), np.minimum(t1, t), t1)
    return int(np.sum(hit & (t0 <= t1)))


def _overlap(a: Sequence[float], boxes: np.ndarray) -> float:
    """Total area of box a (x0, y0, x1, y1) overlapped by the boxes (rows)."""
    if not len(boxes):
        return 0.0
    w = np.minimum(a[2], boxes[:, 2]) - np.maximum(a[0], boxes[:, 0])
    h = np.minimum(a[3], boxes[:, 3]) - np.maximum(a[1], boxes[:, 1])
    return float(np.sum(np.clip(w, 0, None) * np.clip(h, 0, None)))


@dataclass
class _Path:
    """One study arm: its observed points in week order."""

    study: str
    label: str
    treatment: str
    weeks: np.ndarray
    means: np.ndarray
    n: np.ndarray
    derived: np.ndarray
    from_baseline: bool


@dataclass
class _Placement:
    text: str
    colour: str
    x: float  # data coordinates of the anchor (the arm's last point)
    y: float
    ox: float  # offset in inches
    oy: float
    ha: str
    va: str
    leader: bool
    radius: float  # marker radius (in), for the leader's shrink


class _Trajectory:
    """Layout and drawing of :func:`trajectory_plot` (one instance per figure)."""

    def __init__(
        self,
        means: pd.DataFrame,
        observed: pd.DataFrame,
        *,
        unit_label: str,
        title: str | None,
        arm_labels: tuple[str, str],
        contrasts: pd.DataFrame | None,
        width: float,
    ) -> None:
        self.width = width
        self.title = _clean(title) if title else ""
        self.unit = _clean(unit_label)
        self.names = {"experimental": arm_labels[0], "control": arm_labels[1]}
        self.family = str(mpl.rcParams["font.sans-serif"][0])
        self.m = Measurer(self.family)
        self.notes: list[str] = []
        self._read_observed(observed)
        self._read_means(means)
        self._read_contrasts(contrasts)

    # ---- inputs -------------------------------------------------------------

    def _read_observed(self, observed: pd.DataFrame) -> None:
        df = observed.reset_index(drop=True)
        treat = df["treatment"].astype(str).str.strip().to_numpy()
        week, mean, n = _num(df, "week"), _num(df, "mean"), _num(df, "n")
        study = [_clean(s) for s in df["study"]]
        labels = [
            _clean(v) if isinstance(v, str) and v.strip() else s
            for v, s in zip(df["label"] if "label" in df.columns else study, study, strict=True)
        ]
        arm = [_clean(a) for a in df["arm"]] if "arm" in df.columns else [""] * len(df)
        prov = df["provenance"] if "provenance" in df.columns else pd.Series([""] * len(df))
        derived = np.array(
            [any(c not in REPORTED_CODES for c in parse_codes(v)) for v in prov], dtype=bool
        )
        is_treat = np.isin(treat, TREATMENTS)
        ok = is_treat & np.isfinite(week) & np.isfinite(mean) & np.isfinite(n) & (n > 0)
        baseline_row = is_treat & (week == 0) & (mean == 0)
        dropped = [labels[i] for i in range(len(df)) if not ok[i] and not baseline_row[i]]
        if dropped:
            self.notes.append(
                "Not drawn (other treatment, or mean, week or n missing): "
                + ", ".join(dict.fromkeys(dropped))
                + "."
            )
        ok &= ~baseline_row
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i in np.flatnonzero(ok):
            groups.setdefault((study[i], treat[i], arm[i]), []).append(int(i))
        self.paths: list[_Path] = []
        for (s, t, _a), idx in groups.items():
            idx.sort(key=lambda i: week[i])
            self.paths.append(
                _Path(
                    study=s,
                    label=labels[idx[0]],
                    treatment=t,
                    weeks=week[idx],
                    means=mean[idx],
                    n=n[idx],
                    derived=derived[idx],
                    from_baseline=bool(week[idx[0]] > 0),
                )
            )
        # studies in label order (then id): the numbers of the key
        studies = sorted({(p.label, p.study) for p in self.paths})
        self.study_order = [s for _, s in studies]
        self.study_label = {s: lab for lab, s in studies}
        all_n = np.concatenate([p.n for p in self.paths]) if self.paths else np.array([])
        self.n_ref = float(np.max(all_n)) if all_n.size else 1.0
        self.all_n = all_n
        self.any_derived = any(p.derived.any() for p in self.paths)
        self.any_reported = any((~p.derived).any() for p in self.paths)

    def _read_means(self, means: pd.DataFrame | None) -> None:
        self.model: dict[str, pd.DataFrame] = {}
        if means is not None and len(means) and "estimate" in means.columns:
            df = pd.DataFrame(
                {
                    "treatment": means["treatment"].astype(str).str.strip().to_numpy(),
                    "week": _num(means, "week"),
                    "estimate": _num(means, "estimate"),
                    "lo": _num(means, "ci_lower"),
                    "hi": _num(means, "ci_upper"),
                }
            )
            df = df[np.isfinite(df["week"])]
            for t in TREATMENTS:
                sub = df[df["treatment"] == t].sort_values("week", kind="stable")
                if np.isfinite(sub["estimate"]).any():
                    self.model[t] = sub.reset_index(drop=True)
        self.fitted = bool(self.model)
        if not self.fitted:
            self.notes.insert(0, "Model not fitted: observed arm means only.")
            return
        missing = []
        for t in TREATMENTS:
            sub = self.model.get(t)
            if sub is None:
                missing.append(f"{self.names[t]}: model mean not estimable.")
                continue
            est_ok = np.isfinite(sub["estimate"])
            ci_ok = np.isfinite(sub["lo"]) & np.isfinite(sub["hi"])
            bad = sub.loc[est_ok & ~ci_ok, "week"].tolist()
            if bad:
                weeks = ", ".join(_week_text(w) for w in bad)
                missing.append(f"{self.names[t]}: 95% CI not estimable at week {weeks}.")
        self.notes.extend(missing)

    def _read_contrasts(self, contrasts: pd.DataFrame | None) -> None:
        self.diff: pd.DataFrame | None = None
        self.diff_has_p = False
        if contrasts is None or not len(contrasts) or "estimate" not in contrasts.columns:
            return
        df = pd.DataFrame(
            {
                "week": _num(contrasts, "week"),
                "estimate": _num(contrasts, "estimate"),
                "lo": _num(contrasts, "ci_lower"),
                "hi": _num(contrasts, "ci_upper"),
                "p": _num(contrasts, "pvalue"),
            }
        )
        df = df[np.isfinite(df["week"]) & np.isfinite(df["estimate"])]
        if not len(df):
            return
        self.diff = df.sort_values("week", kind="stable").reset_index(drop=True)
        self.diff_has_p = bool(np.isfinite(self.diff["p"]).any())
        bad = self.diff.loc[~(np.isfinite(self.diff["lo"]) & np.isfinite(self.diff["hi"])), "week"]
        if len(bad):
            weeks = ", ".join(_week_text(w) for w in bad)
            self.notes.append(f"Difference: 95% CI not estimable at week {weeks}.")

    # ---- scales -------------------------------------------------------------

    def _area(self, n: float | np.ndarray) -> np.ndarray:
        return _S_MAX * np.asarray(n, dtype=float) / self.n_ref

    def _radius_in(self, n: float) -> float:
        return math.sqrt(float(self._area(n))) / 2 / 72

    def _alone_span(self, treatment: str) -> tuple[float, float]:
        """x extent (inches from its week) of the crossbar of a week estimated alone.

        The two treatments' crossbars stand side by side just left of the
        observed points of that week (experimental outermost), so that neither
        the points nor the other treatment hide them.
        """
        r_max = max((self._radius_in(v) for v in self.all_n), default=0.0)
        right = -(r_max + 0.05)
        if treatment == "experimental":
            right -= _CROSS_W + 0.025
        return right - _CROSS_W, right

    def _weeks(self) -> list[float]:
        ws = {0.0}
        for p in self.paths:
            ws.update(p.weeks.tolist())
        for sub in self.model.values():
            ws.update(sub.loc[np.isfinite(sub["estimate"]), "week"].tolist())
        if self.diff is not None:
            ws.update(self.diff["week"].tolist())
        return sorted(ws)

    def _ylim(self) -> tuple[float, float, list[float]]:
        vals = [0.0]
        for p in self.paths:
            vals.extend(p.means.tolist())
        for sub in self.model.values():
            for c in ("estimate", "lo", "hi"):
                vals.extend(sub[c][np.isfinite(sub[c])].tolist())
        lo, hi = min(vals), max(vals)
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        lo, hi = lo - 0.07 * span, hi + 0.07 * span
        ticks = list(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
        ticks = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
        return lo, hi, ticks

    def _dlim(self) -> tuple[float, float, list[float]]:
        assert self.diff is not None
        d = self.diff
        vals = [0.0, *d["estimate"].tolist()]
        for c in ("lo", "hi"):
            vals.extend(d[c][np.isfinite(d[c])].tolist())
        lo, hi = min(vals), max(vals)
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        lo, hi = lo - 0.12 * span, hi + 0.12 * span
        ticks_hi = hi
        if self.diff_has_p:  # headroom for the row of p-values
            hi += 0.22 * (hi - lo)
        ticks = list(MaxNLocator(nbins=3, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
        ticks = [t for t in ticks if lo - 1e-9 <= t <= ticks_hi + 1e-9]
        return lo, hi, ticks

    # ---- drawing ------------------------------------------------------------

    def draw(self) -> Figure:
        weeks = self._weeks()
        wmax = max(weeks) if max(weeks) > 0 else 1.0
        ylo, yhi, yticks = self._ylim()
        ydec = tick_decimals(yticks)
        ytxt = [fmt(t, ydec) for t in yticks]
        has_diff = self.diff is not None
        if has_diff:
            dlo, dhi, dticks = self._dlim()
            ddec = tick_decimals(dticks)
            ytxt += [fmt(t, ddec) for t in dticks]
        tick_w = max(self.m.width(t, _FS) for t in ytxt)
        tick_h = (3 + 2) / 72  # tick length + pad

        # vertical geometry (inches from the top)
        title_lines = (
            self.m.wrap(self.title, self.width - 2 * _MARGIN, _FS_TITLE, weight="bold")
            if self.title
            else []
        )
        top = _MARGIN + len(title_lines) * _FS_TITLE * 1.3 / 72 + (0.1 if title_lines else 0.04)
        main_h = round(0.56 * self.width, 3)
        diff_gap = 0.24  # holds the lower panel's heading
        diff_h = 0.95 if has_diff else 0.0

        # horizontal geometry: rotated y labels, then tick labels
        ylab_text = f"Mean change from baseline ({self.unit})"
        dlab_text = f"Difference ({self.unit})"
        ylab = self.m.wrap(ylab_text, main_h, _FS)
        dlab = self.m.wrap(dlab_text, diff_h, _FS) if has_diff else []
        n_lab = max(len(ylab), len(dlab))
        left = _MARGIN + n_lab * _LINE_H + 0.05 + tick_w + tick_h
        right = 0.12
        axw = self.width - left - right

        # labels: study names when few and they fit, else numbers with a key
        cands: list[tuple[str, list[_Placement]]] = []
        if len(self.study_order) <= _MAX_FULL_LABELS:
            cands.append(("full", []))
        cands.append(("numbers", []))
        for mode, _ in cands:
            xlo, xhi = self._xlim(weeks, wmax, axw, mode)
            placements, bad = self._place_labels(mode, (xlo, xhi), (ylo, yhi), axw, main_h, weeks)
            if mode == "numbers" or not bad:
                break
        self.mode = mode
        self.key = (
            {i + 1: self.study_label[s] for i, s in enumerate(self.study_order)}
            if mode == "numbers"
            else {}
        )

        # the figure, provisional height; legends are measured before fixing it
        fig = fixed_figure(self.width, 6.0)
        legends = self._legends(fig)
        leg_h = legends.flow(self.width - 2 * _MARGIN, 0.06)
        key_cols, key_lines = self._key_layout()
        note_lines = [
            ln for note in self._notes_text() for ln in self.m.wrap(note, self.width - 0.16, _FS)
        ]
        axes_bottom = top + main_h + (diff_gap + diff_h if has_diff else 0.0)
        below = tick_h + _LINE_H + 0.02 + _LINE_H + 0.12
        key_h = (key_lines * _SMALL_H + 0.08) if key_lines else 0.0
        note_h = len(note_lines) * _SMALL_H + (0.06 if note_lines else 0.0)
        height = axes_bottom + below + leg_h + key_h + note_h + _MARGIN
        fig.set_size_inches(self.width, height)

        ft = FigureText(fig, self.width, height, self.family)
        fy = ft.fy

        ax = fig.add_axes((left / self.width, fy(top + main_h), axw / self.width, main_h / height))
        ax.set_xlim(xlo, xhi)
        ax.set_ylim(ylo, yhi)
        self._axis(ax, weeks, yticks, ydec)
        bottom_ax = ax
        if has_diff:
            dax = fig.add_axes(
                (left / self.width, fy(axes_bottom), axw / self.width, diff_h / height)
            )
            dax.set_xlim(xlo, xhi)
            dax.set_ylim(dlo, dhi)
            self._axis(dax, weeks, dticks, ddec)
            ax.xaxis.set_major_formatter(NullFormatter())
            bottom_ax = dax
        ax.tick_params(labelsize=_FS, labelfontfamily=self.family)
        bottom_ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _week_text(v)))

        # axis labels
        ft.put(left + axw / 2, axes_bottom + tick_h + _LINE_H + 0.02 + _LINE_H / 2,
               "Week (0 = baseline)", ha="center")  # fmt: skip
        for lines, (y_top, h) in ((ylab, (top, main_h)), (dlab, (axes_bottom - diff_h, diff_h))):
            ft.vertical(left - tick_w - tick_h - 0.05, y_top + h / 2, lines, _LINE_H)
        ft.title(title_lines, _MARGIN, _FS_TITLE)

        # data
        self._draw_main(ax, (xlo, xhi), axw)
        self._draw_labels(ax, placements)
        if has_diff:
            heading = (
                f"Difference, {self.names['experimental']} {MINUS} "
                f"{self.names['control']} (model-based, 95% CI)"
            )
            ft.put(left, top + main_h + diff_gap - 0.06, self.m.ellipsize(heading, axw, _FS),
                   va="baseline", fontweight="bold")  # fmt: skip
            self._draw_diff(dax, (xlo, xhi), axw)

        # legends under the x label, rows centred
        y = axes_bottom + below
        y = legends.place(y, self.width, 0.06, fy)
        y -= 0.06
        if key_lines:
            y += 0.08
            self._draw_key(ft, key_cols, y)
            y += key_lines * _SMALL_H
        if note_lines:
            y += 0.06
        ft.stack(_MARGIN, y, note_lines, _SMALL_H, size=_FS_SMALL, color=GREY)
        fig.hairtrial_notes = note_lines  # type: ignore[attr-defined]
        fig.hairtrial_key = self.key  # type: ignore[attr-defined]
        fig.hairtrial_legend_labels = legends.labels()  # type: ignore[attr-defined]
        return fig

    def _xlim(self, weeks: list[float], wmax: float, axw: float, mode: str) -> tuple[float, float]:
        """x limits leaving room for the baseline point and the labels right of the last week."""
        lab_w = 0.0
        ends = [p for p in self.paths if p.weeks[-1] == max(weeks)]
        for p in ends:
            text = p.label if mode == "full" else str(len(self.study_order))
            lab_w = max(lab_w, self.m.width(text, _FS_LABEL))
        r_max = max((self._radius_in(v) for v in self.all_n), default=0.05)
        pad_r = r_max + 0.04 + lab_w + 0.06
        pad_l = 0.14
        # (wmax - xlo) / (xhi - xlo) * axw = axw - pad_r, and 0 sits pad_l from the left
        inner = axw - pad_r - pad_l
        scale = wmax / max(inner, 0.5 * axw)  # weeks per inch
        return -pad_l * scale, wmax + pad_r * scale

    def _axis(self, ax: Axes, weeks: list[float], yticks: list[float], dec: int) -> None:
        ax.xaxis.set_major_locator(FixedLocator(weeks))
        ax.yaxis.set_major_locator(FixedLocator(yticks))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p, d=dec: fmt(v, d)))
        ax.tick_params(labelsize=_FS, labelfontfamily=self.family)
        ax.axhline(0.0, color=GREY, lw=0.5, zorder=0.5)

    def _draw_main(self, ax: Axes, xlim: tuple[float, float], axw: float) -> None:
        per_in = (xlim[1] - xlim[0]) / axw
        # observed arm paths (thin), then points, big first
        for p in self.paths:
            c = _COLOURS[p.treatment]
            xs, ys = p.weeks, p.means
            if p.from_baseline:
                xs, ys = np.r_[0.0, xs], np.r_[0.0, ys]
            ax.plot(xs, ys, color=c, lw=0.5, alpha=0.45, zorder=1.5, solid_capstyle="round")
        # model: bands, crossbars, lines
        for t in ("control", "experimental"):
            sub = self.model.get(t)
            if sub is None:
                continue
            c = _COLOURS[t]
            w = sub["week"].to_numpy(float)
            est, lo, hi = (sub[k].to_numpy(float) for k in ("estimate", "lo", "hi"))
            est_ok = np.isfinite(est)
            ci_ok = np.isfinite(lo) & np.isfinite(hi)
            line_runs = _runs(est_ok)
            alone = {int(r[0]) for r in line_runs if len(r) == 1}
            for r in _runs(ci_ok & est_ok):
                if len(r) >= 2:
                    ax.fill_between(w[r], lo[r], hi[r], color=c, alpha=0.18, lw=0, zorder=2)
            ci_runs = {int(r[0]) for r in _runs(ci_ok & est_ok) if len(r) == 1}
            a, b = (v * per_in for v in self._alone_span(t))
            for i in sorted(ci_runs | alone):
                if i in alone:  # crossbar: CI box and the estimate across it
                    if ci_ok[i]:
                        ax.add_patch(
                            Rectangle(
                                (w[i] + a, lo[i]),
                                b - a,
                                hi[i] - lo[i],
                                facecolor=c,
                                alpha=0.25,
                                lw=0,
                                zorder=2,
                            )
                        )
                    ax.plot(
                        [w[i] + a, w[i] + b],
                        [est[i], est[i]],
                        color=c,
                        lw=2.0,
                        solid_capstyle="butt",
                        zorder=4.5,
                    )
                else:  # isolated CI on a line: a whisker
                    ax.plot([w[i], w[i]], [lo[i], hi[i]], color=c, lw=0.8, alpha=0.6, zorder=2)
            for r in line_runs:
                if len(r) >= 2:
                    ax.plot(w[r], est[r], color=c, lw=1.8, zorder=4.5, solid_capstyle="round")
        # points above the bands, below the model lines' labels
        pts = [(p, j) for p in self.paths for j in range(len(p.weeks))]
        pts.sort(key=lambda pj: -pj[0].n[pj[1]])
        for p, j in pts:
            c = _COLOURS[p.treatment]
            hollow = bool(p.derived[j])
            ax.scatter(
                [p.weeks[j]],
                [p.means[j]],
                s=[float(self._area(p.n[j]))],
                marker="o",
                facecolors="white" if hollow else c,
                edgecolors=c,
                linewidths=1.0 if hollow else 0.5,
                alpha=0.9 if hollow else 0.75,
                zorder=3,
            )
        # the baseline: change 0 by definition
        ax.scatter([0.0], [0.0], s=[18.0], marker="o", color="black", zorder=5, lw=0)

    def _draw_labels(self, ax: Axes, placements: list[_Placement]) -> None:
        self.label_artists = []
        for pl in placements:
            props = None
            if pl.leader:
                props = {
                    "arrowstyle": "-",
                    "color": pl.colour,
                    "lw": 0.4,
                    "alpha": 0.8,
                    "shrinkA": 0.5,
                    "shrinkB": pl.radius * 72 + 0.5,
                }
            ann = ax.annotate(
                pl.text,
                xy=(pl.x, pl.y),
                xytext=(pl.ox * 72, pl.oy * 72),
                textcoords="offset points",
                ha=pl.ha,
                va=pl.va,
                fontsize=_FS_LABEL,
                color=pl.colour,
                fontfamily=self.family,
                arrowprops=props,
                annotation_clip=False,
                zorder=6,
                path_effects=_HALO,
            )
            self.label_artists.append(ann)
        ax.figure.hairtrial_labels = self.label_artists  # type: ignore[attr-defined]

    def _draw_diff(self, ax: Axes, xlim: tuple[float, float], axw: float) -> None:
        assert self.diff is not None
        d = self.diff
        w, est, lo, hi, p = (d[k].to_numpy(float) for k in ("week", "estimate", "lo", "hi", "p"))
        ok = np.isfinite(lo) & np.isfinite(hi)
        for i in range(len(d)):
            if ok[i]:
                ax.plot([w[i], w[i]], [lo[i], hi[i]], color="black", lw=0.9, zorder=3)
        ax.scatter(w, est, s=16, marker="D", color="black", lw=0, zorder=4)
        per_in = (xlim[1] - xlim[0]) / axw
        x_in = (w - xlim[0]) / per_in
        # the estimate beside each point: right if it fits before the next week, else left
        dec = format_decimals(np.r_[est, lo[ok], hi[ok]])
        nxt = np.r_[x_in[1:], axw]
        prv = np.r_[0.0, x_in[:-1]]
        for i in range(len(d)):
            text = fmt(est[i], dec)
            if len(d) == 1 and ok[i]:
                text += f" (95% CI {fmt(lo[i], dec)} to {fmt(hi[i], dec)})"
            tw = self.m.width(text, _FS_SMALL) + 0.08
            if tw < nxt[i] - x_in[i] - 0.05:
                side = 1
            elif tw < x_in[i] - prv[i] - 0.05:
                side = -1
            else:
                continue
            ax.annotate(
                text,
                xy=(w[i], est[i]),
                xytext=(4.0 * side, 0.0),
                textcoords="offset points",
                ha="left" if side > 0 else "right",
                va="center",
                fontsize=_FS_SMALL,
                color="black",
                fontfamily=self.family,
                annotation_clip=False,
                zorder=5,
                path_effects=_HALO,
            )
        # p-values in a row along the top of the panel, when they fit between weeks
        if self.diff_has_p:
            texts = [fmt_p(v) if math.isfinite(v) else "" for v in p]
            widths = np.array([self.m.width(t, _FS_SMALL) for t in texts])
            room = np.r_[np.diff(x_in), np.inf]
            half_edge = axw - x_in
            fits = all(
                (widths[i] + widths[i + 1]) / 2 + 0.06 < room[i] for i in range(len(d) - 1)
            ) and all(widths / 2 < half_edge)
            if fits:
                for i, t in enumerate(texts):
                    ax.text(
                        w[i],
                        1.0,
                        t,
                        transform=ax.get_xaxis_transform(),
                        ha="center",
                        va="top",
                        fontsize=_FS_SMALL,
                        color=GREY,
                        fontfamily=self.family,
                        zorder=5,
                    )

    # ---- label placement ------------------------------------------------------

    def _place_labels(
        self,
        mode: str,
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        axw: float,
        axh: float,
        weeks: list[float],
    ) -> tuple[list[_Placement], bool]:
        """Place one label per arm path at its last point, in axes inches.

        Returns the placements and whether any of them overlaps something.
        """

        def X(x: float) -> float:
            return (x - xlim[0]) / (xlim[1] - xlim[0]) * axw

        def Y(y: float) -> float:
            return (y - ylim[0]) / (ylim[1] - ylim[0]) * axh

        number = {s: i + 1 for i, s in enumerate(self.study_order)}
        # obstacles: points (boxes), segments (observed paths and model lines), crossbars
        point_boxes: list[tuple[float, float, float, float]] = [
            (X(0) - 0.03, Y(0) - 0.03, X(0) + 0.03, Y(0) + 0.03)
        ]
        segments: list[tuple[tuple[float, float], tuple[float, float]]] = []
        ends = []
        for p in self.paths:
            xs, ys = p.weeks, p.means
            if p.from_baseline:
                xs, ys = np.r_[0.0, xs], np.r_[0.0, ys]
            pts = [(X(a), Y(b)) for a, b in zip(xs, ys, strict=True)]
            segments.extend(zip(pts[:-1], pts[1:], strict=True))
            for j in range(len(p.weeks)):
                r = self._radius_in(p.n[j])
                cx, cy = X(p.weeks[j]), Y(p.means[j])
                point_boxes.append((cx - r, cy - r, cx + r, cy + r))
            ends.append(p)
        model_boxes: list[tuple[float, float, float, float]] = []
        for t, sub in self.model.items():
            w = sub["week"].to_numpy(float)
            est, lo, hi = (sub[k].to_numpy(float) for k in ("estimate", "lo", "hi"))
            xa, xb = self._alone_span(t)
            for r in _runs(np.isfinite(est)):
                if len(r) == 1:
                    i = int(r[0])
                    a = lo[i] if math.isfinite(lo[i]) else est[i]
                    b = hi[i] if math.isfinite(hi[i]) else est[i]
                    model_boxes.append((X(w[i]) + xa, Y(a), X(w[i]) + xb, Y(b)))
                else:
                    pts = [(X(w[i]), Y(est[i])) for i in r]
                    for s in zip(pts[:-1], pts[1:], strict=True):
                        segments.append(s)
                        segments.append(s)  # model lines count double
        # crowded ends first: they have the fewest good places
        end_xy = np.array([(X(p.weeks[-1]), Y(p.means[-1])) for p in ends]).reshape(-1, 2)

        order = crowded_first(end_xy, 0.4, lambda k: (-X(ends[k].weeks[-1]), -ends[k].n[-1], k))
        seg_arr = np.array([[*a, *b] for a, b in segments], dtype=float).reshape(-1, 4)
        leaders = np.zeros((0, 4))
        point_arr = np.array(point_boxes, dtype=float).reshape(-1, 4)
        model_arr = np.array(model_boxes, dtype=float).reshape(-1, 4)
        placed_arr = np.zeros((0, 4))
        h = _FS_LABEL * _TEXT_H
        dirs = [(1, 0), (1, 1), (1, -1), (0, 1), (0, -1), (-1, 1), (-1, -1), (-1, 0)]
        rings = [[(extra, d) for d in dirs] for extra in (0.0, 0.08, 0.16, 0.26, 0.38)]
        placed: list[tuple[float, float, float, float]] = []
        out: list[_Placement] = []
        any_bad = False
        for k in order:
            p = ends[k]
            text = p.label if mode == "full" else str(number[p.study])
            tw = self.m.width(text, _FS_LABEL)
            cx, cy = end_xy[k]
            r = self._radius_in(p.n[-1])

            def cost(
                ring: int,
                di: int,
                cand: tuple,
                at: tuple = (cx, cy, r, tw),
                placed_arr: np.ndarray = placed_arr,
                leaders: np.ndarray = leaders,
            ) -> Any:
                cx, cy, r, tw = at
                extra, (dx, dy) = cand
                norm = math.hypot(dx, dy)
                dist = r + 0.02 + extra
                ox, oy = dx / norm * dist, dy / norm * dist
                x0 = cx + ox if dx > 0 else (cx + ox - tw if dx < 0 else cx + ox - tw / 2)
                y0 = cy + oy if dy > 0 else (cy + oy - h if dy < 0 else cy + oy - h / 2)
                box = (x0, y0, x0 + tw, y0 + h)
                pad = (box[0] - 0.01, box[1] - 0.005, box[2] + 0.01, box[3] + 0.005)
                hard = 0.0
                if box[0] < 0 or box[1] < 0 or box[2] > axw or box[3] > axh:
                    hard += 1000
                area = tw * h
                clash = 100 * _overlap(pad, placed_arr) / area
                if ring > 0:  # the leader must not cross a placed label
                    lead = np.array([[cx, cy, cx + ox, cy + oy]])
                    clash += 60 * _segs_hit_box(lead, placed_arr)
                clash += 60 * _segs_hit_box(leaders, pad)
                hard += clash
                hard += 40 * _overlap(pad, point_arr) / area
                hard += 20 * _overlap(pad, model_arr) / area
                hard += 3 * _segs_hit_box(seg_arr, pad)
                return hard + ring * 2.5 + di * 0.15, (hard, ox, oy, dx, dy, box, clash)

            best = best_position(rings, cost, lambda b, _ring: b.info[0] == 0)
            ring = best.ring
            _, ox, oy, dx, dy, box, clash = best.info
            outside = box[0] < 0 or box[1] < 0 or box[2] > axw or box[3] > axh
            any_bad |= clash > 0 or outside or ring > 2
            placed.append(box)
            placed_arr = np.array(placed, dtype=float)
            if ring > 0:
                leaders = np.vstack([leaders, [cx, cy, cx + ox, cy + oy]])
            out.append(
                _Placement(
                    text=text,
                    colour=_COLOURS[p.treatment],
                    x=float(p.weeks[-1]),
                    y=float(p.means[-1]),
                    ox=ox,
                    oy=oy,
                    ha={1: "left", -1: "right", 0: "center"}[dx],
                    va={1: "bottom", -1: "top", 0: "center"}[dy],
                    leader=ring > 0,
                    radius=r,
                )
            )
        out.sort(key=lambda pl: (pl.text, pl.x, pl.y))
        return out, any_bad

    # ---- legends, key, notes --------------------------------------------------

    def _legends(self, fig: Figure) -> LegendBlocks:
        out = LegendBlocks(fig, self.family, handletextpad=0.5, handlelength=2.2, gap=_LEG_GAP)
        handles: list = []
        names = []
        for t in TREATMENTS:
            c = _COLOURS[t]
            dot = Line2D([], [], ls="none", marker="o", ms=5, mfc=c, mec=c, alpha=0.75)
            if self.fitted:
                band = Patch(facecolor=c, alpha=0.18, lw=0)
                line = Line2D([], [], color=c, lw=1.8)
                handles.append((band, line, dot))
            else:
                handles.append((Line2D([], [], color=c, lw=0.5, alpha=0.6), dot))
            names.append(self.names[t])
        out.add(handles, names, "Treatment")
        if self.paths:
            handles, names = [], []
            if self.any_reported:
                handles.append(Line2D([], [], ls="none", marker="o", ms=5, mfc=GREY, mec=GREY))
                names.append("As reported")
            if self.any_derived:
                handles.append(
                    Line2D([], [], ls="none", marker="o", ms=5, mfc="white", mec=GREY, mew=1.0)
                )
                names.append(DERIVED_LABEL)
            out.add(handles, names, "Arm means")
            sizes, refs = size_handles(self.all_n, self._area, 0.7)
            out.add(sizes, refs, "Arm n (area)", ncol=len(refs))
        return out

    def _key_layout(self) -> tuple[list[list[tuple[str, str]]], int]:
        """Columns of (number, label) filling the width; returns (columns, lines)."""
        if not self.key:
            return [], 0
        items = [(str(k), v) for k, v in self.key.items()]
        num_w = self.m.width(str(len(items)), _FS_SMALL) + 0.05
        col_w = num_w + max(self.m.width(v, _FS_SMALL) for _, v in items) + 0.18
        avail = self.width - 2 * _MARGIN - self.m.width("Studies:", _FS_SMALL, "bold") - 0.1
        ncol = max(1, min(len(items), int(avail // col_w)))
        nrow = math.ceil(len(items) / ncol)
        cols = [items[i * nrow : (i + 1) * nrow] for i in range(ncol)]
        self._key_geom = (num_w, col_w)
        return [c for c in cols if c], nrow

    def _draw_key(self, ft: FigureText, cols: list[list[tuple[str, str]]], y: float) -> None:
        num_w, col_w = self._key_geom
        head = "Studies:"
        x = _MARGIN
        ft.put(x, y + _SMALL_H / 2, head, size=_FS_SMALL, fontweight="bold")
        x += self.m.width(head, _FS_SMALL, "bold") + 0.1
        for col in cols:
            for r, (num, lab) in enumerate(col):
                yy = y + (r + 0.5) * _SMALL_H
                ft.put(x + num_w - 0.05, yy, num, size=_FS_SMALL, ha="right", fontweight="bold")
                ft.put(x + num_w, yy, lab, size=_FS_SMALL)
            x += col_w

    def _notes_text(self) -> list[str]:
        what = []
        if self.fitted:
            alone = (
                "; a week estimated alone: box = 95% CI, bar = estimate, drawn just left of "
                "the week"
                if self._any_alone()
                else ""
            )
            what.append(f"Thick lines and shaded bands: model-based mean change (95% CI){alone}.")
        if self.paths:
            what.append(
                "Points: observed arm means, area \u221d n, joined within arm from the baseline "
                "(week 0: change 0 by definition) and labelled at the arm's last week."
            )
        first = [n for n in self.notes if n.startswith("Model not fitted")]
        rest = [n for n in self.notes if n not in first]
        return [*first, " ".join(what), *rest] if what else self.notes

    def _any_alone(self) -> bool:
        return any(
            len(r) == 1
            for sub in self.model.values()
            for r in _runs(np.isfinite(sub["estimate"].to_numpy(float)))
        )
