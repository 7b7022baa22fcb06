"""PRISMA 2020 flow counts: read and validate the counts file (``data/prisma.csv``).

The counts of the PRISMA 2020 flow diagram (Page et al. 2021, BMJ 372:n71;
template for new systematic reviews that searched databases and registers,
with the optional column for other methods) live in a small CSV file that
the user edits by hand. :func:`read_prisma` reads it, checks every cell and
the arithmetic of the flow, and returns a :class:`PrismaCounts`, which
:func:`hairtrial.plots.prisma.prisma_diagram` draws.

Two kinds of problems are told apart:

* **Format errors** (unknown box or column, a count that is not a whole
  number >= 0, a box given twice, a missing or repeated reason) always raise
  :class:`PrismaValidationError`, listing every problem at once.
* **Consistency problems** (the counts do not add up, e.g. records screened
  != records identified - records removed) are warnings by default: they are
  issued as :class:`PrismaConsistencyWarning`, kept in
  :attr:`PrismaCounts.problems` and printed in vermillion in the diagram footer, so a
  diagram under construction can still be drawn but never silently looks
  right. With ``strict=True`` they raise :class:`PrismaValidationError` as
  well (use it for the final version). A rule is checked only when every
  count it involves is known; an empty count is never taken as zero.

Every message names the file, the line (the header is line 1, as a
spreadsheet shows it), the column, the value and the rule, like the input
validation of :mod:`hairtrial.data.validate`.

Examples
--------
>>> counts = read_prisma("data/prisma.csv")  # doctest: +SKIP
>>> counts["reports_not_retrieved"]  # doctest: +SKIP
1
>>> counts["records_screened"] is None  # not reported  # doctest: +SKIP
True

The counts file
---------------
``data/prisma.csv``: UTF-8, comma-separated, header on the first line, one
row per box (or per reason), columns:

========  ========  ====================================================
column    required  meaning
========  ========  ====================================================
``box``   yes       Box name, one of :data:`BOXES` (table below).
``label`` no        The reason (``reports_excluded``,
                    ``other_reports_excluded``) or the source
                    (``other_identified``: e.g. ``Websites``,
                    ``Citation searching``) for the boxes that take
                    several rows; must be empty for every other box.
``count`` yes       Whole number >= 0, or **empty when the count is not
                    known**: drawn as "n = not reported", never as 0.
``note``  no        Free text (where the number comes from); not drawn.
========  ========  ====================================================

Boxes (databases and registers column, then the optional other-methods
column; a box may be left out of the file, which is the same as an empty
count):

=========================  ==================================================
box                        PRISMA 2020 box
=========================  ==================================================
``identified_databases``   Records identified from databases
``identified_registers``   Records identified from registers
``removed_duplicates``     Duplicate records removed (before screening)
``removed_automation``     Records marked as ineligible by automation tools
``removed_other``          Records removed for other reasons
``records_screened``       Records screened
``records_excluded``       Records excluded
``reports_sought``         Reports sought for retrieval
``reports_not_retrieved``  Reports not retrieved
``reports_assessed``       Reports assessed for eligibility
``reports_excluded``       Reports excluded, one row per reason (``label``)
``studies_included``       Studies included in review
``reports_included``       Reports of included studies
``studies_meta_analysis``  Optional extra box: studies included in the
                           meta-analysis (drawn only when the row exists)
``other_identified``       Other methods: records identified, one row per
                           source (``label``)
``other_reports_sought``   Other methods: reports sought for retrieval
``other_reports_not_...``  ``other_reports_not_retrieved``: not retrieved
``other_reports_assessed`` Other methods: reports assessed for eligibility
``other_reports_excluded`` Other methods: reports excluded, one row per
                           reason (``label``)
=========================  ==================================================

The other-methods column is drawn only when at least one ``other_*`` count is
given. Consistency rules (:data:`CONSISTENCY_RULES`), each checked only when
all its counts are known:

1. records screened = databases + registers - duplicates - automation - other
   removed;
2. reports sought = records screened - records excluded;
3. reports assessed = reports sought - reports not retrieved (and the same in
   the other-methods column);
4. reports of included studies = (reports assessed - reports excluded) of
   both columns;
5. studies included <= reports of included studies (a study has at least one
   report); studies in the meta-analysis <= studies included;
6. a part never exceeds its whole (removed <= identified, excluded <=
   screened, not retrieved <= sought, excluded <= assessed, other-methods
   reports sought <= records identified), checked when rules 1-4 cannot be.

The default file holds what is known for the project's default data
(``data/studies.csv``): no database search was recorded, so identification
and screening counts are empty; 12 trials were found in the evidence
extraction (the 11 of ``studies.csv`` and Bao et al., electrodynamic
microneedling, whose citation could not be verified: not retrieved); all 11
are included in the review; 3 have a usable mean-difference comparison and
enter the meta-analysis (a test keeps that count equal to the pipeline's).
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hairtrial.data.csvread import DataValidationError, Problem, parse_number, read_table

# --------------------------------------------------------------------------
# Box specifications
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One box (or box line) of the PRISMA 2020 diagram."""

    name: str
    text: str
    column: str  # "databases" or "other"
    repeatable: bool = False  # one row per reason / source, each with a label


