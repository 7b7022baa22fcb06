"""`hairtrial run` with nothing to do answers without starting Snakemake, and only then.

The results of a plain run are up to date when the fingerprint of their data, config,
workflow, package code and libraries is the one recorded when the run completed, and every
file of the results folder is as that run left it. Anything else goes to Snakemake.

The runs here use a one-rule Snakefile of their own (it writes one result and counts its
runs outside the results), so the test is about the decision, not the analysis.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hairtrial import cli
from hairtrial.analyses import fingerprint
from hairtrial.analyses.config import load_config
from hairtrial.analyses.fingerprint import inputs_record, run_fingerprint

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e

SNAKEFILE = """
rule all:
    output:
        "results/test/answer.txt",
    shell:
        'echo 42 > {output} && echo ran >> "$RUN_COUNTER"'


# as workflow/rules/common.smk: the process ends with its jobs, not a second later
onsuccess:
    import threading

    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout with the `.test/` config and data and the one-rule Snakefile."""
    shutil.copytree(ROOT / ".test" / "config", tmp_path / "config")
    shutil.copytree(ROOT / "data", tmp_path / "data")
    (tmp_path / "workflow").mkdir()
    (tmp_path / "workflow" / "Snakefile").write_text(SNAKEFILE)
    return tmp_path


def hairtrial_run(project: Path, *extra: str) -> tuple[int, str]:
    cmd = [
        sys.executable, "-m", "hairtrial.cli", "run",
        "--config", "config/config.yaml",
        "--snakefile", "workflow/Snakefile",
        "--cores", "1",
        "--", *extra,
    ]  # fmt: skip
    env = {**os.environ, "RUN_COUNTER": str(project / "runs.txt")}  # outside the results
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def runs(project: Path) -> int:
    counter = project / "runs.txt"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def snakemake_started(out: str) -> bool:
    return "Building DAG of jobs" in out


STAMP = Path("results", ".hairtrial", "test", cli.UP_TO_DATE)


def test_plain_runs_options_and_changed_inputs(project):
    """One analysis through the cases a user meets, in order (each step builds on the last):
    a second plain run starts no Snakemake; a dry run changes nothing; a run with options
    is Snakemake's to decide and leaves no record (its results may differ); the next plain
    run goes to Snakemake and records again; inputs changed after a checked run are checked
    again and rejected before Snakemake starts."""
    stamp, checked = project / STAMP, project / inputs_record("test")
    rc, out = hairtrial_run(project)
    assert rc == 0 and runs(project) == 1 and snakemake_started(out), out
    assert stamp.is_file() and checked.is_file()
    rc, out = hairtrial_run(project)
    assert rc == 0 and "is up to date" in out and not snakemake_started(out), out
    assert runs(project) == 1
    rc, out = hairtrial_run(project, "-n")
    assert rc == 0 and snakemake_started(out) and stamp.is_file(), out
    rc, out = hairtrial_run(project, "--forceall")
    assert rc == 0 and snakemake_started(out) and runs(project) == 2, out
    assert not stamp.exists()
    rc, out = hairtrial_run(project)  # Snakemake has nothing to do; the record is back
    assert rc == 0 and snakemake_started(out) and runs(project) == 2, out
    assert stamp.is_file()
    arms = project / "data" / "arms.csv"
    lines = arms.read_text().splitlines()
    lines[2] = lines[2].replace(",22.2,", ",twenty,")
    arms.write_text("\n".join(lines) + "\n")
    rc, out = hairtrial_run(project)
    assert rc == 1 and not snakemake_started(out), out
    assert "arms.csv, line 3, column 'mean': value 'twenty': must be a finite number" in out
    assert runs(project) == 2


@pytest.mark.parametrize(
    "change",
    ["data byte", "config", "workflow", "output removed", "output changed", "output added"],
)
def test_any_change_is_not_up_to_date(project, change):
    """What a plain run checks, on a record made as a complete run makes it."""
    config_file = project / "config" / "config.yaml"
    snakefile = project / "workflow" / "Snakefile"
    results = project / "results" / "test"
    results.mkdir(parents=True)
    (results / "answer.txt").write_text("42\n")
    stamp = project / "up-to-date.json"

    def now() -> bool:
        fingerprint = run_fingerprint(load_config(config_file), snakefile)
        return cli._up_to_date(stamp, fingerprint, results)

    cli._write_up_to_date(stamp, run_fingerprint(load_config(config_file), snakefile), results)
    assert now()
    if change == "data byte":
        arms = project / "data" / "arms.csv"
        arms.write_text(arms.read_text().replace(",22.2,", ",22.3,", 1))
    elif change == "config":
        config_file.write_text(config_file.read_text().replace("dpi: 150", "dpi: 151"))
    elif change == "workflow":
        (project / "workflow" / "rules.smk").write_text("# a new rule file\n")
    elif change == "output removed":
        (results / "answer.txt").unlink()
    elif change == "output changed":
        (results / "answer.txt").write_text("43\n")
    else:
        (results / "stray.txt").write_text("left by hand\n")
    assert not now()


def test_touched_but_unchanged_input_is_still_up_to_date(project):
    """Content, not modification times, decides."""
    config = load_config(project / "config" / "config.yaml")
    snakefile = project / "workflow" / "Snakefile"
    before = run_fingerprint(config, snakefile)
    arms = project / "data" / "arms.csv"
    os.utime(arms, ns=(arms.stat().st_atime_ns, arms.stat().st_mtime_ns + 10**9))
    assert run_fingerprint(config, snakefile) == before


def test_record_of_another_fingerprint_or_corrupt_is_not_up_to_date(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "a.csv").write_text("x\n1\n")
    stamp = tmp_path / "stamp.json"
    cli._write_up_to_date(stamp, "abc", results)
    assert cli._up_to_date(stamp, "abc", results)
    assert not cli._up_to_date(stamp, "abd", results)
    data = json.loads(stamp.read_text())
    data["files"] = data["files"][:0]
    stamp.write_text(json.dumps(data))
    assert not cli._up_to_date(stamp, "abc", results)
    stamp.write_text("{not json")
    assert not cli._up_to_date(stamp, "abc", results)
    stamp.write_text("[]")
    assert not cli._up_to_date(stamp, "abc", results)
    assert not cli._up_to_date(tmp_path / "missing.json", "abc", results)


def test_output_names_no_file_in_the_deleted_staging_folder():
    quiet = cli._Quiet()
    assert not quiet.keep(
        "Complete log(s): /p/results/.hairtrial/x/staging/work/.snakemake/log/a.snakemake.log\n"
    )
    assert quiet.keep("Finished jobid: 0 (Rule: all)\n")


def test_an_unreadable_data_path_is_reported_by_the_input_check(project):
    """The fingerprint reads every data file first; a path that is a folder must still reach
    the input check's message, not an unexpected error."""
    arms = project / "data" / "arms.csv"
    arms.unlink()
    arms.mkdir()
    rc, out = hairtrial_run(project)
    assert rc == 1 and "unexpected error" not in out and "Traceback" not in out, out
    assert "arms.csv" in out and not snakemake_started(out), out


