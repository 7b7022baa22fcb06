"""Strict reading of the input CSV files, with the physical line of every row.

pandas skips blank lines (so its row numbers drift from what an editor shows), renames a
repeated header to ``name.1`` and reads ``1_000`` or Arabic-Indic digits as numbers; a user
then gets a message about the wrong line or a number that was never written. This reader
(Python's :mod:`csv`, which keeps the physical line count, including quoted line breaks)
reports every departure from the contract as a :class:`Problem` naming file, line, column,
value and rule:

* the path: missing, a directory, unreadable;
* the bytes: UTF-8 (a byte-order mark is accepted), an invalid byte named with its line;
* the header: empty, blank or repeated column names;
* the rows: blank rows inside the file, rows with more or fewer cells than the header.

Numbers are parsed by :func:`parse_number`: ASCII digits with an optional sign, decimal point
and exponent, nothing else.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A number as the input contract allows it: ASCII digits, optional sign, point, exponent."""


@dataclass(frozen=True)
class Problem:
    """One broken rule in one cell (or row) of an input file."""

    file: str
    line: int | None
    column: str | None
    value: object
    rule: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column '{self.column}'"
        value = "" if self.value is None else f": value {self.value!r}"
        return f"{where}{value}: {self.rule}"


class DataValidationError(ValueError):
    """Raised when an input file breaks the contract; lists every problem."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the input data:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


def parse_number(text: str) -> float | None:
    """The finite number ``text`` spells in the contract's syntax, or None.

    Examples
    --------
    >>> parse_number("-1.5e3"), parse_number("1_000"), parse_number("٣"), parse_number("1e999")
    (-1500.0, None, None, None)
    """
    if not NUMBER.fullmatch(text):
        return None
    x = float(text)
    return x if math.isfinite(x) else None


def _decode(data: bytes, fname: str) -> str:
    data = data.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark, as spreadsheets write
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.end]
        raise DataValidationError(
            [
                Problem(
                    fname,
                    line,
                    None,
                    None,
                    f"byte {bad.hex(' ')} is not UTF-8 (save the file as UTF-8)",
                )
            ]
        ) from None


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``; a missing, directory or unreadable path is a Problem."""
    path = Path(path)
    fname = str(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        rule = "file not found"
    except IsADirectoryError:
        rule = "is a directory, not a CSV file"
    except PermissionError:
        rule = "cannot be read (permission denied)"
    except OSError as err:
        rule = f"cannot be read ({err.strerror or err})"
    where = f"{fname} (looked for {path.resolve()})" if not path.is_absolute() else fname
    raise DataValidationError([Problem(where, None, None, None, rule)])


ROW_PROBLEMS = "hairtrial_row_problems"
"""Key of :attr:`pandas.DataFrame.attrs` under which ``read_table(..., defer_rows=True)``
leaves the problems of rows it could not take."""


def read_table(path: str | Path, *, defer_rows: bool = False) -> pd.DataFrame:
    """Read a CSV file as strings, indexed by the physical line of each row.

    The header is line 1. Every cell is a string (an empty cell is ``''``); columns keep the
    header's names. Blank lines at the end of the file are ignored; a blank row inside it, a
    row with the wrong number of cells, an empty or repeated column name is a Problem.

    With ``defer_rows``, problems of rows (an empty row, a wrong number of cells) are not
    raised but left in ``frame.attrs[ROW_PROBLEMS]`` and the other rows returned, so that
    :func:`hairtrial.data.validate.check_table` lists them with the cells' problems (every
    problem of a file at once).

    Raises
    ------
    DataValidationError
        Every problem of the file at once (bytes and header problems first, alone).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("a,b\\n1,2\\n\\n3,4\\n")
    >>> try:
    ...     read_table(p)
    ... except DataValidationError as e:
    ...     print(e.problems[0].line, e.problems[0].rule)
    3 empty row (delete it, or fill it in)
    """
    fname = str(path)
    text = _decode(read_bytes(path), fname)
    # lines end at "\n" only (as they are counted for messages); "\r\n" is read as one end
    reader = csv.reader(io.StringIO(text, newline="\n"), strict=True)
    rows: list[tuple[int, list[str]]] = []
    end = 0
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            rows.append((start, cells))
    except csv.Error as err:
        raise DataValidationError(
            [Problem(fname, reader.line_num, None, None, f"not valid CSV ({err})")]
        ) from None
    while rows and not any(c.strip() for c in rows[-1][1]):
        rows.pop()  # trailing blank lines
    if not rows:
        raise DataValidationError([Problem(fname, 1, None, None, "the file is empty (no header)")])
    header_line, header = rows[0]
    problems: list[Problem] = []
    names = [h.strip() for h in header]
    for j, name in enumerate(names):
        if not name:
            problems.append(
                Problem(fname, header_line, f"#{j + 1}", "", "empty column name in the header")
            )
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if name and name in seen:
            problems.append(
                Problem(
                    fname,
                    header_line,
                    name,
                    None,
                    f"column appears more than once (columns {seen[name] + 1} and {j + 1})",
                )
            )
        seen.setdefault(name, j)
    if problems:
        raise DataValidationError(problems)
    lines, body = [], []
    for line, cells in rows[1:]:
        if not any(c.strip() for c in cells):
            problems.append(
                Problem(fname, line, None, None, "empty row (delete it, or fill it in)")
            )
            continue
        if len(cells) != len(names):
            problems.append(
                Problem(
                    fname,
                    line,
                    None,
                    None,
                    f"row has {len(cells)} cells but the header has {len(names)} columns",
                )
            )
            continue
        lines.append(line)
        body.append(cells)
    if problems and not defer_rows:
        raise DataValidationError(problems)
    frame = pd.DataFrame(body, columns=names, index=pd.Index(lines, name="line"), dtype=object)
    frame = frame.astype(str) if len(frame) else frame
    frame.attrs[ROW_PROBLEMS] = problems
    return frame
