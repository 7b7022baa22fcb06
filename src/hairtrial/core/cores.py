"""How many processes a job may draw with: the run's cores and the CPUs it may use.

The figure job asks Snakemake for one core (``threads: 1``), so that on two cores it can
start beside the notebooks job, which runs its kernels one after the other, instead of
waiting for it; it then draws with up to two processes (:func:`worker_processes`). While
the notebooks run, its second process shares a core with them; once they end, or when it
runs alone (``make figures``), it has both. The CPUs a job may use bound this (a Slurm job
given one CPU draws with one process), and so do the cores given to the run (``--cores``):
the Snakefile puts them in :data:`RUN_CORES_ENV` of the jobs it starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

FIGURE_PROCESSES = 2
"""Processes the figure job draws with, at most (:func:`worker_processes`)."""

RUN_CORES_ENV = "HAIRTRIAL_RUN_CORES"
"""Environment variable set by the Snakefile for its jobs: the ``--cores`` of the run."""


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; the machine's count elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this platform (macOS)
        return os.cpu_count() or 1


def worker_processes(wanted: int, environ: Mapping[str, str] | None = None) -> int:
    """Processes to work with: ``wanted``, at most the run's cores and the usable CPUs.

    Parameters
    ----------
    wanted : int
        The most the caller would use.
    environ : mapping, optional
        Where :data:`RUN_CORES_ENV` is read (default: this process's environment); absent or
        not a positive whole number in ASCII digits: no bound from it.

    Examples
    --------
    >>> worker_processes(2, {RUN_CORES_ENV: "1"})
    1
    >>> worker_processes(1, {RUN_CORES_ENV: "8"})
    1
    >>> worker_processes(1, {RUN_CORES_ENV: "¹"})  # not a whole number: no bound from it
    1
    """
    environ = os.environ if environ is None else environ
    bound = min(int(wanted), usable_cpus())
    cores = environ.get(RUN_CORES_ENV, "")
    # ASCII digits only: str.isdigit() is also true of digits int() does not read ("¹")
    if cores.isascii() and cores.isdigit() and int(cores) > 0:
        bound = min(bound, int(cores))
    return max(1, bound)
