"""The figures of the last drawing, kept so that an unchanged redraw is a copy.

``make figures`` redraws every figure from the saved tables (Snakemake removes the old
ones first). The drawing is deterministic: the same tables, figure data, config, plotting
code and libraries give the same bytes (tests/test_workflow.py checks two runs byte for
byte). So the figure job keeps what it drew, under a key made of all of these, and when
the key has not changed it copies the kept files instead of drawing them again; any
change to an input file, the config (its ``figures`` section included), a source file of
the package, a library version or matplotlib's settings gives a new key and a full
drawing. Only standard-library imports here: the check must cost much less than a drawing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from hairtrial.core.fingerprint import Digest, package_files

__all__ = ["cached_drawing", "drawing_key"]

#: Libraries whose version is part of the key (what draws, encodes and embeds fonts).
LIBRARIES = (
    "matplotlib", "numpy", "pandas", "scipy", "fonttools", "pillow", "contourpy", "zlib-ng",
)  # fmt: skip


def drawing_key(inputs: Mapping[str, str | Path], config: Mapping[str, Any]) -> str:
    """A digest of everything a drawing of the figures depends on.

    Parameters
    ----------
    inputs : mapping
        Name -> path of every file the figures are drawn from (tables, figure data, the
        PRISMA counts); their bytes enter the key.
    config : mapping
        The run's config (all of it: the primary model, the figure formats and DPI).
    """
    import matplotlib as mpl  # its settings (a user's matplotlibrc) shape the figures

    h = Digest()
    h.add("config", json.dumps(config, sort_keys=True, default=str).encode())
    for name in sorted(inputs):
        h.add(f"input {name}", Path(inputs[name]).read_bytes())
    for dist in LIBRARIES:
        try:
            h.add(f"version {dist}", metadata.version(dist).encode())
        except metadata.PackageNotFoundError:
            h.add(f"version {dist}", b"")
    h.add("python", sys.version.encode())
    # by key, leaving out the backend before it is read: reading rcParams["backend"] (as
    # items() does) resolves it, which imports pyplot (~0.4 s of an unchanged redraw's 0.8 s)
    rc = {k: repr(mpl.rcParams[k]) for k in mpl.rcParams if k != "backend"}
    h.add("rcParams", json.dumps(rc, sort_keys=True).encode())
    root = Path(__file__).resolve().parents[1]
    for path in package_files():
        h.add(f"source {path.relative_to(root).as_posix()}", path.read_bytes())
    return h.hexdigest()


def cached_drawing(
    key: str,
    cache_dir: str | Path,
    figures_dir: str | Path,
    draw: Callable[[], Iterable[Path]],
) -> tuple[list[Path], bool]:
    """The files of a drawing: copied from ``cache_dir`` when its key is ``key``, else drawn.

    Parameters
    ----------
    key : str
        :func:`drawing_key` of this drawing.
    cache_dir : str or Path
        Where the last drawing is kept (``key``, ``files.txt`` and the files).
    figures_dir : str or Path
        Where the figures go.
    draw : callable
        Draws every figure into ``figures_dir``; returns the files written, in order.

    Returns
    -------
    (list of Path, bool)
        The files in ``figures_dir`` in the order ``draw`` wrote them, and whether they
        came from the cache.
    """
    cache, out = Path(cache_dir), Path(figures_dir)
    kept = _kept(cache, key)
    if kept is not None:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in kept:
            target = out / name
            shutil.copyfile(cache / "files" / name, target)
            os.chmod(target, 0o644)
            written.append(target)
        return written, True
    written = [Path(p) for p in draw()]
    _keep(cache, key, written)
    return written, False


def _kept(cache: Path, key: str) -> list[str] | None:
    """The file names kept under ``key``, or None (no cache, another key, a file missing)."""
    try:
        if (cache / "key").read_text(encoding="utf-8") != key:
            return None
        names = (cache / "files.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if not all((cache / "files" / n).is_file() for n in names):
        return None
    return names


def _keep(cache: Path, key: str, written: list[Path]) -> None:
    """Replace the kept drawing with ``written``.

    Written into a new folder of its own, which then takes the place of the old one: a
    reader sees a whole drawing or none, also when two runs keep theirs at once. Keeping is
    best effort (a failure leaves no cache, and the next redraw draws).
    """
    if len({p.name for p in written}) != len(written):
        return  # not one flat folder of figures: nothing is kept
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", dir=cache.parent))
    try:
        (tmp / "files").mkdir()
        for p in written:
            shutil.copyfile(p, tmp / "files" / p.name)
        (tmp / "files.txt").write_text("".join(f"{p.name}\n" for p in written), encoding="utf-8")
        (tmp / "key").write_text(key, encoding="utf-8")
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
    except OSError:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
