"""Read and validate ``grade.csv``: a person's GRADE judgements that replace the rules'.

One row per judgement: the outcome (a code of ``outcomes.csv``), optionally the week (empty:
every week of that outcome), the GRADE domain, the judgement and the reason, which is
required (the summary of findings prints it next to the judgement and marks it as a person's).
An empty file (header only) or no file means every judgement comes from the rules of
:mod:`hairtrial.analyses.grade`.

Every problem is reported with file, line, column, value and rule, as for ``arms.csv``
(:mod:`hairtrial.data.validate`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hairtrial.data.csvread import DataValidationError, Problem, read_table
from hairtrial.data.validate import Column, check_table

__all__ = ["DOMAINS", "GRADE_COLUMNS", "JUDGEMENTS", "read_grade"]

#: The GRADE domains that lower the certainty of evidence from randomised trials.
DOMAINS: tuple[str, ...] = (
    "risk_of_bias",
    "inconsistency",
    "indirectness",
    "imprecision",
    "publication_bias",
)
#: Judgements of a domain and the levels each takes off.
JUDGEMENTS: dict[str, int] = {"not serious": 0, "serious": 1, "very serious": 2}

GRADE_COLUMNS: tuple[Column, ...] = (
    Column("outcome", "code", True, "Outcome code, as in outcomes.csv."),
    Column(
        "week",
        "int",
        False,
        "Week of follow-up the judgement applies to; empty: every week.",
        check=lambda x: x >= 0,
        check_rule=">= 0",
    ),
    Column("domain", "enum", True, "GRADE domain.", choices=DOMAINS),
    Column("judgement", "enum", True, "The person's judgement.", choices=tuple(JUDGEMENTS)),
    Column("reason", "text", True, "Why (printed in the summary of findings)."),
)


def read_grade(path: str | Path, outcomes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read and validate ``grade.csv``.

    Rules beyond the per-cell types: the outcome is listed in ``outcomes`` (when given); an
    outcome x week x domain is judged once (an empty week counts as its own key, and a
    week-specific row wins over it).

    Parameters
    ----------
    path : str or Path
        The overrides CSV; a missing file is no overrides.
    outcomes : pandas.DataFrame, optional
        :func:`hairtrial.data.outcomes.read_outcomes`, to check the outcome codes.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, week, domain, judgement, reason, line`` (``week`` NaN when empty).

    Raises
    ------
    DataValidationError
        Listing every problem with file, line, column, value and rule.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "grade.csv"
    >>> _ = p.write_text("outcome,week,domain,judgement,reason\\n"
    ...                  "hair_density,12,imprecision,mild,too few\\n")
    >>> try:
    ...     read_grade(p)
    ... except DataValidationError as e:
    ...     print(str(e.problems[0]).split("grade.csv, ")[1])
    line 2, column 'judgement': value 'mild': must be one of not serious, serious, very serious
    """
    path = Path(path)
    columns = [*(c.name for c in GRADE_COLUMNS), "line"]
    if not path.exists():  # no overrides; a directory or unreadable path is reported below
        return pd.DataFrame(columns=columns)
    fname = str(path)
    raw = read_table(path, defer_rows=True)
    df, problems = check_table(raw, GRADE_COLUMNS, fname)
    if problems:
        raise DataValidationError(problems)
    df["line"] = df.index.to_numpy()
    known = None if outcomes is None else set(outcomes["outcome"])
    seen: dict[tuple, int] = {}
    for _, row in df.iterrows():
        line = int(row["line"])
        if known is not None and row["outcome"] not in known:
            problems.append(
                Problem(
                    fname, line, "outcome", row["outcome"], "outcome not listed in outcomes.csv"
                )
            )
        week = row["week"]
        key = (row["outcome"], None if week is None or pd.isna(week) else int(week), row["domain"])
        if key in seen:
            problems.append(
                Problem(
                    fname,
                    line,
                    "domain",
                    row["domain"],
                    f"outcome, week and domain judged twice (first on line {seen[key]})",
                )  # fmt: skip
            )
        else:
            seen[key] = line
    if problems:
        raise DataValidationError(problems)
    out = df.reset_index(drop=True)
    out["week"] = pd.to_numeric(out["week"], errors="coerce")
    return out[columns]
