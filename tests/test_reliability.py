"""Reliability of a run (issue 9): whatever stops a run, the last good results stay whole.

Each test starts from one complete run of the small `.test/` analysis made with
``hairtrial run`` (the command ``make run`` calls), limited to the analysis job to keep the
suite short, then breaks a second run: a crash inside a job, SIGINT and SIGTERM while a job
runs, a concurrent run, a read-only results folder, a full disk (a small tmpfs; root only).
Each must exit non-zero with a message and leave every byte of ``results/test/`` as it was.

Faults are injected from outside the code under test: a ``sitecustomize`` module on the
jobs' ``PYTHONPATH`` makes the analysis job raise, or wait until it is signalled, when
``HAIRTRIAL_FAULT`` asks for it. Waiting for a job to have started is by a marker file the
job writes, never by a sleep; the only time limits are generous safety nets.

Marker ``reliability``: deselected from plain ``make test``; ``make test-reliability``
runs it (and ``.ci/run``), with the second cold run of tests/test_workflow.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hairtrial.core.staging import RunLock

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.reliability
NAME = "test"
UNTIL = ["--until", "analysis"]  # one job: the suite tests the transaction, not the analysis
SAFETY_NET = 900  # seconds; a test that needs this long has hung

SITECUSTOMIZE = """
import os, sys, time
_fault = os.environ.get("HAIRTRIAL_FAULT", "")
if _fault and any(a.endswith("analysis.py") for a in sys.argv[:1]):
    if _fault == "crash":
        raise SystemExit("injected fault: the analysis job crashed")
    if _fault == "hang":
        open(os.environ["HAIRTRIAL_FAULT_MARKER"], "w").close()
        while True:
            time.sleep(1)
"""


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def temporary_files(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob(".*") if ".tmp" in p.name]


def hairtrial_run(
    workdir: Path, *extra: str, config: str = "config.yaml", env: dict | None = None
) -> subprocess.Popen:
    """``hairtrial run`` on ``config``; the variant config also forces the analysis job to run
    (its changed setting reruns it by itself since the jobs carry rerun keys; forcing keeps
    the fault tests independent of that)."""
    if config != "config.yaml":
        extra = ("--forcerun", "analysis", *extra)
    cmd = [
        sys.executable, "-m", "hairtrial.cli", "run",
        "--config", str(workdir / "config" / config),
        "--snakefile", str(ROOT / "Snakefile"),
        "--cores", "1",
        "--", *UNTIL, *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=SAFETY_NET)
    return proc.returncode, out + err


def fault_env(tmp_path: Path, fault: str) -> dict:
    hook = tmp_path / "fault"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")]))
    env["HAIRTRIAL_FAULT"] = fault
    env["HAIRTRIAL_FAULT_MARKER"] = str(tmp_path / "job_started")
    return env


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A copy of `.test/` with one complete run; a config variant that changes the tables."""
    work = tmp_path_factory.mktemp("reliability")
    shutil.copytree(ROOT / ".test", work, dirs_exist_ok=True, symlinks=False)
    shutil.rmtree(work / "results", ignore_errors=True)
    shutil.rmtree(work / ".snakemake", ignore_errors=True)
    rc, out = finish(hairtrial_run(work))
    assert rc == 0, out[-4000:]
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    cfg["meta_analysis"]["level"] = 0.9  # the same analysis; a run would change every interval
    (work / "config" / "variant.yaml").write_text(yaml.safe_dump(cfg))
    return work


def results(work: Path) -> Path:
    return work / "results" / NAME


def assert_untouched(work: Path, before: dict[str, str], out: str) -> None:
    assert digests(results(work)) == before, out[-3000:]
    assert not temporary_files(work / "results"), temporary_files(work / "results")
    assert "Traceback" not in out, out[-3000:]
    assert f"results/{NAME}/ still holds the previous complete results" in out or (
        "nothing was run" in out
    ), out[-3000:]


