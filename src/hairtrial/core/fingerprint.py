"""Digests of what a result depends on: files, the package's own sources, the installed
libraries; and a listing of a folder's files that shows when one was changed or removed.

Used where a step can be skipped because nothing it depends on has changed: ``hairtrial
run`` with nothing to do (:mod:`hairtrial.cli`) and an unchanged redraw of the figures
(:mod:`hairtrial.report.figure_cache`). Only standard-library imports: a check must cost
much less than the work it may save.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Digest", "folder_listing", "installed_distributions", "package_files", "tree_files"]

#: Files of the package that make up a digest of its code (code, style, captions, schemas).
SOURCE_SUFFIXES = (".py", ".mplstyle", ".yaml", ".json")


class Digest:
    """A SHA-256 over labelled parts; a part's length is hashed with it, so two different
    sequences of parts never give the same bytes to hash."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, label: str, data: bytes) -> None:
        """Add one labelled part."""
        self._h.update(f"{label}\0{len(data)}\0".encode())
        self._h.update(data)

    def add_file(self, label: str, path: str | Path) -> None:
        """Add a file's bytes. A file that cannot be read (missing, a folder, no permission)
        is a part of its own, not an error: the digest differs from any readable content,
        and the reader of the file reports the problem with its own message."""
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            self.add(f"unreadable {label}", type(err).__name__.encode())
        else:
            self.add(f"file {label}", data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def package_files() -> list[Path]:
    """Every source file of the installed ``hairtrial`` package (code, style, captions,
    schemas, the shipped config), sorted."""
    return tree_files(Path(__file__).resolve().parents[1], SOURCE_SUFFIXES)


def tree_files(root: str | Path, suffixes: Iterable[str] | None = None) -> list[Path]:
    """The files under ``root`` (those with one of ``suffixes``, or all), sorted; caches
    (``__pycache__``, hidden folders) left out."""
    root = Path(root)
    keep = tuple(suffixes) if suffixes is not None else None
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
        for name in files:
            if keep is None or name.endswith(keep):
                found.append(Path(folder, name))
    return sorted(found)


def installed_distributions() -> bytes:
    """The installed distributions and their versions, as the names of their metadata
    folders on ``sys.path`` (``pandas-2.2.3.dist-info``): a library upgraded, added or
    removed changes it. Much cheaper than reading every distribution's metadata. hairtrial's
    own metadata is left out (its sources are digested by :func:`package_files`)."""
    names = []
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        names += [
            n
            for n in listing
            if n.endswith((".dist-info", ".egg-info"))
            # hairtrial's own metadata: its sources are digested themselves, and a build in the
            # checkout (src/hairtrial.egg-info) must not change what the code is
            and not n.startswith(("hairtrial-", "hairtrial."))
        ]
    return "\n".join([sys.version, *sorted(names)]).encode()


def folder_listing(folder: str | Path) -> list[tuple[str, int, int]]:
    """Every file under ``folder`` as (relative path, size, modification time in ns),
    sorted: a file written, replaced, added or removed since changes it."""
    folder = Path(folder)
    rows = []
    for here, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            st = os.stat(os.path.join(here, name), follow_symlinks=False)
            rel = os.path.relpath(os.path.join(here, name), folder)
            rows.append((Path(rel).as_posix(), st.st_size, st.st_mtime_ns))
    return sorted(rows)
