"""Command line: ``hairtrial validate`` checks a config and its data; ``hairtrial run`` runs
the workflow on it as one transaction.

``hairtrial validate [--config FILE]`` lets a user check their own ``arms.csv`` /
``studies.csv`` against the input contract without running anything.

``hairtrial run [--config FILE] [--cores N] [-- SNAKEMAKE_ARGS...]`` (what ``make run``
calls) validates the config and every input first, then runs Snakemake in a staging copy of
the analysis's results folder (``results/<name>/``) and swaps the staging copy in only when
the run completes; a failed or interrupted run leaves the previous results byte-identical
and its partial outputs and logs in ``results/.hairtrial/<name>/failed/``
(:mod:`hairtrial.core.staging` has the design).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hairtrial.analyses.config import (
    DEFAULT_CONFIG,
    RESOURCES,
    ROOT,
    ConfigError,
    load_config,
    resolve_data_paths,
    results_dir,
)
from hairtrial.analyses.fingerprint import (
    CHECKED_ENV,
    STATE,
    checked_before,
    inputs_record,
    run_fingerprint,
    write_record,
)
from hairtrial.core import staging
from hairtrial.core.fingerprint import folder_listing
from hairtrial.core.runlog import skip_final_collection

if TYPE_CHECKING:
    from hairtrial.analyses.inputs import Checked

# The data readers and the input check (pandas, scipy) are imported when inputs are read:
# a run with nothing to do answers before that (see _up_to_date).

DRY_RUN = {"-n", "--dry-run", "--dryrun"}
UP_TO_DATE = "up-to-date.json"
"""In an analysis's run state: the fingerprint of the inputs, code and libraries of the
published results and the listing of their files, written when a plain ``hairtrial run``
completes (see _up_to_date)."""
FIGURE_CACHE = Path(".snakemake", "hairtrial-figures")
"""The figure job's copy of its last drawing (workflow/scripts/figures.py); carried into the
staging folder and back, so that ``make figures`` with nothing changed copies instead of
drawing."""


def _load(config_arg: str | None) -> tuple[str, dict]:
    """The config file and its composed, validated config."""
    if config_arg is None and not Path("config/config.yaml").is_file():
        # an installed package outside a checkout: the shipped config and data
        return str(DEFAULT_CONFIG), resolve_data_paths(load_config(DEFAULT_CONFIG), RESOURCES)
    config_arg = config_arg or "config/config.yaml"
    return config_arg, load_config(config_arg)


def _check(config_arg: str, config: dict) -> Checked:
    """The config's inputs, read and checked (:func:`hairtrial.analyses.inputs.check_inputs`)."""
    from hairtrial.analyses.inputs import SelectionError, check_inputs

    try:
        return check_inputs(config)
    except SelectionError as err:
        raise SelectionError(f"{config_arg}: {err}") from None


def _input_error(err: Exception) -> bool:
    """Whether ``err`` is a user's config or data problem (reported, never a traceback)."""
    if isinstance(err, ConfigError):
        return True
    from hairtrial.data.validate import DataValidationError  # SelectionError is one too

    return isinstance(err, DataValidationError)


def validate_plan(path: str) -> int:
    """Check a simulation study's plan (``make simulate`` does before starting Snakemake, so
    that a rejected plan is a message naming the file and each rule it breaks, not a
    Snakemake error with a traceback of the workflow's code)."""
    from hairtrial.analyses.simulation_plan import PlanError, jobs, load_study, plan_error_message

    try:
        plan = load_study(path)
    except PlanError as err:
        print(f"hairtrial: {plan_error_message(path, err)}", file=sys.stderr)
        return 1
    n_jobs = len(jobs(plan))
    print(f"{path}: valid. {len(plan['scenario_list'])} scenarios in {n_jobs} jobs.")
    return 0


