"""Read and validate ``events.csv``: binary outcomes, one row per study x arm x week x outcome.

A row gives the participants with an event in one arm: ``events`` as counted, or ``percent``
when the paper printed a percentage (events are then derived as percent x n / 100, rounded,
and flagged by :mod:`hairtrial.derive.events`). The arm's size is ``n``; when the paper gave
only the trial's total, ``n_total`` holds it (or, when both are empty, ``n_randomised`` of
``studies.csv`` is used) and the total is split equally between the trial's arms (flagged).

Every problem is reported with file, line, column, value and rule, as for ``arms.csv``
(:mod:`hairtrial.data.validate`); all problems of the file are listed at once.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from hairtrial.data.csvread import DataValidationError, Problem, read_table
from hairtrial.data.validate import CODE_PATTERN, Column, check_table

__all__ = [
    "EVENT_COLUMNS",
    "read_events",
    "split_arms",
]

EVENT_COLUMNS: tuple[Column, ...] = (
    Column("study", "id", True, "Study identifier; must appear in studies.csv."),
    Column("arm", "text", True, "Arm label, unique within the study; keeps one treatment."),
    Column(
        "treatment",
        "text",
        True,
        "Treatment label (any text); the config names control/experimental.",
    ),
    Column(
        "week",
        "int",
        True,
        "Week at which the events were counted (cumulative up to it for adverse events).",
        check=lambda x: x >= 0,
        check_rule=">= 0",
    ),
    Column("outcome", "code", True, "Binary outcome code, listed in outcomes.csv."),
    Column(
        "events",
        "int",
        False,
        "Participants with the event in the arm.",
        check=lambda x: x >= 0,
        check_rule=">= 0",
    ),
    Column(
        "percent",
        "number",
        False,
        "Percentage of the arm with the event, when the paper gave no count.",
        check=lambda x: 0 <= x <= 100,
        check_rule="must lie between 0 and 100",
    ),
    Column(
        "n",
        "int",
        False,
        "Participants in the arm (denominator of events).",
        check=lambda x: x > 0,
        check_rule="> 0",
    ),
    Column(
        "n_total",
        "int",
        False,
        "The trial's total, when the paper gave no per-arm n (split equally between arms).",
        check=lambda x: x > 0,
        check_rule="> 0",
    ),
    Column("source", "text", False, "Where in the paper the numbers stand."),
    Column("flags", "text", False, "Extraction caveats, ';'-separated lower-case codes."),
    Column("note", "text", False, "Free text."),
)


def split_arms(events: pd.DataFrame, studies: pd.DataFrame) -> dict[str, int]:
    """The number of arms a trial total is split between, per study.

    As for ``arms.csv`` (:mod:`hairtrial.derive.arm_level`): the larger of the arms listed
    for the study (here, distinct ``arm`` labels in ``events``) and ``n_arms`` of
    ``studies.csv``.

    Parameters
    ----------
    events : pandas.DataFrame
        Rows with ``study`` and ``arm``.
    studies : pandas.DataFrame
        Rows with ``study`` and optionally ``n_arms``.

    Returns
    -------
    dict of str to int

    Examples
    --------
    >>> ev = pd.DataFrame({"study": ["a", "a", "b"], "arm": ["x", "y", "x"]})
    >>> st = pd.DataFrame({"study": ["a", "b"], "n_arms": [None, 3]})
    >>> split_arms(ev, st)
    {'a': 2, 'b': 3}
    """
    listed = events.groupby("study", sort=True)["arm"].nunique()
    declared: dict[str, float] = {}
    if "n_arms" in studies.columns:
        for s, k in zip(studies["study"], studies["n_arms"], strict=True):
            x = pd.to_numeric(k, errors="coerce")
            if pd.notna(x):
                declared[s] = float(x)
    return {s: int(max(int(k), declared.get(s, 0))) for s, k in listed.items()}


def _study_totals(studies: pd.DataFrame) -> dict[str, int]:
    out: dict[str, int] = {}
    if "n_randomised" not in studies.columns:
        return out
    for s, n in zip(studies["study"], studies["n_randomised"], strict=True):
        x = pd.to_numeric(n, errors="coerce")
        if pd.notna(x) and math.isfinite(float(x)):
            out[s] = int(x)
    return out


def read_events(
    path: str | Path, studies: pd.DataFrame, outcomes: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Read and validate ``events.csv`` against the validated studies (and outcomes).

    Rules beyond the per-cell types (whole numbers >= 0 for ``events``, > 0 for ``n`` and
    ``n_total``, ``percent`` in [0, 100]): every study is in ``studies.csv``; with
    ``outcomes``, every outcome is listed there as ``binary``; no duplicate study x arm x week
    x outcome; an arm keeps one treatment; exactly one of ``events`` and ``percent``; at most
    one of ``n`` and ``n_total``, and without either the study needs ``n_randomised``; one
    total per study x week x outcome, at least the number of arms; ``events`` at most ``n``
    (or at most the per-arm n the total gives); ``flags`` are lower-case codes.

    Parameters
    ----------
    path : str or Path
        The event CSV.
    studies : pandas.DataFrame
        Output of :func:`hairtrial.data.validate.read_studies`.
    outcomes : pandas.DataFrame, optional
        Output of :func:`hairtrial.data.outcomes.read_outcomes`; without it outcome codes are
        only checked for their spelling.

    Returns
    -------
    pandas.DataFrame
        Typed table with every column of the contract (``week`` int; ``events``, ``n``,
        ``n_total`` nullable ``Int64``; ``percent`` float) and ``line`` (the source line).

    Raises
    ------
    DataValidationError
        Listing every problem with file, line, column, value and rule.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "events.csv").write_text(
    ...     "study,arm,treatment,week,outcome,events,n\\n"
    ...     "x2020,A,minoxidil,12,itch,12,10\\n")
    >>> studies = pd.DataFrame({"study": ["x2020"], "n_randomised": [20], "n_arms": [2]})
    >>> try:
    ...     read_events(d / "events.csv", studies)
    ... except DataValidationError as e:
    ...     print(str(e.problems[0]).split("events.csv, ")[1])
    line 2, column 'events': value '12': events (12) exceed n (10)
    """
    path = Path(path)
    fname = str(path)
    raw = read_table(path, defer_rows=True)
    df, problems = check_table(raw, EVENT_COLUMNS, fname)
    if problems:
        raise DataValidationError(problems)
    df["line"] = df.index.to_numpy()

    def cell(line: int, col: str) -> str:
        return str(raw.at[line, col]) if col in raw.columns else ""

    known_studies = set(studies["study"])
    totals = _study_totals(studies)
    kinds: dict[str, str] | None = None
    if outcomes is not None:
        kinds = dict(zip(outcomes["outcome"], outcomes["kind"], strict=True))
    n_split = split_arms(df, studies) if len(df) else {}

    seen: dict[tuple, int] = {}
    treatment_of: dict[tuple[str, str], tuple[str, int]] = {}
    total_of: dict[tuple, tuple[int, int]] = {}
    for _, row in df.iterrows():
        line = int(row["line"])
        study, arm, outcome = row["study"], row["arm"], row["outcome"]
        key = (study, arm, row["week"], outcome)
        if key in seen:
            problems.append(
                Problem(
                    fname,
                    line,
                    "arm",
                    cell(line, "arm"),
                    f"duplicate study x arm x week x outcome (first on line {seen[key]})",
                )
            )
        else:
            seen[key] = line
        if study not in known_studies:
            problems.append(
                Problem(
                    fname, line, "study", cell(line, "study"), "study is not listed in studies.csv"
                )
            )
        if kinds is not None:
            if outcome not in kinds:
                problems.append(
                    Problem(
                        fname,
                        line,
                        "outcome",
                        cell(line, "outcome"),
                        "outcome is not listed in outcomes.csv",
                    )
                )
            elif kinds[outcome] != "binary":
                problems.append(
                    Problem(
                        fname,
                        line,
                        "outcome",
                        cell(line, "outcome"),
                        f"outcome is {kinds[outcome]} in outcomes.csv; events.csv takes binary "
                        "outcomes",
                    )
                )
        arm_key = (study, arm)
        if arm_key in treatment_of and treatment_of[arm_key][0] != row["treatment"]:
            first_t, first_line = treatment_of[arm_key]
            problems.append(
                Problem(
                    fname,
                    line,
                    "treatment",
                    cell(line, "treatment"),
                    f"arm '{arm}' had treatment '{first_t}' on line {first_line}; "
                    "an arm keeps one treatment",
                )
            )
        treatment_of.setdefault(arm_key, (row["treatment"], line))

        events, percent, n, n_total = (row[c] for c in ("events", "percent", "n", "n_total"))
        if events is not None and percent is not None:
            problems.append(
                Problem(
                    fname,
                    line,
                    "percent",
                    cell(line, "percent"),
                    "give events or percent, not both (events are derived from percent)",
                )
            )
        elif events is None and percent is None:
            problems.append(
                Problem(fname, line, "events", "", "each row needs events (or a percent)")
            )
        if n is not None and n_total is not None:
            problems.append(
                Problem(
                    fname,
                    line,
                    "n_total",
                    cell(line, "n_total"),
                    "give the arm's n or the trial's n_total, not both",
                )
            )
        elif n is None and n_total is None and study in known_studies:
            if study in totals:
                n_total = totals[study]
            else:
                problems.append(
                    Problem(
                        fname,
                        line,
                        "n",
                        "",
                        "each row needs n, n_total, or n_randomised of the study in studies.csv",
                    )
                )
        if n_total is not None and n is None:
            tkey = (study, row["week"], outcome)
            if row["n_total"] is not None:
                first = total_of.setdefault(tkey, (int(n_total), line))
                if first[0] != int(n_total):
                    problems.append(
                        Problem(
                            fname,
                            line,
                            "n_total",
                            cell(line, "n_total"),
                            f"the trial's total was {first[0]} on line {first[1]} (same study, "
                            "week and outcome); give one total",
                        )
                    )
            k = n_split.get(study, 1)
            col = "n_total" if row["n_total"] is not None else "n"
            if int(n_total) < k:
                problems.append(
                    Problem(
                        fname,
                        line,
                        col,
                        cell(line, col),
                        f"a total of {int(n_total)} cannot be split between {k} arms",
                    )
                )
            elif events is not None and int(events) > int(n_total) // k:
                problems.append(
                    Problem(
                        fname,
                        line,
                        "events",
                        cell(line, "events"),
                        f"events ({int(events)}) exceed the per-arm n the total gives "
                        f"({int(n_total)} // {k} arms = {int(n_total) // k})",
                    )
                )
        if n is not None and events is not None and int(events) > int(n):
            problems.append(
                Problem(
                    fname,
                    line,
                    "events",
                    cell(line, "events"),
                    f"events ({int(events)}) exceed n ({int(n)})",
                )
            )
        if row["flags"] is not None:
            for flag in str(row["flags"]).split(";"):
                if not CODE_PATTERN.match(flag.strip()):
                    problems.append(
                        Problem(
                            fname,
                            line,
                            "flags",
                            cell(line, "flags"),
                            "flags are ';'-separated lower-case codes (letters, digits and _)",
                        )
                    )
                    break
    if problems:
        raise DataValidationError(problems)

    for c in ("events", "n", "n_total"):
        df[c] = pd.array([None if v is None else int(v) for v in df[c]], dtype="Int64")
    df["percent"] = pd.to_numeric(df["percent"], errors="coerce").astype(float)
    df["week"] = df["week"].astype(int)
    return df.reset_index(drop=True)