def test_a_record_that_cannot_be_written_leaves_nothing_behind(tmp_path, monkeypatch):
    """Writing a record is best effort: a failure (a full disk) leaves no temporary file in
    the run state, where the reliability suite looks for leftovers."""
    real_open = os.fdopen

    def full_disk(fd, *args, **kwargs):
        handle = real_open(fd, *args, **kwargs)

        def write(_text):
            raise OSError(28, "No space left on device")

        handle.write = write  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(fingerprint.os, "fdopen", full_disk)
    fingerprint.write_record(tmp_path / "inputs-checked", "abc")
    assert list(tmp_path.iterdir()) == []


def test_a_complete_run_says_where_the_unused_inputs_are(project):
    """A trial dropped for a misspelt code or an underivable SD is in excluded.csv and the
    report; the terminal says how many and where (a quoted note over two lines is one row)."""
    (project / "workflow" / "Snakefile").write_text(
        'rule all:\n    output:\n        "results/test/tables/excluded.csv",\n'
        "    run:\n        with open(output[0], 'w') as f:\n"
        "            f.write('note\\n\"a: no experimental arm\\nwith usable data\"'\n"
        "                    '\\nb: no SD\\n')\n"
    )
    rc, out = hairtrial_run(project)
    assert rc == 0, out
    assert (
        "hairtrial: 2 inputs or comparisons not used, each with its reason: "
        "results/test/tables/excluded.csv"
    ) in out