def validate(args: argparse.Namespace) -> int:
    if args.simulation_plan is not None:
        return validate_plan(args.simulation_plan)
    try:
        args.config, config = _load(args.config)
        checked = _check(args.config, config)
    except Exception as err:
        if not _input_error(err):
            raise
        print(f"hairtrial: {err}", file=sys.stderr)
        return 1
    effects, quality, excluded = checked.effects, checked.quality, checked.excluded
    n_studies = effects["study"].nunique() if len(effects) else 0
    print(
        f"{args.config}: valid. {n_studies} studies give {len(effects)} comparisons x measures; "
        f"{len(quality)} numbers are derived or assumed; {len(excluded)} inputs cannot be used."
    )
    for note in excluded["note"]:
        print(f"  not used: {note}")
    return 0


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _Quiet:
    """Snakemake's output for a user: tracebacks (which job logs hold in full) and the path
    of Snakemake's own log in the staging folder left out (the full output is kept in the
    run state, whose path ``hairtrial run`` prints at the end)."""

    def __init__(self) -> None:
        self.in_traceback = False
        self.in_ipython = False

    def keep(self, line: str) -> bool:
        line = _ANSI.sub("", line)  # IPython colours its tracebacks
        if re.fullmatch(r"-{20,}\s*", line):
            return False  # the rule IPython draws above a traceback
        if re.match(r"\S+\s+Traceback \(most recent call last\)", line):
            self.in_ipython = True  # IPython's "ValueError   Traceback (...)" heading
            return False
        if self.in_ipython:  # its frames: "Cell In[5], line 3", "----> 3 ...", "File ..."
            if re.match(r"(Cell In\[|File |-*>|\s|$|-{10,})", line):
                return False
            self.in_ipython = False  # the exception's own line: kept
        if line.startswith("Complete log(s):"):
            return False  # a path in the staging folder, deleted; hairtrial names its copy
        if line.startswith("Traceback (most recent call last):"):
            self.in_traceback = True
            return False
        if self.in_traceback:
            if line.startswith((" ", "\t")) or not line.strip():
                return False
            self.in_traceback = False  # the exception's own line: kept
        return not re.match(r'\s+File "[^"]+", line \d+', line)


