"""The simulation study: plan, report generator, derivations, measures, determinism."""

from __future__ import annotations

import dataclasses
import itertools
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hairtrial.analyses import simulation as sim
from hairtrial.analyses import simulation_plan
from hairtrial.analyses.config import ConfigError
from hairtrial.data import simulate_reports as rep
from hairtrial.derive import dispersion
from hairtrial.models import binary

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "data" / "simulation_small.yaml"
STUDY = ROOT / "config" / "simulation_study.yaml"


@pytest.fixture(scope="module")
def small():
    return sim.load_study(SMALL)


@pytest.fixture(scope="module")
def binary_chunk0(small):
    """Chunk 0 of the small plan's binary scenario (its 4 GLMM fits, ~2-4 s): computed once."""
    return sim.run_job(small, "binary_null", 0)


def test_default_plan_is_valid_and_complete():
    plan = sim.load_study(STUDY)
    scen = plan["scenario_list"]
    assert sorted({s["k"] for s in scen.values()}) == [2, 3, 5, 10, 20]
    assert plan["calibrated"] in scen
    assert any(s.get("outcome") == "binary" for s in scen.values())
    assert any(s["effect"] == 0 for s in scen.values())  # a type I error scenario
    # replicates justified by the MC SE of coverage: <= 0.5 percentage points at 95%
    assert math.sqrt(0.95 * 0.05 / plan["replicates"]) <= 0.005
    # the GLMM on fewer replicates (a scalar fit each): still < 1 percentage point, and its
    # fits spread over more than one job of the binary scenario
    assert "GLMM" in plan["methods"]["binary"]
    glmm = min(plan["methods"]["glmm_replicates"], plan["replicates"])
    assert math.sqrt(0.95 * 0.05 / glmm) < 0.01
    binary_jobs = [s for s, sc in scen.items() if sc.get("outcome") == "binary"]
    assert all(glmm > sim.chunk_size(plan, s) for s in binary_jobs)


def test_plan_errors_name_the_key(tmp_path):
    bad = tmp_path / "plan.yaml"
    bad.write_text(SMALL.read_text().replace("chunk_size: 60", "chunk_size: 0"))
    with pytest.raises(ConfigError, match="config key 'chunk_size'"):
        sim.load_study(bad)
    bad.write_text(SMALL.read_text().replace("    k: 3\n", "    k: 3\n    kk: 3\n"))
    with pytest.raises(ConfigError, match="kk"):
        sim.load_study(bad)


