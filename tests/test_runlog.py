"""A job's process: its log (what it used), its end (no final garbage collections), and how
many processes it may draw with (hairtrial.core.runlog, hairtrial.core.cores)."""

import doctest
import re
import subprocess
import sys
import textwrap
import time

from hypothesis import example, given
from hypothesis import strategies as st

from hairtrial.core import cores, runlog

# A job that leaves one object in a reference cycle (only the final garbage collections
# would find it) whose finalizer writes to stderr.
_CYCLE = """
import sys
class Cycle:
    def __init__(self):
        self.me = self
    def __del__(self):
        sys.stderr.write("collected at exit\\n")
Cycle()
"""


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True
    )


def test_a_plain_process_collects_its_garbage_at_exit():
    """The control of the next test: CPython's final collection finds the cycle."""
    proc = _python(_CYCLE)
    assert proc.returncode == 0 and "collected at exit" in proc.stderr


def test_a_job_ends_without_the_final_collections(tmp_path):
    """A job (inside `logged`) leaves what it holds at exit to the operating system; its
    log is complete, down to the last line."""
    log = tmp_path / "job.log"
    job = f"""
        from hairtrial.core.runlog import logged
        with logged({str(log)!r}) as log:
            log.info("the job's work")
        """
    proc = _python(textwrap.dedent(job) + _CYCLE)
    assert proc.returncode == 0, proc.stderr
    assert "collected at exit" not in proc.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "INFO hairtrial: the job's work"
    assert lines[-1].startswith("used: ")


def test_a_process_is_never_older_than_the_time_since_it_was_started():
    """The seconds a job's log gives (runlog._elapsed) are at most the time between the
    moment just before its process was started and the moment just after it answered: an
    order, whatever the machine's speed. (psutil's start time, which adds a boot time in
    whole seconds, made every process up to a second older than that.)"""
    code = "from hairtrial.core import runlog; print(runlog._elapsed())"
    for _ in range(3):
        before = time.monotonic()
        proc = _python(code)
        after = time.monotonic()
        assert proc.returncode == 0, proc.stderr
        # + 20 ms: the start time and the clock since boot are counted in 10 ms ticks
        assert 0 < float(proc.stdout) <= after - before + 0.02


def test_the_last_line_counts_the_processes_a_job_started(tmp_path):
    """CPU time of the processes the job started (and waited for) is counted with its own."""
    log = tmp_path / "job.log"
    work = "s = 0\nfor i in range(3_000_000): s += i"
    proc = _python(
        f"""
        import subprocess, sys
        from hairtrial.core.runlog import logged
        with logged({str(log)!r}):
            subprocess.run([sys.executable, "-c", {work!r}], check=True)
        """
    )
    assert proc.returncode == 0, proc.stderr
    last = log.read_text().splitlines()[-1]
    m = re.fullmatch(
        r"used: ([\d.]+) s, ([\d.]+) CPU s \(([\d.]+) in this process, peak memory (\d+) MB; "
        r"([\d.]+) in the processes it started, the largest of which peaked at (\d+) MB\)",
        last,
    )
    assert m, last
    total, own, started = float(m[2]), float(m[3]), float(m[5])
    assert started > 0 and int(m[6]) > 0 and int(m[4]) > 0
    assert abs(total - (own + started)) <= 0.011  # each printed to 0.01


def test_a_failed_job_logs_its_traceback_then_what_it_used(tmp_path):
    log = tmp_path / "job.log"
    proc = _python(
        f"""
        from hairtrial.core.runlog import logged
        with logged({str(log)!r}):
            raise ValueError("bad input")
        """
    )
    assert proc.returncode != 0
    text = log.read_text()
    assert "ValueError: bad input" in text
    assert text.splitlines()[-1].startswith("used: ")


def test_doctests():
    for module in (runlog, cores):
        failures, tests = doctest.testmod(module)
        assert tests > 0 and failures == 0, module.__name__


@given(
    wanted=st.integers(1, 64),
    run_cores=st.one_of(st.none(), st.integers(-2, 64).map(str), st.text(max_size=4)),
)
@example(wanted=2, run_cores="¹")  # a digit to str.isdigit(), not to int() (found by hypothesis)
@example(wanted=2, run_cores="٣")  # Arabic-Indic three: int() reads it; not a --cores value
@example(wanted=2, run_cores=" 1")
def test_worker_processes_never_exceed_what_the_run_and_the_machine_allow(wanted, run_cores):
    environ = {} if run_cores is None else {cores.RUN_CORES_ENV: run_cores}
    n = cores.worker_processes(wanted, environ)
    assert 1 <= n <= max(1, min(wanted, cores.usable_cpus()))
    if run_cores is not None and re.fullmatch("[0-9]+", run_cores) and int(run_cores) > 0:
        assert n <= int(run_cores)
    elif run_cores is not None:  # anything else bounds nothing
        assert n == max(1, min(wanted, cores.usable_cpus()))
    if run_cores is None:
        assert n == min(wanted, cores.usable_cpus())


def test_a_failing_usage_line_neither_stops_a_job_nor_hides_its_error(tmp_path):
    """The usage line is a footnote: when it cannot be made, the job's outcome stands."""
    log = tmp_path / "job.log"
    proc = _python(
        f"""
        from hairtrial.core import runlog
        def broken():
            raise ImportError("no psutil")
        runlog.usage = broken
        with runlog.logged({str(log)!r}) as log:
            log.info("done")
        print("ended normally")
        """
    )
    assert proc.returncode == 0 and "ended normally" in proc.stdout, proc.stderr
    assert log.read_text().splitlines() == ["INFO hairtrial: done"]
