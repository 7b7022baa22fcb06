"""The workflow's arm-based model agrees with metafor rma.mv on the same arm rows.

tests/reference/arm_model.R rebuilds the arm-level rows by hand in R (n split, unit
conversion, SDs from p-values / SEs / CIs) and fits rma.mv with the default arm-model
specification; nothing here is computed by the code under test.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hairtrial.analyses import arm_model

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = pd.read_csv(REFERENCE / "arm_model.csv")


def _ref(dataset: str) -> dict[tuple[str, str], float]:
    sel = REF[REF.dataset == dataset]
    return {(w, n): float(v) for w, n, v in zip(sel.what, sel.name, sel.value, strict=True)}


@pytest.fixture(scope="module")
def published():
    from conftest import _default_config

    return arm_model.arm_model_tables(_default_config())


@pytest.fixture(scope="module")
def multiweek():
    from conftest import _default_config

    cfg = _default_config()
    cfg["data"] = {
        "arms": str(REFERENCE / "pipeline_multiweek_arms.csv"),
        "studies": str(REFERENCE / "pipeline_multiweek_studies.csv"),
    }
    return arm_model.arm_model_tables(cfg)


@pytest.mark.parametrize("dataset", ["published", "multiweek"])
def test_coefficients_match_metafor(dataset, published, multiweek):
    tables = published if dataset == "published" else multiweek
    ref = _ref(dataset)
    coefs = tables["arm_model_coefficients"]
    coefs = coefs[coefs.outcome == "hair_density"].set_index("term")
    names = sorted({n for (w, n) in ref if w == "estimate"})
    assert sorted(coefs.index) == names
    for term in names:
        for col in ("estimate", "se", "df", "ci_lower", "ci_upper"):
            np.testing.assert_allclose(
                coefs.at[term, col], ref[(col, term)], rtol=1e-5, err_msg=f"{term} {col}"
            )
        # p-values compared on the log scale (see test_multilevel.py)
        np.testing.assert_allclose(
            np.log(coefs.at[term, "pvalue"]), np.log(ref[("pvalue", term)]), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("dataset", ["published", "multiweek"])
def test_variance_components_and_loglik_match_metafor(dataset, published, multiweek):
    tables = published if dataset == "published" else multiweek
    ref = _ref(dataset)
    var = tables["arm_model_variance"]
    var = var[var.outcome == "hair_density"].set_index("component")
    scale = max(ref[("sigma2", "study")], ref[("sigma2", "study/arm")])
    np.testing.assert_allclose(
        var.at["sigma2.1 (study)", "estimate"], ref[("sigma2", "study")], rtol=1e-5,
        atol=1e-6 * scale,
    )  # fmt: skip
    np.testing.assert_allclose(
        var.at["sigma2.2 (study/arm)", "estimate"], ref[("sigma2", "study/arm")], rtol=1e-5
    )
    fit = tables["arm_model_fit"].set_index("outcome")
    assert fit.at["hair_density", "logLik"] >= ref[("fit", "logLik")] - 1e-9
    np.testing.assert_allclose(fit.at["hair_density", "logLik"], ref[("fit", "logLik")], rtol=1e-7)


def test_contrasts_are_the_difference_coefficients(multiweek):
    ref = _ref("multiweek")
    ct = multiweek["arm_model_contrasts"]
    diff = ct[ct.contrast == "experimental - control"].set_index("week")
    for week in (4, 8, 12, 24):
        term = f"C(week){week}:experimental"
        np.testing.assert_allclose(diff.at[week, "estimate"], ref[("estimate", term)], rtol=1e-5)
        np.testing.assert_allclose(diff.at[week, "se"], ref[("se", term)], rtol=1e-5)
    change = ct[ct.contrast.str.startswith("change of difference")].set_index("week")
    np.testing.assert_allclose(
        change.at[24, "estimate"],
        ref[("estimate", "C(week)24:experimental")] - ref[("estimate", "C(week)4:experimental")],
        rtol=1e-5,
    )


def test_means_add_up(multiweek):
    m = multiweek["arm_model_means"].set_index(["treatment", "week"])
    ref = _ref("multiweek")
    for w in (4, 8, 12, 24):
        exp = ref[("estimate", f"C(week){w}")] + ref[("estimate", f"C(week){w}:experimental")]
        np.testing.assert_allclose(m.at[("experimental", w), "estimate"], exp, rtol=1e-5)


def test_two_arm_single_week_equals_contrast_level_reml(published):
    """With two arms per trial and one week, ~ 1 | study/arm is the contrast-level
    random-effects model: arm variance = tau2 / 2 (metafor rma.uni, pipeline_published.csv)."""
    ref = pd.read_csv(REFERENCE / "pipeline_published.csv", keep_default_na=False)

    def q(name):
        sel = ref[(ref.measure == "MD") & (ref.method == "REML") & (ref.quantity == name)]
        return float(sel.value.iloc[0])

    ct = published["arm_model_contrasts"].iloc[0]
    np.testing.assert_allclose(ct["estimate"], q("estimate"), rtol=1e-5)
    np.testing.assert_allclose(ct["se"], q("se"), rtol=1e-5)
    var = published["arm_model_variance"].set_index("component")
    np.testing.assert_allclose(var.at["sigma2.2 (study/arm)", "estimate"], q("tau2") / 2, rtol=1e-5)


def test_unfittable_outcome_is_reported(published):
    fit = published["arm_model_fit"].set_index("outcome")
    assert not fit.at["hair_diameter", "converged"]
    assert fit.at["hair_diameter", "notes"].startswith("not fitted")
    assert "hair_diameter" not in set(published["arm_model_coefficients"].outcome)


def test_not_modelled_inputs_are_named(published):
    fit = published["arm_model_fit"].set_index("outcome")
    # the single-arm level row of pmid36214061 (hair_count) is not in any modelled outcome
    assert "pmid36214061" not in fit.at["hair_density", "notes"]


def test_cr2_option_matches_clubsandwich():
    from conftest import _default_config

    cfg = _default_config()
    cfg["data"] = {
        "arms": str(REFERENCE / "pipeline_multiweek_arms.csv"),
        "studies": str(REFERENCE / "pipeline_multiweek_studies.csv"),
    }
    cfg["arm_model"] = {**cfg["arm_model"], "robust": "CR2"}
    tables = arm_model.arm_model_tables(cfg)
    ref = _ref("multiweek_cr2")
    coefs = tables["arm_model_coefficients"].set_index("term")
    names = sorted({n for (w, n) in ref})
    assert sorted(coefs.index) == names
    for term in names:
        for col in ("se", "df", "pvalue"):
            np.testing.assert_allclose(
                coefs.at[term, col], ref[(col, term)], rtol=1e-5, err_msg=f"{term} {col}"
            )
    assert "CR2" in tables["arm_model_fit"]["notes"].iloc[0]