def test_make_simulate_checks_the_plan_before_starting_snakemake():
    """`make simulate` (and SIM_PLAN=another plan): the plan's check, then Snakemake on it."""
    # -o: the environment taken as built (a lock newer than it would list its rebuild too)
    cmd = ["make", "-n", "-o", ".venv/.hairtrial-installed", "simulate", "SIM_PLAN=my plan.yaml"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    check, run = [line for line in proc.stdout.splitlines() if line.startswith(".venv/bin/")]
    assert check == '.venv/bin/hairtrial validate --simulation-plan "my plan.yaml"'
    assert run.startswith(".venv/bin/snakemake ") and run.endswith(" simulation")
    assert '--config "simulation_study=my plan.yaml"' in run


def _validate_plan(path: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "hairtrial.cli", "validate", "--simulation-plan", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_a_rejected_plan_is_a_message_naming_the_file_and_each_broken_rule(tmp_path):
    """What `make simulate` says of a plan that breaks rules, before anything runs (Snakemake
    itself would report it with a traceback of the workflow's input function)."""
    bad = tmp_path / "plan.yaml"
    bad.write_text("scenarios:\n  a: {k: -3}\n", encoding="utf-8")
    proc = _validate_plan(bad)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("hairtrial: Simulation plan rejected; nothing was run")
    assert f"{bad}: config key 'seed': missing (required)" in proc.stderr
    assert "config key 'scenarios.a.k': -3 is less than the minimum of 2" in proc.stderr
    assert "Traceback" not in proc.stderr
    good = _validate_plan(STUDY)
    assert good.returncode == 0, good.stderr
    plan = sim.load_study(STUDY)
    n_scenarios, n_jobs = len(plan["scenario_list"]), len(sim.jobs(plan))
    assert good.stdout == f"{STUDY}: valid. {n_scenarios} scenarios in {n_jobs} jobs.\n"


_YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)  # fmt: skip


PLAN_KEYS = ["replicates", "seed", "chunk_size", "scenarios", "grid", "methods", "k", "i2"]


@settings(max_examples=150, deadline=None)
@given(
    plan=st.one_of(
        st.text(max_size=60),  # anything, YAML or not
        _YAML_VALUES.map(yaml.safe_dump),
        # the small plan with one key's value replaced
        st.tuples(st.sampled_from(PLAN_KEYS), _YAML_VALUES),
    )
)
def test_any_plan_is_accepted_or_rejected_in_words(plan):
    """The plan reader never fails otherwise: a plan is loaded, or rejected with PlanError
    (the message `make simulate` and the workflow show); what it loads has its jobs."""
    import tempfile

    if isinstance(plan, tuple):
        key, value = plan
        raw = yaml.safe_load(SMALL.read_text(encoding="utf-8"))
        if key in raw:
            raw[key] = value
        else:
            next(iter(raw["scenarios"].values()))[key] = value
        plan = yaml.safe_dump(raw)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plan.yaml"
        path.write_text(plan, encoding="utf-8")
        try:
            loaded = simulation_plan.load_study(path)
        except simulation_plan.PlanError as err:
            assert simulation_plan.plan_error_message(path, err).startswith("Simulation plan")
        else:
            assert all(c >= 0 for _, c in simulation_plan.jobs(loaded))


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
    tau = simulation_plan._tau(sc)
    v = 2 * (30.0**2 * 2 * 0.3) / 20
    assert tau**2 / (tau**2 + v) == pytest.approx(0.6)


def test_job_seeds_do_not_depend_on_job_order(small, binary_chunk0):
    a1 = sim.run_job(small, "evidence", 1)
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
    glmm = perf["method"] == "GLMM"
    assert (perf.loc[~glmm, "replicates"] == 120).all()
    assert (perf.loc[glmm, "replicates"] == 4).all()  # glmm_replicates of the small plan
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


# ---------------------------------------------------------- heterogeneity and prediction


def test_pi_cover_probability_is_the_chance_a_new_trial_falls_inside():
    z = 1.959963984540054
    lo, hi = np.array([0.5 - z * 0.2, -np.inf, 0.6]), np.array([0.5 + z * 0.2, np.inf, 0.9])
    p = sim.pi_cover_probability(lo, hi, 0.5, 0.2)
    assert p[0] == pytest.approx(0.95, abs=1e-12)
    assert p[1] == 1.0
    assert p[2] == pytest.approx(
        0.9772498680518208 - 0.6914624612740131, abs=1e-12
    )  # Phi(2) - Phi(0.5)
    # tau = 0: every new trial has the pooled effect; the interval holds it or not
    np.testing.assert_array_equal(sim.pi_cover_probability(lo, hi, 0.5, 0.0), [1.0, 1.0, 0.0])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(3, 80),
    seed=st.integers(0, 2**32 - 1),
    tau=st.sampled_from([0.0, 0.2, 1.0]),
    cuts=st.lists(st.floats(0, 1), max_size=4),
)
def test_new_measures_combine_across_chunks_as_one_chunk(n, seed, tau, cuts):
    """The sums of any split into chunks give the measures of the whole, and those measures
    are the direct ones: n_failed, tau2 bias / empirical SE / RMSE, PI coverage and width."""
    rng = np.random.default_rng(seed)
    truth = 0.3
    est = truth + rng.normal(0, 0.3, n)
    half = rng.uniform(0.05, 1.0, n)
    tau2 = rng.gamma(0.7, 0.1, n)
    pi_half = half + rng.uniform(0.0, 1.5, n)
    usable = rng.random(n) > 0.15
    conv = rng.random(n) > 0.15
    est[~usable] = np.nan
    lo, hi, plo, phi = est - half, est + half, est - pi_half, est + pi_half

    def sums(a: int, b: int, chunk: int) -> dict:
        part = sim._sums(
            est[a:b],
            lo[a:b],
            hi[a:b],
            truth,
            tau=tau,
            usable=usable[a:b],
            converged=conv[a:b],
            tau2=tau2[a:b],
            pi=(plo[a:b], phi[a:b]),
        )
        return {"scenario": "s", "chunk": chunk, "family": "f", "method": "m", "ci": "z", **part}

    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    split = pd.DataFrame([sums(a, b, i) for i, (a, b) in enumerate(itertools.pairwise(bounds))])
    whole = pd.DataFrame([sums(0, n, 0)])
    plan = {
        "scenario_list": {
            "s": {"label": "s", "measure": "SMD", "k": 3, "i2": None, "tau": tau, "effect": truth}
        },
    }
    got, ref = sim.performance(split, plan).iloc[0], sim.performance(whole, plan).iloc[0]
    for col in sim.PERFORMANCE_COLUMNS:
        if isinstance(ref[col], str):
            assert got[col] == ref[col]
        elif pd.isna(ref[col]):
            assert pd.isna(got[col]), col
        else:
            assert got[col] == pytest.approx(ref[col], rel=1e-9, abs=1e-12), col

    good = usable & conv
    m = int(good.sum())
    assert (got["replicates"], got["n"]) == (n, m)
    assert got["n_failed"] == int(np.sum(usable & ~conv))  # counted, not dropped
    if m < 2:
        assert pd.isna(got["tau2_bias"]) and pd.isna(got["pi_coverage"])
        return
    t2 = tau2[good]
    assert got["tau2_bias"] == pytest.approx(t2.mean() - tau**2, rel=1e-9, abs=1e-12)
    assert got["tau2_empse"] == pytest.approx(np.std(t2, ddof=1), rel=1e-7, abs=1e-12)
    assert got["tau2_rmse"] == pytest.approx(np.sqrt(np.mean((t2 - tau**2) ** 2)), rel=1e-9)
    cover = sim.pi_cover_probability(plo[good], phi[good], truth, tau)
    assert got["pi_coverage"] == pytest.approx(cover.mean(), rel=1e-9, abs=1e-12)
    assert got["pi_coverage_mcse"] == pytest.approx(
        np.std(cover, ddof=1) / math.sqrt(m), rel=1e-6, abs=1e-12
    )
    assert got["pi_width"] == pytest.approx(np.mean(2 * pi_half[good]), rel=1e-9)