BOXES: dict[str, Box] = {
    b.name: b
    for b in (
        Box("identified_databases", "Databases", "databases"),
        Box("identified_registers", "Registers", "databases"),
        Box("removed_duplicates", "Duplicate records removed", "databases"),
        Box("removed_automation", "Records marked as ineligible by automation tools", "databases"),
        Box("removed_other", "Records removed for other reasons", "databases"),
        Box("records_screened", "Records screened", "databases"),
        Box("records_excluded", "Records excluded", "databases"),
        Box("reports_sought", "Reports sought for retrieval", "databases"),
        Box("reports_not_retrieved", "Reports not retrieved", "databases"),
        Box("reports_assessed", "Reports assessed for eligibility", "databases"),
        Box("reports_excluded", "Reports excluded", "databases", repeatable=True),
        Box("studies_included", "Studies included in review", "databases"),
        Box("reports_included", "Reports of included studies", "databases"),
        Box("studies_meta_analysis", "Studies included in meta-analysis", "databases"),
        Box("other_identified", "Records identified from", "other", repeatable=True),
        Box("other_reports_sought", "Reports sought for retrieval", "other"),
        Box("other_reports_not_retrieved", "Reports not retrieved", "other"),
        Box("other_reports_assessed", "Reports assessed for eligibility", "other"),
        Box("other_reports_excluded", "Reports excluded", "other", repeatable=True),
    )
}
"""Box name -> specification, in diagram order."""

COLUMNS = ("box", "label", "count", "note")
REQUIRED_COLUMNS = ("box", "count")

CONSISTENCY_RULES = (
    "records screened = identified - removed before screening",
    "reports sought = records screened - records excluded",
    "reports assessed = reports sought - reports not retrieved",
    "reports of included studies = reports assessed - reports excluded (both columns)",
    "studies included <= reports of included studies; meta-analysis <= included",
    "a part never exceeds its whole",
)
"""Short statement of the arithmetic checks (see the module docstring)."""


class PrismaValidationError(DataValidationError):
    """The PRISMA counts file breaks the format (or, with ``strict``, the arithmetic).

    A :class:`ValueError`; ``problems`` lists every :class:`~hairtrial.data.validate.Problem`.
    """


class PrismaConsistencyWarning(UserWarning):
    """The PRISMA counts do not add up (issued by :func:`read_prisma` unless strict)."""


# --------------------------------------------------------------------------
# The parsed counts
# --------------------------------------------------------------------------


