"""Atomic file output: a reader never sees a half-written file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

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


def write_csv(
    df: pd.DataFrame, path: str | Path, float_format: str | None = CSV_FLOAT_FORMAT
) -> None:
    """Write ``df`` as CSV, ``\\n`` line ends, atomically.

    Numbers with :data:`CSV_FLOAT_FORMAT` (12 significant digits); ``float_format=None``
    writes the shortest text that reads back as the same float (figure data).
    """
    atomic_write(
        path,
        lambda p: df.to_csv(p, index=False, float_format=float_format, lineterminator="\n"),
    )
