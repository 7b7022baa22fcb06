"""Benchmark of the workflow as a user runs it: `make run` (cold and no-op), `make figures`,
`make test`.

On the default data with the environment present (``.venv``). The runs go to a scratch
directory that links to the project's files (Snakefile, workflow, config, data, notebooks,
Makefile, environment), so the project's own ``results/`` is never touched. For each step:
wall time, the Snakemake jobs it ran, and the Python interpreters it started (counted by a
``sitecustomize`` module put on ``PYTHONPATH`` for the benchmark only: every interpreter
that starts appends a line to a file; forked workers are not new interpreters and are not
counted). The machine's load (1-minute load average) before each step is recorded: the
targets are for an idle 2-core machine; and its speed before and after each step (the time of
a fixed pure-Python loop, :func:`loop_seconds`): on a shared VM it drifts, and the step's times
with it.

    .venv/bin/python benchmarks/bench_workflow.py [--skip-test] [--source DIR] [--out CSV]

writes ``benchmarks/results/workflow.csv``. ``--source`` times another checkout (its
workflow, data and ``src/``, first on ``PYTHONPATH``) with this environment: on a machine
whose speed drifts (a shared VM), two versions timed one after the other in the same hour
compare better than numbers from different days. CPU seconds (user + system of every
process the step started and waited for, from ``getrusage``) drift much less with the load
than wall time.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "workflow.csv"
STAMP = ".venv/.hairtrial-installed"  # the Makefile's marker of a built environment
TARGETS = {"cold run": 20.0, "no-op run": 2.0, "make figures": 5.0, "make test": 180.0}
SITECUSTOMIZE = """
import os, sys
_log = os.environ.get("HAIRTRIAL_BENCH_PROCESSES")
if _log:
    with open(_log, "a") as _f:
        _f.write(f"{os.getpid()} {' '.join(sys.argv)[:200]}\\n")
"""


def job_counts(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table (rule -> jobs); empty when nothing ran."""
    if "Job stats:" not in output:
        return {}
    counts = {}
    for line in output.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


#: What a scratch checkout links to: enough for `make run`, `make figures` and `make test`.
LINKED = (
    "Snakefile", "workflow", "config", "data", "notebooks", "src", "tests", ".test",
    "Makefile", "pyproject.toml", "requirements.lock", ".venv",
)  # fmt: skip


def loop_seconds() -> float:
    """The machine's speed just now: seconds for a pure-Python loop of 10 million additions
    (``s += i``; best of three runs of 2 million, times 5). This shared VM's speed drifts by a
    third within the hour; the same code's step times move with it."""
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        s = 0
        for i in range(2_000_000):
            s += i
        best = min(best, time.perf_counter() - t0)
    return round(5 * best, 2)


def step(
    name: str, cmd: list[str], env: dict[str, str], log_dir: Path, cwd: Path
) -> dict[str, object]:
    processes = log_dir / f"{name.replace(' ', '_')}.processes"
    processes.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    speed_before = loop_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env={**env, "HAIRTRIAL_BENCH_PROCESSES": str(processes)},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    speed_after = loop_seconds()
    out = proc.stdout + proc.stderr
    (log_dir / f"{name.replace(' ', '_')}.log").write_text(out)
    if proc.returncode != 0 and name != "make test":
        sys.exit(f"{name} failed ({' '.join(cmd)}):\n{out[-3000:]}")
    if proc.returncode != 0:  # the timing is kept; what failed is shown, not lost with the log
        failures = re.findall(r"^(?:FAILED|ERROR) .*$", out, re.M)
        print(f"{name} failed:\n" + "\n".join(failures or [out[-3000:]]), file=sys.stderr)
    summary = re.findall(r"^=+ (.* in [\d.]+s.*) =+$", out, re.M)
    jobs = job_counts(out)
    started = processes.read_text().splitlines() if processes.exists() else []
    return {
        "step": name,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "target_seconds": TARGETS.get(name, ""),
        "jobs": sum(v for k, v in jobs.items() if k != "all") if name != "make test" else "",
        "python_processes": len(started),
        "load_1min_before": round(load, 2),
        "loop_s_before": speed_before,
        "loop_s_after": speed_after,
        "result": "ok" if proc.returncode == 0 else f"exit {proc.returncode}",
        "notes": summary[-1] if summary else "",
    }


def job_rows(results: Path) -> list[dict[str, object]]:
    """One row per job of the cold run: wall and CPU seconds from the last line of the job's
    log (``logs/<rule>.log``, :func:`hairtrial.core.runlog.usage`: the kernel's own counts
    for the job's process and every process it started and waited for)."""
    out = []
    for log in sorted(results.glob("*/logs/*.log")):
        lines = log.read_text().splitlines()
        m = re.match(r"used: ([\d.]+) s, ([\d.]+) CPU s", lines[-1]) if lines else None
        if not m:
            continue
        out.append({
            "step": f"cold run: job {log.stem}", "seconds": float(m[1]),
            "cpu_seconds": float(m[2]), "target_seconds": "", "jobs": 1,
            "python_processes": "", "load_1min_before": "", "loop_s_before": "",
            "loop_s_after": "", "result": "ok", "notes": "",
        })  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-test", action="store_true", help="do not time `make test`")
    parser.add_argument(
        "--keep", type=Path, help="copy the run's results/ here (to compare with another run)"
    )
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="the checkout to time (default: this one)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args()
    source = args.source.resolve()
    if not (ROOT / ".venv" / "bin" / "snakemake").exists():
        sys.exit("the environment is missing: run `make env` first")
    rows = []
    with tempfile.TemporaryDirectory(prefix="hairtrial-bench-") as tmp:
        tmp = Path(tmp)
        hook = tmp / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
        work = tmp / "work"
        work.mkdir()
        for name in LINKED:
            (work / name).symlink_to((ROOT if name == ".venv" else source) / name)
        logs = tmp / "logs"
        logs.mkdir()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(hook), str(source / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        # the environment is present: never let make rebuild it (-o: the stamp is up to date)
        make = ["make", "-o", STAMP]
        rows.append(step("cold run", [*make, "run"], env, logs, work))
        jobs = job_rows(work / "results")  # read now: `make figures` rewrites its job's file
        rows.append(step("no-op run", [*make, "run"], env, logs, work))
        rows.append(step("make figures", [*make, "figures"], env, logs, work))
        if args.keep:
            shutil.copytree(work / "results", args.keep, dirs_exist_ok=True)
        if not args.skip_test:
            # another engineer's unfinished test module must not stop the timing of the rest
            test_env = {**env, "PYTEST_ADDOPTS": "--continue-on-collection-errors"}
            # in the source checkout, with this checkout's environment (another checkout,
            # e.g. a git worktree of an earlier commit, has none of its own)
            venv = ROOT / ".venv"
            make_test = ["make", "-o", str(venv / ".hairtrial-installed"), f"VENV={venv}", "test"]
            rows.append(step("make test", make_test, test_env, logs, source))
        if args.keep:
            shutil.copytree(logs, args.keep / "bench_logs", dirs_exist_ok=True)
    rows += jobs
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for r in rows:
        r.update(cores=os.cpu_count(), machine=platform.node(), date=stamp)
        r["source"] = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(
            f"{r['step']:<14} {r['seconds']:>8.2f} s, {r['cpu_seconds']:>7.2f} CPU s "
            f"(target {r['target_seconds']} s)  "
            f"jobs {r['jobs']!s:>3}  python processes {r['python_processes']:>3}  "
            f"load before {r['load_1min_before']}  loop {r['loop_s_before']}/"
            f"{r['loop_s_after']} s  {r['result']} {r['notes']}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
