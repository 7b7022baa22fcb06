"""Arm-level derivation for binary outcomes: from what a paper printed to events and n.

One row of ``events.csv`` in, one arm row out, ready for :func:`hairtrial.derive.binary.
combine_arms` and :func:`hairtrial.derive.binary.binary_tables` (columns ``study, treatment,
events, n`` and ``outcome, week`` to group by). Each of ``events`` and ``n`` carries a
provenance code (:mod:`hairtrial.data.provenance`), and every number that is not
``reported`` is written, with its inputs and assumption, to the data-quality table (the
columns of the continuous one, :data:`hairtrial.derive.arm_level.QUALITY_COLUMNS`):

* ``n_split_equally``: the arm's n is the trial total (``n_total`` of the row, else
  ``n_randomised`` of ``studies.csv``) split equally between the trial's arms, rounded down
  (:func:`hairtrial.derive.dispersion.split_n_equally`; arms as
  :func:`hairtrial.data.events.split_arms` counts them);
* ``events_from_percent``: events = percent x n / 100 rounded to the nearest whole number,
  halves up, computed exactly from the decimal the file holds. A percentage that no whole
  number of events out of n gives at its printed precision is named in the notes and in the
  row's ``assumption`` (the paper's denominator was probably not n).

:func:`event_tables` makes the 2x2 tables of one comparison and carries the arms' provenance
(and ``combined_arms`` for multi-arm trials) and extraction flags into them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd

from hairtrial.data import provenance
from hairtrial.data.events import split_arms
from hairtrial.derive import binary, dispersion
from hairtrial.derive.arm_level import QUALITY_COLUMNS

__all__ = [
    "EVENT_ARM_COLUMNS",
    "derive_events",
    "event_tables",
    "events_from_percent",
    "percent_consistent",
]

EVENT_ARM_COLUMNS = [
    "study",
    "arm",
    "treatment",
    "outcome",
    "week",
    "events",
    "n",
    "events_provenance",
    "n_provenance",
    "provenance",
    "flags",
    "lines",
]
"""Columns of the derived binary arm table (``provenance``: both quantities' codes joined)."""


def _decimal(x: float) -> Fraction:
    """The decimal the file held (the shortest repr of the parsed float), exactly."""
    return Fraction(repr(float(x)))


def events_from_percent(percent: float, n: int) -> int:
    """Events from a percentage of n: percent x n / 100, nearest whole number, halves up.

    Computed exactly on the decimal value (no binary floating-point rounding).

    Parameters
    ----------
    percent : float
        Percentage in [0, 100].
    n : int
        Arm size (> 0).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For a percentage outside [0, 100] or n < 1.

    Examples
    --------
    >>> events_from_percent(85, 20), events_from_percent(61, 50), events_from_percent(64, 50)
    (17, 31, 32)
    """
    if not (math.isfinite(percent) and 0 <= percent <= 100):
        raise ValueError(f"percent must lie in [0, 100], got {percent!r}")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    x = _decimal(percent) * int(n) / 100
    return math.floor(x + Fraction(1, 2))


def _places(percent: float) -> int:
    text = repr(float(percent))
    if "e" in text or "E" in text:
        return 6
    frac = text.split(".")[1] if "." in text else ""
    frac = frac.rstrip("0")
    return len(frac)


def percent_consistent(percent: float, n: int) -> bool:
    """Whether some whole number of events out of n gives ``percent`` at its printed precision.

    The percentage is taken to be rounded to as many decimals as it is written with (61 to
    whole percent, 12.5 to one decimal): it is consistent when some k in 0..n has
    100 k / n within half a unit of its last decimal.

    Parameters
    ----------
    percent : float
        Percentage in [0, 100].
    n : int
        Arm size (> 0).

    Returns
    -------
    bool

    Examples
    --------
    >>> percent_consistent(64, 50), percent_consistent(61, 50), percent_consistent(12.5, 8)
    (True, False, True)
    """
    p = _decimal(percent)
    half = Fraction(1, 2 * 10 ** _places(percent))
    k = events_from_percent(percent, n)
    return any(0 <= j <= n and abs(Fraction(100 * j, n) - p) <= half for j in (k - 1, k, k + 1))


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def derive_events(
    events: pd.DataFrame, studies: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Events and n per arm from validated ``events.csv`` rows, with provenance.

    Parameters
    ----------
    events : pandas.DataFrame
        Output of :func:`hairtrial.data.events.read_events`.
    studies : pandas.DataFrame
        Output of :func:`hairtrial.data.validate.read_studies` (``n_randomised``, ``n_arms``).

    Returns
    -------
    arms : pandas.DataFrame
        One row per input row, columns :data:`EVENT_ARM_COLUMNS` (``events`` and ``n``
        integers), sorted by outcome, week, study and arm. Rows whose n cannot be derived or
        whose events exceed the derived n are left out and named in ``notes``.
    quality : pandas.DataFrame
        One row per derived number (:data:`hairtrial.derive.arm_level.QUALITY_COLUMNS`;
        ``unit`` is ``participants``).
    notes : list of str
        Rows left out, and percentages inconsistent with their n.

    Examples
    --------
    >>> ev = pd.DataFrame({"study": ["s", "s"], "arm": ["A", "B"],
    ...     "treatment": ["mn", "mx"], "week": [12, 12], "outcome": ["resp", "resp"],
    ...     "events": [40, None], "percent": [None, 64.0], "n": [None, None],
    ...     "n_total": [None, None], "flags": [None, None], "line": [2, 3]})
    >>> st = pd.DataFrame({"study": ["s"], "n_randomised": [100], "n_arms": [2]})
    >>> arms, quality, notes = derive_events(ev, st)
    >>> arms[["arm", "events", "n", "provenance"]].values.tolist()
    [['A', 40, 50, 'n_split_equally'], ['B', 32, 50, 'n_split_equally;events_from_percent']]
    >>> quality["quantity"].tolist()
    ['n', 'n', 'events']
    """
    totals: dict[str, float] = {}
    if "n_randomised" in studies.columns:
        for s, t in zip(studies["study"], studies["n_randomised"], strict=True):
            x = pd.to_numeric(t, errors="coerce")
            if pd.notna(x):
                totals[s] = float(x)
    k_arms = split_arms(events, studies) if len(events) else {}

    def present(x: object) -> bool:
        return x is not None and not (isinstance(x, float) and math.isnan(x)) and x is not pd.NA

    rows: list[dict] = []
    quality: list[dict] = []
    notes: list[str] = []
    for _, row in events.iterrows():
        study, arm, outcome, week = row["study"], row["arm"], row["outcome"], int(row["week"])
        where = f"{study} / {arm} / {outcome} / week {week}"
        base = {"study": study, "arm": arm, "outcome": outcome, "week": week}
        # n
        if present(row.get("n")):
            n = int(row["n"])
            n_codes = ["reported"]
        else:
            if present(row.get("n_total")):
                total, what = int(row["n_total"]), "n_total"
            elif study in totals:
                total, what = int(totals[study]), "n_randomised"
            else:
                notes.append(f"{where}: no n, n_total or n_randomised; not used")
                continue
            k = k_arms.get(study, 1)
            if total < k:
                notes.append(f"{where}: a total of {total} cannot be split into {k} arms")
                continue
            n = dispersion.split_n_equally(total, k)
            n_codes = ["n_split_equally"]
            quality.append(
                {
                    **base,
                    "quantity": "n",
                    "value": float(n),
                    "unit": "participants",
                    "provenance": "n_split_equally",
                    "method": "trial total split equally between arms (rounded down)",
                    "inputs": f"{what}={total}; arms={k}",
                    "assumption": "equal allocation",
                }
            )
        # events
        if present(row.get("events")):
            ev = int(row["events"])
            ev_codes = ["reported"]
        else:
            pct = float(row["percent"])
            ev = events_from_percent(pct, n)
            ev_codes = ["events_from_percent"]
            assumption = "the percentage's denominator is n"
            if not percent_consistent(pct, n):
                # said where the number is listed (the data-quality table), not among the
                # inputs that cannot be used: the row is used
                assumption += (
                    f"; no whole number of events out of {n} gives {_fmt(pct)}% at its printed "
                    "precision: the paper's denominator was probably not n"
                )
            quality.append(
                {
                    **base,
                    "quantity": "events",
                    "value": float(ev),
                    "unit": "participants",
                    "provenance": provenance.join(["events_from_percent", *n_codes]),
                    "method": "events = percent x n / 100, nearest whole number (halves up)",
                    "inputs": f"percent={_fmt(pct)}; n={n} ({provenance.join(n_codes)})",
                    "assumption": assumption,
                }
            )
        if ev > n:
            notes.append(f"{where}: events ({ev}) exceed the arm's n ({n}); not used")
            continue
        flags = row.get("flags")
        rows.append(
            {
                **base,
                "treatment": row["treatment"],
                "events": ev,
                "n": n,
                "events_provenance": provenance.join(ev_codes),
                "n_provenance": provenance.join(n_codes),
                "provenance": provenance.join([*ev_codes, *n_codes]),
                "flags": flags if isinstance(flags, str) else "",
                "lines": str(row["line"]) if "line" in row.index else "",
            }
        )
    out = pd.DataFrame(rows, columns=EVENT_ARM_COLUMNS)
    out["events"] = out["events"].astype(np.int64)
    out["n"] = out["n"].astype(np.int64)
    out["week"] = out["week"].astype(np.int64)
    out = out.sort_values(["outcome", "week", "study", "arm"], kind="stable").reset_index(drop=True)
    q = pd.DataFrame(quality, columns=QUALITY_COLUMNS)
    return out, q, notes


def _join_flags(values: pd.Series) -> str:
    seen: dict[str, None] = {}
    for v in values:
        for f in str(v).split(";"):
            if f.strip():
                seen[f.strip()] = None
    return ";".join(seen)


def event_tables(arms: pd.DataFrame, *, experimental: str, control: str) -> pd.DataFrame:
    """2x2 tables per study x outcome x week, with provenance and flags of the arms used.

    :func:`hairtrial.derive.binary.binary_tables` with ``by=("outcome", "week")`` (arms of
    one treatment in a trial combined by summing events and n), plus ``provenance``: the
    codes of every number of the arms compared, and ``combined_arms`` where a side combines
    several arms; and ``flags``: the arms' extraction flags.

    Parameters
    ----------
    arms : pandas.DataFrame
        Output of :func:`derive_events`.
    experimental, control : str
        Treatment labels compared (arm 1 and arm 2).

    Returns
    -------
    pandas.DataFrame
        Columns ``study, outcome, week, ai, n1i, ci, n2i, arms1, arms2, provenance, flags``;
        ``attrs["notes"]`` as :func:`~hairtrial.derive.binary.binary_tables`.

    Examples
    --------
    >>> arms = pd.DataFrame({"study": ["s", "s"], "arm": ["A", "B"], "treatment": ["e", "c"],
    ...     "outcome": ["itch", "itch"], "week": [24, 24], "events": [3, 1], "n": [40, 38],
    ...     "provenance": ["reported", "n_split_equally"], "flags": ["", "x"]})
    >>> tab = event_tables(arms, experimental="e", control="c")
    >>> tab[["ai", "n1i", "ci", "n2i", "provenance", "flags"]].values.tolist()
    [[3, 40, 1, 38, 'n_split_equally', 'x']]
    """
    by = ("outcome", "week")
    tab = binary.binary_tables(arms, experimental=experimental, control=control, by=by)
    notes = tab.attrs.get("notes", ())
    keys = ["study", *by]
    used = arms[arms["treatment"].isin([experimental, control])]
    prov = used.groupby(keys, sort=False)["provenance"].agg(lambda s: provenance.join(s))
    flags = used.groupby(keys, sort=False)["flags"].agg(_join_flags)
    tab = tab.merge(prov.rename("provenance").reset_index(), on=keys, how="left")
    tab = tab.merge(flags.rename("flags").reset_index(), on=keys, how="left")
    combined = (tab["arms1"] > 1) | (tab["arms2"] > 1)
    tab["provenance"] = [
        provenance.join([p, "combined_arms"]) if c else p
        for p, c in zip(tab["provenance"], combined, strict=True)
    ]
    tab.attrs["notes"] = notes
    return tab
