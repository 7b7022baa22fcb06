"""End to end: the Snakemake workflow on the `.test/` config, as a user runs it.

No test here depends on wall time: a busy machine makes them slower, never red.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEST_DIR = ROOT / ".test"  # Snakemake workflow catalog convention: .test/config/config.yaml
pytestmark = pytest.mark.e2e

CONFIG = yaml.safe_load((TEST_DIR / "config" / "config.yaml").read_text())
RESULTS = Path("results") / CONFIG["name"]  # one results folder per analysis
MODEL_RULES = {"analysis", "arm_model", "binary"}


def snakemake_options(workdir: Path, *args: str) -> list[str]:
    return [
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config" / "config.yaml"),
        "--cores",
        "2",
        *args,
    ]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *snakemake_options(workdir, *args)]
    return subprocess.run(cmd, capture_output=True, text=True)


def job_counts(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table: rule -> number of jobs."""
    block = output.split("Job stats:", 1)[1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


def makefile_variable(name: str) -> str:
    m = re.search(rf"^{name}\s*:?=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, f"{name} not in the Makefile"
    return m.group(1).strip()


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.parent.name in ("tables", "figures", "notebooks", "report")
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    shutil.copytree(TEST_DIR, work, dirs_exist_ok=True)  # links to the data become files
    shutil.rmtree(work / "results", ignore_errors=True)
    shutil.rmtree(work / ".snakemake", ignore_errors=True)
    proc = snakemake(work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (work / "first_run.txt").write_text(proc.stdout + proc.stderr)
    return work


def test_few_jobs(run_dir):
    """A cold run is one job per kind of work: tables (three), figures, notebooks, report."""
    counts = job_counts((run_dir / "first_run.txt").read_text())
    assert counts == {
        "analysis": 1, "arm_model": 1, "binary": 1, "evidence": 1, "figures": 1,
        "notebooks": 1,
        "html_report": 1, "all": 1,
    }  # fmt: skip


def job_blocks(output: str) -> list[tuple[str, dict[str, str]]]:
    """Snakemake's description of each job it started, in the order it started them:
    (rule, {"threads": ..., "priority": ..., ...}) (a key is absent when its value is the
    default: one thread, priority 0)."""
    blocks = []
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", output, re.M):
        fields = dict(re.findall(r"^    (\w+): (.*)$", m[2], re.M))
        blocks.append((m[1], fields))
    return blocks


def test_the_longest_chain_starts_first_and_figures_run_beside_notebooks(run_dir):
    """On two cores the jobs that the evidence job needs (analysis, binary) start first, as
    the figure job needs the evidence job; the figure job and the notebooks take one core
    each, so that the figures need not wait for the notebooks; the figure job draws with
    two processes (hairtrial.core.cores) where the run has two cores."""
    blocks = job_blocks((run_dir / "first_run.txt").read_text())
    started = [rule for rule, _ in blocks]
    assert set(started[:2]) == {"analysis", "binary"}, started
    fields = dict(blocks)
    assert "threads" not in fields["figures"] and "threads" not in fields["notebooks"]
    for rule in ("analysis", "binary", "evidence", "figures"):
        assert int(fields[rule].get("priority", 0)) > 0, rule
    for rule in ("arm_model", "notebooks"):
        assert int(fields[rule].get("priority", 0)) == 0, rule
    log = (run_dir / RESULTS / "logs" / "figures.log").read_text()
    expected = min(2, len(os.sched_getaffinity(0)))
    assert re.search(rf"^INFO hairtrial: \d+ files \({expected} processes\)$", log, re.M), log


def test_every_job_logs_what_it_used(run_dir):
    """Each job's log ends with its time, CPU time and peak memory (core.runlog.usage)."""
    logs = sorted((run_dir / RESULTS / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"analysis", "binary", "figures", "notebooks"}
    for path in logs:
        last = path.read_text().splitlines()[-1]
        assert re.match(r"used: [\d.]+ s, [\d.]+ CPU s \(", last), (path.name, last)
    assert not (run_dir / RESULTS / "benchmarks").exists()


def test_every_output_is_written(run_dir):
    tables = run_dir / RESULTS / "tables"
    for name in (
        "meta_analysis", "study_effects", "data_quality", "excluded", "robustness",
        "meta_regression", "subgroups", "leave_one_out", "influence", "cumulative",
        "small_study", "summary_of_findings", "bayes", "bayes_sensitivity", "next_trial",
        "next_trial_sample_size",
    ):  # fmt: skip
        for ext in ("csv", "md", "html", "tex"):
            assert (tables / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    for name in ("binary_study_effects", "binary_meta_analysis", "binary_robustness",
                 "binary_absolute_effects", "binary_data_quality", "binary_excluded"):  # fmt: skip
        for ext in ("csv", "md", "html", "tex"):
            assert (tables / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
    bmeta = pd.read_csv(tables / "binary_meta_analysis.csv")
    assert {"responder_investigator", "shedding_worsened"} <= set(bmeta.outcome)
    for stem in pd.read_csv(run_dir / RESULTS / "derived" / "binary_figures.csv")["stem"]:
        for ext in CONFIG["figures"]["formats"]:
            assert (run_dir / RESULTS / "figures" / f"{stem}.{ext}").stat().st_size > 0
    meta = pd.read_csv(tables / "meta_analysis.csv")
    assert list(meta.columns[:21]) == [
        "outcome", "week", "measure", "method", "ci_method", "k", "estimate", "se",
        "ci_lower", "ci_upper", "pvalue", "pi_lower", "pi_upper", "tau2", "tau2_ci_lower",
        "tau2_ci_upper", "I2", "H2", "Q", "Q_df", "Q_pvalue",
    ]  # fmt: skip
    assert set(meta.method) == {"REML", "DL", "FE"} and set(meta.ci_method) == {"adhoc", "z"}
    studies = pd.read_csv(tables / "study_effects.csv")
    assert list(studies.columns[:12]) == [
        "outcome", "week", "measure", "study", "yi", "vi", "ci_lower", "ci_upper",
        "weight_pct", "n_control", "n_experimental", "provenance",
    ]  # fmt: skip
    # selection: all brings in the split-scalp trial
    assert "yu2018" in set(studies.study)
    figures = run_dir / RESULTS / "figures"
    combos = studies[["outcome", "week", "measure"]].drop_duplicates()
    for o, w, m in combos.itertuples(index=False):
        for ext in CONFIG["figures"]["formats"]:
            assert (figures / f"forest_{o}_week{w}_{m}.{ext}").stat().st_size > 0
    k = studies.groupby(["outcome", "week", "measure"]).size()
    for (o, w, m), n in k.items():
        assert (figures / f"robustness_{o}_week{w}_{m}.png").exists() == (n >= 2)
    # sensitivity figures: where computable (k >= 2 or 3), and none for a single trial
    for (o, w, m), n in k.items():
        for kind, min_k in (("leave_one_out", 2), ("cumulative", 2), ("baujat", 3),
                            ("influence", 3), ("funnel", 3)):  # fmt: skip
            assert (figures / f"{kind}_{o}_week{w}_{m}.png").exists() == (n >= min_k), kind
    for m in ("MD", "SMD"):
        for ext in CONFIG["figures"]["formats"]:
            name = f"subgroups_hair_density_week12_{m}_category.{ext}"
            assert (figures / name).stat().st_size > 0
    assert not list(figures.glob("bubble_*"))  # no moderator can be fitted with 3 trials
    small = pd.read_csv(tables / "small_study.csv")
    assert not small["informative"].any() and small["notes"].notna().all()
    metareg = pd.read_csv(tables / "meta_regression.csv")
    assert list(metareg.columns[:19]) == [
        "outcome", "week", "measure", "moderators", "term", "estimate", "se", "ci_lower",
        "ci_upper", "pvalue", "tau2", "R2", "QM", "QM_pvalue", "QE", "QE_pvalue", "k",
        "permutation_pvalue", "notes",
    ]  # fmt: skip
    assert metareg["notes"].notna().all()
    for nb in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        if nb.stem == "05_participants":  # run only with participant data (data.participants)
            assert not (run_dir / RESULTS / "notebooks" / f"{nb.stem}.ipynb").exists()
            continue
        for ext in ("ipynb", "html"):
            assert (run_dir / RESULTS / "notebooks" / f"{nb.stem}.{ext}").stat().st_size > 0
    for o in sorted(studies.outcome.unique()):
        assert (figures / f"trajectory_{o}.png").stat().st_size > 0
    for o, w in studies[studies.measure == "MD"][["outcome", "week"]].drop_duplicates().values:
        assert (figures / f"labbe_{o}_week{w}.png").stat().st_size > 0
    assert (figures / "prisma.png").stat().st_size > 0
    report = (run_dir / RESULTS / "report" / "report.html").read_text()
    assert 'src="http' not in report and "Figure 1." in report
    for name in ("coefficients", "contrasts", "variance", "fit"):
        assert (tables / f"arm_model_{name}.csv").stat().st_size > 0
    for rule_log in ("analysis", "arm_model", "binary", "figures", "notebooks", "html_report"):
        assert (run_dir / RESULTS / "logs" / f"{rule_log}.log").exists()
    # the manifests list exactly the figures on disk (and every table of the report)
    made = pd.read_csv(run_dir / RESULTS / "manifests" / "figures.csv")["path"]
    on_disk = [f"figures/{p.name}" for p in figures.iterdir() if not p.name.startswith(".")]
    assert sorted(made) == sorted(on_disk)


def test_make_figures_runs_no_model_job(run_dir):
    """`make figures` after a run: the figure job and the report that embeds its figures;
    nothing is fitted."""
    proc = snakemake(run_dir, "-n", *makefile_variable("FIGURES_ARGS").split())
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts == {"figures": 1, "html_report": 1}
    assert not MODEL_RULES & set(counts)


# Makes the input check fail wherever it runs (a sitecustomize module on PYTHONPATH).
CHECK_FAILS = """
import hairtrial.analyses.inputs as inputs

def check_inputs(config):
    raise RuntimeError("the input check ran")

inputs.check_inputs = check_inputs
"""


def test_inputs_that_passed_are_not_checked_again(run_dir, tmp_path):
    """The workflow checks its inputs when it is parsed (a malformed file stops the run before
    anything is written); inputs that passed are not checked again under the same run
    fingerprint (a dry run, a rerun, each job of a cluster run parses the workflow). The
    check is made to fail: a dry run does not meet it while the record stands, and meets it
    once the record is gone."""
    (tmp_path / "sitecustomize.py").write_text(CHECK_FAILS)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}  # the package imported as in the first run
    record = run_dir / "results" / ".hairtrial" / CONFIG["name"] / "inputs-checked"
    passed = record.read_text()  # written by the first run's check
    cmd = [sys.executable, "-m", "snakemake", *snakemake_options(run_dir, "-n")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr[-4000:]
        record.unlink()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert proc.returncode != 0
        assert "the input check ran" in proc.stdout + proc.stderr
        assert not record.exists()  # a check that fails records nothing
    finally:
        record.write_text(passed)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # a setting the models read: every job that depends on the tables
        ({"meta_analysis": {"level": 0.9}},
         {"analysis", "arm_model", "binary", "evidence", "figures", "notebooks", "html_report"}),
        # a figure setting: no model job
        ({"figures": {"dpi": 100}}, {"figures", "notebooks", "html_report"}),
    ],
)  # fmt: skip
def test_a_changed_setting_reruns_what_depends_on_it(run_dir, change, expected):
    """Snakemake does not see the config a script reads: every job carries a key of the
    settings it reads and of the library's code (params), so a changed setting reruns the
    jobs it can change and no other (dry run; nothing is written)."""
    cfg = yaml.safe_load((run_dir / "config" / "config.yaml").read_text())
    for section, values in change.items():
        cfg[section] = {**(cfg.get(section) or {}), **values}
    changed = run_dir / "config" / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    try:
        proc = snakemake(run_dir, "-n", "--configfile", str(changed))
    finally:
        changed.unlink()
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert set(counts) - {"all"} == expected


def test_make_figures_copies_unchanged_figures(run_dir):
    """`make figures` with nothing changed: the figure job copies the figures it drew, and
    the report is built again from them (one made from an earlier drawing is replaced: here
    a report marked as stale); every file is the same bytes as before."""
    before = digests(run_dir / RESULTS)
    report = run_dir / RESULTS / "report" / "report.html"
    report.write_bytes(report.read_bytes() + b"<!-- an earlier drawing -->")
    proc = snakemake(run_dir, *makefile_variable("FIGURES_ARGS").split())
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert job_counts(proc.stdout + proc.stderr) == {"figures": 1, "html_report": 1}
    log = (run_dir / RESULTS / "logs" / "figures.log").read_text()
    assert "copied from the last drawing" in log
    assert digests(run_dir / RESULTS) == before


def test_report_shows_only_what_this_run_made(run_dir):
    """A figure or table left in results/ by another run does not appear in the report."""
    results = run_dir / RESULTS
    stale = {
        results / "figures" / "forest_stale_outcome_week1_MD.png": "figures",
        results / "tables" / "stale_table.csv": "tables",
    }
    shutil.copy(results / "figures" / "prisma.png", next(iter(stale)))
    (results / "tables" / "stale_table.csv").write_text("outcome,estimate\nstale,1\n")
    try:
        proc = snakemake(run_dir, "--forcerun", "html_report", "--until", "html_report")
        assert proc.returncode == 0, proc.stderr[-4000:]
        report = (results / "report" / "report.html").read_text()
        assert "forest_stale_outcome" not in report and "Stale outcome" not in report
        assert "stale_table" not in report and "Stale table" not in report
        assert "forest_hair_density_week12_MD" in report
    finally:
        for path in stale:
            path.unlink(missing_ok=True)


# Snakemake's main, then (before the interpreter waits for its threads) the scheduler's timers
# that have not fired: a pending one would keep the process alive after the run has ended.
PENDING_TIMERS = """
import sys, threading
from snakemake.cli import main
try:
    main(sys.argv[1:])
finally:
    pending = [t for t in threading.enumerate()
               if isinstance(t, threading.Timer) and not t.finished.is_set()]
    print(f"pending timers: {len(pending)}", file=sys.stderr)
"""


def test_a_run_ends_when_its_jobs_are_done(run_dir):
    """No timer of Snakemake's job rate limiter (up to a second each) is left for the process
    to wait for after the workflow has ended (workflow/rules/common.smk). The last job, `all`,
    ends at once: without the hook the timer started when it was launched is pending."""
    options = snakemake_options(run_dir, "--forcerun", "html_report")
    proc = subprocess.run(
        [sys.executable, "-c", PENDING_TIMERS, *options], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert job_counts(proc.stdout + proc.stderr) == {"html_report": 1, "all": 1}
    assert "pending timers: 0" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.reliability  # a second cold run of the whole workflow: make test-reliability
def test_second_run_is_byte_identical(run_dir):
    """Same inputs, same bytes: the whole workflow run again from nothing (results and
    Snakemake's metadata deleted, every figure redrawn) writes every table, figure, notebook
    and report byte for byte as the first run did."""
    first = digests(run_dir / RESULTS)
    shutil.rmtree(run_dir / RESULTS)
    shutil.rmtree(run_dir / ".snakemake")  # the figures kept from the first run too: redrawn
    proc = snakemake(run_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    second = digests(run_dir / RESULTS)
    assert first.keys() == second.keys()
    differ = [k for k in first if first[k] != second[k]]
    assert not differ, f"not byte-identical: {differ}"


def test_malformed_input_is_rejected_and_results_untouched(run_dir):
    before = digests(run_dir / RESULTS)
    arms = run_dir / "data" / "arms.csv"
    good = arms.read_text()
    try:
        lines = good.splitlines()
        lines[2] = lines[2].replace(",22.2,", ",twenty,")
        arms.write_text("\n".join(lines) + "\n")
        proc = snakemake(run_dir, "--forceall")
        assert proc.returncode != 0
        assert "arms.csv, line 3, column 'mean': value 'twenty': must be a finite number" in (
            proc.stderr + proc.stdout
        )
        assert digests(run_dir / RESULTS) == before
    finally:
        arms.write_text(good)


def test_invalid_config_is_rejected(run_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run_dir / "data", bad / "data")
    (bad / "config").mkdir()
    (bad / "config" / "config.yaml").write_text(yaml.safe_dump({**CONFIG, "measures": ["RR"]}))
    proc = snakemake(bad)
    assert proc.returncode != 0
    assert "RR" in proc.stderr + proc.stdout
    assert not (bad / "results").exists()


def test_malformed_prisma_file_is_rejected_before_anything_runs(run_dir):
    before = digests(run_dir / RESULTS)
    prisma = run_dir / "data" / "prisma.csv"
    good = prisma.read_text()
    try:
        prisma.write_text(good + "records_screened_twice,,-3,\n")
        proc = snakemake(run_dir, "--forceall")
        assert proc.returncode != 0
        out = proc.stderr + proc.stdout
        assert "prisma.csv, line" in out and "column 'box'" in out
        assert digests(run_dir / RESULTS) == before
    finally:
        prisma.write_text(good)


def test_binary_only_config_runs(tmp_path):
    """A review of binary outcomes only (data.arms: null): tables, figures and the report."""
    work = tmp_path / "binary_only"
    shutil.copytree(TEST_DIR, work, dirs_exist_ok=True)
    shutil.rmtree(work / "results", ignore_errors=True)
    shutil.copy(work / "config" / "binary_only.yaml", work / "config" / "config.yaml")
    proc = snakemake(work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts == {"binary": 1, "evidence": 1, "figures": 1, "html_report": 1, "all": 1}
    results = work / "results" / "config"  # no name in the config: its file's stem
    assert not (results / "tables" / "meta_analysis.csv").exists()
    meta = pd.read_csv(results / "tables" / "binary_meta_analysis.csv")
    assert set(meta["method"]) == {"MH", "GLMM", "REML"}
    figures = {p.name for p in (results / "figures").iterdir()}
    listed = pd.read_csv(results / "derived" / "binary_figures.csv")
    asked = yaml.safe_load((work / "config" / "config.yaml").read_text())["figures"]["formats"]
    assert "pdf" in asked  # PDF on request (not a default format): this config asks for it
    for stem in listed["stem"]:
        assert {f"{stem}.{ext}" for ext in asked} <= figures
    assert "binary_forest_shedding_worsened_week24_RR.png" in figures
    report = (results / "report" / "report.html").read_text()
    assert "Benefit and harm, side by side" in report and "Harm: " in report
    assert "Worsened hair shedding" in report
    sof = pd.read_csv(results / "tables" / "summary_of_findings.csv")
    assert "shedding_worsened" in set(sof["outcome"]) and sof["certainty"].notna().all()
    assert "GRADE summary of findings" in report
    methods = report.split("2.1 Data and selection", 1)[1].split("<h3>", 1)[0]
    assert "Event counts (per trial" in methods  # what this review has, and nothing else
    assert "mean, and an SD" not in methods and "Arm-level" not in methods


@pytest.mark.parametrize("target", ["all", "simulation"])
def test_the_slurm_profile_parses_the_workflow(tmp_path, target):
    """A cluster run sets no --cores: no rule may take a share of them (Snakemake then stops
    at parse time, as CI's Slurm run once did). --summary parses as a real run does and
    submits nothing."""
    for name in ("config", "data"):
        (tmp_path / name).symlink_to(ROOT / name)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(tmp_path), "--profile", str(ROOT / "workflow" / "profiles" / "slurm"),
           "--summary", target]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "update pending" in proc.stdout


def test_a_broken_simulation_plan_stops_only_the_simulation(tmp_path):
    """The simulation plan is read when the workflow is parsed: a plan that breaks a rule
    leaves every other target as it was (it once stopped them all at parse time), and the
    simulation's target names the file and each rule broken, once (dry runs)."""
    for name in ("config", "data"):
        (tmp_path / name).symlink_to(ROOT / name)
    plan = tmp_path / "plan.yaml"
    plan.write_text("scenarios:\n  a: {k: -3}\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(tmp_path), "--config", f"simulation_study={plan}", "-n"]  # fmt: skip
    main = subprocess.run([*cmd, "all"], capture_output=True, text=True, cwd=tmp_path)
    assert main.returncode == 0, main.stderr[-3000:]
    sim = subprocess.run([*cmd, "simulation"], capture_output=True, text=True, cwd=tmp_path)
    out = sim.stdout + sim.stderr
    assert sim.returncode != 0
    assert f"Simulation plan rejected; nothing was run or written.\n    {plan}:" in out
    assert out.count("config key 'seed': missing (required)") == 1
    assert "config key 'scenarios.a.k': -3 is less than the minimum of 2" in out
    assert "Traceback (most recent call last)" not in out


def test_neither_arms_nor_events_is_rejected(tmp_path):
    work = tmp_path / "neither"
    shutil.copytree(TEST_DIR, work, dirs_exist_ok=True)
    cfg = tmp_path / "neither.yaml"
    # paths in a config are relative to the config file; data are never inherited
    studies = work / "data" / "studies.csv"
    cfg.write_text(f"data:\n  arms: null\n  events: null\n  studies: {studies}\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(work), "--configfile", str(cfg), "-n"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "at least one of 'data.arms'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
