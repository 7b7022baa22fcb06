"""Read and validate ``outcomes.csv``: one row per outcome code, continuous and binary alike.

The file names every outcome of ``arms.csv`` (continuous) and ``events.csv`` (binary) with a
label for figures and tables, its kind, its direction (``benefit``: higher is better, or for a
binary outcome an event is good, e.g. a responder; ``harm``: higher is worse, an event is bad)
and the minimal important difference (``mid``) with its source.

``unit`` is the scale of ``mid``: for a continuous outcome the canonical unit of ``arms.csv``
(``hairs/cm2``, ``hairs``, ``um``, ``percent``, ``score``); for a binary outcome the effect
measure the MID is stated on: ``RR`` or ``OR`` (a ratio > 1; a change by that factor is
important) or ``RD`` (an absolute risk difference, a proportion strictly between 0 and 1).

Every problem is reported with file, line, column, value and rule, as for ``arms.csv``
(:mod:`hairtrial.data.validate`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hairtrial.data import units
from hairtrial.data.csvread import DataValidationError, Problem, read_table
from hairtrial.data.validate import Column, check_table

__all__ = [
    "BINARY_UNITS",
    "CONTINUOUS_UNITS",
    "OUTCOME_COLUMNS",
    "outcome_problems",
    "read_outcomes",
]

#: Scales of a binary outcome's MID: risk ratio, odds ratio, risk difference.
BINARY_UNITS: tuple[str, ...] = ("RR", "OR", "RD")
#: Units of a continuous outcome: the canonical units of ``arms.csv``.
CONTINUOUS_UNITS: tuple[str, ...] = tuple(dict.fromkeys(u.canonical for u in units.UNITS.values()))

OUTCOME_COLUMNS: tuple[Column, ...] = (
    Column("outcome", "code", True, "Outcome code, as in arms.csv / events.csv (unique)."),
    Column("label", "text", True, "Label for figures, tables and the report."),
    Column(
        "kind",
        "enum",
        True,
        "continuous (arms.csv) or binary (events.csv).",
        choices=("continuous", "binary"),
    ),
    Column(
        "direction",
        "enum",
        True,
        "benefit: higher is better / an event is good; harm: higher is worse / an event is bad.",
        choices=("benefit", "harm"),
    ),
    Column("unit", "text", True, "Scale of mid: a canonical unit, or RR / OR / RD (binary)."),
    Column(
        "mid",
        "number",
        False,
        "Minimal important difference on the scale of unit.",
        check=lambda x: x > 0,
        check_rule="> 0",
    ),
    Column("mid_source", "text", False, "Where the MID comes from, or why there is none."),
)


def read_outcomes(path: str | Path) -> pd.DataFrame:
    """Read and validate ``outcomes.csv``.

    Rules beyond the per-cell types: an outcome appears once; the unit fits the kind (a
    canonical unit of ``arms.csv`` for a continuous outcome, ``RR``, ``OR`` or ``RD`` for a
    binary one); a ratio MID exceeds 1 and a risk-difference MID is below 1; a MID names its
    source.

    Parameters
    ----------
    path : str or Path
        The outcome CSV.

    Returns
    -------
    pandas.DataFrame
        One row per outcome with columns ``outcome, label, kind, direction, unit, mid,
        mid_source`` (``mid`` float, NaN when empty) and ``line`` (the source line).

    Raises
    ------
    DataValidationError
        Listing every problem with file, line, column, value and rule.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "outcomes.csv"
    >>> _ = p.write_text("outcome,label,kind,direction,unit,mid,mid_source\\n"
    ...                  "itch,Itch,binary,harm,RR,0.8,GRADE\\n")
    >>> try:
    ...     read_outcomes(p)
    ... except DataValidationError as e:
    ...     print(str(e.problems[0]).split("outcomes.csv, ")[1])
    line 2, column 'mid': value '0.8': a ratio MID must be > 1 (the factor that is important)
    """
    path = Path(path)
    fname = str(path)
    raw = read_table(path, defer_rows=True)
    df, problems = check_table(raw, OUTCOME_COLUMNS, fname)
    if problems:
        raise DataValidationError(problems)
    df["line"] = df.index.to_numpy()
    seen: dict[str, int] = {}
    for _, row in df.iterrows():
        line = int(row["line"])
        code = row["outcome"]
        if code in seen:
            problems.append(
                Problem(
                    fname, line, "outcome", code, f"duplicate outcome (first on line {seen[code]})"
                )
            )
        else:
            seen[code] = line
        kind, unit, mid = row["kind"], row["unit"], row["mid"]
        allowed = CONTINUOUS_UNITS if kind == "continuous" else BINARY_UNITS
        if unit not in allowed:
            problems.append(
                Problem(
                    fname,
                    line,
                    "unit",
                    unit,
                    f"a {kind} outcome's unit must be one of " + ", ".join(allowed),
                )
            )
        if mid is not None and kind == "binary":
            if unit in ("RR", "OR") and not mid > 1:
                problems.append(
                    Problem(
                        fname,
                        line,
                        "mid",
                        raw.at[line, "mid"],
                        "a ratio MID must be > 1 (the factor that is important)",
                    )
                )
            elif unit == "RD" and not mid < 1:
                problems.append(
                    Problem(
                        fname,
                        line,
                        "mid",
                        raw.at[line, "mid"],
                        "a risk-difference MID is a proportion: must be < 1",
                    )
                )
        if mid is not None and row["mid_source"] is None:
            problems.append(
                Problem(fname, line, "mid_source", "", "a mid needs its source (mid_source)")
            )
    if problems:
        raise DataValidationError(problems)
    df["mid"] = pd.to_numeric(df["mid"], errors="coerce").astype(float)
    return df.reset_index(drop=True)


def outcome_problems(
    table: pd.DataFrame, outcomes: pd.DataFrame, *, kind: str, fname: str
) -> list[Problem]:
    """Rows of a validated data table whose outcome is not listed in ``outcomes.csv`` as ``kind``.

    For ``arms.csv`` (``kind="continuous"``); :func:`hairtrial.data.events.read_events` makes
    the same check itself for binary outcomes.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`hairtrial.data.validate.read_arms` (columns ``outcome`` and ``line``).
    outcomes : pandas.DataFrame
        Output of :func:`read_outcomes`.
    kind : {"continuous", "binary"}
        The kind the table's outcomes must have.
    fname : str
        The table's file name, for the problems.

    Returns
    -------
    list of Problem
        One per row, empty when every outcome is listed with the right kind.

    Examples
    --------
    >>> arms = pd.DataFrame({"outcome": ["hair_density", "itch"], "line": [2, 3]})
    >>> outs = pd.DataFrame({"outcome": ["hair_density"], "kind": ["continuous"]})
    >>> [str(p) for p in outcome_problems(arms, outs, kind="continuous", fname="arms.csv")]
    ["arms.csv, line 3, column 'outcome': value 'itch': outcome is not listed in outcomes.csv"]
    """
    kinds = dict(zip(outcomes["outcome"], outcomes["kind"], strict=True))
    problems: list[Problem] = []
    for code, line in zip(table["outcome"], table["line"], strict=True):
        if code not in kinds:
            rule = "outcome is not listed in outcomes.csv"
        elif kinds[code] != kind:
            rule = f"outcome is {kinds[code]} in outcomes.csv; this file takes {kind} outcomes"
        else:
            continue
        problems.append(Problem(fname, int(line), "outcome", code, rule))
    return problems
