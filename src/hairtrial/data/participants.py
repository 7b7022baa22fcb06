"""Read and validate ``participants.csv``: a trialist's participant-level data (issue 12).

One row per study x participant x side x week x outcome (columns :data:`PARTICIPANT_COLUMNS`):
the value of the outcome of one participant (or one side of the scalp of a participant, in a
split-scalp trial) at one visit, week 0 being the baseline. Every problem is reported as in the
other inputs (:mod:`hairtrial.data.validate`): file, line (the header is line 1), column, value
and rule; all problems of the file are collected before raising.

Rules beyond the cell types:

* the study is listed in ``studies.csv``; a split-scalp study (``design = split_scalp``) gives a
  ``side`` (``left`` / ``right``) on every row, a parallel study none;
* no repeated study x outcome x participant x side x week (in particular one baseline per
  participant and side);
* every participant (side) with follow-up values has a baseline (week 0) value: a change from
  baseline is the quantity analysed;
* a participant keeps one treatment (parallel trials); in a split-scalp trial a participant's
  side keeps one treatment and the two sides of a participant receive different treatments;
* one unit per study and outcome, and the units of an outcome convert to one canonical unit
  (with ``arms.csv``'s, when given);
* a study x outcome is given either as participants or as arms in ``arms.csv``, not both.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hairtrial.data import units
from hairtrial.data.csvread import DataValidationError, Problem, read_table
from hairtrial.data.validate import Column, check_table

__all__ = ["PARTICIPANT_COLUMNS", "read_participants"]

PARTICIPANT_COLUMNS: tuple[Column, ...] = (
    Column("study", "id", True, "Study identifier; must appear in studies.csv."),
    Column("participant", "id", True, "Participant identifier, unique within the study."),
    Column(
        "side",
        "enum",
        False,
        "left or right in split-scalp trials (one row per side); empty in parallel trials.",
        choices=("left", "right"),
    ),
    Column("treatment", "text", True, "Treatment of the participant (or side)."),
    Column(
        "week",
        "int",
        True,
        "Week of the visit (0 = baseline).",
        check=lambda x: x >= 0,
        check_rule=">= 0",
    ),
    Column("outcome", "code", True, "Outcome code, e.g. hair_density."),
    Column("unit", "enum", True, "Unit of value.", choices=tuple(units.UNITS)),
    Column("value", "number", True, "The participant's (side's) value at that visit."),
)
"""The columns of ``participants.csv`` (the contract; ``data/README.md`` documents it)."""


def _design_problems(
    df: pd.DataFrame, studies: pd.DataFrame, fname: str, problems: list[Problem]
) -> None:
    design = dict(zip(studies["study"], studies["design"], strict=True))
    for line, row in df.iterrows():
        study, side = row["study"], row["side"]
        if study not in design:
            problems.append(
                Problem(fname, int(line), "study", study, "study is not listed in studies.csv")
            )
        elif design[study] == "split_scalp" and side is None:
            problems.append(
                Problem(
                    fname,
                    int(line),
                    "side",
                    "",
                    f"study {study} is split-scalp in studies.csv: every row needs a side "
                    "(left or right)",
                )
            )
        elif design[study] != "split_scalp" and side is not None:
            problems.append(
                Problem(
                    fname,
                    int(line),
                    "side",
                    side,
                    f"study {study} is {design[study]} in studies.csv: side must be empty "
                    "(sides are for split-scalp trials)",
                )
            )


def _unit_problems(
    df: pd.DataFrame, fname: str, arms: pd.DataFrame | None, problems: list[Problem]
) -> None:
    canon: dict[str, tuple[str, str]] = {}
    if arms is not None:
        for outcome, unit, line in zip(arms["outcome"], arms["unit"], arms["line"], strict=True):
            canon.setdefault(outcome, (units.lookup(unit).canonical, f"arms.csv line {line}"))
    first_unit: dict[tuple[str, str], tuple[str, int]] = {}
    for line, row in df.iterrows():
        c = units.lookup(row["unit"]).canonical
        first = canon.setdefault(row["outcome"], (c, f"line {line}"))
        if first[0] != c:
            problems.append(
                Problem(
                    fname,
                    int(line),
                    "unit",
                    row["unit"],
                    f"outcome '{row['outcome']}' is in {first[0]} ({first[1]}); "
                    f"{row['unit']} cannot be converted to it",
                )
            )
            continue
        key = (row["study"], row["outcome"])
        seen = first_unit.setdefault(key, (row["unit"], int(line)))
        if seen[0] != row["unit"]:
            problems.append(
                Problem(
                    fname,
                    int(line),
                    "unit",
                    row["unit"],
                    f"study {row['study']}, outcome '{row['outcome']}' is in {seen[0]} on "
                    f"line {seen[1]}; give one unit per study and outcome",
                )
            )


def _row_problems(
    df: pd.DataFrame, fname: str, arms: pd.DataFrame | None, problems: list[Problem]
) -> None:
    seen: dict[tuple, int] = {}
    treatment_of: dict[tuple, tuple[str, int]] = {}
    in_arms = set() if arms is None else set(zip(arms["study"], arms["outcome"], strict=True))
    reported_both: set[tuple[str, str]] = set()
    for line, row in df.iterrows():
        line = int(line)
        side = row["side"] or ""
        key = (row["study"], row["outcome"], row["participant"], side, row["week"])
        if key in seen:
            what = "baseline" if row["week"] == 0 else "value"
            problems.append(
                Problem(
                    fname,
                    line,
                    "week",
                    str(row["week"]),
                    f"a second {what} of participant {row['participant']}"
                    + (f" ({side} side)" if side else "")
                    + f", outcome '{row['outcome']}', week {row['week']} (first on line "
                    f"{seen[key]}): one row per study x outcome x participant x side x week",
                )
            )
        else:
            seen[key] = line
        unit_key = (row["study"], row["participant"], side)
        first = treatment_of.setdefault(unit_key, (row["treatment"], line))
        if first[0] != row["treatment"]:
            who = f"participant {row['participant']}" + (f" ({side} side)" if side else "")
            problems.append(
                Problem(
                    fname,
                    line,
                    "treatment",
                    row["treatment"],
                    f"{who} had treatment '{first[0]}' on line {first[1]}; a participant "
                    + ("side " if side else "")
                    + "keeps one treatment"
                    + ("" if side else " (sides, for split-scalp trials, are in column side)"),
                )
            )
        sk = (row["study"], row["outcome"])
        if sk in in_arms and sk not in reported_both:
            reported_both.add(sk)
            problems.append(
                Problem(
                    fname,
                    line,
                    "study",
                    row["study"],
                    f"study {row['study']}, outcome '{row['outcome']}' is also in arms.csv; "
                    "give a trial's outcome either as participants or as arms, not both",
                )
            )
    # the two sides of a split-scalp participant receive different treatments
    sides: dict[tuple[str, str], dict[str, tuple[str, int]]] = {}
    for (study, participant, side), (treatment, line) in treatment_of.items():
        if side:
            sides.setdefault((study, participant), {})[side] = (treatment, line)
    for (study, participant), both in sides.items():
        if len(both) == 2 and both["left"][0] == both["right"][0]:
            line = max(both["left"][1], both["right"][1])
            problems.append(
                Problem(
                    fname,
                    line,
                    "treatment",
                    both["left"][0],
                    f"study {study}: both sides of participant {participant} have treatment "
                    f"'{both['left'][0]}'; in a split-scalp trial the sides are compared",
                )
            )
    # follow-up values need a baseline
    baseline = {k[:4] for k in seen if k[4] == 0}
    reported: set[tuple] = set()
    for key, line in seen.items():
        if key[4] > 0 and key[:4] not in baseline and key[:4] not in reported:
            reported.add(key[:4])
            study, outcome, participant, side = key[:4]
            problems.append(
                Problem(
                    fname,
                    line,
                    "week",
                    str(key[4]),
                    f"participant {participant}"
                    + (f" ({side} side)" if side else "")
                    + f" of {study} has follow-up values of '{outcome}' but no baseline (week 0) "
                    "value: the change from baseline cannot be computed",
                )
            )


def read_participants(
    path: str | Path, studies: pd.DataFrame, arms: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Read and validate ``participants.csv`` against the validated ``studies`` (and ``arms``).

    Parameters
    ----------
    path : str or Path
        The participant-level CSV.
    studies : pandas.DataFrame
        Output of :func:`hairtrial.data.validate.read_studies`.
    arms : pandas.DataFrame, optional
        Output of :func:`hairtrial.data.validate.read_arms`: its units and its study x outcome
        pairs are checked against the participants'.

    Returns
    -------
    pandas.DataFrame
        Columns ``study, participant, side, treatment, week, outcome, unit, value, line``
        (``side`` ``""`` in parallel trials; ``week`` int; ``value`` float; ``line`` the row's
        line in the file), in file order.

    Raises
    ------
    DataValidationError
        Listing every problem with file, line, column, value and rule.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "p.csv").write_text(
    ...     "study,participant,side,treatment,week,outcome,unit,value\\n"
    ...     "t1,p1,,minoxidil,0,hair_density,hairs/cm2,150\\n"
    ...     "t1,p1,,minoxidil,0,hair_density,hairs/cm2,151\\n")
    >>> studies = pd.DataFrame({"study": ["t1"], "design": ["parallel"]})
    >>> try:
    ...     read_participants(d / "p.csv", studies)
    ... except DataValidationError as e:
    ...     print(str(e.problems[0]).split("p.csv, ")[1][:60])
    line 3, column 'week': value '0': a second baseline of parti
    """
    path = Path(path)
    fname = str(path)
    df, problems = check_table(read_table(path, defer_rows=True), PARTICIPANT_COLUMNS, fname)
    if problems:
        raise DataValidationError(problems)
    _design_problems(df, studies, fname, problems)
    _unit_problems(df, fname, arms, problems)
    _row_problems(df, fname, arms, problems)
    if problems:
        raise DataValidationError(problems)
    out = df.copy()
    out["side"] = out["side"].where(out["side"].notna(), "").astype(str)
    out["week"] = out["week"].astype(int)
    out["value"] = out["value"].astype(float)
    for col in ("study", "participant", "treatment", "outcome", "unit"):
        out[col] = out[col].astype(str)
    out["line"] = out.index.to_numpy()
    return out.reset_index(drop=True)