@dataclass
class PrismaCounts:
    """Counts of a PRISMA 2020 flow diagram.

    Attributes
    ----------
    counts : dict of str to int or None
        Single-valued boxes; ``None`` = not reported (empty or absent).
    items : dict of str to list of (str, int or None)
        Repeatable boxes (``reports_excluded``, ``other_identified``,
        ``other_reports_excluded``): ``(label, count)`` in file order.
    present : set of str
        Boxes that have a row in the file (``studies_meta_analysis`` is drawn
        only when present).
    lines : dict of str to int
        Line in the file of each single-valued box (for messages).
    problems : list of hairtrial.data.validate.Problem
        Consistency problems found (drawn in the diagram footer).
    source : str
        File name, for messages.

    Examples
    --------
    >>> c = PrismaCounts.from_mapping({"reports_sought": 12, "reports_not_retrieved": 1,
    ...                                "reports_assessed": 11})
    >>> c["reports_assessed"], c["records_screened"]
    (11, None)
    >>> c.problems
    []
    """

    counts: dict[str, int | None] = field(default_factory=dict)
    items: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    source: str = "<counts>"

    def __post_init__(self) -> None:
        for name, box in BOXES.items():
            if box.repeatable:
                self.items.setdefault(name, [])
            else:
                self.counts.setdefault(name, None)

    def __getitem__(self, box: str) -> int | None:
        """Count of a single-valued box, or the total of a repeatable box (None if unknown)."""
        if box not in BOXES:
            raise KeyError(f"unknown PRISMA box {box!r}")
        if BOXES[box].repeatable:
            return self.total(box)
        return self.counts.get(box)

    def __iter__(self) -> Iterator[str]:
        return iter(BOXES)

    def total(self, box: str) -> int | None:
        """Sum of a repeatable box's rows; None if it has no rows or any count is unknown."""
        rows = self.items.get(box, [])
        if not rows or any(n is None for _, n in rows):
            return None
        return sum(n for _, n in rows if n is not None)

    @property
    def has_other_methods(self) -> bool:
        """Whether any other-methods count is given (the right-hand column is drawn)."""
        singles = any(
            self.counts.get(b) is not None
            for b, spec in BOXES.items()
            if spec.column == "other" and not spec.repeatable
        )
        multis = any(
            n is not None
            for b, spec in BOXES.items()
            if spec.column == "other" and spec.repeatable
            for _, n in self.items.get(b, [])
        )
        return singles or multis

    @classmethod
    def from_mapping(
        cls,
        counts: Mapping[str, int | None | list[tuple[str, int | None]]],
        *,
        source: str = "<counts>",
    ) -> PrismaCounts:
        """Build counts in code (tests, notebooks) and run the consistency checks.

        Parameters
        ----------
        counts : mapping
            Box name -> count (or None); repeatable boxes take a list of
            ``(label, count)``. Every listed box counts as present.
        source : str, default "<counts>"
            Name used in messages.

        Returns
        -------
        PrismaCounts
            With :attr:`problems` filled (no warning is issued).

        Raises
        ------
        KeyError
            For an unknown box name.
        """
        out = cls(source=source)
        for name, value in counts.items():
            if name not in BOXES:
                raise KeyError(f"unknown PRISMA box {name!r}")
            out.present.add(name)
            if BOXES[name].repeatable:
                out.items[name] = [(str(lab), _opt_int(n)) for lab, n in value]  # type: ignore[union-attr]
            else:
                out.counts[name] = _opt_int(value)  # type: ignore[arg-type]
        out.problems = check_consistency(out)
        return out


def _opt_int(value: object) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)  # type: ignore[call-overload]


# --------------------------------------------------------------------------
# Reading and format validation
# --------------------------------------------------------------------------


def _parse_count(raw: str) -> tuple[int | None, str | None]:
    """(count, rule broken) from a cell; empty -> (None, None)."""
    s = raw.strip()
    if s == "":
        return None, None
    x = parse_number(s)
    if x is None:
        return None, "count must be a whole number >= 0 (or empty when not known)"
    if not math.isfinite(x) or x != int(x) or not s.lstrip("+-").isdigit():
        if math.isfinite(x) and x == int(x) and x >= 0:
            return None, "count must be written as a whole number without decimals or exponent"
        if math.isfinite(x) and x < 0:
            return None, "count must be >= 0"
        return None, "count must be a whole number >= 0 (or empty when not known)"
    if x < 0:
        return None, "count must be >= 0"
    return int(s), None


