"""Atomic file output: a reader never sees a half-written file; CSV outputs are safe to open
in a spreadsheet (text cells that would start a formula are neutralised, in one place:
:func:`neutralise_formulas`, applied by :func:`write_csv`)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

# pandas is imported where it is used: a job that only copies files and writes a manifest
# (the figure job that keeps its last drawing) does not import it (~0.8 s)
if TYPE_CHECKING:
    import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)
CSV_FLOAT_FORMAT = "%.12g"
"""Full precision for CSV outputs (12 significant digits)."""


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path, then move it onto ``path``.

    Parameters
    ----------
    path : str or Path
        Final destination; its directory is created if needed.
    write : callable
        Writes the content to the path it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)."""
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.IGNORECASE)


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell that starts with ``= + - @``, a tab or a carriage return
    prefixed with ``'`` (OWASP's advice against CSV injection), so that a spreadsheet shows
    it as text instead of running it. Numbers, and text that is a number (``-0.5``), are
    unchanged. Returns ``df`` itself when nothing needs it.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"note": ["=HYPERLINK(1)", "-0.5", "@SUM(A1)", "ok"], "x": [-1, 2, 3, 4]})
    >>> neutralise_formulas(df)["note"].tolist()
    ["'=HYPERLINK(1)", '-0.5', "'@SUM(A1)", 'ok']
    """

    return _map_text(df, neutralise_text)


def neutralise_text(value: object) -> object:
    """One cell as :func:`neutralise_formulas` writes it: text that would start a formula
    gets a leading ``'``; a line break inside text is written as ``\\n`` (a carriage return
    would break the row in a reader); anything else is returned as it is.

    Examples
    --------
    >>> neutralise_text("=1+1"), neutralise_text("-0.5"), neutralise_text(-1)
    ("'=1+1", '-0.5', -1)
    >>> neutralise_text("a\\r=1+1"), neutralise_text("\\r=1")
    ('a\\n=1+1', "'\\n=1")
    """
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        value = "'" + value
    if "\r" in value:
        # the CSV writer quotes a cell holding its line end ("\n") but not a bare CR, which
        # readers take as a line end too: the row would break there, and what follows the CR
        # would start a row of its own (a formula even). A CR (or CR LF) is written as "\n".
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def _map_text(df: pd.DataFrame, fix: Callable[[object], object]) -> pd.DataFrame:
    """``df`` with ``fix`` applied to every cell of its text columns (``df`` itself, not a
    copy, when nothing changes)."""
    import pandas as pd

    out = df
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col].dtype):
            fixed = df[col].map(fix)
            if not fixed.equals(df[col]):
                if out is df:
                    out = df.copy()
                out[col] = fixed
    return out


def restore_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`neutralise_formulas` (for a step that reads an output back and shows its
    text, such as the HTML report, which escapes every text).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"c": ["'+0.5 to zero cells", "'quoted", "-0.5"]})
    >>> restore_formulas(df)["c"].tolist()
    ['+0.5 to zero cells', "'quoted", '-0.5']
    """
    starts = tuple("'" + c for c in FORMULA_STARTS)

    def fix(value: object) -> object:
        if isinstance(value, str) and value.startswith(starts):
            return value[1:]
        return value

    return _map_text(df, fix)


def read_csv_output(source, **kwargs) -> pd.DataFrame:
    """Read a CSV that :func:`write_csv` wrote, with its text as it was before
    neutralisation (``pandas.read_csv`` keywords pass through)."""
    import pandas as pd

    return restore_formulas(pd.read_csv(source, **kwargs))


def write_csv(
    df: pd.DataFrame, path: str | Path, float_format: str | None = CSV_FLOAT_FORMAT
) -> None:
    """Write ``df`` as CSV, ``\\n`` line ends, atomically, text cells neutralised
    (:func:`neutralise_formulas`).

    Numbers with :data:`CSV_FLOAT_FORMAT` (12 significant digits); ``float_format=None``
    writes the shortest text that reads back as the same float (figure data).
    """
    safe = neutralise_formulas(df)
    atomic_write(
        path,
        lambda p: safe.to_csv(p, index=False, float_format=float_format, lineterminator="\n"),
    )
