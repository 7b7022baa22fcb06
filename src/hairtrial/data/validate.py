"""Read and validate the input contract: ``arms.csv`` and ``studies.csv``.

Every problem is reported with the file, the row (as a spreadsheet shows it:
the header is line 1, so the first data row is line 2), the column, the
offending value and the rule it breaks. All problems in a file are collected
before raising, so a user fixes them in one pass.

The contract is documented in ``data/README.md``; the column specifications
below are its single source of truth.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hairtrial.data import units
from hairtrial.data.csvread import (
    ROW_PROBLEMS,
    DataValidationError,
    Problem,
    parse_number,
    read_table,
)

__all__ = [
    "ARM_COLUMNS",
    "STUDY_COLUMNS",
    "Column",
    "DataValidationError",
    "Problem",
    "check_table",
    "read_arms",
    "read_inputs",
    "read_studies",
]

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Column:
    """Specification of one input column."""

    name: str
    kind: str  # "id", "code", "text", "int", "number", "enum"
    required: bool = False
    description: str = ""
    choices: tuple[str, ...] = ()
    check: Callable[[float], bool] | None = None
    check_rule: str = ""


def _positive(x: float) -> bool:
    return x > 0


def _nonneg(x: float) -> bool:
    return x >= 0


def _open_unit(x: float) -> bool:
    return 0 < x < 1


ARM_COLUMNS: tuple[Column, ...] = (
    Column("study", "id", True, "Study identifier; must appear in studies.csv."),
    Column("arm", "text", True, "Arm label, unique within the study."),
    Column(
        "treatment",
        "text",
        True,
        "Treatment label (any text, e.g. MN+MX); the config names control/experimental.",
    ),
    Column(
        "week", "int", True, "Week of measurement (0 = baseline).", check=_nonneg, check_rule=">= 0"
    ),
    Column("outcome", "code", True, "Outcome code, e.g. hair_density."),
    Column("unit", "enum", True, "Unit of mean/SD/quantiles.", choices=tuple(units.UNITS)),
    Column(
        "n", "int", False, "Participants analysed in the arm.", check=_positive, check_rule="> 0"
    ),
    Column("mean", "number", False, "Mean (level or change, see stat)."),
    Column(
        "stat",
        "enum",
        True,
        "value = level at that week; change = change from baseline.",
        choices=("value", "change"),
    ),
    Column("sd", "number", False, "Standard deviation.", check=_positive, check_rule="> 0"),
    Column("se", "number", False, "Standard error of the mean.", check=_positive, check_rule="> 0"),
    Column("ci_lower", "number", False, "Lower bound of the 95% CI of the mean."),
    Column("ci_upper", "number", False, "Upper bound of the 95% CI of the mean."),
    Column("median", "number", False, "Median."),
    Column("q1", "number", False, "First quartile."),
    Column("q3", "number", False, "Third quartile."),
    Column("min", "number", False, "Minimum."),
    Column("max", "number", False, "Maximum."),
    Column(
        "p_value",
        "number",
        False,
        "Between-arm p-value at that week (experimental vs control).",
        check=_open_unit,
        check_rule="must lie strictly between 0 and 1",
    ),
    Column(
        "p_relation",
        "enum",
        False,
        "'=' if the p-value is exact, '<' if it is a bound.",
        choices=("=", "<"),
    ),
    Column(
        "t_value",
        "number",
        False,
        "Between-arm t statistic at that week (experimental vs control); used before p_value.",
        check=lambda x: x != 0,
        check_rule="must be non-zero",
    ),
    Column("source", "text", False, "Where in the paper the numbers stand."),
    Column("flags", "text", False, "Extraction caveats, ';'-separated codes."),
    Column("note", "text", False, "Free text."),
)

STUDY_COLUMNS: tuple[Column, ...] = (
    Column("study", "id", True, "Study identifier (unique)."),
    Column(
        "year",
        "int",
        True,
        "Publication year.",
        check=lambda y: 1900 <= y <= 2100,
        check_rule="between 1900 and 2100",
    ),
    Column("first_author", "text", False, "First author."),
    Column("title", "text", False, "Title."),
    Column("journal", "text", False, "Journal, year, volume, pages."),
    Column("doi", "text", False, "DOI."),
    Column("pmid", "text", False, "PubMed id."),
    Column(
        "design",
        "enum",
        True,
        "parallel or split_scalp (multi-arm is implied by > 2 arms).",
        choices=("parallel", "split_scalp"),
    ),
    Column(
        "primary",
        "enum",
        False,
        "yes = in the primary comparison; no = sensitivity analyses only.",
        choices=("yes", "no"),
    ),
    Column("status", "code", False, "Inclusion status."),
    Column("category", "code", False, "Intervention category (device)."),
    Column("country", "text", False, "Country."),
    Column("sex", "enum", False, "Population sex.", choices=("male", "female", "mixed")),
    Column(
        "n_randomised",
        "int",
        False,
        "Participants randomised in total.",
        check=_positive,
        check_rule="> 0",
    ),
    Column(
        "n_arms",
        "int",
        False,
        "Arms randomised (used to split n_randomised when per-arm n is missing).",
        check=lambda x: x >= 1,
        check_rule=">= 1",
    ),
    Column(
        "minoxidil_pct",
        "number",
        False,
        "Minoxidil strength (%).",
        check=_positive,
        check_rule="> 0",
    ),
    Column("needle_mm", "number", False, "Needle length (mm).", check=_positive, check_rule="> 0"),
    Column(
        "interval_weeks",
        "number",
        False,
        "Weeks between sessions.",
        check=_positive,
        check_rule="> 0",
    ),
    Column("sessions", "int", False, "Number of sessions.", check=_positive, check_rule="> 0"),
    Column(
        "treatment_weeks", "number", False, "Treatment duration.", check=_positive, check_rule="> 0"
    ),
    Column("rob", "enum", False, "Overall risk of bias.", choices=("low", "some", "high")),
    Column("confidence", "text", False, "Extraction confidence."),
    Column("source", "text", False, "What was read."),
    Column("note", "text", False, "Free text."),
)


def check_table(
    raw: pd.DataFrame, spec: tuple[Column, ...], fname: str
) -> tuple[pd.DataFrame, list[Problem]]:
    """Type-check every cell of ``raw`` against ``spec``.

    Parameters
    ----------
    raw : pandas.DataFrame
        A table from :func:`hairtrial.data.csvread.read_table` (strings, indexed by line).
    spec : tuple of Column
        The file's columns.
    fname : str
        File name used in the problems.

    Returns
    -------
    (table, problems) : tuple of pandas.DataFrame and list of Problem
        Typed cells (``None`` where empty or invalid; every column of ``spec``) and every
        problem of the header (unknown, repeated, missing required column; then the table is
        returned as read) or of a cell.
    """
    problems: list[Problem] = []
    known = {c.name for c in spec}
    header = [str(c) for c in raw.columns]
    for col in header:
        if col not in known:
            problems.append(
                Problem(
                    fname,
                    1,
                    col,
                    None,
                    "unknown column (allowed: " + ", ".join(c.name for c in spec) + ")",
                )
            )
    dupes = {c for c in header if header.count(c) > 1}
    for col in sorted(dupes):
        problems.append(Problem(fname, 1, col, None, "column appears more than once"))
    for c in spec:
        if c.required and c.name not in raw.columns:
            problems.append(Problem(fname, 1, c.name, None, "required column is missing"))
    if problems:
        return raw, problems

    out = pd.DataFrame(index=raw.index)
    for c in spec:
        if c.name not in raw.columns:
            out[c.name] = pd.Series([None] * len(raw), index=raw.index, dtype=object)
            continue
        values: list[object] = []
        for i, cell in raw[c.name].items():
            line = int(i)
            text = cell.strip()
            if text == "":
                if c.required:
                    problems.append(Problem(fname, line, c.name, cell, "required value is empty"))
                values.append(None)
                continue
            if c.kind in ("int", "number"):
                x = parse_number(text)
                if x is None:
                    problems.append(
                        Problem(
                            fname,
                            line,
                            c.name,
                            cell,
                            "must be a finite number (ASCII digits, optional sign, decimal point "
                            "and exponent, e.g. -1.5e3)",
                        )
                    )
                    values.append(None)
                    continue
                if c.kind == "int" and x != int(x):
                    problems.append(Problem(fname, line, c.name, cell, "must be a whole number"))
                    values.append(None)
                    continue
                if c.check is not None and not c.check(x):
                    rule = c.check_rule or "out of range"
                    if not rule.startswith("must"):
                        rule = f"must be {rule}"
                    problems.append(Problem(fname, line, c.name, cell, rule))
                    values.append(None)
                    continue
                values.append(int(x) if c.kind == "int" else x)
            elif c.kind == "enum":
                if text not in c.choices:
                    problems.append(
                        Problem(fname, line, c.name, cell, "must be one of " + ", ".join(c.choices))
                    )
                    values.append(None)
                else:
                    values.append(text)
            elif c.kind == "code":
                if not CODE_PATTERN.match(text):
                    problems.append(
                        Problem(
                            fname,
                            line,
                            c.name,
                            cell,
                            "must be a lower-case code (letters, digits and _, "
                            "starting with a letter)",
                        )
                    )
                values.append(text)
            elif c.kind == "id":
                if not ID_PATTERN.match(text):
                    problems.append(
                        Problem(
                            fname,
                            line,
                            c.name,
                            cell,
                            "must be an identifier (letters, digits, _ . -; no spaces)",
                        )
                    )
                values.append(text)
            else:
                values.append(text)
        out[c.name] = pd.Series(values, index=raw.index, dtype=object)
    # rows read_table could not take (empty, wrong number of cells), with the cells' problems,
    # in the order of the file's lines
    row_problems = list(raw.attrs.get(ROW_PROBLEMS, []))
    problems = sorted([*row_problems, *problems], key=lambda p: p.line or 0)
    return out, problems


def read_studies(path: str | Path) -> pd.DataFrame:
    """Read and validate ``studies.csv``.

    Parameters
    ----------
    path : str or Path
        The study-level CSV.

    Returns
    -------
    pandas.DataFrame
        One row per study, typed, with every column of the contract (absent
        optional columns are empty). ``primary`` defaults to ``yes``.

    Raises
    ------
    DataValidationError
        Listing every problem with file, line, column, value and rule.
    """
    path = Path(path)
    fname = str(path)
    df, problems = check_table(read_table(path, defer_rows=True), STUDY_COLUMNS, fname)
    if problems:
        raise DataValidationError(problems)
    seen: dict[str, int] = {}
    for i, s in df["study"].items():
        if s in seen:
            problems.append(
                Problem(fname, int(i), "study", s, f"duplicate study (first on line {seen[s]})")
            )
        else:
            seen[s] = int(i)
    if problems:
        raise DataValidationError(problems)
    df["primary"] = df["primary"].where(df["primary"].notna(), "yes")
    for c in STUDY_COLUMNS:
        if c.kind in ("int", "number"):
            df[c.name] = pd.to_numeric(df[c.name], errors="coerce")
    return df.reset_index(drop=True)


def read_arms(path: str | Path, studies: pd.DataFrame) -> pd.DataFrame:
    """Read and validate ``arms.csv`` against the validated ``studies`` table.

    Rules beyond the per-cell types: every study is in ``studies.csv``; an arm
    keeps one treatment; no duplicate study x arm x week x outcome; a change
    cannot be reported at week 0; each row gives a mean or a median; CI and
    quantiles are ordered; ``p_relation`` goes with ``p_value``; one p-value
    per study x week x outcome when the study has one experimental arm; the
    outcome's units convert to one canonical unit; split-scalp studies have
    equal n on both sides.

    Parameters
    ----------
    path : str or Path
        The arm-level CSV.
    studies : pandas.DataFrame
        Output of :func:`read_studies`.

    Returns
    -------
    pandas.DataFrame
        Typed table; line numbers of the source rows in column ``line``.

    Raises
    ------
    DataValidationError
        Listing every problem with file, line, column, value and rule.
    """
    path = Path(path)
    fname = str(path)
    df, problems = check_table(read_table(path, defer_rows=True), ARM_COLUMNS, fname)
    if problems:
        raise DataValidationError(problems)
    df["line"] = df.index.to_numpy()
    known_studies = set(studies["study"])
    design = dict(zip(studies["study"], studies["design"], strict=True))

    def num(row: pd.Series, col: str) -> float | None:
        v = row[col]
        return None if v is None else float(v)

    seen: dict[tuple, int] = {}
    treatment_of: dict[tuple[str, str], tuple[str, int]] = {}
    for _, row in df.iterrows():
        line = int(row["line"])
        key = (row["study"], row["arm"], row["week"], row["outcome"])
        if key in seen:
            problems.append(
                Problem(
                    fname,
                    line,
                    "arm",
                    row["arm"],
                    f"duplicate study x arm x week x outcome (first on line {seen[key]})",
                )
            )
        else:
            seen[key] = line
        if row["study"] not in known_studies:
            problems.append(
                Problem(fname, line, "study", row["study"], "study is not listed in studies.csv")
            )
        arm_key = (row["study"], row["arm"])
        if arm_key in treatment_of and treatment_of[arm_key][0] != row["treatment"]:
            first_t, first_line = treatment_of[arm_key]
            problems.append(
                Problem(
                    fname,
                    line,
                    "treatment",
                    row["treatment"],
                    f"arm '{row['arm']}' had treatment '{first_t}' on line {first_line}; "
                    "an arm keeps one treatment",
                )
            )
        treatment_of.setdefault(arm_key, (row["treatment"], line))
        if row["stat"] == "change" and row["week"] == 0:
            problems.append(
                Problem(fname, line, "stat", "change", "a change from baseline cannot be at week 0")
            )
        if row["mean"] is None and row["median"] is None:
            problems.append(
                Problem(
                    fname, line, "mean", "", "each row needs a mean (or a median to estimate it)"
                )
            )
        lo, hi = num(row, "ci_lower"), num(row, "ci_upper")
        if (lo is None) != (hi is None):
            col = "ci_upper" if hi is None else "ci_lower"
            problems.append(
                Problem(fname, line, col, "", "ci_lower and ci_upper must be given together")
            )
        elif lo is not None and hi is not None and not lo < hi:
            problems.append(
                Problem(fname, line, "ci_upper", row["ci_upper"], "must be greater than ci_lower")
            )
        order = [c for c in ("min", "q1", "median", "q3", "max") if row[c] is not None]
        for a, b in zip(order, order[1:], strict=False):
            if float(row[a]) > float(row[b]):
                problems.append(
                    Problem(fname, line, b, row[b], f"quantiles out of order: {a} > {b}")
                )
        if (row["q1"] is None) != (row["q3"] is None):
            problems.append(
                Problem(fname, line, "q3", row["q3"], "q1 and q3 must be given together")
            )
        if (row["min"] is None) != (row["max"] is None):
            problems.append(
                Problem(fname, line, "max", row["max"], "min and max must be given together")
            )
        if row["p_relation"] is not None and row["p_value"] is None:
            problems.append(
                Problem(fname, line, "p_relation", row["p_relation"], "p_relation needs a p_value")
            )
    if problems:
        raise DataValidationError(problems)

    df["p_relation"] = df["p_relation"].where(df["p_relation"].notna() | df["p_value"].isna(), "=")

    # One canonical unit per outcome.
    canon: dict[str, tuple[str, int]] = {}
    for _, row in df.iterrows():
        c = units.lookup(row["unit"]).canonical
        first = canon.setdefault(row["outcome"], (c, int(row["line"])))
        if first[0] != c:
            problems.append(
                Problem(
                    fname,
                    int(row["line"]),
                    "unit",
                    row["unit"],
                    f"outcome '{row['outcome']}' is in {first[0]} on line {first[1]}; "
                    f"{row['unit']} cannot be converted to it",
                )
            )

    # p-values: one per study x week x outcome for each experimental-control pair.
    for (study, week, outcome), g in df.groupby(["study", "week", "outcome"], sort=False):
        pv = g.dropna(subset=["p_value"])
        pairs = {(float(p), r) for p, r in zip(pv["p_value"], pv["p_relation"], strict=True)}
        if len(pairs) > 1 and g["treatment"].nunique() <= 2 and g["arm"].nunique() == 2:
            problems.append(
                Problem(
                    fname,
                    int(pv["line"].iloc[-1]),
                    "p_value",
                    pv["p_value"].iloc[-1],
                    f"two arms of {study} (week {week}, {outcome}) give different between-arm "
                    "p-values; give one",
                )
            )
        if design.get(study) == "split_scalp":
            ns = set(g["n"].dropna())
            if len(ns) > 1:
                problems.append(
                    Problem(
                        fname,
                        int(g["line"].iloc[-1]),
                        "n",
                        g["n"].iloc[-1],
                        f"split-scalp study {study}: both sides are the same patients, "
                        "so n must be equal",
                    )
                )
    if problems:
        raise DataValidationError(problems)

    for spec in ARM_COLUMNS:
        if spec.kind in ("int", "number"):
            df[spec.name] = pd.to_numeric(df[spec.name], errors="coerce")
    df["week"] = df["week"].astype(int)
    return df.reset_index(drop=True)


def read_inputs(arms: str | Path, studies: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate both input files.

    Parameters
    ----------
    arms, studies : str or Path
        Paths of ``arms.csv`` and ``studies.csv``.

    Returns
    -------
    (arms, studies) : tuple of pandas.DataFrame

    Raises
    ------
    DataValidationError
        On any broken rule, naming file, line, column, value and rule.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "s.csv").write_text("study,year,design\\nx2020,2020,parallel\\n")
    >>> _ = (d / "a.csv").write_text(
    ...     "study,arm,treatment,week,outcome,unit,n,mean,stat,sd\\n"
    ...     "x2020,A,minoxidil,12,hair_density,hairs/cm2,10,5.0,change,-1\\n")
    >>> try:
    ...     read_inputs(d / "a.csv", d / "s.csv")
    ... except DataValidationError as e:
    ...     print(str(e).splitlines()[1].split("a.csv, ")[1])
    line 2, column 'sd': value '-1': must be > 0
    """
    s = read_studies(studies)
    a = read_arms(arms, s)
    return a, s
