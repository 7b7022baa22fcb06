"""Study-level effect sizes for binary outcomes (2x2 tables), as metafor 3.8 ``escalc``.

Each study is one 2x2 table: ``ai`` events among ``n1i`` participants in arm 1 (the
experimental arm) and ``ci`` events among ``n2i`` in arm 2 (the control arm); ``bi = n1i - ai``
and ``di = n2i - ci`` are the non-events. A positive log risk ratio, log odds ratio or risk
difference means more events in arm 1.

:func:`binary_effects` reproduces ``metafor::escalc(measure = "RR" | "OR" | "RD")`` (metafor
3.8-1, ``vtype = "LS"``), vectorised over studies:

* ``RR``: yi = log(p1 / p2), vi = 1/ai - 1/n1i + 1/ci - 1/n2i;
* ``OR``: yi = log(p1 / (1 - p1)) - log(p2 / (1 - p2)), vi = 1/ai + 1/bi + 1/ci + 1/di;
* ``RD``: yi = p1 - p2, vi = p1 (1 - p1) / n1i + p2 (1 - p2) / n2i;

with p1 = ai / n1i and p2 = ci / n2i computed after the continuity correction. The zero-cell
options are metafor's: ``add`` (default 1/2) is added to every cell of the tables selected by
``to`` (``"only0"``: tables with a zero cell, the default; ``"all"``: every table;
``"if0all"``: every table if any table has a zero cell; ``"none"``: no table). Double-zero
tables (no events in either arm, or only events in both: ``ai = ci = 0`` or ``bi = di = 0``)
carry no information on a ratio measure; with ``drop00=True`` (the default here for RR and
OR, unlike escalc whose default is ``False``) their yi / vi are NaN and the table is reported
as excluded, and they are kept for RD (``drop00=False``), where a double-zero table is an
estimate of a zero difference.

``cc="treatment-arm"`` replaces the constant correction by the treatment-arm continuity
correction of Sweeting, Sutton & Lambert (2004) [1]_, as ``meta::metabin(incr = "TACC")``: in
each table selected by ``to``, every cell of arm 1 gets ``2 * add * n1i / (n1i + n2i)`` and every
cell of arm 2 gets ``2 * add * n2i / (n1i + n2i)`` (the two add up to ``2 * add``, and equal
``add`` for balanced arms).

The column ``correction`` of the result says per study which correction was applied.

:func:`combine_arms` and :func:`binary_tables` turn arm-level rows into one 2x2 table per
trial, combining arms of the same treatment within a trial (summing events and n, Cochrane
Handbook 6.5.2.10 / 23.3.4) so that a shared control arm is never counted twice.

References
----------
.. [1] Sweeting MJ, Sutton AJ, Lambert PC (2004). What to add to nothing? Use and avoidance of
   continuity corrections in meta-analysis of sparse data. Statistics in Medicine
   23:1351-1375.
.. [2] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CC_METHODS",
    "MEASURES",
    "TO_OPTIONS",
    "binary_effects",
    "binary_tables",
    "combine_arms",
    "double_zero",
    "zero_cell",
]

#: Effect measures (metafor spelling; RR and OR on the log scale).
MEASURES: tuple[str, ...] = ("RR", "OR", "RD")
#: Which tables get the continuity correction (metafor's ``to``).
TO_OPTIONS: tuple[str, ...] = ("only0", "all", "if0all", "none")
#: Kinds of continuity correction.
CC_METHODS: tuple[str, ...] = ("constant", "treatment-arm")

#: ``correction`` value of a table left uncorrected.
NO_CORRECTION = "none"
#: ``correction`` value of an excluded double-zero table.
EXCLUDED_DOUBLE_ZERO = "excluded: double zero"


def _counts(
    ai: ArrayLike, n1i: ArrayLike, ci: ArrayLike, n2i: ArrayLike
) -> tuple[NDArray[np.float64], ...]:
    arrs = [np.atleast_1d(np.asarray(x, dtype=float)) for x in (ai, n1i, ci, n2i)]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1 or arrs[0].ndim != 1:
        raise ValueError("ai, n1i, ci and n2i must be 1-d and of the same length")
    a, n1, c, n2 = arrs
    if not all(np.all(np.isfinite(x)) for x in arrs):
        raise ValueError("counts must be finite")
    if np.any(a < 0) or np.any(c < 0):
        raise ValueError("event counts must be non-negative")
    if np.any(a > n1) or np.any(c > n2):
        raise ValueError("event counts cannot exceed the group sizes")
    if np.any(n1 <= 0) or np.any(n2 <= 0):
        raise ValueError("group sizes must be positive")
    return a, n1 - a, c, n2 - c


def double_zero(ai: ArrayLike, n1i: ArrayLike, ci: ArrayLike, n2i: ArrayLike) -> NDArray[np.bool_]:
    """Double-zero tables: no events in either arm, or only events in both (escalc ``id00``).

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and group sizes in arm 1 and arm 2.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> double_zero([0, 3, 5], [10, 10, 5], [0, 0, 5], [10, 10, 5]).tolist()
    [True, False, True]
    """
    a, b, c, d = _counts(ai, n1i, ci, n2i)
    return ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))


def zero_cell(ai: ArrayLike, n1i: ArrayLike, ci: ArrayLike, n2i: ArrayLike) -> NDArray[np.bool_]:
    """Tables with at least one zero cell (escalc ``id0``).

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and group sizes in arm 1 and arm 2.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> zero_cell([0, 3, 5], [10, 10, 5], [2, 1, 4], [10, 10, 5]).tolist()
    [True, False, True]
    """
    a, b, c, d = _counts(ai, n1i, ci, n2i)
    return (a == 0) | (b == 0) | (c == 0) | (d == 0)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def binary_effects(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    *,
    measure: str,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool | None = None,
    cc: str = "constant",
) -> pd.DataFrame:
    """Effect sizes and sampling variances of 2x2 tables (metafor ``escalc`` RR / OR / RD).

    Parameters
    ----------
    ai, n1i : array_like
        Events and participants in arm 1 (experimental).
    ci, n2i : array_like
        Events and participants in arm 2 (control).
    measure : {"RR", "OR", "RD", "PETO"}
        Log risk ratio, log odds ratio or risk difference; ``"PETO"``: Peto's one-step log
        odds ratio (escalc ``"PETO"``, yi = (O - E) / V, vi = 1 / V).
    add : float, default 0.5
        Continuity correction (for ``cc="treatment-arm"``: half the total per table).
    to : {"only0", "all", "if0all", "none"}, default "only0"
        Which tables are corrected (metafor's ``to``).
    drop00 : bool, optional
        Exclude double-zero tables (yi = vi = NaN). Default: True for RR and OR, False for RD.
        ``escalc`` itself defaults to False for every measure.
    cc : {"constant", "treatment-arm"}, default "constant"
        Constant correction (metafor) or the treatment-arm correction of Sweeting et al.

    Returns
    -------
    pandas.DataFrame
        One row per table with columns ``ai, bi, ci, di, n1i, n2i`` (uncorrected counts),
        ``add1, add2`` (the amount added to each cell of arm 1 / arm 2), ``yi, vi``,
        ``double_zero``, ``included`` (finite yi and vi) and ``correction`` (what was done:
        ``"none"``, ``"0.5 added to each cell"``, ``"treatment-arm: +0.667 arm 1, +0.333 arm 2"``,
        ``"excluded: double zero"``). ``attrs["notes"]`` lists excluded tables and tables
        whose variance is 0 or undefined.

    Raises
    ------
    ValueError
        For an unknown option, negative or impossible counts, or a non-positive ``add`` with
        a correction requested.

    Examples
    --------
    >>> df = binary_effects([4, 17], [25, 20], [0, 9], [25, 20], measure="RR")
    >>> df["correction"].tolist()
    ['0.5 added to each cell', 'none']
    >>> round(float(df["yi"].iloc[0]), 6)
    2.197225
    """
    if measure not in (*MEASURES, "PETO"):
        raise ValueError(f"measure must be one of {MEASURES} or 'PETO', got {measure!r}")
    if to not in TO_OPTIONS:
        raise ValueError(f"to must be one of {TO_OPTIONS}, got {to!r}")
    if cc not in CC_METHODS:
        raise ValueError(f"cc must be one of {CC_METHODS}, got {cc!r}")
    if not np.isfinite(add) or add < 0:
        raise ValueError(f"add must be a finite non-negative number, got {add!r}")
    if drop00 is None:
        drop00 = measure != "RD"

    a0, b0, c0, d0 = _counts(ai, n1i, ci, n2i)
    n1, n2 = a0 + b0, c0 + d0
    k = a0.size
    id00 = ((a0 == 0) & (c0 == 0)) | ((b0 == 0) & (d0 == 0))
    dropped = id00 if drop00 else np.zeros(k, dtype=bool)
    id0 = ((a0 == 0) | (b0 == 0) | (c0 == 0) | (d0 == 0)) & ~dropped

    if to == "all":
        sel = ~dropped
    elif to == "only0":
        sel = id0
    elif to == "if0all":
        sel = ~dropped if bool(np.any(id0)) else np.zeros(k, dtype=bool)
    else:
        sel = np.zeros(k, dtype=bool)
    if add == 0:
        sel = np.zeros(k, dtype=bool)

    if cc == "constant":
        add1 = np.where(sel, float(add), 0.0)
        add2 = add1.copy()
    else:
        add1 = np.where(sel, 2.0 * add * n1 / (n1 + n2), 0.0)
        add2 = np.where(sel, 2.0 * add * n2 / (n1 + n2), 0.0)

    a, b, c, d = a0 + add1, b0 + add1, c0 + add2, d0 + add2
    m1, m2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = a / m1, c / m2
        if measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1.0 / a - 1.0 / m1 + 1.0 / c - 1.0 / m2
        elif measure == "OR":
            yi = np.log(p1 / (1.0 - p1)) - np.log(p2 / (1.0 - p2))
            vi = 1.0 / a + 1.0 / b + 1.0 / c + 1.0 / d
        elif measure == "RD":
            yi = p1 - p2
            vi = p1 * (1.0 - p1) / m1 + p2 * (1.0 - p2) / m2
        else:  # PETO: one-step log odds ratio, (O - E) / V and 1 / V
            nt = m1 + m2
            xt, yt = a + c, b + d
            e1 = xt * m1 / nt
            v_hyp = xt * yt * (m1 / nt) * (m2 / nt) / (nt - 1.0)
            yi = (a - e1) / v_hyp
            vi = 1.0 / v_hyp
    # as escalc: +-Inf or NaN in either recodes both to missing; a negative vi is missing
    undefined = dropped | ~np.isfinite(yi) | ~np.isfinite(vi)
    yi = np.where(undefined, np.nan, yi)
    vi = np.where(undefined | (vi < 0), np.nan, vi)

    correction = np.full(k, NO_CORRECTION, dtype=object)
    for i in np.flatnonzero(sel):
        if cc == "constant":
            correction[i] = f"{_fmt(add)} added to each cell"
        else:
            correction[i] = (
                f"treatment-arm: +{_fmt(add1[i])} arm 1, +{_fmt(add2[i])} arm 2 (each cell)"
            )
    correction[dropped] = EXCLUDED_DOUBLE_ZERO

    notes: list[str] = []
    if np.any(dropped):
        idx = ", ".join(str(i) for i in np.flatnonzero(dropped))
        notes.append(f"double-zero tables excluded for {measure} (rows {idx})")
    bad = ~dropped & ~(np.isfinite(yi) & np.isfinite(vi) & (vi > 0))
    if np.any(bad):
        idx = ", ".join(str(i) for i in np.flatnonzero(bad))
        notes.append(
            f"rows {idx}: {measure} undefined or with zero variance (zero cells, to={to!r})"
        )

    out = pd.DataFrame(
        {
            "ai": a0,
            "bi": b0,
            "ci": c0,
            "di": d0,
            "n1i": n1,
            "n2i": n2,
            "add1": add1,
            "add2": add2,
            "yi": yi,
            "vi": vi,
            "double_zero": id00,
            "included": np.isfinite(yi) & np.isfinite(vi),
            "correction": correction.astype(str),
        }
    )
    out.attrs["measure"] = measure
    out.attrs["notes"] = tuple(notes)
    return out


def combine_arms(
    arms: pd.DataFrame,
    *,
    study: str = "study",
    treatment: str = "treatment",
    events: str = "events",
    n: str = "n",
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """Combine the arms of the same treatment within a trial by summing events and n.

    A multi-arm trial with, e.g., two doses of one drug and one placebo arm becomes one
    drug group and one placebo group, so that the shared placebo arm enters a pairwise
    comparison once (Cochrane Handbook 6.5.2.10 / 23.3.4). For dichotomous outcomes the
    combined group's events and size are the sums.

    Parameters
    ----------
    arms : pandas.DataFrame
        One row per arm.
    study, treatment, events, n : str
        Column names.
    by : sequence of str, optional
        Further grouping columns (e.g. outcome, week).

    Returns
    -------
    pandas.DataFrame
        One row per study x treatment (x ``by``) with the summed ``events`` and ``n`` and
        ``n_arms`` (the number of arms combined); sorted by the grouping columns.

    Raises
    ------
    ValueError
        For missing columns, missing values or events larger than n.

    Examples
    --------
    >>> arms = pd.DataFrame({"study": ["A", "A", "A"], "treatment": ["d", "d", "p"],
    ...                      "events": [6, 9, 2], "n": [30, 31, 30]})
    >>> combine_arms(arms)[["treatment", "events", "n", "n_arms"]].values.tolist()
    [['d', 15, 61, 2], ['p', 2, 30, 1]]
    """
    keys = [study, *by, treatment]
    missing = [c for c in (*keys, events, n) if c not in arms.columns]
    if missing:
        raise ValueError(f"missing columns: {missing}")
    if arms[[*keys, events, n]].isna().any().any():
        raise ValueError("missing values in the arm table")
    if (arms[events] > arms[n]).any() or (arms[events] < 0).any() or (arms[n] <= 0).any():
        raise ValueError("events must lie in [0, n] and n must be positive")
    out = (
        arms.groupby(keys, sort=True, dropna=False)
        .agg(**{events: (events, "sum"), n: (n, "sum"), "n_arms": (events, "size")})
        .reset_index()
    )
    return out


def binary_tables(
    arms: pd.DataFrame,
    *,
    experimental: str,
    control: str,
    study: str = "study",
    treatment: str = "treatment",
    events: str = "events",
    n: str = "n",
    by: Sequence[str] = (),
) -> pd.DataFrame:
    """One 2x2 table per trial (experimental vs control) from arm-level rows.

    Arms of the same treatment within a trial are first combined with :func:`combine_arms`.
    Trials without both treatments are left out (listed in ``attrs["notes"]``).

    Parameters
    ----------
    arms : pandas.DataFrame
        One row per arm.
    experimental, control : str
        Values of the ``treatment`` column compared (arm 1 and arm 2).
    study, treatment, events, n : str
        Column names.
    by : sequence of str, optional
        Further grouping columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``study`` (and ``by``), ``ai, n1i`` (experimental), ``ci, n2i`` (control),
        ``arms1, arms2`` (numbers of arms combined).

    Examples
    --------
    >>> arms = pd.DataFrame({"study": ["A", "A", "A", "B", "B"],
    ...                      "treatment": ["d", "d", "p", "d", "p"],
    ...                      "events": [6, 9, 2, 12, 5], "n": [30, 31, 30, 45, 44]})
    >>> tab = binary_tables(arms, experimental="d", control="p")
    >>> tab[["ai", "n1i", "ci", "n2i"]].values.tolist()
    [[15, 61, 2, 30], [12, 45, 5, 44]]
    """
    comb = combine_arms(arms, study=study, treatment=treatment, events=events, n=n, by=by)
    keys = [study, *by]
    e = comb[comb[treatment] == experimental].drop(columns=treatment)
    c = comb[comb[treatment] == control].drop(columns=treatment)
    e = e.rename(columns={events: "ai", n: "n1i", "n_arms": "arms1"})
    c = c.rename(columns={events: "ci", n: "n2i", "n_arms": "arms2"})
    out = e.merge(c, on=keys, how="inner").sort_values(keys).reset_index(drop=True)
    all_keys = comb[keys].drop_duplicates()
    lost = len(all_keys) - len(out)
    notes = []
    if lost:
        notes.append(f"{lost} trial(s) without both {experimental!r} and {control!r} left out")
    out = out[[*keys, "ai", "n1i", "ci", "n2i", "arms1", "arms2"]]
    out.attrs["notes"] = tuple(notes)
    return out