def test_prediction_intervals_cover_a_new_trial_near_nominal_with_many_large_trials():
    """Known truth: MD (unbiased with SDs reported), k = 30 trials of 200-400 per arm, tau = 6.

    With precise trials and many of them, tau2 is estimated well and the prediction intervals
    of REML (t with k - 1 df, Hartung-Knapp) and of the Bayesian model cover a new trial's
    effect close to 95%; the z-based PI ignores the uncertainty in tau2 and falls a little
    short. A PI computed without tau2 (the CI) or around the wrong centre would miss widely.
    """
    plan = sim.load_study(SMALL)
    sc = plan["scenario_list"]["evidence"]
    sc.update(measure="MD", effect=15.0, tau=6.0, k=30, n_min=200, n_max=400)
    sc.update(share_split=0.0, share_levels=0.0, share_p_exact=0.0, share_p_bound=0.0)
    plan["replicates"] = plan["chunk_size"] = 300
    plan["methods"]["tau2"] = ["FE", "REML"]
    perf = sim.performance(sim.run_job(plan, "evidence", 0), plan).set_index(["method", "ci"])
    reml, bayes = perf.loc[("REML", "knha")], perf.loc[("half_normal x1", "posterior")]
    for row in (reml, bayes):
        assert row["n"] == 300 and row["n_failed"] == 0
        assert abs(row["tau2_bias"]) < 3 * row["tau2_bias_mcse"] + 0.05 * 36
        assert abs(row["pi_coverage"] - 0.95) < 0.02  # MC SE ~0.002
        assert row["pi_width"] > 1.5 * row["width"]  # a PI is wider than the CI
    assert perf.loc[("REML", "z"), "pi_coverage"] < reml["pi_coverage"]
    # FE assumes tau2 = 0: no tau2 estimate and no prediction interval
    fe = perf.loc[("FE", "z")]
    assert fe[["tau2_bias", "tau2_rmse", "pi_coverage", "pi_width"]].isna().all()