def test_rerun_is_incremental_and_leaves_no_temporary_file(good):
    before = digests(results(good))
    rc, out = finish(hairtrial_run(good))
    assert rc == 0, out[-3000:]
    assert "Nothing to be done" in out or re.search(r"total\s+0\n", out), out[-3000:]
    assert "rule analysis" not in out  # no job ran
    assert digests(results(good)) == before
    assert not temporary_files(good / "results")
    assert not (good / "results" / ".hairtrial" / NAME / "staging").exists()


def test_crash_inside_a_job(good, tmp_path):
    before = digests(results(good))
    rc, out = finish(hairtrial_run(good, config="variant.yaml", env=fault_env(tmp_path, "crash")))
    assert rc != 0, out[-3000:]
    assert_untouched(good, before, out)
    failed = good / "results" / ".hairtrial" / NAME / "failed"
    assert f"{failed.relative_to(good)}" in out  # says where the partial outputs are
    assert (failed / "work" / "results" / NAME / "logs" / "analysis.log").exists()
    assert "injected fault" in (failed / "snakemake.log").read_text()  # the job's stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_run(good, tmp_path, sig):
    before = digests(results(good))
    env = fault_env(tmp_path, "hang")
    proc = hairtrial_run(good, config="variant.yaml", env=env)
    marker = Path(env["HAIRTRIAL_FAULT_MARKER"])
    deadline = time.monotonic() + SAFETY_NET
    while not marker.exists():  # the analysis job has started and waits
        assert proc.poll() is None, finish(proc)[1][-3000:]
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)
    proc.send_signal(sig)
    rc, out = finish(proc)
    assert rc != 0, out[-3000:]
    assert f"interrupted ({sig.name})" in out, out[-3000:]
    assert_untouched(good, before, out)


def test_concurrent_run_is_refused(good):
    before = digests(results(good))
    lock = RunLock(good / "results" / ".hairtrial" / f"{NAME}.lock")
    assert lock.acquire()
    try:
        rc, out = finish(hairtrial_run(good, config="variant.yaml"))
    finally:
        lock.release()
    assert rc != 0, out[-3000:]
    assert f"another run of the analysis '{NAME}' is in progress" in out
    assert_untouched(good, before, out)


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="needs root to mount"
)


@pytest.fixture
def read_only(good):
    """The results folder read-only: a read-only bind mount (root) or no write permission."""
    folder = good / "results"
    if os.geteuid() == 0:
        if not (_mount("--bind", str(folder), str(folder))):
            pytest.skip("cannot bind-mount")
        if not _mount("-o", "remount,bind,ro", str(folder)):
            subprocess.run(["umount", str(folder)], check=True)
            pytest.skip("cannot remount read-only")
        yield
        subprocess.run(["umount", str(folder)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        yield
        for p, mode in modes.items():
            p.chmod(mode)


def test_read_only_results_folder(good, read_only):
    before = digests(results(good))
    rc, out = finish(hairtrial_run(good, config="variant.yaml"))
    assert rc != 0, out[-3000:]
    assert "cannot" in out
    assert_untouched(good, before, out)


@needs_root
def test_full_disk(good, tmp_path):
    """Results on a tmpfs with room for the last good run and little else."""
    work = tmp_path / "full"
    shutil.copytree(good, work, symlinks=True, ignore=shutil.ignore_patterns("results"))
    keep = [results(good), good / "results" / ".hairtrial" / NAME / "metadata"]
    files = [p for folder in keep for p in folder.rglob("*")]
    used = sum(p.stat().st_size for p in files if p.is_file())
    size_kib = used // 1024 + 4 * len(files) + 64  # the last good run and little else
    (work / "results").mkdir()
    if not _mount("-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(work / "results")):
        pytest.skip("cannot mount a tmpfs")
    try:
        for folder in keep:  # copy2: times kept, so the copy is as up to date as the original
            shutil.copytree(folder, work / folder.relative_to(good), symlinks=True)
        before = digests(results(work))
        rc, out = finish(hairtrial_run(work, config="variant.yaml"))
        assert rc != 0
        assert_untouched(work, before, out)
    finally:
        subprocess.run(["umount", str(work / "results")], check=True)
