"""Binary outcomes in the workflow (issue 10): hairtrial.analyses.binary against metafor 3.8.

Reference values: tests/reference/metafor_binary_workflow.R (weights, every inverse-variance
model with its prediction interval and tau² CI, the GLMM prediction interval) and
metafor_binary.R (the 2x2 tables and the three-arm trial); the tests never call R.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hairtrial.analyses import binary as B
from hairtrial.analyses.config import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference"
INPUTS = pd.read_csv(REF / "metafor_binary_inputs.csv")
WF = pd.read_csv(REF / "metafor_binary_workflow.csv", keep_default_na=False, na_values=["NA"])
ARMS = pd.read_csv(REF / "metafor_binary_arms.csv")

SETTINGS = {"add": 0.5, "to": "only0", "drop00": True, "cc": "constant", "level": 0.95}
QUANTITIES = {  # metafor name -> binary_meta_analysis column
    "beta": "estimate", "se": "se", "ci.lb": "ci_lower", "ci.ub": "ci_upper", "pval": "pvalue",
    "tau2": "tau2", "I2": "I2", "QE": "Q", "QEp": "Q_pvalue", "pi.lb": "pi_lower",
    "pi.ub": "pi_upper", "tau2.lb": "tau2_ci_lower", "tau2.ub": "tau2_ci_upper", "k": "k",
}  # fmt: skip


def _tab(dataset: str) -> pd.DataFrame:
    d = INPUTS[INPUTS["dataset"] == dataset].reset_index(drop=True)
    return d.assign(provenance="reported", flags="")


def _close(got: float, want: float, rel: float, what: str) -> None:
    if math.isnan(want):
        assert math.isnan(got), f"{what}: {got} (metafor NA)"
        return
    assert got == pytest.approx(want, rel=rel, abs=rel * 1e-3), what


IV_CASES = sorted(
    {tuple(r) for r in WF.loc[WF["model"] == "IV", ["dataset", "measure", "method", "test"]].values}
)


@pytest.mark.parametrize(("dataset", "measure", "method", "test"), IV_CASES)
def test_inverse_variance_rows_match_metafor(dataset, measure, method, test):
    ref = WF[(WF.dataset == dataset) & (WF.model == "IV") & (WF.measure == measure)
             & (WF.method == method) & (WF.test == test)]  # fmt: skip
    row, _ = B.fit_model(_tab(dataset), measure, method, test, SETTINGS)
    for _, r in ref[ref["quantity"] != "weight"].iterrows():
        col = QUANTITIES[r["quantity"]]
        want = float(r["value"])
        if col == "I2" and method == "FE":
            continue  # metafor's FE I2 uses the FE Q; the table reports the model's own
        _close(float(row[col]), want, 1e-6, f"{dataset} {measure} {method} {test} {col}")
    if measure in ("RR", "OR"):
        assert row["ratio"] == pytest.approx(math.exp(row["estimate"]), rel=1e-12)
        assert row["ratio_ci_lower"] == pytest.approx(math.exp(row["ci_lower"]), rel=1e-12)
    else:
        assert math.isnan(row["ratio"])


@pytest.mark.parametrize("dataset", sorted(set(WF["dataset"])))
@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
@pytest.mark.parametrize("model", ["MH", "IV"])
def test_primary_weights_match_metafor(dataset, measure, model):
    """weight_pct of binary_study_effects is weights() of the primary model."""
    tab = _tab(dataset).assign(outcome="o", week=12)
    method, test = ("MH", "z") if model == "MH" else ("REML", "knha")
    cfg = {"binary": {"measures": [measure], "methods": [method], "ci_methods": [test]}}
    st, _, _ = B.analyse(tab, cfg)
    ref = WF[(WF.dataset == dataset) & (WF.model == model) & (WF.measure == measure)
             & (WF.quantity == "weight") & (WF.method == method) & (WF.test == test)]  # fmt: skip
    assert len(ref) == len(tab)
    got = st.set_index("study")["weight_pct"]
    for study, value in zip(ref["study"], ref["value"].astype(float), strict=True):
        _close(float(got[study]), value, 1e-9, f"{dataset} {measure} {model} {study}")


@pytest.mark.parametrize("dataset", sorted(set(WF.loc[WF.model == "PETO", "dataset"])))
def test_peto_weights_match_metafor(dataset):
    d = _tab(dataset)
    ref = WF[(WF.dataset == dataset) & (WF.model == "PETO")]["value"].astype(float).to_numpy()
    from hairtrial.models.binary import pool_weights

    got = pool_weights(d.ai, d.n1i, d.ci, d.n2i, model="Peto", measure="OR")
    np.testing.assert_allclose(got, ref, rtol=1e-9)


@pytest.mark.parametrize("dataset", ["sparse6", "rare8"])
def test_glmm_prediction_interval_matches_metafor(dataset):
    row, _ = B.fit_model(_tab(dataset), "OR", "GLMM", "z", SETTINGS)
    ref = WF[(WF.dataset == dataset) & (WF.model == "GLMM")].set_index("quantity")["value"]
    _close(row["pi_lower"], float(ref["pi.lb"]), 1e-4, "pi.lb")
    _close(row["pi_upper"], float(ref["pi.ub"]), 1e-4, "pi.ub")


# ---------------------------------------------------------------------------------------------
# from events.csv to the tables
# ---------------------------------------------------------------------------------------------

EV_HEADER = "study,arm,treatment,week,outcome,events,percent,n,n_total,source,flags,note\n"
ST_HEADER = "study,year,first_author,design,primary,n_randomised,n_arms\n"


def _write_inputs(tmp_path: Path, rows: list[str], studies: list[str]) -> dict:
    (tmp_path / "events.csv").write_text(EV_HEADER + "".join(rows), encoding="utf-8")
    (tmp_path / "studies.csv").write_text(ST_HEADER + "".join(studies), encoding="utf-8")
    (tmp_path / "outcomes.csv").write_text(
        "outcome,label,kind,direction,unit,mid,mid_source\n"
        "resp,Responder,binary,benefit,RR,,\nitch,Itch,binary,harm,RR,,\n",
        encoding="utf-8",
    )
    cfg = load_config(ROOT / "config" / "config.yaml")
    cfg["data"] = {
        "arms": None,
        "events": str(tmp_path / "events.csv"),
        "outcomes": str(tmp_path / "outcomes.csv"),
        "studies": str(tmp_path / "studies.csv"),
    }
    cfg["comparison"] = {"control": "placebo", "experimental": "drug"}
    return validate_config(cfg)


@pytest.fixture(scope="module")
def three_arm_config(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("binary")
    rows = [
        f"{t},{t}{i},{tr},12,resp,{e},,{n},,,,\n"
        for i, (t, tr, e, n) in enumerate(ARMS[["trial", "treatment", "events", "n"]].values)
    ]
    # a double-zero trial for itch, and a trial whose events come from a percentage
    rows += ["A,A0,drug,12,itch,0,,30,,,,\n", "A,A2,placebo,12,itch,0,,30,,,,\n",
             "B,B3,drug,12,itch,,10,,90,,,\n", "B,B4,placebo,12,itch,1,,,90,,,\n"]  # fmt: skip
    studies = ["A,2001,Alpha A,parallel,yes,91,3\n", "B,2002,Beta B,parallel,yes,89,2\n",
               "C,2003,Gamma C,parallel,yes,57,2\n"]  # fmt: skip
    return _write_inputs(tmp_path, rows, studies)


@pytest.fixture(scope="module")
def three_arm(three_arm_config):
    return B.binary_analyses(three_arm_config)


def test_tables_have_exactly_the_issue_columns(three_arm):
    out = three_arm
    assert set(out.tables) == set(B.TABLES)
    assert list(out.tables["binary_study_effects"].columns) == [
        "outcome", "week", "measure", "study", "events_experimental", "n_experimental",
        "events_control", "n_control", "yi", "vi", "ci_lower", "ci_upper", "weight_pct",
        "correction", "provenance",
    ]  # fmt: skip
    assert list(out.tables["binary_meta_analysis"].columns) == [
        "outcome", "week", "measure", "method", "ci_method", "k", "estimate", "se", "ci_lower",
        "ci_upper", "pvalue", "pi_lower", "pi_upper", "tau2", "tau2_ci_lower", "tau2_ci_upper",
        "I2", "Q", "Q_pvalue", "ratio", "ratio_ci_lower", "ratio_ci_upper", "notes",
    ]  # fmt: skip
    meta = out.tables["binary_meta_analysis"]
    count = meta[meta["method"].isin(["MH", "Peto", "GLMM"])]
    assert set(count["ci_method"]) == {"z"}
    assert set(meta.loc[meta["method"].isin(["Peto", "GLMM"]), "measure"]) == {"OR"}


def test_three_arm_trial_counts_the_shared_control_once(three_arm):
    out = three_arm
    st = out.tables["binary_study_effects"]
    a = st[(st.study == "A") & (st.outcome == "resp")]
    assert set(a["n_control"]) == {30} and set(a["n_experimental"]) == {61}
    assert set(a["events_experimental"]) == {15} and set(a["events_control"]) == {2}
    assert all("combined_arms" in p for p in a["provenance"])
    # the pooled MH RR of the three trials is metafor's (threearm set of metafor_binary.R)
    ref = pd.read_csv(REF / "metafor_binary.csv")
    want = ref[(ref.dataset == "threearm") & (ref.model == "MH") & (ref.measure == "RR")]
    want = want.set_index("quantity")["value"].astype(float)
    meta = out.tables["binary_meta_analysis"]
    got = meta[(meta.outcome == "resp") & (meta.measure == "RR") & (meta.method == "MH")].iloc[0]
    assert got["estimate"] == pytest.approx(want["beta"], rel=1e-9)
    assert got["se"] == pytest.approx(want["se"], rel=1e-9)
    assert got["k"] == 3


def test_double_zero_trial_out_of_ratios_kept_for_rd_with_notes(three_arm):
    out = three_arm
    st = out.tables["binary_study_effects"]
    a = st[(st.study == "A") & (st.outcome == "itch")].set_index("measure")
    assert math.isnan(a.loc["RR", "yi"]) and math.isnan(a.loc["OR", "yi"])
    assert a.loc["RR", "correction"] == "excluded: double zero"
    assert a.loc["RD", "yi"] == 0.0 and a.loc["RD", "correction"] != "excluded: double zero"
    meta = out.tables["binary_meta_analysis"]
    itch = meta[meta.outcome == "itch"]
    for measure, text in (("RR", "left out of RR"), ("RD", "kept for RD")):
        notes = itch.loc[itch.measure == measure, "notes"]
        assert notes.str.contains(text).all() and notes.str.contains(": A").all()
    k = itch[itch.method == "REML"].groupby("measure")["k"].first()
    assert k["RD"] == 2 and k["RR"] == 1  # B only for the ratios (MH's k counts tables)


def test_converted_counts_keep_their_provenance(three_arm):
    out = three_arm
    st = out.tables["binary_study_effects"]
    b = st[(st.study == "B") & (st.outcome == "itch")]
    assert b["events_experimental"].tolist() == [5, 5, 5]  # 10% of 45 = 4.5, halves up
    assert b["n_experimental"].tolist() == [45, 45, 45]
    assert all("events_from_percent" in p and "n_split_equally" in p for p in b["provenance"])
    quality = out.tables["binary_data_quality"]
    assert {"events", "n"} <= set(quality.loc[quality.study == "B", "quantity"])
    rob = out.tables["binary_robustness"]
    r = rob[(rob.outcome == "itch") & (rob.scenario == "Excluding trials with converted counts")]
    assert (r["k"] == 1).all() and (r["studies"] == "A").all()  # B's counts were converted
    none = rob[(rob.outcome == "resp") & (rob.scenario == "Excluding trials with converted counts")]
    assert none["notes"].str.contains("same as primary").all()


def test_single_trial_and_boundary_cases_are_reported(three_arm):
    out = three_arm
    meta = out.tables["binary_meta_analysis"]
    itch_rr = meta[(meta.outcome == "itch") & (meta.measure == "RR")]
    assert itch_rr["notes"].str.contains("single trial").all()
    itch_rd = meta[(meta.outcome == "itch") & (meta.measure == "RD")]
    assert not itch_rd["notes"].str.contains("single trial").any()
    resp = meta[(meta.outcome == "resp") & (meta.method == "REML") & (meta.ci_method == "z")]
    assert (resp["k"] == 3).all()


def test_absolute_effects_and_nnt_follow_the_direction(three_arm):
    out = three_arm
    ab = out.tables["binary_absolute_effects"]
    rd = ab[(ab.outcome == "resp") & (ab.measure == "RD")].iloc[0]
    assert rd["nnt"].startswith("NNTB")  # responders: more events is benefit
    assert rd["control_events"] == 2 + 5 + 0 and rd["control_n"] == 30 + 44 + 29
    rr = ab[(ab.outcome == "resp") & (ab.measure == "RR")].iloc[0]
    meta = out.tables["binary_meta_analysis"]
    p = meta[(meta.outcome == "resp") & (meta.measure == "RR") & (meta.method == "MH")].iloc[0]
    # GRADE's assumed risk: the median of the trials' control risks (2/30, 5/44, 0/29), not
    # the pooled 7/103 - the summary of findings uses the same (test_grade)
    cr = 2 / 30
    assert rr["control_per_1000"] == pytest.approx(1000 * cr, rel=1e-12)
    assert rr["experimental_per_1000"] == pytest.approx(1000 * cr * p["ratio"], rel=1e-12)


def test_binary_only_config_and_neither(tmp_path, three_arm_config):
    assert three_arm_config["data"]["arms"] is None
    cfg = dict(three_arm_config)
    cfg["data"] = {**cfg["data"], "events": None}
    with pytest.raises(ConfigError, match="at least one of 'data.arms'"):
        validate_config(cfg)


def test_primary_model_is_the_first_that_applies():
    cfg = {"binary": {"methods": ["GLMM", "Peto", "MH"], "ci_methods": ["z"]}}
    assert B.primary_method(cfg, "OR") == ("GLMM", "z")
    assert B.primary_method(cfg, "RR") == ("MH", "z")


def test_default_data_runs_and_names_what_is_not_used(default_config):
    out = B.binary_analyses(default_config)
    st = out.tables["binary_study_effects"]
    assert {"dhurat2013", "kumar2018", "liang2022", "pmid36214061"} == set(st["study"])
    liang = st[(st.study == "liang2022") & (st.outcome == "shedding_worsened")]
    # liang2022 has a third arm (minoxidil + spironolactone), not in the comparison
    assert set(liang["n_experimental"]) == {40} and set(liang["n_control"]) == {38}
    excluded = " ".join(out.tables["binary_excluded"]["note"])
    assert "pmid32516497" in excluded
    figs = out.derived["binary_figures"]
    assert figs["stem"].is_unique and set(figs["kind"]) >= {"binary_forest", "binary_robustness"}