def test_a_notebook_traceback_in_colour_does_not_reach_the_terminal():
    """A failed notebook cell's traceback, as IPython writes it (colour codes, its own
    frame lines), is left out like a Python traceback; the exception's line stays."""
    esc = "\x1b"
    lines = [
        f"{esc}[0;31m{'-' * 75}{esc}[0m\n",
        f"{esc}[0;31mValueError{esc}[0m{' ' * 32}Traceback (most recent call last)\n",
        f"Cell {esc}[0;32mIn[5], line 3{esc}[0m\n",
        f"{esc}[1;32m----> 3{esc}[0m fig = trajectory_plot(rows)\n",
        f"File {esc}[0;32m/x/plots/trajectory.py:88{esc}[0m, in "
        f"{esc}[0;36mtrajectory_plot{esc}[0;34m(rows){esc}[0m\n",
        "     87 ax = fig.add_axes(box)\n",
        "\n",
        f"{esc}[0;31mValueError{esc}[0m: Width and height specified must be non-negative\n",
        "Finished jobid: 3 (Rule: notebooks)\n",
    ]  # fmt: skip
    quiet = cli._Quiet()
    kept = [cli._ANSI.sub("", x) for x in lines if quiet.keep(x)]
    assert kept == [
        "ValueError: Width and height specified must be non-negative\n",
        "Finished jobid: 3 (Rule: notebooks)\n",
    ], kept


def test_the_installed_libraries_part_ignores_hairtrials_own_metadata(tmp_path, monkeypatch):
    """A library added changes the digest; a build of hairtrial itself in the checkout
    (src/hairtrial.egg-info, as `pip wheel` leaves it) does not: its sources are digested
    themselves. (A test that built a wheel mid-session made every job rerun.)"""
    from hairtrial.core.fingerprint import installed_distributions

    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    before = installed_distributions()
    (tmp_path / "hairtrial.egg-info").mkdir()
    (tmp_path / "hairtrial-0.1.0.dist-info").mkdir()
    assert installed_distributions() == before
    (tmp_path / "pandas-9.9.9.dist-info").mkdir()
    assert installed_distributions() != before


TWO_RULES = """
rule all:
    input:
        "results/test/b.txt",


rule a:
    output:
        "results/test/a.txt",
    log:
        "results/test/logs/a.log",
    shell:
        'echo "a ran" > {log}; if [ -n "${{FAIL_A:-}}" ]; then echo "a failed"; exit 1; fi; '
        "echo a > {output}"


rule b:
    input:
        "results/test/a.txt",
    output:
        "results/test/b.txt",
    log:
        "results/test/logs/b.log",
    shell:
        'echo "b ran" > {log}; echo b > {output}'
"""


def test_a_failed_run_keeps_only_the_logs_it_wrote(project, monkeypatch):
    """The folder a failed run leaves (results/.hairtrial/<name>/failed) holds the logs of the
    jobs that ran, not the last complete run's logs of jobs that never ran."""
    (project / "workflow" / "Snakefile").write_text(TWO_RULES)
    rc, out = hairtrial_run(project)
    assert rc == 0, out
    monkeypatch.setenv("FAIL_A", "1")
    rc, out = hairtrial_run(project, "--forceall")
    assert rc != 0, out
    logs = project / "results" / ".hairtrial" / "test" / "failed" / "work" / "results" / "test"
    logs = logs / "logs"
    assert (logs / "a.log").read_text() == "a ran\n"
    assert not (logs / "b.log").exists()  # b never ran in the failed run
    assert (project / "results" / "test" / "logs" / "b.log").read_text() == "b ran\n"
