"""Manifests: the list of files one job of a run wrote.

Each job of the workflow that writes results also writes a manifest
(``results/manifests/{job}.csv``, one ``path`` per row, relative to the results
directory, in the order written). The HTML report is built from these lists, never by
looking at what happens to lie in ``results/``: a file left over from another run is not
in any manifest and cannot appear.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from hairtrial.core.io import atomic_write, neutralise_text, read_csv_output

__all__ = ["read_manifests", "write_manifest"]


def write_manifest(path: str | Path, files: Iterable[str | Path], root: str | Path) -> Path:
    """Write the manifest ``path`` listing ``files`` relative to ``root`` (POSIX paths)."""
    rel = [Path(os.path.relpath(Path(f).resolve(), Path(root).resolve())).as_posix() for f in files]

    def write(tmp: Path) -> None:
        # the bytes of core.io.write_csv (pandas' to_csv: csv's minimal quoting, "\n" line
        # ends, formulas neutralised), without importing pandas: the figure job that copies
        # its kept figures imports nothing else that needs it (tests/test_manifest.py)
        with tmp.open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(["path"])
            out.writerows([neutralise_text(r)] for r in dict.fromkeys(rel))

    atomic_write(path, write)
    return Path(path)


def read_manifests(paths: Iterable[str | Path]) -> list[str]:
    """The paths listed in the manifests ``paths`` (relative to the results directory), as
    they were before :func:`write_manifest` neutralised formulas (``'-x.png`` is ``-x.png``)."""
    out: list[str] = []
    for p in paths:
        table = read_csv_output(p, dtype=str, keep_default_na=False)
        out += [str(x) for x in table["path"]]
    return list(dict.fromkeys(out))
