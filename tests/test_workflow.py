"""End to end: the Snakemake workflow on a small config, as a user runs it."""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e

CONFIG = {
    "data": {
        "arms": "data/arms.csv",
        "studies": "data/studies.csv",
        "prisma": "data/prisma.csv",
    },
    "selection": {"studies": "all"},
    "meta_analysis": {"tau2_methods": ["REML", "DL", "FE"], "ci_methods": ["adhoc", "z"]},
    "figures": {"formats": ["png", "svg", "pdf"], "dpi": 150},
}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.parent.name in ("tables", "figures", "notebooks", "report")
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    shutil.copytree(ROOT / "data", work / "data")
    (work / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = snakemake(work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def test_every_output_is_written(run_dir):
    tables = run_dir / "results" / "tables"
    for name in (
        "meta_analysis", "study_effects", "data_quality", "excluded", "robustness",
        "meta_regression", "subgroups", "leave_one_out", "influence", "cumulative",
        "small_study",
    ):  # fmt: skip
        for ext in ("csv", "md", "html", "tex"):
            assert (tables / f"{name}.{ext}").stat().st_size > 0, f"{name}.{ext}"
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
    figures = run_dir / "results" / "figures"
    combos = studies[["outcome", "week", "measure"]].drop_duplicates()
    for o, w, m in combos.itertuples(index=False):
        for ext in ("png", "svg", "pdf"):
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
        for ext in ("png", "svg", "pdf"):
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
        for ext in ("ipynb", "html"):
            assert (run_dir / "results" / "notebooks" / f"{nb.stem}.{ext}").stat().st_size > 0
    for o in sorted(studies.outcome.unique()):
        assert (figures / f"trajectory_{o}.png").stat().st_size > 0
    for o, w in studies[studies.measure == "MD"][["outcome", "week"]].drop_duplicates().values:
        assert (figures / f"labbe_{o}_week{w}.png").stat().st_size > 0
    assert (figures / "prisma.png").stat().st_size > 0
    report = (run_dir / "results" / "report" / "report.html").read_text()
    assert 'src="http' not in report and "Figure 1." in report
    for name in ("coefficients", "contrasts", "variance", "fit"):
        assert (tables / f"arm_model_{name}.csv").stat().st_size > 0
    for rule_log in ("effect_sizes", "meta_analysis"):
        assert (run_dir / "results" / "logs" / f"{rule_log}.log").exists()


def test_second_run_is_byte_identical(run_dir):
    first = digests(run_dir / "results")
    shutil.rmtree(run_dir / "results")
    proc = snakemake(run_dir)
    assert proc.returncode == 0, proc.stderr[-4000:]
    second = digests(run_dir / "results")
    assert first.keys() == second.keys()
    differ = [k for k in first if first[k] != second[k]]
    assert not differ, f"not byte-identical: {differ}"


def test_malformed_input_is_rejected_and_results_untouched(run_dir):
    before = digests(run_dir / "results")
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
        assert digests(run_dir / "results") == before
    finally:
        arms.write_text(good)


def test_invalid_config_is_rejected(run_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run_dir / "data", bad / "data")
    (bad / "config.yaml").write_text(yaml.safe_dump({**CONFIG, "measures": ["RR"]}))
    proc = snakemake(bad)
    assert proc.returncode != 0
    assert "RR" in proc.stderr + proc.stdout
    assert not (bad / "results").exists()


def test_malformed_prisma_file_is_rejected_before_anything_runs(run_dir):
    before = digests(run_dir / "results")
    prisma = run_dir / "data" / "prisma.csv"
    good = prisma.read_text()
    try:
        prisma.write_text(good + "records_screened_twice,,-3,\n")
        proc = snakemake(run_dir, "--forceall")
        assert proc.returncode != 0
        out = proc.stderr + proc.stdout
        assert "prisma.csv, line" in out and "column 'box'" in out
        assert digests(run_dir / "results") == before
    finally:
        prisma.write_text(good)
