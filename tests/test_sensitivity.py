"""Sensitivity tables and figures (hairtrial.analyses.sensitivity): orchestration, not statistics.

The statistics have metafor parity tests of their own (test_metareg, test_subgroups,
test_influence, test_smallstudy); here the tables must hold exactly what direct calls of those
functions give on the same inputs, and say plainly when k is too small.
"""

import numpy as np
import pandas as pd
import pytest

from hairtrial.analyses import primary, run, sensitivity
from hairtrial.analyses.config import DEFAULT_CONFIG, load_config
from hairtrial.data.validate import read_studies
from hairtrial.diagnostics import influence, smallstudy
from hairtrial.models import metareg, subgroups
from hairtrial.report import figures


@pytest.fixture(scope="module")
def config():
    cfg = load_config(DEFAULT_CONFIG)
    cfg["meta_regression"] = {
        "moderators": [["needle_mm"], ["minoxidil_pct"], ["sex"], ["needle_mm", "sex"]],
        "permutation_iterations": 200,
        "seed": 7,
    }
    cfg["subgroups"] = {"moderators": ["sex", "design"]}
    return cfg


@pytest.fixture(scope="module")
def synthetic():
    """Six trials of one outcome (plus a one-trial outcome); one needle length missing."""
    rng = np.random.default_rng(3)
    ids = [f"s{i}" for i in range(1, 7)]
    needle = [0.5, 1.0, 1.5, 2.0, 2.5, np.nan]
    yi = [5.0, 9.0, 14.0, 16.0, 24.0, 11.0] + rng.normal(0, 1, 6)
    vi = [4.0, 6.0, 3.0, 8.0, 5.0, 7.0]
    eff = pd.DataFrame(
        {
            "outcome": "hair_density",
            "week": 12,
            "measure": "MD",
            "study": ids,
            "yi": yi,
            "vi": vi,
            "label": [f"Trial {i}" for i in range(1, 7)],
            "provenance": ["reported", "n_split_equally;from_p_value"] * 3,
            "unit": "hairs/cm2",
        }
    )
    one = eff.iloc[:1].assign(outcome="hair_diameter", unit="um")
    eff = pd.concat([eff, one], ignore_index=True)
    studies = pd.DataFrame(
        {
            "study": ids,
            "year": [2013, 2015, 2015, 2018, 2020, 2022],
            "design": ["parallel"] * 6,
            "sex": ["male", "female", "male", "female", "male", "female"],
            "minoxidil_pct": [5.0] * 6,
            "needle_mm": needle,
        }
    )
    return eff, studies


def _rows(t, **keys):
    sel = np.ones(len(t), bool)
    for c, v in keys.items():
        sel &= (t[c] == v).to_numpy()
    return t[sel].reset_index(drop=True)


