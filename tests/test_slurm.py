"""The workflow on a real Slurm cluster (issue 13, "On a real cluster").

Starts a one-node Slurm cluster with ``.ci/slurm/start.sh`` (installs Debian's packages when
missing; needs root), runs a small workflow through ``snakemake --profile
workflow/profiles/slurm`` (every job a Slurm batch job), runs it again locally and checks
that the aggregated table is byte-identical and that every job ran under a real Slurm job id.
``.ci/slurm/stop.sh`` always runs afterwards and every daemon must be gone.

Not part of ``make test``: run it with ``make test-slurm`` (or ``.ci/run-slurm``).

The workflow is a small grid of the simulation study (``make simulate``): four chunk jobs,
the performance table and the report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLURM_CI = ROOT / ".ci" / "slurm"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"

# The workflow under test: a small grid of the simulation study (tests/data/simulation_small.yaml:
# two scenarios x two chunks), each chunk job recording its $SLURM_JOB_ID in a side file.
SNAKEFILE = ROOT / "Snakefile"
SMALL_PLAN = ROOT / "tests" / "data" / "simulation_small.yaml"
ARGS: list[str] = ["simulation", "--config", f"simulation_study={SMALL_PLAN}"]
RESULT = "results/simulation/performance.csv"
JOBID_GLOB = "results/simulation/jobs/*/*.txt"
N_JOBS = 4

SNAKEMAKE_TIMEOUT = 900  # seconds, per run
START_TIMEOUT = 600  # includes apt-get on a fresh machine


def _can_run() -> bool:
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("apt-get") is not None
    )


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not _can_run(), reason="needs root on Linux with apt-get"),
]


def _env(**extra: str) -> dict[str, str]:
    """This environment without Slurm or Snakemake settings, the venv first on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_", "SNAKEMAKE_"))
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _run(cmd: list[str], *, env: dict[str, str], timeout: float, cwd: Path | None = None):
    """Run cmd; on failure, fail the test with the tail of its output."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-6000:]}")
    return proc


def _alive(pid: int, name: str) -> bool:
    """pid runs the daemon `name` (a zombie waiting to be reaped counts as stopped)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return comm == name and not re.search(r"^State:\s*Z", status, re.M)


class Cluster:
    def __init__(self, base: Path):
        self.base = base
        self.pids: dict[str, int] = {}
        self.passed = False


@pytest.fixture
def slurm_cluster():
    """A running one-node cluster; stopped (by recorded PID) however the test ends."""
    base = Path(tempfile.mkdtemp(prefix="hairtrial-slurm-", dir="/tmp"))
    cluster = Cluster(base)
    env = _env(HAIRTRIAL_SLURM_DIR=str(base))
    t0 = time.monotonic()
    try:
        start = _run([SLURM_CI / "start.sh"], env=env, timeout=START_TIMEOUT)
        print(f"\n{start.stdout}start.sh: {time.monotonic() - t0:.0f} s")
        cluster.pids = {p.stem: int(p.read_text()) for p in (base / "pids").glob("*.pid")}
        assert set(cluster.pids) == {"munged", "slurmctld", "slurmd"}
        yield cluster
    finally:
        t0 = time.monotonic()
        stop = subprocess.run(
            [str(SLURM_CI / "stop.sh"), *(["--purge"] if cluster.passed else [])],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        print(f"{stop.stdout}stop.sh: {time.monotonic() - t0:.0f} s")
        if not cluster.passed:
            print(f"Slurm logs kept in {base}/log")
    assert stop.returncode == 0, stop.stdout
    again = subprocess.run(
        [str(SLURM_CI / "stop.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, f"stop.sh failed when called twice:\n{again.stdout}"
    left = {name: pid for name, pid in cluster.pids.items() if _alive(pid, name)}
    assert not left, f"daemons still running after stop.sh: {left}"
    link = Path("/etc/slurm/slurm.conf")
    assert not (link.is_symlink() and str(link.readlink()).startswith(f"{base}/")), (
        "stop.sh left its /etc/slurm/slurm.conf link"
    )


def _snakemake(workdir: Path, *options: str) -> str:
    workdir.mkdir(parents=True)
    for name in ("config", "data"):  # the pipeline config's relative paths
        (workdir / name).symlink_to(ROOT / name)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += ["--directory", str(workdir), *options, *ARGS]
    return _run(cmd, env=_env(), timeout=SNAKEMAKE_TIMEOUT, cwd=workdir).stdout


def _job_ids(workdir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(workdir)): p.read_text().strip() for p in sorted(workdir.glob(JOBID_GLOB))
    }


def test_workflow_on_slurm_matches_local_run(slurm_cluster, tmp_path):
    t0 = time.monotonic()
    on_slurm = tmp_path / "slurm"
    _snakemake(on_slurm, "--profile", str(PROFILE))
    t1 = time.monotonic()
    local = tmp_path / "local"
    _snakemake(local, "--cores", "2")
    print(f"snakemake on Slurm: {t1 - t0:.0f} s, locally: {time.monotonic() - t1:.0f} s")

    # same bytes, however the jobs were run
    assert (on_slurm / RESULT).read_bytes() == (local / RESULT).read_bytes()

    # every job ran as its own Slurm job, and Slurm's controller logged its successful end (its
    # log, not squeue: finished jobs leave squeue after MinJobAge, 300 s, and a slow run on a
    # busy machine takes longer than that)
    slurm_ids = _job_ids(on_slurm)
    assert len(slurm_ids) == N_JOBS, slurm_ids
    assert all(re.fullmatch(r"[0-9]+", i) for i in slurm_ids.values()), slurm_ids
    assert len(set(slurm_ids.values())) == N_JOBS, slurm_ids
    ctld_log = (slurm_cluster.base / "log" / "slurmctld.log").read_text(errors="replace")
    completed = set(re.findall(r"_job_complete: JobId=([0-9]+) WEXITSTATUS 0", ctld_log))
    assert set(slurm_ids.values()) <= completed, (slurm_ids, sorted(completed))

    # the local run made the same files, outside Slurm
    local_ids = _job_ids(local)
    assert local_ids == dict.fromkeys(slurm_ids, "none")

    slurm_cluster.passed = True
