"""The trial-data simulator: valid inputs, determinism, structure and known truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hairtrial.analyses import primary
from hairtrial.analyses.config import load_config
from hairtrial.data import validate
from hairtrial.data.simulate import (
    SimulationSpec,
    load_spec,
    simulate,
    write_dataset,
)
from hairtrial.data.units import CM2_PER_INCH2

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "data" / "synthetic_small.yaml"
SCENARIOS = ROOT / "config" / "simulation.yaml"


@pytest.fixture(scope="module")
def small():
    spec, seed = load_spec(SMALL)
    return spec, seed, *simulate(spec, seed)


@pytest.fixture(scope="module")
def benchmark():
    spec, seed = load_spec(SCENARIOS, "benchmark_20")
    return spec, seed, *simulate(spec, seed)


@pytest.fixture(scope="module")
def written_small(small, tmp_path_factory):
    _, _, arms, studies, truth = small
    return write_dataset(arms, studies, tmp_path_factory.mktemp("small"), truth)


def _fmt_of(g: pd.DataFrame) -> str:
    for col, name in (("sd", "sd"), ("se", "se"), ("ci_lower", "ci"), ("median", "median_iqr")):
        if g[col].notna().all():
            return name
    raise AssertionError(f"mixed formats in {g['study'].iloc[0]}")


def test_written_files_pass_validation(written_small, small):
    arms, studies = validate.read_inputs(written_small["arms"], written_small["studies"])
    assert len(arms) == len(small[2])
    assert len(studies) == small[0].n_trials
    truth = pd.read_csv(written_small["truth"])
    assert set(truth["scope"]) == {"population", "study", "arm"}


def test_benchmark_passes_validation(benchmark, tmp_path):
    _, _, arms, studies, truth = benchmark
    paths = write_dataset(arms, studies, tmp_path)
    validate.read_inputs(paths["arms"], paths["studies"])
    assert "truth" not in paths


def test_same_seed_same_output(small, tmp_path):
    spec, seed, arms, studies, truth = small
    again = simulate(spec, seed)
    for a, b in zip((arms, studies, truth), again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    p1 = write_dataset(arms, studies, tmp_path / "a", truth)
    p2 = write_dataset(*again[:2], tmp_path / "b", again[2])
    for key in ("arms", "studies", "truth"):
        assert p1[key].read_bytes() == p2[key].read_bytes()


def test_different_seeds_differ(small):
    spec, seed, arms, _, truth = small
    arms2, _, truth2 = simulate(spec, seed + 1)
    assert not arms.equals(arms2)
    assert not truth.equals(truth2)


def test_structure(benchmark):
    spec, _, arms, studies, _ = benchmark
    n_arms = arms.groupby("study")["arm"].nunique()
    assert n_arms.between(2, 3).all() and (n_arms == 3).any()
    assert (n_arms == studies.set_index("study")["n_arms"]).all()
    for _, g in arms.groupby("study"):
        follow = sorted(set(g["week"]) - {0})
        assert 2 <= len(follow) <= 5 and set(follow) <= set(spec.week_grid)
        assert 12 in follow
        # every arm reports a baseline level and each week exactly once
        per_arm = g.groupby("arm")["week"].apply(sorted)
        assert all(w == [0, *follow] for w in per_arm)
        assert (g.loc[g["week"] == 0, "stat"] == "value").all()
        assert g.loc[g["week"] > 0, "stat"].nunique() == 1
        assert g.groupby("arm")["treatment"].nunique().eq(1).all()
        assert set(g["treatment"]) >= {"minoxidil", "minoxidil_microneedling"}
    base = arms[arms["week"] == 0]
    assert base["n"].between(spec.n_min, spec.n_max).all()
    parallel = set(studies.loc[studies["design"] == "parallel", "study"])
    n_unequal = base[base["study"].isin(parallel)].groupby("study")["n"].nunique().gt(1)
    assert n_unequal.mean() > 0.7
    assert (studies["design"] == "split_scalp").sum() == 1
    split = studies.loc[studies["design"] == "split_scalp", "study"].iloc[0]
    assert arms.loc[arms["study"] == split].groupby("week")["n"].nunique().eq(1).all()
    totals = base.groupby("study")["n"].sum()
    totals[split] = base.loc[base["study"] == split, "n"].iloc[0]  # same patients, both sides
    assert studies.set_index("study")["n_randomised"].eq(totals).all()


def test_requested_fractions(benchmark):
    spec, _, arms, studies, _ = benchmark
    n = spec.n_trials

    def expected(frac: float, k: int = n) -> int:
        return math.floor(frac * k + 0.5)

    formats = arms.groupby("study").apply(_fmt_of, include_groups=False).value_counts()
    assert formats.get("se", 0) == expected(spec.se_fraction)
    assert formats.get("ci", 0) == expected(spec.ci_fraction)
    assert formats.get("median_iqr", 0) == expected(spec.median_iqr_fraction)
    levels = arms[arms["week"] > 0].groupby("study")["stat"].first().eq("value").sum()
    assert levels == expected(spec.levels_fraction)
    inch2 = arms.groupby("study")["unit"].first().eq("hairs/inch2").sum()
    assert inch2 == expected(spec.inch2_fraction)
    assert (studies["n_arms"] == 3).sum() == expected(spec.three_arm_fraction, n - 1)
    assert arms["p_value"].notna().any()
    assert set(arms["p_relation"].dropna()) <= {"=", "<"}


def test_split_scalp_off_and_spec_checks():
    _, studies, _ = simulate(SimulationSpec(n_trials=3, split_scalp=False), seed=3)
    assert (studies["design"] == "parallel").all()
    with pytest.raises(ValueError, match="prepost_r"):
        SimulationSpec(prepost_r=1.0)
    with pytest.raises(ValueError, match="must not exceed 1"):
        SimulationSpec(se_fraction=0.6, median_iqr_fraction=0.6)


def test_truth_frame(small):
    spec, _, arms, _, truth = small
    pop = truth[truth["scope"] == "population"].set_index(["quantity", "week"])["value"]
    assert pop[("delta", 0)] == 0
    assert pop[("delta", spec.ref_week)] == pytest.approx(spec.delta_ref)
    assert pop[("tau", spec.ref_week)] == pytest.approx(spec.tau)
    assert pop[("smd", 12)] == pytest.approx(spec.delta_ref / spec.sd_change(12))
    d = truth[truth["scope"] == "population"].query("quantity == 'delta'")
    assert np.all(np.diff(d.sort_values("week")["value"]) > 0)  # grows, then plateaus
    # a study's difference is its experimental minus control true change
    arm = truth[(truth["scope"] == "arm") & (truth["quantity"] == "mean_change")]
    st = truth[(truth["scope"] == "study") & (truth["quantity"] == "difference")]
    two = arms.groupby("study")["arm"].nunique().eq(2)
    for _, r in st[st["study"].isin(two[two].index)].iterrows():
        a = arm[(arm["study"] == r["study"]) & (arm["week"] == r["week"])]
        e = a.loc[a["treatment"] == spec.experimental, "value"].iloc[0]
        c = a.loc[a["treatment"] == spec.control, "value"].iloc[0]
        assert r["value"] == pytest.approx(e - c)


def test_load_spec_layouts_and_errors(tmp_path):
    spec, seed = load_spec(SCENARIOS, "small_6")
    assert spec.n_trials == 6 and seed == 20240602
    assert load_spec(SCENARIOS, "benchmark_20")[0].n_trials == 20
    with pytest.raises(ValueError, match="scenario 'nope' not found"):
        load_spec(SCENARIOS, "nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nntrials: 3\n")
    with pytest.raises(ValueError, match="unknown simulation field"):
        load_spec(bad)
    bad.write_text("n_trials: 3\n")
    with pytest.raises(ValueError, match="'seed' is required"):
        load_spec(bad)


# --- statistical sanity: large trials, reported numbers against the truth ------------------


@pytest.fixture(scope="module")
def large():
    spec = SimulationSpec(
        n_trials=6,
        n_min=3000,
        n_max=4000,
        three_arm_fraction=0.4,
        third_arm_other_fraction=0.0,  # two microneedling arms: combined by the pipeline
        se_fraction=1 / 6,
        ci_fraction=1 / 6,
        median_iqr_fraction=1 / 6,
        levels_fraction=0.5,
        inch2_fraction=0.34,
        p_value_fraction=0.0,
    )
    return spec, *simulate(spec, seed=11)


def _estimates(row: pd.Series) -> tuple[float, float, bool]:
    """(point estimate of the centre, its SD-scale estimate, is_median) in hairs/cm2."""
    f = CM2_PER_INCH2 if row["unit"] == "hairs/inch2" else 1.0
    n = row["n"]
    if pd.notna(row["median"]):
        return row["median"] / f, (row["q3"] - row["q1"]) / 1.3490 / f, True
    if pd.notna(row["sd"]):
        sd = row["sd"]
    elif pd.notna(row["se"]):
        sd = row["se"] * math.sqrt(n)
    else:
        sd = (row["ci_upper"] - row["ci_lower"]) / 2 / 1.96 * math.sqrt(n)
    return row["mean"] / f, sd / f, False


def test_reported_summaries_match_truth(large):
    spec, arms, _, truth = large
    assert set(_fmt_of(g) for _, g in arms.groupby("study")) == set(
        ("sd", "se", "ci", "median_iqr")
    )
    t = truth[truth["scope"] == "arm"].set_index(["study", "arm", "week", "quantity"])["value"]
    z, sd_ratio = [], []
    for _, r in arms.iterrows():
        key = (r["study"], r["arm"], r["week"])
        centre, sd_hat, is_median = _estimates(r)
        if r["stat"] == "value":
            true_mean, true_sd = t[(*key, "mean_level")], t[(*key, "sd_level")]
        else:
            true_mean, true_sd = t[(*key, "mean_change")], t[(*key, "sd_change")]
        assert t[(*key, "n")] == r["n"]
        se = true_sd / math.sqrt(r["n"]) * (math.sqrt(math.pi / 2) if is_median else 1.0)
        z.append((centre - true_mean) / se)
        sd_ratio.append((sd_hat / true_sd, is_median))
    z = np.asarray(z)
    assert np.abs(z).max() < 4.5, z
    # A biased generator shifts every row the same way: 0.5 hairs/cm2 (1/60 SD) fails here.
    assert abs(z.mean()) < 0.6, z.mean()
    assert 0.4 < np.sqrt(np.mean(z**2)) < 1.6
    for ratio, is_median in sd_ratio:
        assert abs(ratio - 1) < (0.08 if is_median else 0.05)


def test_pipeline_estimates_match_truth(large, tmp_path):
    spec, arms, studies, truth = large
    paths = write_dataset(arms, studies, tmp_path, truth)
    eff, _, notes = primary.prepare(load_config(paths["config"]))
    assert notes.empty
    md = eff[eff["measure"] == "MD"]
    diff = truth[(truth["scope"] == "study") & (truth["quantity"] == "difference")]
    diff = diff.set_index(["study", "week"])["value"]
    z = [(r["yi"] - diff[(r["study"], r["week"])]) / math.sqrt(r["vi"]) for _, r in md.iterrows()]
    assert len(z) == len(diff)
    assert np.abs(z).max() < 4.5


# --- the pipeline on a written small scenario -------------------------------------------------


def test_pipeline_runs_on_written_config(written_small, small):
    spec, _, arms, studies, _ = small
    cfg = load_config(written_small["config"])
    assert cfg["selection"]["studies"] == "all"
    eff, quality, notes = primary.prepare(cfg)
    md = eff[eff["measure"] == "MD"]
    assert md["week"].nunique() >= 3
    assert set(md.loc[md["week"] == 12, "study"]) == set(studies["study"])
    assert md["design"].eq("split_scalp").any()
    assert {"from_se", "from_ci", "unit_converted", "combined_arms"} <= {
        c for p in quality["provenance"] for c in p.split(";")
    }
    cfg = load_config(written_small["config"])
    cfg["meta_analysis"] = {"tau2_methods": ["REML"], "ci_methods": ["adhoc"], "level": 0.95}
    meta_table, _ = primary.meta_analyses(eff, cfg)
    week12 = meta_table[(meta_table["week"] == 12) & (meta_table["measure"] == "MD")]
    assert int(week12["k"].iloc[0]) == spec.n_trials
