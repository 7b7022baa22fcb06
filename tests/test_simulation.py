"""The simulation study: plan, report generator, derivations, measures, determinism."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hairtrial.analyses import simulation as sim
from hairtrial.analyses.config import ConfigError
from hairtrial.data import simulate_reports as rep
from hairtrial.derive import dispersion

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "data" / "simulation_small.yaml"
STUDY = ROOT / "config" / "simulation_study.yaml"


@pytest.fixture(scope="module")
def small():
    return sim.load_study(SMALL)


def test_default_plan_is_valid_and_complete():
    plan = sim.load_study(STUDY)
    scen = plan["scenario_list"]
    assert sorted({s["k"] for s in scen.values()}) == [2, 3, 5, 10, 20]
    assert plan["calibrated"] in scen
    assert any(s.get("outcome") == "binary" for s in scen.values())
    assert any(s["effect"] == 0 for s in scen.values())  # a type I error scenario
    # replicates justified by the MC SE of coverage: <= 0.5 percentage points at 95%
    assert math.sqrt(0.95 * 0.05 / plan["replicates"]) <= 0.005


def test_plan_errors_name_the_key(tmp_path):
    bad = tmp_path / "plan.yaml"
    bad.write_text(SMALL.read_text().replace("chunk_size: 60", "chunk_size: 0"))
    with pytest.raises(ConfigError, match="config key 'chunk_size'"):
        sim.load_study(bad)
    bad.write_text(SMALL.read_text().replace("    k: 3\n", "    k: 3\n    kk: 3\n"))
    with pytest.raises(ConfigError, match="kk"):
        sim.load_study(bad)


def test_tau_from_i2_reproduces_i2():
    sc = {
        "k": 5,
        "n_min": 10,
        "n_max": 30,
        "measure": "MD",
        "sd": 30.0,
        "prepost_r": 0.7,
        "i2": 0.6,
    }
    tau = sim._tau(sc)
    v = 2 * (30.0**2 * 2 * 0.3) / 20
    assert tau**2 / (tau**2 + v) == pytest.approx(0.6)


def test_job_seeds_do_not_depend_on_job_order(small):
    a1 = sim.run_job(small, "evidence", 1)
    sim.run_job(small, "binary_null", 0)
    a0 = sim.run_job(small, "evidence", 0)
    assert not a0.drop(columns="chunk").equals(a1.drop(columns="chunk"))  # chunks differ
    pd.testing.assert_frame_equal(sim.run_job(small, "evidence", 1), a1)
    pd.testing.assert_frame_equal(sim.run_job(small, "evidence", 0), a0)


def test_sums_round_trip_exactly(small, tmp_path):
    frame = sim.run_job(small, "evidence", 0)
    sim.write_sums(frame, tmp_path / "a.csv")
    back = sim.read_sums([tmp_path / "a.csv"])
    pd.testing.assert_frame_equal(
        back, frame.reset_index(drop=True), check_dtype=False, rtol=0, atol=0
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-3, 3), min_size=3, max_size=40),
    st.lists(st.floats(0.1, 2), min_size=3, max_size=40),
)
def test_performance_measures_match_direct_computation(est, width):
    n = min(len(est), len(width))
    e = np.array(est[:n]) + 0.5
    w = np.array(width[:n])
    lo, hi = e - w / 2, e + w / 2
    truth = 0.5
    plan = {
        "scenario_list": {
            "s": {"label": "s", "measure": "SMD", "k": 3, "i2": None, "tau": 0.1, "effect": truth}
        },
    }
    # split the replicates over two chunks: the sums add up
    parts = [
        sim._sums(e[: n // 2], lo[: n // 2], hi[: n // 2], truth),
        sim._sums(e[n // 2 :], lo[n // 2 :], hi[n // 2 :], truth),
    ]
    sums = pd.DataFrame(
        [
            {"scenario": "s", "chunk": c, "family": "f", "method": "m", "ci": "z", **p}
            for c, p in enumerate(parts)
        ]
    )
    perf = sim.performance(sums, plan).iloc[0]
    err = e - truth
    cover = np.mean((lo <= truth) & (truth <= hi))
    assert perf["bias"] == pytest.approx(err.mean(), abs=1e-12)
    assert perf["empse"] == pytest.approx(np.std(e, ddof=1), rel=1e-9, abs=1e-12)
    assert perf["rmse"] == pytest.approx(math.sqrt(np.mean(err**2)), rel=1e-12)
    assert perf["coverage"] == pytest.approx(cover)
    assert perf["coverage_mcse"] == pytest.approx(math.sqrt(cover * (1 - cover) / n))
    assert perf["width"] == pytest.approx(w.mean())
    assert perf["width_mcse"] == pytest.approx(
        np.std(w, ddof=1) / math.sqrt(n), rel=1e-6, abs=1e-12
    )
    assert perf["rejection"] == pytest.approx(np.mean((lo > 0) | (hi < 0)))
    assert perf["bias_mcse"] == pytest.approx(np.std(e, ddof=1) / math.sqrt(n), rel=1e-9, abs=1e-12)


def _scenario(**kw):
    base = {"k": 4, "n_min": 15, "n_max": 40, "delta": 10.0, "tau": 3.0}
    return rep.ContinuousScenario(**{**base, **kw})


def test_reported_sd_is_the_sample_sd_of_change():
    # one replicate, SDs reported: mean and SD are what the participants give, to 2 decimals;
    # over many trials their average is near the true SD of change
    sc = _scenario(k=200)
    r = rep.simulate_continuous(sc, 5, np.random.default_rng(1))
    assert np.all(r.fmt == rep.FORMATS.index("sd"))
    assert np.all(np.round(r.sd_e, 2) == r.sd_e)
    assert abs(np.mean(r.sd_e) - sc.sd_change) < 0.3  # SE of the mean of 1000 SDs ~ 0.1


def test_pooled_sd_from_an_exact_p_recovers_the_sd():
    # three-decimal p-values: the derived pooled SD is close to the sample pooled SD
    sc = _scenario(k=300, share_p_exact=1.0, delta=12.0)
    r = rep.simulate_continuous(sc, 1, np.random.default_rng(2))
    md = r.mean_e - r.mean_c
    sp = dispersion.pooled_sd_from_p(md, r.n_e, r.n_c, r.p)
    ok = (r.p > 0.005) & (r.p < 0.9) & ~r.p_is_bound
    assert np.median(np.abs(sp[ok] / sc.sd_change - 1)) < 0.1


def test_p_bounds_make_the_derived_sd_conservative():
    sc = _scenario(k=300, share_p_bound=1.0, delta=25.0)
    r = rep.simulate_continuous(sc, 1, np.random.default_rng(3))
    assert r.p_is_bound.mean() > 0.5
    exact = rep.simulate_continuous(
        _scenario(k=300, share_p_exact=1.0, delta=25.0), 1, np.random.default_rng(3)
    )
    md = r.mean_e - r.mean_c
    b = r.p_is_bound
    sp_bound = dispersion.pooled_sd_from_p(md[b], r.n_e[b], r.n_c[b], r.p[b])
    sp_exact = dispersion.pooled_sd_from_p(
        md[b], r.n_e[b], r.n_c[b], np.maximum(exact.p[b], 1e-300)
    )
    assert np.all(sp_bound >= sp_exact - 1e-9)  # same data, bound >= exact p -> larger SD


def test_split_scalp_sides_have_the_true_correlation():
    sc = _scenario(k=2000, share_split=1.0, split_r=0.6, n_min=30, n_max=30, tau=0.0, delta=0.0)
    r = rep.simulate_continuous(sc, 1, np.random.default_rng(4))
    assert np.all(r.n_e == r.n_c)
    # var(mean_e - mean_c) = 2 sd^2 (1 - rho) / n for equal SDs of change
    d = (r.mean_e - r.mean_c).ravel()
    expected = 2 * sc.sd_change**2 * (1 - 0.6) / 30
    assert np.var(d) == pytest.approx(expected, rel=0.1)


@pytest.mark.e2e
def test_small_study_runs_the_same_however_jobs_are_spread(tmp_path):
    """End to end through Snakemake: 1 core vs 2 cores (other job order) give the same bytes."""
    out = {}
    for cores in ("1", "2"):
        work = tmp_path / f"c{cores}"
        work.mkdir()
        for name in ("config", "data"):
            (work / name).symlink_to(ROOT / name)
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(work),
            "--cores",
            cores,
            "simulation",
            "--config",
            f"simulation_study={SMALL}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=work)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[cores] = work / "results" / "simulation"
    a, b = out["1"], out["2"]
    assert (a / "performance.csv").read_bytes() == (b / "performance.csv").read_bytes()
    assert (a / "report.md").read_bytes() == (b / "report.md").read_bytes()
    perf = pd.read_csv(a / "performance.csv")
    assert list(perf.columns) == sim.PERFORMANCE_COLUMNS
    assert set(perf["scenario"]) == {"evidence", "binary_null"}
    assert (perf["replicates"] == 120).all()
    assert {p.read_text().strip() for p in (a / "jobs").glob("*/*.txt")} == {"none"}
    assert "Under conditions like this evidence" in (a / "report.md").read_text()
    assert (a / "coverage_by_k.png").stat().st_size == 0  # no grid in this plan
    assert (a / "width_vs_coverage.png").read_bytes()[:4] == b"\x89PNG"
    shutil.rmtree(tmp_path)


def test_levels_with_the_assumed_correlation_overstate_the_sd_of_change():
    # true r = 0.7, the analysis assumes 0.5 (the pipeline's default): conservative
    sc = _scenario(k=400, share_levels=1.0, prepost_r=0.7)
    r = rep.simulate_continuous(sc, 1, np.random.default_rng(6))
    assert np.all(np.isnan(r.p)) and np.all(np.isfinite(r.base_sd_e))
    derived = dispersion.sd_change_from_levels(r.base_sd_e, r.sd_e, 0.5)
    assert np.mean(derived) > 1.2 * sc.sd_change  # sqrt(2 x 0.5) / sqrt(2 x 0.3) = 1.29


def test_md_scenario_with_sds_reported_is_unbiased(small, tmp_path):
    plan = sim.load_study(SMALL)
    sc = plan["scenario_list"]["evidence"]
    sc.update(measure="MD", effect=15.0, tau=3.0, share_p_exact=0.0, share_p_bound=0.0)
    plan["replicates"] = plan["chunk_size"] = 400
    perf = sim.performance(sim.run_job(plan, "evidence", 0), plan)
    reml = perf[(perf["method"] == "REML") & (perf["ci"] == "knha")].iloc[0]
    assert reml["n"] == 400
    assert abs(reml["bias"]) < 3 * reml["bias_mcse"] + 0.05  # MD unbiased with SDs reported
    assert 0.9 < reml["coverage"] <= 1.0
