"""The models layer's shared pieces: R-style formulas on formulaic, the heterogeneity block and
summary_frame(), and the arm model fitted without a config."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hairtrial.analyses import arm_model as arm_analysis
from hairtrial.models import arm_model, metareg, subgroups, univariate
from hairtrial.models.formula import design_matrix
from hairtrial.models.heterogeneity import HETEROGENEITY_COLUMNS, Heterogeneity

Y = np.array([0.10, 0.32, 0.21, 0.63, 0.48, -0.05])
V = np.array([0.010, 0.020, 0.015, 0.030, 0.020, 0.025])


# ---------------------------------------------------------------------------------------------
# formulas: R's coding and names
# ---------------------------------------------------------------------------------------------
def test_formula_levels_as_r_prints_them() -> None:
    d = pd.DataFrame(
        {
            "g": [True, False, True, False],
            "w": [4.0, 8.0, 8.0, 12.5],
            "dev": pd.Categorical(["pen", "roller", "pen", "roller"], ["roller", "pen", "x"]),
            "x": [1.0, 2.0, 3.0, 5.0],
        }
    )
    assert design_matrix("~ g", d)[1] == ["intrcpt", "gTRUE"]
    assert design_matrix("~ C(w) - 1", d)[1] == ["C(w)4", "C(w)8", "C(w)12.5"]
    assert design_matrix("~ dev", d)[1] == ["intrcpt", "devpen"]  # category order, unused dropped
    X, names = design_matrix("~ I(x - 1)", d)
    assert names == ["intrcpt", "I(x - 1)"]
    np.testing.assert_array_equal(X[:, 1], d["x"] - 1)


def test_formula_rows_keep_their_order_with_any_index() -> None:
    d = pd.DataFrame({"t": ["b", "a", "b"], "x": [1.0, 2.0, 3.0]}, index=[7, 3, 5])
    X, names = design_matrix("~ t + x", d)
    assert names == ["intrcpt", "tb", "x"]
    np.testing.assert_array_equal(X, [[1, 1, 1], [1, 0, 2], [1, 1, 3]])


def test_formula_errors() -> None:
    d = pd.DataFrame({"t": ["b", None, "a"], "x": [1.0, np.nan, 3.0], "other": [None] * 3})
    with pytest.raises(ValueError, match="missing values in 't'"):
        design_matrix("~ t", d)
    with pytest.raises(ValueError, match="non-finite"):
        design_matrix("~ x", d)
    with pytest.raises(ValueError, match="unknown level"):
        design_matrix("~ t", d.iloc[[0, 2]], levels={"t": ["b"]})
    assert design_matrix("~ 1", d)[1] == ["intrcpt"]  # unused columns may hold anything


def test_metareg_design_names_follow_r() -> None:
    data = pd.DataFrame({"female": [True, False, True, False, True, False]})
    r = metareg.metareg(Y, V, data=data, moderators=["female"])
    assert r.terms == ("intrcpt", "femaleTRUE")
    new = r.design.apply(pd.DataFrame({"female": [False, True]}))
    np.testing.assert_array_equal(new.to_numpy(), [[1, 0], [1, 1]])


# ---------------------------------------------------------------------------------------------
# heterogeneity block and summary_frame()
# ---------------------------------------------------------------------------------------------
def test_one_heterogeneity_block() -> None:
    res = univariate.fit(Y, V, method="REML")
    assert isinstance(res.heterogeneity, Heterogeneity)
    h = res.heterogeneity.as_dict()
    assert tuple(h) == HETEROGENEITY_COLUMNS
    assert (res.tau2, res.I2, res.Q, res.Q_df) == (h["tau2"], h["I2"], h["Q"], h["Q_df"])
    reg = metareg.metareg(Y, V, data=pd.DataFrame({"x": np.arange(6.0)}), moderators=["x"])
    assert isinstance(reg.heterogeneity, Heterogeneity)
    assert (reg.QE, reg.QE_df, reg.QE_pvalue) == (reg.Q, reg.Q_df, reg.Q_pvalue)
    assert reg.tau2 == reg.fit.tau2 and reg.I2 == reg.fit.I2


def test_summary_frame_everywhere() -> None:
    fits = [univariate.fit(Y, V, method=m) for m in ("FE", "REML")]
    frame = pd.concat([f.summary_frame() for f in fits], ignore_index=True)
    pd.testing.assert_frame_equal(frame, univariate.results_frame(fits))
    assert tuple(frame.columns) == univariate.FRAME_COLUMNS
    reg = metareg.metareg(Y, V, data=pd.DataFrame({"x": np.arange(6.0)}), moderators=["x"])
    pd.testing.assert_frame_equal(reg.summary_frame(), metareg.summary_frame([reg]))
    sub = subgroups.subgroup_analysis(Y, V, np.array(["a", "a", "a", "b", "b", "b"]))
    pd.testing.assert_frame_equal(sub.summary_frame(), sub.table)
    sep = sub.table[sub.table["tau2_option"] == "separate"].set_index("level")
    assert sep.at["a", "tau2"] == sub.separate_fits["a"].tau2
    assert math.isclose(sep.at["b", "Q"], sub.separate_fits["b"].Q, rel_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# the arm model without a config
# ---------------------------------------------------------------------------------------------
def test_arm_model_fits_from_keywords() -> None:
    from conftest import _default_config

    cfg = _default_config()
    rows, _ = arm_analysis.arm_rows(cfg)
    via_config = arm_analysis.fit_outcome(rows, cfg, "hair_density", profile=False)
    direct = arm_model.fit_outcome(
        rows,
        "hair_density",
        random=[{"formula": "~ 1 | study/arm"}],
        within_arm_correlation=cfg["arm_model"]["within_arm_correlation"],
        split_scalp_correlation=cfg["assumptions"]["split_scalp_correlation"],
        profile=False,
    )
    for key in ("coefficients", "contrasts", "variance", "fit", "means"):
        pd.testing.assert_frame_equal(direct[key], via_config[key])
    assert list(direct["coefficients"]["term"]) == ["C(week)12", "C(week)12:experimental"]
    failed = arm_model.fit_outcome(rows.iloc[:2], "hair_density")
    assert failed["fit"]["notes"].iloc[0].startswith("not fitted:")
    assert failed["coefficients"].empty


def test_small_study_rows_are_the_results_summary_frames() -> None:
    from hairtrial.diagnostics import smallstudy

    table = smallstudy.small_study_table(Y, V)
    frames = [
        smallstudy.regtest(Y, V, model="rma").summary_frame(),
        smallstudy.regtest(Y, V, model="lm").summary_frame(),
        smallstudy.ranktest(Y, V).summary_frame(),
        (tf := smallstudy.trimfill(Y, V)).summary_frame(),
    ]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), table)
    assert tf.fit is not None and tf.heterogeneity == tf.fit.heterogeneity