# -------------------------------------------------------------------------- GLMM


def test_glmm_runs_in_the_binary_scenario(binary_chunk0, small):
    rows = binary_chunk0.set_index("method")
    g = rows.loc["GLMM"]
    assert g["replicates"] == 4  # glmm_replicates: the first 4 replicates of the scenario
    assert g["n"] + g["n_failed"] == 4 and g["n"] >= 2
    assert g["n_tau2"] == g["n_pi"] == g["n"]
    assert rows.loc["IV-DL", "n_tau2"] == rows.loc["IV-DL", "n"] == 60
    assert rows.loc["MH", "n_tau2"] == rows.loc["IV-FE", "n_pi"] == 0  # no tau2 in these
    chunk1 = sim.run_job(
        {**small, "methods": {**small["methods"], "binary": ["GLMM"]}}, "binary_null", 1
    )
    assert chunk1["replicates"].tolist() == [0]  # GLMM replicates all in chunk 0
    perf = sim.performance(pd.concat([binary_chunk0, chunk1]), small).set_index("method")
    assert perf.loc["GLMM", "replicates"] == 4 and perf.loc["MH", "replicates"] == 60
    assert math.isfinite(perf.loc["GLMM", "coverage"])
    assert perf.loc["GLMM", "tau2_bias"] >= 0  # tau = 0: the estimate is >= 0


def _fake_glmm(calls: list[int]):
    """A fast stand-in for glmm_um_fs: every third call raises, every third does not converge."""

    def fit(ai, n1i, ci, n2i, *, level):
        i = len(calls)
        calls.append(i)
        if i % 3 == 0:
            raise ValueError("optimiser failed")
        res = binary.mantel_haenszel(ai, n1i, ci, n2i, measure="OR", level=level)
        return dataclasses.replace(res, model="GLMM (UM.FS)", tau2=0.04, converged=i % 3 == 1)

    return fit


def test_failed_glmm_fits_are_counted_not_dropped(small, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(binary, "glmm_um_fs", _fake_glmm(calls))
    plan = {**small, "methods": {**small["methods"], "binary": ["GLMM"], "glmm_replicates": 7}}
    plan["scenario_list"] = {
        name: {**sc, "chunk_size": 5} for name, sc in small["scenario_list"].items()
    }
    assert sim.jobs(plan).count(("binary_null", 23)) == 1  # 120 / 5 = 24 chunks
    chunks = [sim.run_job(plan, "binary_null", c) for c in range(3)]
    assert [int(c["replicates"].iloc[0]) for c in chunks] == [5, 2, 0]  # the first 7
    assert len(calls) == 7
    perf = sim.performance(pd.concat(chunks), plan).iloc[0]
    # calls 0, 3, 6 raised, 2 and 5 did not converge: 5 failed, 2 used
    assert (perf["replicates"], perf["n"], perf["n_failed"]) == (7, 2, 5)
    assert perf["tau2_bias"] == pytest.approx(0.04)


def test_report_says_how_often_prediction_intervals_hold_a_new_trial(
    small, binary_chunk0, tmp_path
):
    from hairtrial.report.simulation import write_report

    sums = [sim.run_job(small, "evidence", c) for c in (0, 1)]
    sums += [binary_chunk0, sim.run_job(small, "binary_null", 1)]
    perf = sim.performance(pd.concat(sums), small)
    write_report(perf, small, {}, tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    reml = perf[(perf["method"] == "REML") & (perf["ci"] == "knha")].iloc[0]
    cover = f"{100 * reml['pi_coverage']:.1f}% (MC SE {100 * reml['pi_coverage_mcse']:.1f})"
    assert f"REML with a Hartung-Knapp CI: {cover}" in text
    assert "Prediction intervals for the true effect of a new trial" in text
    assert "first 4 replicates of the binary scenarios" in text  # the GLMM's subset
    assert "| pi_coverage |" in text and "| n_failed |" in text
    # failed fits are named with their count
    perf.loc[perf["method"] == "GLMM", "n_failed"] = 1
    write_report(perf, small, {}, tmp_path / "report.md")
    assert "GLMM (Wald) in `binary_null`: 1 of 4" in (tmp_path / "report.md").read_text()