def read_prisma(path: str | Path, *, strict: bool = False) -> PrismaCounts:
    """Read and validate a PRISMA 2020 counts file.

    Parameters
    ----------
    path : str or pathlib.Path
        The counts file (format in the module docstring).
    strict : bool, default False
        Raise on consistency problems too (by default they are warnings,
        kept in :attr:`PrismaCounts.problems` and drawn in the diagram footer).

    Returns
    -------
    PrismaCounts

    Raises
    ------
    PrismaValidationError
        On any format error (all of them listed), or on a consistency problem
        when `strict`. Messages read ``file, line L, column 'C': value 'V': rule``.

    Warns
    -----
    PrismaConsistencyWarning
        When the counts do not add up and `strict` is False.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "prisma.csv"
    >>> _ = p.write_text("box,label,count,note\\nreports_sought,,12,\\n"
    ...                  "reports_not_retrieved,,1,\\nreports_assessed,,11,\\n")
    >>> read_prisma(p)["reports_assessed"]
    11
    >>> _ = p.write_text("box,count\\nreports_sougth,12\\n")
    >>> try:
    ...     read_prisma(p)
    ... except PrismaValidationError as err:
    ...     print(err.problems[0])  # doctest: +ELLIPSIS
    /.../prisma.csv, line 2, column 'box': value 'reports_sougth': unknown box (did you mean ...
    """  # noqa: E501
    path = Path(path)
    fname = str(path)
    try:
        raw = read_table(path)
    except DataValidationError as err:
        raise PrismaValidationError(err.problems) from None

    problems: list[Problem] = []
    header = [str(c) for c in raw.columns]
    for col in header:
        if col not in COLUMNS:
            problems.append(
                Problem(fname, 1, col, col, f"unknown column; allowed: {', '.join(COLUMNS)}")
            )
    for col in REQUIRED_COLUMNS:
        if col not in header:
            problems.append(Problem(fname, 1, col, None, "required column missing"))
    if problems:
        raise PrismaValidationError(problems)

    out = PrismaCounts(source=fname)
    seen_label: dict[tuple[str, str], int] = {}
    for i, row in raw.iterrows():
        line = int(str(i))
        box = row["box"].strip()
        label = " ".join(row["label"].split()) if "label" in raw.columns else ""
        count, rule = _parse_count(row["count"])
        if rule:
            problems.append(Problem(fname, line, "count", row["count"], rule))
        if box == "":
            if row["count"].strip() or label:
                problems.append(Problem(fname, line, "box", "", "box name required"))
            continue  # a blank line
        if box not in BOXES:
            close = difflib.get_close_matches(box, list(BOXES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                Problem(
                    fname,
                    line,
                    "box",
                    box,
                    f"unknown box{hint}; known boxes: {', '.join(BOXES)}",
                )
            )
            continue
        spec = BOXES[box]
        out.present.add(box)
        if spec.repeatable:
            if not label:
                what = "source" if box == "other_identified" else "reason"
                problems.append(
                    Problem(fname, line, "label", "", f"box '{box}' needs a {what} in 'label'")
                )
                continue
            key = (box, label.casefold())
            if key in seen_label:
                problems.append(
                    Problem(
                        fname,
                        line,
                        "label",
                        label,
                        f"repeated label for box '{box}' (first on line {seen_label[key]})",
                    )
                )
                continue
            seen_label[key] = line
            out.items[box].append((label, count))
        else:
            if label:
                problems.append(
                    Problem(
                        fname,
                        line,
                        "label",
                        label,
                        f"box '{box}' takes no label (only reports_excluded, "
                        "other_identified and other_reports_excluded do)",
                    )
                )
            if box in out.lines:
                problems.append(
                    Problem(
                        fname,
                        line,
                        "box",
                        box,
                        f"box given twice (first on line {out.lines[box]})",
                    )
                )
                continue
            out.lines[box] = line
            out.counts[box] = count
    if problems:
        raise PrismaValidationError(problems)

    out.problems = check_consistency(out)
    if out.problems:
        if strict:
            raise PrismaValidationError(out.problems)
        warnings.warn(
            "PRISMA counts do not add up:\n" + "\n".join(f"  - {p}" for p in out.problems),
            PrismaConsistencyWarning,
            stacklevel=2,
        )
    return out


# --------------------------------------------------------------------------
# Consistency
# --------------------------------------------------------------------------


def check_consistency(c: PrismaCounts) -> list[Problem]:
    """Arithmetic checks of the flow (rules in the module docstring).

    Parameters
    ----------
    c : PrismaCounts

    Returns
    -------
    list of hairtrial.data.validate.Problem
        One per broken rule, located at the count that should equal (or not
        exceed) the others.

    Examples
    --------
    >>> c = PrismaCounts.from_mapping({"records_screened": 10, "records_excluded": 4,
    ...                                "reports_sought": 5})
    >>> print(c.problems[0])
    <counts>, column 'count': value 5: reports_sought must equal records_screened \
- records_excluded = 10 - 4 = 6
    """
    out: list[Problem] = []

    def where(box: str) -> int | None:
        return c.lines.get(box)

    def known(*vals: int | None) -> bool:
        return all(v is not None for v in vals)

    def equal(target: str, value: int | None, expr: str, nums: list[int | None]) -> bool:
        """Check target == value; return whether the rule could be checked."""
        t = c[target]
        if not known(t, value, *nums):
            return False
        if t != value:
            out.append(
                Problem(
                    c.source,
                    where(target),
                    "count",
                    t,
                    f"{target} must equal {expr} = {_substitute(expr, c)} = {value}",
                )
            )
        return True

    def at_most(
        part: str,
        part_value: int | None,
        whole_expr: str,
        whole: int | None,
        name: str | None = None,
    ) -> None:
        """Check part <= whole; `part` locates the message, `name` describes the value."""
        if known(part_value, whole) and part_value > whole:  # type: ignore[operator]
            out.append(
                Problem(
                    c.source,
                    where(part),
                    "count",
                    part_value,
                    f"{name or part} must not exceed {whole_expr} = {whole}",
                )
            )

    def minus(a: int | None, *bs: int | None) -> int | None:
        if not known(a, *bs):
            return None
        return a - sum(bs)  # type: ignore[operator,arg-type]

    # 1. records screened
    ident = [c["identified_databases"], c["identified_registers"]]
    removed = [c["removed_duplicates"], c["removed_automation"], c["removed_other"]]
    identified = None if not known(*ident) else sum(ident)  # type: ignore[arg-type]
    n_removed = None if not known(*removed) else sum(removed)  # type: ignore[arg-type]
    ok1 = equal(
        "records_screened",
        minus(identified, n_removed),
        "identified_databases + identified_registers - removed_duplicates "
        "- removed_automation - removed_other",
        [*ident, *removed],
    )
    if not ok1:
        at_most(
            "removed_duplicates",
            n_removed,
            "records identified (databases + registers)",
            identified,
            name="removed_duplicates + removed_automation + removed_other",
        )
        at_most(
            "records_screened",
            c["records_screened"],
            "records identified (databases + registers)",
            identified,
        )
    # 2. reports sought
    ok2 = equal(
        "reports_sought",
        minus(c["records_screened"], c["records_excluded"]),
        "records_screened - records_excluded",
        [c["records_screened"], c["records_excluded"]],
    )
    if not ok2:
        at_most(
            "records_excluded", c["records_excluded"], "records_screened", c["records_screened"]
        )
        at_most("reports_sought", c["reports_sought"], "records_screened", c["records_screened"])
    # 3. reports assessed, both columns
    for pre in ("", "other_"):
        ok3 = equal(
            f"{pre}reports_assessed",
            minus(c[f"{pre}reports_sought"], c[f"{pre}reports_not_retrieved"]),
            f"{pre}reports_sought - {pre}reports_not_retrieved",
            [c[f"{pre}reports_sought"], c[f"{pre}reports_not_retrieved"]],
        )
        if not ok3:
            for part in (f"{pre}reports_not_retrieved", f"{pre}reports_assessed"):
                at_most(part, c[part], f"{pre}reports_sought", c[f"{pre}reports_sought"])
        excl = c.total(f"{pre}reports_excluded")
        if excl is not None and c[f"{pre}reports_assessed"] is not None:
            at_most(
                f"{pre}reports_excluded",
                excl,
                f"{pre}reports_assessed",
                c[f"{pre}reports_assessed"],
            )
    other_ident = c.total("other_identified")
    at_most(
        "other_reports_sought",
        c["other_reports_sought"],
        "records identified by other methods",
        other_ident,
    )
    # 4. reports of included studies
    passed_db = minus(c["reports_assessed"], c.total("reports_excluded"))
    if c.has_other_methods:
        passed_other = minus(c["other_reports_assessed"], c.total("other_reports_excluded"))
        nums = [
            c["reports_assessed"],
            c.total("reports_excluded"),
            c["other_reports_assessed"],
            c.total("other_reports_excluded"),
        ]
        expr = (
            "(reports_assessed - reports_excluded) "
            "+ (other_reports_assessed - other_reports_excluded)"
        )
        value = None if not known(passed_db, passed_other) else passed_db + passed_other  # type: ignore[operator]
        equal("reports_included", value, expr, nums)
    else:
        equal(
            "reports_included",
            passed_db,
            "reports_assessed - reports_excluded",
            [c["reports_assessed"], c.total("reports_excluded")],
        )
    # 5. studies
    at_most(
        "studies_included",
        c["studies_included"],
        "reports_included (a study has at least one report)",
        c["reports_included"],
    )
    at_most(
        "studies_meta_analysis",
        c["studies_meta_analysis"],
        "studies_included",
        c["studies_included"],
    )
    return out


def _substitute(expr: str, c: PrismaCounts) -> str:
    """``expr`` with every box name replaced by its count (totals for repeatable boxes)."""
    return re.sub(
        r"[a-z_]+", lambda m: str(c[m.group(0)]) if m.group(0) in BOXES else m.group(0), expr
    )