def _default_sigint() -> None:
    """In Snakemake's process, before it starts: SIGINT back to its default action.

    A shell that starts a command in the background (``make run &``, CI scripts, nohup) makes
    it ignore SIGINT, and an ignored signal stays ignored in every process started below it:
    the SIGINT this module forwards would then stop neither Snakemake nor its jobs.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_snakemake(
    cmd: list[str], log_path: Path, lock_fd: int, env: dict[str, str]
) -> tuple[int, int | None]:
    """Run ``cmd``, its output to ``log_path`` and (without tracebacks) to stderr; SIGINT
    and SIGTERM are passed on as SIGINT to Snakemake and its jobs (Snakemake's clean stop),
    a second one kills them.

    ``env``: added to the environment. Returns the exit status and the signal that
    interrupted the run (or None).
    """
    received: list[int] = []
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        pass_fds=(lock_fd,),
        env={**os.environ, **env},
        start_new_session=True,  # a terminal's Ctrl-C reaches Snakemake once, through us
        preexec_fn=_default_sigint,
    )

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # Snakemake and its jobs, as a terminal's Ctrl-C reaches them; a second signal kills
            os.killpg(proc.pid, signal.SIGINT if len(received) == 1 else signal.SIGKILL)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    quiet = _Quiet()
    try:
        log = log_path.open("w", encoding="utf-8", buffering=1)
        try:
            assert proc.stdout is not None
            writing = True
            for line in proc.stdout:
                if writing:
                    try:
                        log.write(line)
                    except OSError as err:  # a full disk: the run goes on, unlogged
                        writing = False
                        sys.stderr.write(f"hairtrial: cannot write {log_path}: {err.strerror}\n")
                if quiet.keep(line):
                    sys.stderr.write(line)
        finally:
            with contextlib.suppress(OSError):
                log.close()
        rc = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # jobs that outlived Snakemake (it was killed)
    return rc, (received[0] if received else None)


def _snakefile(arg: str | None) -> Path:
    for candidate in [arg] if arg else ["Snakefile", str(ROOT / "Snakefile")]:
        if Path(candidate).is_file():
            return Path(candidate).absolute()
    raise ConfigError(
        f"Snakefile not found (looked for {arg or 'Snakefile and ' + str(ROOT / 'Snakefile')}); "
        "hairtrial run needs a checkout of the workflow"
    )


def run(args: argparse.Namespace) -> int:
    """Validate, run in a staging folder, swap in on success (see the module docstring)."""
    try:
        config_file, config = _load(args.config)
        snakefile = _snakefile(args.snakefile)
        name = config["name"]
        published = Path(results_dir(config))
        state = STATE / name
        fingerprint = run_fingerprint(config, snakefile)
        if not _snakemake_args(args) and _up_to_date(state / UP_TO_DATE, fingerprint, published):
            print(
                f"hairtrial: {published}/ is up to date: its data, config, code and "
                "libraries are those of its run, and its files are as that run left "
                "them. Nothing was run. (To run again anyway: make run "
                "SMK_ARGS=--forceall)"
            )
            return 0
        if not checked_before(inputs_record(name), fingerprint):
            _check(config_file, config)
            write_record(inputs_record(name), fingerprint)
    except Exception as err:
        if not _input_error(err):
            raise
        print(f"hairtrial: {err}\nNothing was run; no result was changed.", file=sys.stderr)
        return 1
    lock = staging.RunLock(STATE / f"{name}.lock")
    stage = state / "staging"
    try:
        if not lock.acquire():
            print(
                f"hairtrial: another run of the analysis '{name}' is in progress "
                f"(lock: {lock.path}); nothing was run, no result was changed.",
                file=sys.stderr,
            )
            return 1
    except OSError as err:
        print(
            f"hairtrial: cannot lock {lock.path}: {err.strerror}; nothing was run.", file=sys.stderr
        )
        return 1
    try:
        return _transaction(
            args, config_file, snakefile, published, state, stage, lock, fingerprint
        )
    finally:
        lock.release()


def _snakemake_args(args: argparse.Namespace) -> list[str]:
    extra = list(args.snakemake_args)
    return extra[1:] if extra[:1] == ["--"] else extra


def _up_to_date(stamp: Path, fingerprint: str, published: Path) -> bool:
    """Whether the published results are those of a complete plain run with this
    fingerprint, every file as that run left it (same names, sizes and modification
    times). Anything unreadable or different means "run" (Snakemake then decides what to
    redo)."""
    try:
        kept = json.loads(stamp.read_text(encoding="utf-8"))
        listing = [list(row) for row in folder_listing(published)]
    except (OSError, ValueError):
        return False
    return (
        isinstance(kept, dict)
        and kept.get("fingerprint") == fingerprint
        and kept.get("files") == listing
        and bool(listing)
    )


def _say_what_was_not_used(published: Path) -> None:
    """One line per exclusion table with rows: a trial dropped for a misspelt code or an
    underivable SD is in the tables and the report, and the terminal says where."""
    for name in ("excluded", "binary_excluded"):
        path = published / "tables" / f"{name}.csv"
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                rows = sum(1 for row in csv.reader(handle) if any(row)) - 1
        except (OSError, UnicodeDecodeError, csv.Error):  # a hint only: never fail a run
            continue
        if rows > 0:
            print(
                f"hairtrial: {rows} input{'s' if rows > 1 else ''} or comparison"
                f"{'s' if rows > 1 else ''} not used, each with its reason: {path}"
            )


def _write_up_to_date(stamp: Path, fingerprint: str, published: Path) -> None:
    """Record that the published results are those of a complete run with ``fingerprint``
    (best effort: without the record the next run asks Snakemake)."""
    data = {"fingerprint": fingerprint, "files": [list(r) for r in folder_listing(published)]}
    write_record(stamp, json.dumps(data, indent=0))


def _transaction(
    args: argparse.Namespace,
    config_file: str,
    snakefile: Path,
    published: Path,
    state: Path,
    stage: Path,
    lock: staging.RunLock,
    fingerprint: str,
) -> int:
    extra = _snakemake_args(args)
    dry = bool(DRY_RUN & set(extra))
    workdir = stage / "work"
    if not dry:  # the results may change from here on: no longer known up to date
        with contextlib.suppress(FileNotFoundError):
            (state / UP_TO_DATE).unlink()
    try:
        staging.remove_tree(stage)  # left by a run that was killed outright
        target = workdir / published
        if published.is_dir():
            staging.link_tree(published, target)
        else:
            target.parent.mkdir(parents=True)
        metadata = state / "metadata"
        if metadata.is_dir():
            shutil.copytree(metadata, workdir / ".snakemake" / "metadata")
        # a complete run leaves no incomplete job (the folder also tells Snakemake that its
        # metadata is in the current format)
        (workdir / ".snakemake" / "incomplete").mkdir(parents=True, exist_ok=True)
        if FIGURE_CACHE.is_dir():  # the figure job replaces it whole, never in place
            staging.link_tree(FIGURE_CACHE, workdir / FIGURE_CACHE)
        for shared in ("conda", "singularity", "apptainer"):  # environments: built once
            real = Path(".snakemake", shared).absolute()
            if any(shared in a for a in extra):
                real.mkdir(parents=True, exist_ok=True)
            if real.is_dir():
                os.symlink(real, workdir / ".snakemake" / shared)
    except OSError as err:
        staging.remove_tree(stage)
        print(
            f"hairtrial: cannot prepare the run in {stage}: {err.strerror or err}"
            f"{' (' + str(err.filename) + ')' if err.filename else ''}; nothing was run, "
            f"{published}/ is unchanged.",
            file=sys.stderr,
        )
        return 1
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(snakefile),
        "--directory", str(workdir.absolute()),
        "--configfile", str(Path(config_file).absolute()),
        "--cores", str(args.cores),
        *extra,
    ]  # fmt: skip
    log_path = stage / "snakemake.log"
    assert lock.fd is not None
    env = {CHECKED_ENV: fingerprint, staging.PUBLISHED_ENV: str(Path.cwd().absolute())}
    rc, interrupted = _run_snakemake(cmd, log_path, lock.fd, env)
    if rc == 0 and interrupted is None:
        try:
            if not dry:
                staging.swap(target, published)
                if (workdir / ".snakemake" / "metadata").is_dir():
                    staging.replace_tree(workdir / ".snakemake" / "metadata", state / "metadata")
                if (workdir / FIGURE_CACHE).is_dir():
                    staging.replace_tree(workdir / FIGURE_CACHE, FIGURE_CACHE)
            os.replace(log_path, state / "snakemake.log")
            staging.remove_tree(stage)
            if not extra:
                _write_up_to_date(state / UP_TO_DATE, fingerprint, published)
        except OSError as err:
            print(
                f"hairtrial: the run completed but could not be put in place: "
                f"{err.strerror or err}; {published}/ holds the previous results.",
                file=sys.stderr,
            )
            return 1
        if not dry:
            print(f"hairtrial: {published}/ is complete (Snakemake's log: {state}/snakemake.log)")
            _say_what_was_not_used(published)
        return 0
    failed = state / "failed"
    kept = ""
    try:
        staging.remove_temporary(stage)
        if published.is_dir():  # the last complete run's logs of jobs that never ran
            staging.drop_unchanged_copies(workdir / published, published)
        staging.replace_tree(stage, failed)
        kept = (
            f" Partial outputs and job logs of this run: {failed / 'work' / published}/ "
            f"(logs/); Snakemake's log: {failed / 'snakemake.log'}."
        )
    except OSError:
        staging.remove_tree(stage)
    what = (
        f"was interrupted ({signal.Signals(interrupted).name})"
        if interrupted is not None
        else f"failed (Snakemake exit status {rc})"
    )
    print(
        f"hairtrial: the run {what}; {published}/ still holds the previous complete results, "
        f"unchanged.{kept}",
        file=sys.stderr,
    )
    return 128 + interrupted if interrupted is not None else (rc or 1)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (0 valid/complete, non-zero otherwise)."""
    skip_final_collection()  # ends ~0.3 s sooner (core.runlog)
    parser = argparse.ArgumentParser(prog="hairtrial", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    help_config = (
        "config file (YAML); default: config/config.yaml of the working directory if it "
        "exists, otherwise the default config and published data shipped with the package"
    )
    val = sub.add_parser("validate", help="check a config file and the data it names")
    val.add_argument("--config", default=None, help=help_config)
    val.add_argument(
        "--simulation-plan",
        default=None,
        metavar="PLAN",
        help="check this simulation study plan instead (e.g. config/simulation_study.yaml)",
    )
    run_p = sub.add_parser(
        "run", help="run the workflow on a config; results change only when the run completes"
    )
    run_p.add_argument("--config", default=None, help=help_config)
    run_p.add_argument("--cores", default="2", help="Snakemake's --cores (default 2)")
    run_p.add_argument("--snakefile", default=None, help="default: ./Snakefile")
    run_p.add_argument(
        "snakemake_args", nargs=argparse.REMAINDER, help="after --: more Snakemake options"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run(args)
        return validate(args)
    except KeyboardInterrupt:
        print("hairtrial: interrupted; no result was changed.", file=sys.stderr)
        return 130
    except Exception as err:  # no traceback reaches a user; the message says what failed
        print(
            f"hairtrial: unexpected error ({type(err).__name__}: {err}); no result was changed. "
            "Please report it with the command you ran.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
