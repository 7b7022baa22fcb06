"""Logging for workflow scripts: everything a script says goes to its rule's log."""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import resource
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path


def skip_final_collection() -> None:
    """Let this process end without the interpreter's last garbage collections.

    When it ends, CPython clears its modules and collects garbage several times over every
    object it still holds: with pandas, SciPy and matplotlib imported, ~0.35 s of CPU between
    the process's last statement and its end (measured: 0.30-0.43 s; 0.03-0.06 s with this),
    paid by every workflow job, by Snakemake and by ``hairtrial run``, most of them one after
    the other. This registers :func:`gc.freeze` to run at exit (once a process): the
    objects the process holds then are left to the operating system. Nothing else changes:
    the other exit handlers run, files and logs are flushed and closed, streams are flushed;
    only cyclic garbage still held at the very end is not collected (the workflow closes its
    files with ``with``). Called by :func:`logged` (every workflow job), by the Snakefile
    (any Snakemake running it) and by the ``hairtrial`` command.
    """
    global _FREEZE_AT_EXIT
    if not _FREEZE_AT_EXIT:
        atexit.register(gc.freeze)
        _FREEZE_AT_EXIT = True


_FREEZE_AT_EXIT = False


@contextlib.contextmanager
def logged(path: str | Path) -> Iterator[logging.Logger]:
    """Send logging, warnings and any traceback of the block to ``path``.

    Parameters
    ----------
    path : str or Path
        The rule's ``log:`` file.

    The log's last line says what the job used (:func:`usage`): its time, its CPU time and
    its peak memory, and the process ends without its last garbage collections
    (:func:`skip_final_collection`).

    Yields
    ------
    logging.Logger
        Logger named ``hairtrial``.
    """
    skip_final_collection()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            yield logging.getLogger("hairtrial")
        except BaseException:
            fh.write(traceback.format_exc())
            fh.flush()
            sys.stderr.write(traceback.format_exc())
            raise
        finally:
            # what the job used is a footnote: no failure of its own (a full disk, a missing
            # psutil) may stop a job or hide the job's own error
            with contextlib.suppress(Exception):
                fh.write(f"{usage()}\n")
            root.removeHandler(handler)
            logging.captureWarnings(False)


def usage() -> str:
    """What this process has used so far: one line for a job's log.

    Seconds since the process started, CPU seconds of the process and of the processes it
    started and waited for (their own children included: the notebooks' kernels, the figure
    job's workers), and the peak resident memory of the process and of the largest of those
    processes. Exact counts from the kernel (``getrusage``), read once: Snakemake's
    ``benchmark:`` sampled every job's processes twice a second instead (psutil reading
    ``/proc/<pid>/smaps_rollup``), which cost 3-5 s of a 20 s run on two cores.

    Examples
    --------
    >>> usage().startswith("used: ")
    True
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = own.ru_utime + own.ru_stime
    children_cpu = children.ru_utime + children.ru_stime
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    unit = 1 if sys.platform == "darwin" else 1024
    mb = 1024 * 1024
    started = (
        f"{children_cpu:.2f} in the processes it started, the largest of which peaked at "
        f"{children.ru_maxrss * unit / mb:.0f} MB"
        if children_cpu > 0 or children.ru_maxrss > 0
        else "no other processes"
    )
    return (
        f"used: {_elapsed():.2f} s, {own_cpu + children_cpu:.2f} CPU s ({own_cpu:.2f} in this "
        f"process, peak memory {own.ru_maxrss * unit / mb:.0f} MB; {started})"
    )


def _elapsed() -> float:
    """Seconds since this process started, to the kernel's clock tick (10 ms).

    On Linux from the start time the kernel records (``/proc/self/stat``, clock ticks since
    boot) and the clock of time since boot. Not psutil's ``create_time``: it adds the boot
    time, which the kernel gives in whole seconds (``btime``), so a process's age came out
    too large by a fixed fraction of a second on each machine (0.82 s on the one where this
    was found: a job of 1.5 s was logged as 2.3 s). Elsewhere (macOS) psutil's, as is.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            # the fields after the command name, which is in parentheses and may hold spaces
            fields = f.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of proc(5)
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())