def test_columns_are_the_documented_ones(synthetic, config):
    eff, studies = synthetic
    expected = {
        "meta_regression": sensitivity.META_REGRESSION_COLUMNS,
        "subgroups": sensitivity.SUBGROUP_TABLE_COLUMNS,
        "leave_one_out": sensitivity.LEAVE_ONE_OUT_TABLE_COLUMNS,
        "influence": sensitivity.INFLUENCE_TABLE_COLUMNS,
        "cumulative": sensitivity.CUMULATIVE_TABLE_COLUMNS,
        "small_study": sensitivity.SMALL_STUDY_TABLE_COLUMNS,
    }
    for name, cols in expected.items():
        t = sensitivity.table(name, eff, studies, config)
        assert list(t.columns) == list(cols), name
        assert "notes" in t.columns and t[["outcome", "week", "measure"]].notna().all(axis=None)
    assert sensitivity.META_REGRESSION_COLUMNS[:19] == [
        "outcome", "week", "measure", "moderators", "term", "estimate", "se", "ci_lower",
        "ci_upper", "pvalue", "tau2", "R2", "QM", "QM_pvalue", "QE", "QE_pvalue", "k",
        "permutation_pvalue", "notes",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown sensitivity table"):
        sensitivity.table("nope", eff, studies, config)


def test_meta_regression_matches_direct_calls_and_counts_dropped(synthetic, config):
    eff, studies = synthetic
    t = sensitivity.meta_regression_table(eff, studies, config)
    rows = _rows(t, outcome="hair_density", moderators="needle_mm")
    assert list(rows["term"]) == ["intrcpt", "needle_mm"]
    # direct: the five trials with a needle length, primary model REML + adhoc
    d = eff[eff.outcome == "hair_density"].merge(studies, on="study").sort_values("study")
    d = d[d.needle_mm.notna()]
    res = metareg.metareg(d.yi, d.vi, data=d, moderators=["needle_mm"], method="REML",
                          ci_method="adhoc")  # fmt: skip
    pt = metareg.permutest(d.yi.to_numpy(), d.vi.to_numpy(), res.design.apply(d),
                           method="REML", ci_method="adhoc", iterations=200, seed=7)  # fmt: skip
    coef = res.coefficients
    for col in ("estimate", "se", "ci_lower", "ci_upper", "pvalue"):
        np.testing.assert_allclose(rows[col], coef[col], rtol=1e-12)
    for col in ("tau2", "R2", "QM", "QM_pvalue", "QE", "QE_pvalue"):
        np.testing.assert_allclose(rows[col], getattr(res, col), rtol=1e-12)
    np.testing.assert_allclose(rows["permutation_pvalue"], pt.pvalue, rtol=1e-12)
    assert (rows["k"] == 5).all()
    assert (rows["studies_dropped"] == "s6").all()
    assert rows["notes"].str.contains("1 of 6 trials dropped: needle_mm not recorded").all()
    # 5! = 120 distinct permutations <= 200: exact test
    assert rows["notes"].str.contains("exact permutation test").all()


def test_constant_moderator_and_too_few_trials_are_reported_not_fitted(synthetic, config):
    eff, studies = synthetic
    t = sensitivity.meta_regression_table(eff, studies, config)
    const = _rows(t, outcome="hair_density", moderators="minoxidil_pct")
    assert len(const) == 1 and const["term"].isna().all() and const["estimate"].isna().all()
    assert "constant (5 in all 6 trials)" in const["notes"][0]
    assert "not fitted" in const["notes"][0]
    single = _rows(t, outcome="hair_diameter")
    assert len(single) == 1 and single["estimate"].isna().all()
    assert single["notes"][0].startswith("k = 1")
    # needle_mm + sex: p = 3 coefficients, 5 trials = p + 2: fitted
    two = _rows(t, outcome="hair_density", moderators="needle_mm + sex")
    assert list(two["term"]) == ["intrcpt", "needle_mm", "sexmale"]
    # three trials, one moderator: k < p + 2 = 4
    three = sensitivity.meta_regression_table(
        eff[eff.study.isin(["s1", "s2", "s3"])], studies, config
    )
    assert "fewer than p + 2 = 4" in _rows(three, moderators="needle_mm")["notes"][0]


def test_random_permutations_are_seeded(synthetic, config):
    eff, studies = synthetic
    cfg = {**config, "meta_regression": {**config["meta_regression"], "moderators": [["sex"]],
                                         "permutation_iterations": 10}}  # fmt: skip
    a = sensitivity.meta_regression_table(eff, studies, cfg)
    b = sensitivity.meta_regression_table(eff, studies, cfg)
    pd.testing.assert_frame_equal(a, b)
    rows = _rows(a, outcome="hair_density")
    assert (rows["permutations"] == 10).all()  # 6! / (3! 3!) = 20 distinct: random mode
    assert rows["notes"].str.contains("random permutation test").all()


def test_subgroups_match_direct_calls(synthetic, config):
    eff, studies = synthetic
    t = sensitivity.subgroup_table(eff, studies, config)
    g = eff[eff.outcome == "hair_density"].merge(studies, on="study").sort_values("study")
    res = subgroups.subgroup_analysis(g.yi, g.vi, g.sex, moderator="sex", method="REML",
                                      ci_method="adhoc")  # fmt: skip
    sub = _rows(t, outcome="hair_density", moderator="sex", row_type="subgroup")
    assert list(zip(sub.tau2_option, sub.level, strict=True)) == list(
        zip(res.table.tau2_option, res.table.level, strict=True)
    )
    for col in ("k", "estimate", "se", "ci_lower", "ci_upper", "pvalue", "tau2", "I2"):
        np.testing.assert_allclose(sub[col].astype(float), res.table[col].astype(float),
                                   rtol=1e-12)  # fmt: skip
    test = _rows(t, outcome="hair_density", moderator="sex", row_type="test")
    assert list(test.tau2_option) == ["separate", "common"]
    np.testing.assert_allclose(test["statistic"], res.test["Q_between"], rtol=1e-12)
    np.testing.assert_allclose(test["pvalue"], res.test["pvalue"], rtol=1e-12)
    design = _rows(t, outcome="hair_density", moderator="design")
    assert len(design) == 1 and design["statistic"].isna().all()
    assert "the same in all 6 trials (parallel)" in design["notes"][0]
    assert _rows(t, outcome="hair_diameter")["notes"][0].startswith("k = 1: too few trials")


def test_influence_tables_match_direct_calls(synthetic, config):
    eff, studies = synthetic
    g = eff[eff.outcome == "hair_density"].sort_values("study")
    y, v, s = g.yi.to_numpy(), g.vi.to_numpy(), list(g.study)
    loo = _rows(sensitivity.leave_one_out_table(eff, studies, config), outcome="hair_density")
    ref = influence.leave_one_out(y, v, s, method="REML", ci_method="adhoc")
    pd.testing.assert_frame_equal(loo[ref.columns], ref, check_dtype=False)
    inf = _rows(sensitivity.influence_table(eff, studies, config), outcome="hair_density")
    ref = influence.influence_diagnostics(y, v, s, method="REML", ci_method="adhoc")
    pd.testing.assert_frame_equal(inf[ref.columns], ref, check_dtype=False)
    assert inf["inf"].tolist() == ref["inf"].tolist()
    cum = _rows(sensitivity.cumulative_table(eff, studies, config), outcome="hair_density")
    d = g.merge(studies[["study", "year"]], on="study").sort_values(["year", "study"])
    ref = influence.cumulative(d.yi, d.vi, list(d.study), order_by=list(d.year),
                               method="REML", ci_method="adhoc")  # fmt: skip
    pd.testing.assert_frame_equal(cum[ref.columns], ref, check_dtype=False)
    assert list(cum["order"]) == [2013, 2015, 2015, 2018, 2020, 2022]
    for name in ("leave_one_out", "influence", "cumulative"):
        t = _rows(sensitivity.table(name, eff, studies, config), outcome="hair_diameter")
        assert len(t) == 1 and t["notes"][0].startswith("k = 1: too few trials"), name


def test_small_study_rows_and_uninformative_note(synthetic, config):
    eff, studies = synthetic
    t = sensitivity.small_study_table(eff, studies, config)
    g = eff[eff.outcome == "hair_density"].sort_values("study")
    ref = smallstudy.small_study_table(g.yi, g.vi, method="REML", ci_method="adhoc")
    rows = _rows(t, outcome="hair_density")
    pd.testing.assert_frame_equal(rows[ref.columns], ref)
    assert not rows["informative"].any()
    egger = rows[rows.test.str.startswith("regtest")]
    assert egger["notes"].str.contains("k = 6 < 10: too few studies for the regression test").all()
    one = _rows(t, outcome="hair_diameter")
    assert one["notes"].str.contains("not computable").all() and one["pvalue"].isna().all()


def test_figure_targets_and_figures(synthetic, config, tmp_path):
    eff, studies = synthetic
    targets = sensitivity.figure_targets(eff, studies, config)
    kinds = {(k, m) for k, o, _, _, m in targets if o == "hair_density"}
    assert ("bubble", "needle_mm") in kinds and ("subgroups", "sex") in kinds
    assert ("bubble", "minoxidil_pct") not in kinds and ("subgroups", "design") not in kinds
    assert {"leave_one_out", "cumulative", "baujat", "influence", "funnel"} <= {k for k, _ in kinds}
    assert not [t for t in targets if t[1] == "hair_diameter"]
    cfg = {**config, "figures": {"formats": ["png"], "dpi": 72}}
    tables, data = run.figure_inputs(eff, studies, cfg)
    assert len(data["figures"]) == len(targets)
    for row in data["figures"].to_dict("records"):
        fig = figures.figure_object(row, tables, data, cfg)
        assert fig.get_figwidth() > 0
        if row["kind"] == "bubble":
            figures.save(fig, tmp_path / "bubble", cfg)
    assert (tmp_path / "bubble.png").stat().st_size > 0
    with pytest.raises(ValueError, match="not computable"):
        figures.sensitivity_figure_object(
            "funnel", tables, data, cfg, outcome="hair_diameter", week=12, measure="MD"
        )


def test_figures_fit_nothing(synthetic, config, monkeypatch):
    """Drawing from the tables and figure data calls no model or diagnostic."""
    eff, studies = synthetic
    cfg = {**config, "figures": {"formats": ["png"], "dpi": 72}}
    tables, data = run.figure_inputs(eff, studies, cfg)

    def no_fit(*args, **kwargs):
        raise AssertionError("a figure fitted a model")

    for module, names in (
        (metareg, ["metareg", "permutest", "predict"]),
        (subgroups, ["subgroup_analysis"]),
        (influence, ["leave_one_out", "cumulative", "baujat", "influence_diagnostics"]),
        (smallstudy, ["trimfill", "regtest"]),
    ):
        for name in names:
            monkeypatch.setattr(module, name, no_fit)
    for row in data["figures"].to_dict("records"):
        assert figures.figure_object(row, tables, data, cfg).get_figwidth() > 0


def test_bubble_data_fits_the_line_without_the_permutation_test(synthetic, config, monkeypatch):
    """The bubble plots draw the fitted line and bands: the figure data fit the model once
    and leave the permutation test (reported by the meta-regression table) alone."""
    eff, studies = synthetic
    figs = run.figure_list(eff, studies, config)
    figs = figs[figs["kind"] == "bubble"].reset_index(drop=True)
    assert len(figs)
    permuted = []
    real = metareg.permutest
    monkeypatch.setattr(metareg, "permutest", lambda *a, **k: permuted.append(1) or real(*a, **k))
    data = run.figure_data(eff, studies, config, figs)
    assert not permuted
    monkeypatch.undo()
    for f in figs.itertuples():  # the line: the table's model (slope and intercept)
        table = sensitivity.meta_regression_table(eff, studies, config)
        rows = _rows(table, outcome=f.outcome, moderators=f.moderator)
        line = data["bubble_lines"][data["bubble_lines"]["stem"] == f.stem]
        slope = (line["pred"].iloc[-1] - line["pred"].iloc[0]) / (
            line["x"].iloc[-1] - line["x"].iloc[0]
        )
        np.testing.assert_allclose(slope, rows["estimate"].iloc[1], rtol=1e-9)
        assert rows["permutation_pvalue"].notna().all()


def test_default_data_runs_and_says_why(config):
    """The published trials: every table builds; nothing meaningless is printed."""
    cfg = load_config(DEFAULT_CONFIG)
    eff, _, _ = primary.prepare(cfg)
    _, st = primary.meta_analyses(eff, cfg)
    studies = read_studies(cfg["data"]["studies"])
    mr = sensitivity.meta_regression_table(st, studies, cfg)
    assert mr["estimate"].isna().all() and mr["notes"].str.contains("not fitted|k = 1").all()
    small = sensitivity.small_study_table(st, studies, cfg)
    assert not small["informative"].any() and (small["notes"] != "").all()
    targets = sensitivity.figure_targets(st, studies, cfg)
    assert ("subgroups", "hair_density", 12, "MD", "category") in targets
    assert not [t for t in targets if t[0] == "bubble" or t[1] == "hair_diameter"]


def test_figure_data_reuse_the_tables_fits(synthetic, config, monkeypatch):
    """With the tables' fits (sensitivity.Fits) the figure data fit no meta-regression,
    subgroup analysis or influence diagnostics again, and are exactly what they are without."""
    eff, studies = synthetic
    figs = run.figure_list(eff, studies, config)
    fits = sensitivity.Fits()
    tables = {
        name: sensitivity.table(name, eff, studies, config, fits=fits)
        for name in sensitivity.TABLES
    }
    for name, t in tables.items():
        pd.testing.assert_frame_equal(t, sensitivity.table(name, eff, studies, config))
    assert fits.moderator_fits and fits.subgroup_fits and fits.influence_frames
    fresh = run.figure_data(eff, studies, config, figs)

    def no_fit(*args, **kwargs):
        raise AssertionError("figure_data refitted a model the tables fitted")

    monkeypatch.setattr(metareg, "metareg", no_fit)
    monkeypatch.setattr(subgroups, "subgroup_analysis", no_fit)
    monkeypatch.setattr(influence, "influence_diagnostics", no_fit)
    reused = run.figure_data(eff, studies, config, figs, fits=fits)
    assert reused.keys() == fresh.keys()
    for name in fresh:
        pd.testing.assert_frame_equal(reused[name], fresh[name])
