"""Manifests: the list of files one job of a run wrote.

Each job of the workflow that writes results also writes a manifest
(``results/manifests/{job}.csv``, one ``path`` per row, relative to the results
directory, in the order written). The HTML report is built from these lists, never by
looking at what happens to lie in ``results/``: a file left over from another run is not
in any manifest and cannot appear.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from hairtrial.core.io import write_csv

__all__ = ["read_manifests", "write_manifest"]


def write_manifest(path: str | Path, files: Iterable[str | Path], root: str | Path) -> Path:
    """Write the manifest ``path`` listing ``files`` relative to ``root`` (POSIX paths)."""
    rel = [Path(os.path.relpath(Path(f).resolve(), Path(root).resolve())).as_posix() for f in files]
    write_csv(pd.DataFrame({"path": list(dict.fromkeys(rel))}), path)
    return Path(path)


def read_manifests(paths: Iterable[str | Path]) -> list[str]:
    """The paths listed in the manifests ``paths`` (relative to the results directory)."""
    out: list[str] = []
    for p in paths:
        out += [str(x) for x in pd.read_csv(p, dtype=str, keep_default_na=False)["path"]]
    return list(dict.fromkeys(out))
