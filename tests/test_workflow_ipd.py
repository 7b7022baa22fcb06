"""End to end: the workflow on the participant-level example (config/examples/ipd.yaml).

The example's data are synthetic (hairtrial.data.simulate, seed 20261201). Runs the ipd job
and the arm-level jobs it feeds; no test depends on wall time.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e
RESULTS = Path("results") / "ipd"  # the example's results folder (its config's name)
IPD_TABLES = [
    "ipd_contrasts",
    "ipd_coefficients",
    "ipd_variance",
    "ipd_fit",
    "ipd_correlations",
    "ipd_anova",
    "ipd_one_stage",
]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile",
           str(workdir / "config" / "examples" / "ipd.yaml"), "--cores", "2", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def ipd_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("ipd")
    shutil.copytree(ROOT / "data" / "examples", work / "data" / "examples")
    (work / "config" / "examples").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "examples" / "ipd.yaml", work / "config" / "examples")
    targets = ["results/ipd/manifests/ipd.csv", "results/ipd/manifests/analysis.csv",
               "results/ipd/manifests/arm_model.csv"]  # fmt: skip
    proc = snakemake(work, *targets)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def test_ipd_tables_are_written_with_the_issue_columns(ipd_run):
    tables = ipd_run / RESULTS / "tables"
    for name in IPD_TABLES:
        for ext in ("csv", "md", "html", "tex"):
            assert (tables / f"{name}.{ext}").is_file(), (name, ext)
    con = pd.read_csv(tables / "ipd_contrasts.csv")
    assert list(con.columns[:8]) == ["outcome", "study", "week", "estimate", "se", "ci_lower",
                                     "ci_upper", "pvalue"]  # fmt: skip
    assert set(con["study"]) == {"sim01", "sim02", "sim04"}
    assert set(con["unit"]) == {"hairs/cm2"}  # the participants' unit: the contrasts' scale
    coef = pd.read_csv(tables / "ipd_coefficients.csv")
    assert (coef["term"] == "baseline").sum() == 3
    var = pd.read_csv(tables / "ipd_variance.csv")
    assert set(var["component"]) == {"participant", "participant:side", "residual"}
    fit = pd.read_csv(tables / "ipd_fit.csv", keep_default_na=False)
    for col in ("outcome", "study", "method", "n_participants", "n_obs", "logLik", "converged",
                "notes"):  # fmt: skip
        assert col in fit.columns
    one = pd.read_csv(tables / "ipd_one_stage.csv")
    assert {a.split(" ")[0] for a in one["approach"]} == {"one-stage", "two-stage"}
    for name in IPD_TABLES:  # labelled synthetic
        t = pd.read_csv(tables / f"{name}.csv")
        assert t["data_source"].str.startswith("synthetic").all(), name
    manifest = (ipd_run / RESULTS / "manifests" / "ipd.csv").read_text()
    assert "tables/ipd_contrasts.csv" in manifest


def test_participants_join_the_meta_analysis_with_measured_correlations(ipd_run):
    tables = ipd_run / RESULTS / "tables"
    st = pd.read_csv(tables / "study_effects.csv", keep_default_na=False)
    prov = st.groupby("study")["provenance"].first()
    assert prov["sim01"] == "from_ipd"
    assert "from_ipd" in prov["sim04"] and "r_from_ipd" in prov["sim04"]  # split-scalp r
    assert "r_from_ipd" in prov["sim08"]  # levels with the measured change-SD r
    dq = pd.read_csv(tables / "data_quality.csv", keep_default_na=False)
    assert (dq["provenance"] == "from_ipd").any()
    assert dq["assumption"].str.contains("measured in participant data").any()
    am = pd.read_csv(ipd_run / RESULTS / "derived" / "arm_model_data.csv")
    assert am["provenance"].str.contains("from_ipd").any()


def test_a_broken_participants_file_stops_the_run_before_anything_is_written(ipd_run, tmp_path):
    work = tmp_path / "bad"
    shutil.copytree(ipd_run / "data", work / "data")
    shutil.copytree(ipd_run / "config", work / "config")
    part = work / "data" / "examples" / "ipd" / "participants.csv"
    lines = part.read_text().split("\n")
    lines[2] = lines[2].replace(",0,", ",-1,", 1)
    part.write_text("\n".join(lines))
    proc = snakemake(work, "-n")
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr  # snakemake -n prints the error on stdout
    assert "participants.csv, line 3, column 'week': value '-1': must be >= 0" in said
    assert "Traceback" not in said
    assert not (work / "results").exists()
