"""Transactional results folders: build a staging copy, swap it in whole, or keep it aside.

A run never writes into the folder a user reads. :func:`stage` makes a staging copy of the
published folder in which every result file is a hard link (no data is copied, so a rerun
stays incremental and cheap) and every file that is written in place (logs, benchmarks) is
a real copy; the run writes there, replacing files (Snakemake deletes a job's outputs and
logs before the job, and the library writes through a temporary file and ``os.replace``), so
no write reaches an inode of the published folder. :func:`swap` then exchanges the two
folders with one ``renameat2(RENAME_EXCHANGE)`` (two renames where the file system cannot
exchange), so a reader sees the old complete results or the new complete results, never a
mix. :class:`RunLock` keeps two runs of one analysis apart (``flock``, released by the kernel
when the process dies, so a killed run never leaves a stale lock).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
from pathlib import Path

COPIED_DIRS = frozenset({"logs", "benchmarks"})
PUBLISHED_ENV = "HAIRTRIAL_PUBLISHED_ROOT"
"""Environment variable set by ``hairtrial run`` for the jobs of a staged run: the folder the
results are published under (the project), where a job that writes a path for a reader
(the notebooks' parameters) must point, not at the staging folder that is deleted."""
"""Subfolders whose files are copied, not linked, into a staging folder: they are written in
place (a log is opened for writing), which through a hard link would change the published
file."""

_RENAME_EXCHANGE = 2


class StagingError(OSError):
    """A staging folder could not be made, swapped in or kept aside."""


def _is_temporary(name: str) -> bool:
    """Hidden temporary files of an interrupted write (``.name.XXXX.tmp``, ``.*.tmp*``)."""
    return name.startswith(".") and ".tmp" in name


def link_tree(src: Path, dst: Path, copied: frozenset[str] = COPIED_DIRS) -> None:
    """Mirror ``src`` into ``dst`` (which must not exist): files as hard links, except under
    the top-level folders named in ``copied`` (real copies). Temporary files are left out.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "a" / "logs").mkdir(parents=True)
    >>> _ = (d / "a" / "t.csv").write_text("x")
    >>> _ = (d / "a" / "logs" / "job.log").write_text("log")
    >>> link_tree(d / "a", d / "b")
    >>> (d / "b" / "t.csv").stat().st_ino == (d / "a" / "t.csv").stat().st_ino
    True
    >>> (d / "b" / "logs" / "job.log").stat().st_ino == (d / "a" / "logs" / "job.log").stat().st_ino
    False
    """
    dst.mkdir(parents=True)
    shutil.copystat(src, dst)
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        if _is_temporary(entry.name):
            continue
        target = dst / entry.name
        if entry.is_dir(follow_symlinks=False):
            if entry.name in copied:
                shutil.copytree(entry.path, target, symlinks=True)
            else:
                link_tree(Path(entry.path), target, frozenset())
        elif entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        else:
            os.link(entry.path, target)


def _libc_renameat2():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return libc.renameat2
    except (OSError, AttributeError):
        return None


def exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2``); False where not supported."""
    fn = _libc_renameat2()
    if fn is None:
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise StagingError(err, f"cannot exchange {a} and {b}: {os.strerror(err)}")


def swap(new: Path, published: Path) -> None:
    """Put the folder ``new`` at ``published``; the previous ``published`` ends at ``new``.

    One atomic exchange where the file system supports it, otherwise two renames (for an
    instant ``published`` does not exist, but it never holds a mix of two runs).
    """
    if not published.exists():
        published.parent.mkdir(parents=True, exist_ok=True)
        os.rename(new, published)
        return
    if exchange(new, published):
        return
    aside = new.with_name(new.name + ".old")
    os.rename(published, aside)
    os.rename(new, published)
    os.rename(aside, new)


class RunLock:
    """An exclusive lock on one analysis (``flock`` on ``path``), held while a run lasts.

    The lock file descriptor is inheritable so that the child processes of a run (Snakemake
    and its jobs) hold the lock too: a run whose parent was killed still blocks a new run
    until its last process has ended.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.set_inheritable(fd, True)
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def remove_tree(path: Path) -> None:
    """Remove a folder (nothing if it does not exist)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def replace_tree(src: Path, dst: Path) -> None:
    """Move the folder ``src`` to ``dst``, replacing what was there."""
    if dst.exists():
        trash = dst.with_name(dst.name + ".trash")
        remove_tree(trash)
        os.rename(dst, trash)
        os.rename(src, dst)
        remove_tree(trash)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)


def remove_temporary(folder: Path) -> None:
    """Delete the hidden temporary files of interrupted writes anywhere under ``folder``."""
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            if _is_temporary(name):
                Path(dirpath, name).unlink(missing_ok=True)
        dirnames[:] = [d for d in dirnames if d != ".snakemake"]


def drop_unchanged_copies(
    staged: Path, published: Path, copied: frozenset[str] = COPIED_DIRS
) -> None:
    """Delete, under the ``copied`` folders of ``staged``, the copies that this run did not
    write: a file with the size and modification time of its counterpart in ``published``
    (:func:`link_tree` copies with both kept; a job that ran rewrote its log).

    So the folder a failed or interrupted run leaves holds only what that run wrote, not the
    logs of the last complete run for jobs that never ran.

    Examples
    --------
    >>> import tempfile, time
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "a" / "logs").mkdir(parents=True)
    >>> for name in ("ran.log", "not_run.log"):
    ...     _ = (d / "a" / "logs" / name).write_text("last complete run")
    >>> link_tree(d / "a", d / "b")
    >>> _ = (d / "b" / "logs" / "ran.log").write_text("this run")
    >>> drop_unchanged_copies(d / "b", d / "a")
    >>> sorted(p.name for p in (d / "b" / "logs").iterdir())
    ['ran.log']
    """
    for name in copied:
        top = staged / name
        if not top.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(top):
            for file in files:
                path = Path(dirpath, file)
                twin = published / path.relative_to(staged)
                try:
                    a, b = path.stat(), twin.stat()
                except OSError:
                    continue
                if (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns):
                    path.unlink(missing_ok=True)
