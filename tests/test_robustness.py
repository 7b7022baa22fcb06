"""Robustness scenarios: each changes exactly what it says, checked against references."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hairtrial.analyses import robustness

REF = pd.read_csv(
    Path(__file__).resolve().parent / "reference" / "pipeline_published.csv",
    keep_default_na=False,
)


@pytest.fixture(scope="module")
def table():
    from conftest import _default_config

    return robustness.robustness_table(_default_config())


def test_given_data_and_effects_change_nothing(table):
    """robustness_table with the files read and the primary effects prepared (as the
    analysis job passes them) gives the same table."""
    from conftest import _default_config

    from hairtrial.analyses import primary

    config = _default_config()
    data = primary.read_data(config)
    effects = primary.prepare(config, data)[0]
    given = robustness.robustness_table(config, data=data, effects=effects)
    pd.testing.assert_frame_equal(given, table)


def test_scenarios_sharing_arm_level_changes_are_those_prepared_anew(default_config, monkeypatch):
    """The scenarios that change only the split-scalp correlation or the p-bound factor build
    their comparisons from arm-level changes derived once per selection and change-SD
    correlation: the table is the one of a full prepare per scenario (every trial selected,
    so that each assumption is used by some trial)."""
    from hairtrial.analyses import primary

    default_config["selection"] = {"studies": "all"}
    derived = []
    arm_level_changes = primary.arm_level_changes
    monkeypatch.setattr(
        primary, "arm_level_changes", lambda *a: derived.append(1) or arm_level_changes(*a)
    )
    shared = robustness.robustness_table(default_config)
    with_overrides = [sc for sc in robustness.scenarios(default_config) if sc.overrides]
    assert 0 < len(derived) < len(with_overrides)  # shared: the check below means something
    prepare = primary.prepare
    monkeypatch.setattr(primary, "prepare", lambda cfg, data=None, **_: prepare(cfg, data))
    pd.testing.assert_frame_equal(robustness.robustness_table(default_config), shared)


def _row(table, measure, scenario, outcome="hair_density", week=12):
    sel = table[
        (table.outcome == outcome)
        & (table.week == week)
        & (table.measure == measure)
        & (table.scenario == scenario)
    ]
    assert len(sel) == 1, (measure, scenario)
    return sel.iloc[0]


def _ref(measure, method, test, quantity):
    sel = REF[
        (REF.measure == measure)
        & (REF.method == method)
        & (REF.test == test)
        & (REF.quantity == quantity)
    ]
    return float(sel.value.iloc[0])


@pytest.mark.parametrize("measure", ["MD", "SMD"])
@pytest.mark.parametrize(
    ("scenario", "method", "test"),
    [("Primary analysis", "REML", "adhoc"), ("DL, z", "DL", "z"), ("FE, z", "FE", "z")],
)
def test_estimator_scenarios_match_metafor(table, measure, scenario, method, test):
    row = _row(table, measure, scenario)
    for q in ("estimate", "ci_lower", "ci_upper", "tau2"):
        np.testing.assert_allclose(row[q], _ref(measure, method, test, q), rtol=1e-6, atol=1e-10)


def test_p_bound_factor_rescales_the_bound(default_config):
    default_config["assumptions"]["p_bound_factor"] = 0.1
    from hairtrial.analyses import primary

    eff, _, _ = primary.prepare(default_config)
    kumar = eff[(eff.study == "kumar2018") & (eff.measure == "MD")].iloc[0]
    # p < 0.0001 used as p = 1e-5; n = 34 + 34; MD = (12.52 - 1.89) / 6.4516
    md = (12.52 - 1.89) / 6.4516
    sd = md / stats.t.isf(1e-5 / 2, 66) / math.sqrt(2 / 34)
    assert kumar["sd_control"] == pytest.approx(sd, rel=1e-12)
    dhurat = eff[(eff.study == "dhurat2013") & (eff.measure == "MD")].iloc[0]
    # exact p-values are not rescaled
    assert dhurat["sd_control"] == pytest.approx(
        69.2 / stats.t.isf(0.039 / 2, 98) / math.sqrt(2 / 50), rel=1e-12
    )


def test_excluding_derived_sds_leaves_no_trial(table):
    row = _row(table, "MD", "Excluding trials with derived SDs")
    assert row["k"] == 0 and "no trials remain" in row["notes"]
    assert math.isnan(row["estimate"])


def test_unused_assumption_is_said_not_hidden(table):
    row = _row(table, "MD", "r = 0.2")
    assert "same as primary" in row["notes"]
    primary = _row(table, "MD", "Primary analysis")
    assert row["estimate"] == primary["estimate"]


def test_risk_of_bias_not_assessed_is_said(table):
    row = _row(table, "SMD", "Excluding high risk-of-bias trials")
    assert "not assessed" in row["notes"]


def test_split_scalp_correlation_narrows_the_ci(default_config):
    default_config["selection"] = {"studies": "all"}
    t = robustness.robustness_table(default_config)
    rows = t[(t.outcome == "hair_count") & (t.measure == "MD") & t.group.isin(["Primary",
             "Split-scalp correlation"])].copy()  # fmt: skip
    rows["rho"] = [
        0.5 if s == "Primary analysis" else float(s.split("= ")[1]) for s in rows.scenario
    ]
    rows = rows.sort_values("rho")
    assert len(rows) == 5
    # one split-scalp trial: same estimate, variance (sd1^2 + sd2^2 - 2 rho sd1 sd2) / n falls
    assert np.allclose(rows.estimate, rows.estimate.iloc[0])
    assert (np.diff(rows.se.to_numpy()) < 0).all()


def test_the_input_files_are_read_once_for_every_scenario(default_config, monkeypatch):
    """The scenarios differ in assumptions and selection, never in `data`: the files are read
    and validated once (each read was ~0.1 s, 13 scenarios)."""
    from hairtrial.analyses import robustness
    from hairtrial.data import validate

    calls = []
    read = validate.read_inputs
    monkeypatch.setattr(validate, "read_inputs", lambda *a: calls.append(a) or read(*a))
    table = robustness.robustness_table(default_config)
    assert len(calls) == 1
    assert table["scenario"].nunique() == len(robustness.scenarios(default_config))
