"""GRADE summary of findings (analyses.grade), its overrides file (data.grade) and the
Bayesian table of a run (analyses.bayes)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hairtrial.analyses import bayes as abayes
from hairtrial.analyses import grade
from hairtrial.analyses.config import validate_config
from hairtrial.data.csvread import DataValidationError
from hairtrial.data.grade import read_grade
from hairtrial.models import bayes

CONFIG = validate_config(
    {
        "name": "grade_test",
        "data": {"arms": "data/arms.csv", "studies": "data/studies.csv"},
        "comparison": {"control": "minoxidil", "experimental": "minoxidil_microneedling"},
        "measures": ["MD", "SMD"],
        "meta_analysis": {"tau2_methods": ["REML"], "ci_methods": ["adhoc"]},
        "assumptions": {"change_sd_correlation": 0.5, "split_scalp_correlation": 0.5},
    }
)
OUTCOMES = pd.DataFrame(
    {
        "outcome": ["dens", "itch"],
        "label": ["Hair density", "Itch"],
        "kind": ["continuous", "binary"],
        "direction": ["benefit", "harm"],
        "unit": ["hairs/cm2", "RR"],
        "mid": [math.nan, 1.25],
        "mid_source": ["none", "GRADE"],
    }
)


def _meta(outcome, measure, k, est, lo, hi, i2, plo, phi):
    binary = measure in ("RR", "OR", "RD")  # primary: Mantel-Haenszel (binary defaults)
    model = ("MH", "z") if binary else ("REML", "adhoc")
    values = (outcome, 12, measure, *model, k, est, lo, hi, i2, plo, phi)
    names = "outcome week measure method ci_method k estimate ci_lower ci_upper I2 pi_lower"
    return dict(zip([*names.split(), "pi_upper"], values, strict=True))


def _effects(outcome, measure, studies, n=50):
    return pd.DataFrame(
        {
            "outcome": outcome, "week": 12, "measure": measure, "study": studies,
            "yi": 0.5, "vi": 0.04, "weight_pct": 100 / len(studies),
            "n_control": n, "n_experimental": n,
        }
    )  # fmt: skip


def _sof(meta_rows, effects, rob, overrides=None):
    studies = pd.DataFrame({"study": list(rob), "rob": list(rob.values())})
    return grade.summary_of_findings(
        pd.DataFrame(meta_rows), effects, studies, OUTCOMES, overrides, CONFIG
    )


def test_precise_consistent_low_risk_is_high_certainty():
    meta = [_meta("dens", "SMD", 3, 0.6, 0.4, 0.8, 10, 0.3, 0.9)]
    eff = _effects("dens", "SMD", ["a", "b", "c"], n=200)
    row = _sof(meta, eff, {"a": "low", "b": "low", "c": "low"}).iloc[0]
    assert row["certainty"] == "high"
    assert row["statement"] == "Adding microneedling to minoxidil increases hair density."


def test_unassessed_risk_of_bias_is_a_serious_concern():
    meta = [_meta("dens", "SMD", 3, 0.6, 0.4, 0.8, 10, 0.3, 0.9)]
    eff = _effects("dens", "SMD", ["a", "b", "c"], n=200)
    row = _sof(meta, eff, {"a": "", "b": "", "c": ""}).iloc[0]
    assert row["risk_of_bias"] == "serious"
    assert "not assessed" in row["risk_of_bias_reason"]
    assert row["certainty"] == "moderate"
    assert "probably increases" in row["statement"]


def test_published_case_is_very_low_with_every_reason():
    # hair density, week 12 of the published data (SMD row; MD has no MID)
    meta = [
        _meta("dens", "MD", 3, 29.99, -52.5, 112.5, 86.9, -119.6, 179.6),
        _meta("dens", "SMD", 3, 0.803, -0.229, 1.835, 59.0, -0.908, 2.515),
    ]
    eff = pd.concat([_effects("dens", m, ["a", "b", "c"], n=34) for m in ("MD", "SMD")])
    row = _sof(meta, eff, {"a": "", "b": "", "c": ""}).iloc[0]
    assert row["measure"] == "MD" and row["judged_on"] == "SMD"
    assert (row["inconsistency"], row["imprecision"]) == ("serious", "very serious")
    assert row["certainty"] == "very low" and row["downgrades"] == 4
    for word in ("Risk of bias (−1", "Inconsistency (−1", "Imprecision (−2"):
        assert word in row["reasons"]
    assert row["statement"].startswith("The evidence is very uncertain")
    assert row["publication_bias_reason"].startswith("not assessable")


def test_person_overrides_rule_and_is_marked():
    meta = [_meta("dens", "SMD", 3, 0.6, 0.4, 0.8, 10, 0.3, 0.9)]
    eff = _effects("dens", "SMD", ["a", "b", "c"], n=200)
    ov = pd.DataFrame(
        {"outcome": ["dens"], "week": [math.nan], "domain": ["indirectness"],
         "judgement": ["very serious"], "reason": ["surrogate outcome"], "line": [2]}
    )  # fmt: skip
    row = _sof(meta, eff, {"a": "low", "b": "low", "c": "low"}, ov).iloc[0]
    assert row["indirectness"] == "very serious" and row["indirectness_by"] == "person"
    assert row["risk_of_bias_by"] == "rule"
    assert row["certainty"] == "low"
    assert "a person's judgement" in row["reasons"]


def test_binary_harm_absolute_effect_per_1000():
    meta = [_meta("itch", "RR", 2, math.log(2.0), math.log(1.5), math.log(3.0), 0, 0.1, 1.2)]
    eff = _effects("itch", "RR", ["a", "b"], n=1000)
    eff["events_control"] = [100, 100]
    row = _sof(meta, eff, {"a": "low", "b": "low"}).iloc[0]
    assert row["relative_effect"] == "RR 2.00 (1.50 to 3.00)"
    assert row["absolute_effect"].startswith("100 per 1,000 with control; 100 more per 1,000")
    assert "(from 50 more to 200 more)" in row["absolute_effect"]


def test_binary_absolute_effect_at_the_median_control_risk():
    """The summary of findings and binary_absolute_effects.csv take one assumed control risk:
    the median of the trials' control risks (here 0.05, 0.10, 0.40 with 2,000, 100 and 100
    participants: the pooled risk would be 0.07)."""
    meta = [_meta("itch", "RR", 3, math.log(2.0), math.log(1.5), math.log(3.0), 0, 0.1, 1.2)]
    eff = _effects("itch", "RR", ["a", "b", "c"], n=100)
    eff["n_control"] = [2000, 100, 100]
    eff["events_control"] = [100, 10, 40]
    row = _sof(meta, eff, {"a": "low", "b": "low", "c": "low"}).iloc[0]
    assert row["absolute_effect"].startswith("100 per 1,000 with control; 100 more per 1,000")
    assert row["control_risk"] == pytest.approx(0.10, rel=1e-12)
    # a ratio whose risk would pass 1 is capped as in the absolute-effects table
    meta = [_meta("itch", "RR", 3, math.log(2.0), math.log(1.5), math.log(12.0), 0, 0.1, 1.2)]
    row = _sof(meta, eff, {"a": "low", "b": "low", "c": "low"}).iloc[0]
    assert "to 900 more)" in row["absolute_effect"]


def test_a_single_trial_shows_its_own_result():
    """k = 1: Mantel-Haenszel is undefined with a zero cell and an ad hoc CI has no degrees of
    freedom; the summary of findings shows the trial's own estimate and CI (as the
    benefit-and-harm overview does), and says an effect cannot be estimated only when the
    trial has none (no events in either arm)."""
    nan = math.nan
    meta = [_meta("itch", "RR", 1, nan, nan, nan, nan, nan, nan)]
    eff = _effects("itch", "RR", ["a"], n=40)
    eff["events_control"] = [0]
    eff["yi"], eff["ci_lower"], eff["ci_upper"] = math.log(2.85), math.log(0.12), math.log(68.0)
    eff["correction"] = "0.5 added to each cell"
    row = _sof(meta, eff, {"a": "low"}).iloc[0]
    assert row["relative_effect"] == "RR 2.85 (0.12 to 68.00)"
    assert row["estimate"] == pytest.approx(math.log(2.85))
    assert "cannot be estimated" not in row["statement"]
    # imprecision is judged on the interval shown, as for any other CI
    assert row["imprecision_reason"].startswith("95% CI −2.12 to 4.22 reaches beyond both MIDs")
    assert row["imprecision"] == "very serious"
    # a double-zero trial: no estimate of its own either
    eff[["yi", "ci_lower", "ci_upper"]] = nan
    row = _sof(meta, eff, {"a": "low"}).iloc[0]
    assert row["relative_effect"] == "not estimable"
    assert "cannot be estimated" in row["statement"]
    # continuous: the model's estimate, the trial's own CI
    meta = [_meta("dens", "MD", 1, 12.0, nan, nan, nan, nan, nan)]
    eff = _effects("dens", "MD", ["a"], n=18)
    eff["yi"], eff["ci_lower"], eff["ci_upper"] = 12.0, 4.4, 19.6
    row = _sof(meta, eff, {"a": "low"}).iloc[0]
    assert (row["ci_lower"], row["ci_upper"]) == (4.4, 19.6)
    assert "(4.4 higher to 19.6 higher)" in row["absolute_effect"]
    # the trial's CI excludes no effect; 36 participants < the OIS: serious, once
    assert row["imprecision"] == "serious"
    assert row["imprecision_reason"].startswith("95% CI 4.4 to 19.6;")


def test_no_control_events_absolute_effect_from_the_risk_difference():
    """Control risk 0: any ratio gives "0 more per 1,000"; the summary of findings gives the
    absolute effect by the risk difference instead (4/34 vs 0/34: 118 more per 1,000)."""
    nan = math.nan
    meta = [
        _meta("itch", "RR", 1, math.log(9.0), math.log(0.5), math.log(161.0), nan, nan, nan),
        _meta("itch", "RD", 1, 4 / 34, -0.0034, 0.2319, nan, nan, nan),
    ]
    rr = _effects("itch", "RR", ["a"], n=34)
    rd = _effects("itch", "RD", ["a"], n=34)
    rd["yi"], rd["ci_lower"], rd["ci_upper"] = 4 / 34, -0.0034, 0.2319
    eff = pd.concat([rr, rd], ignore_index=True)
    eff["events_control"], eff["events_experimental"] = 0, 4
    cfg = {**CONFIG, "binary": {**CONFIG.get("binary", {}), "measures": ["RR", "RD"]}}
    studies = pd.DataFrame({"study": ["a"], "rob": ["low"]})
    row = grade.summary_of_findings(pd.DataFrame(meta), eff, studies, OUTCOMES, None, cfg)
    row = row.iloc[0]
    assert row["measure"] == "RR"
    assert "0 more per 1,000" not in row["absolute_effect"]
    assert row["absolute_effect"].endswith(
        "by the risk difference 118 more per 1,000 (from 3 fewer to 232 more)"
    )


def test_ois():
    assert grade.optimal_information_size(smd=0.2) == pytest.approx(784.9, abs=0.1)
    assert grade.optimal_information_size() == 400


def test_grade_reader_rejects_with_location(tmp_path):
    p = tmp_path / "grade.csv"
    rows = (
        "outcome,week,domain,judgement,reason\n"
        "dens,12,imprecision,serious,few\n"
        "dens,12,imprecision,serious,twice\n"
        "nope,,risk_of_bias,serious,x\n"
    )
    p.write_text(rows + "dens,,cleverness,serious,x\n")  # a cell problem is reported first
    with pytest.raises(DataValidationError) as err:
        read_grade(p, OUTCOMES)
    assert "line 5, column 'domain': value 'cleverness'" in str(err.value)
    p.write_text(rows)
    with pytest.raises(DataValidationError) as err:
        read_grade(p, OUTCOMES)
    text = str(err.value)
    assert "line 3, column 'domain'" in text and "judged twice" in text
    assert "line 4, column 'outcome': value 'nope'" in text


def test_grade_reader_missing_file_is_no_overrides(tmp_path):
    assert read_grade(tmp_path / "none.csv").empty


@settings(max_examples=40, deadline=None)
@given(
    reason=st.text(min_size=0, max_size=12).filter(lambda s: "\n" not in s and "\r" not in s),
    judgement=st.sampled_from(["not serious", "serious", "very serious", "bad", ""]),
)
def test_grade_reader_fuzz(tmp_path_factory, reason, judgement):
    p = tmp_path_factory.mktemp("g") / "grade.csv"
    pd.DataFrame(
        {"outcome": ["dens"], "week": [12], "domain": ["imprecision"], "judgement": [judgement],
         "reason": [reason]}
    ).to_csv(p, index=False)  # fmt: skip
    ok = judgement in ("not serious", "serious", "very serious") and reason.strip() != ""
    try:
        out = read_grade(p, OUTCOMES)
    except DataValidationError as err:
        assert not ok, str(err)
        assert "grade.csv, line 2" in str(err)
    else:
        assert ok and out.loc[0, "judgement"] == judgement


def test_bayes_table_columns_and_values():
    y, v = np.array([1.17, 0.42, 0.99]), np.array([0.130, 0.041, 0.066])
    eff = pd.DataFrame(
        {"outcome": "dens", "week": 12, "measure": "SMD", "study": ["a", "b", "c"],
         "yi": y, "vi": v, "n_control": [18, 50, 34], "n_experimental": [18, 50, 34]}
    )  # fmt: skip
    out = abayes.bayes_tables(eff, OUTCOMES, CONFIG, next_trial_rows=False)
    b = out["bayes"]
    assert list(b.columns) == [
        "outcome", "week", "measure", "prior", "k", "tau_prior_scale", "mu_mean", "mu_sd",
        "mu_median", "mu_ci_lower", "mu_ci_upper", "tau_median", "tau_ci_upper", "pred_lower",
        "pred_upper", "p_positive", "p_mid", "p_minus_mid",
    ]  # fmt: skip
    ref = bayes.fit(y, np.sqrt(v), bayes.HalfNormal(0.5))
    assert b.loc[0, "p_mid"] == pytest.approx(float(ref.prob_mu_greater(0.2)), rel=1e-12)
    assert b.loc[0, "p_minus_mid"] == pytest.approx(float(ref.prob_mu_less(-0.2)), rel=1e-12)
    sens = out["bayes_sensitivity"]
    assert sens["primary"].sum() == 1
    fixed = sens[sens["prior_family"] == "fixed"].iloc[0]
    w = 1 / v
    assert fixed["mu_mean"] == pytest.approx(float((w * y).sum() / w.sum()), rel=1e-12)


def test_mid_thresholds_for_ratio_and_difference():
    up, lo, _ = abayes.mid_thresholds("RR", {"unit": "RR", "mid": 1.25}, 0.2)
    assert (up, lo) == (pytest.approx(math.log(1.25)), pytest.approx(math.log(0.75)))
    up, lo, _ = abayes.mid_thresholds("OR", {"unit": "RR", "mid": 1.25}, 0.2)
    assert math.isnan(up) and math.isnan(lo)  # an RR MID says nothing on the OR scale
    up, lo, _ = abayes.mid_thresholds("MD", {"unit": "hairs/cm2", "mid": 10.0}, 0.2)
    assert (up, lo) == (10.0, -10.0)


def test_grade_path_that_is_a_directory_is_reported(tmp_path):
    # a missing file means no overrides; a directory is a mistake, named with its path
    from hairtrial.data.grade import read_grade
    from hairtrial.data.validate import DataValidationError

    assert read_grade(tmp_path / "absent.csv").empty
    with pytest.raises(DataValidationError, match="is a directory"):
        read_grade(tmp_path)
