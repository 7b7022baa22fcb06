"""The pipeline on generated multi-week arm data agrees with metafor, week by week.

tests/reference/pipeline_multiweek.R writes the input files (SDs given directly, as
SEs or as 95% CIs; one three-arm trial) and redoes every derivation by hand in R
before fitting metafor 3.8 rma.uni for every method and test at every week.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hairtrial.analyses import primary

REFERENCE = Path(__file__).resolve().parent / "reference"
REF = pd.read_csv(REFERENCE / "pipeline_multiweek.csv", keep_default_na=False)
QUANTITIES = [
    "k", "estimate", "se", "ci_lower", "ci_upper", "pvalue", "pi_lower", "pi_upper", "tau2",
    "I2", "H2", "Q", "Q_pvalue", "tau2_ci_lower", "tau2_ci_upper",
]  # fmt: skip


@pytest.fixture(scope="module")
def results():
    from conftest import _default_config

    cfg = _default_config()
    cfg["data"] = {
        "arms": str(REFERENCE / "pipeline_multiweek_arms.csv"),
        "studies": str(REFERENCE / "pipeline_multiweek_studies.csv"),
    }
    eff, quality, notes = primary.prepare(cfg)
    meta_table, _ = primary.meta_analyses(eff, cfg)
    return eff, quality, meta_table


def _expected(week, measure, method, test) -> dict[str, float]:
    sel = REF[
        (REF.week == week) & (REF.measure == measure) & (REF.method == method) & (REF.test == test)
    ]
    return {
        q: (math.nan if v == "NA" else float(v))
        for q, v in zip(sel.quantity, sel.value, strict=True)
    }


def test_study_effects_every_week(results):
    eff = results[0]
    ref = REF[REF.method == "study"]
    assert len(eff) * 2 == len(ref)
    for _, r in eff.iterrows():
        exp = _expected(r.week, r.measure, "study", r.study)
        np.testing.assert_allclose([r.yi, r.vi], [exp["yi"], exp["vi"]], rtol=1e-10)


def test_provenance_of_conversions(results):
    eff, quality = results[0], results[1]
    assert set(quality.provenance) == {"from_se", "from_ci", "combined_arms"}
    assert eff.loc[eff.study == "gen04", "provenance"].str.contains("combined_arms").all()


def test_meta_analysis_every_week_method_and_test(results):
    meta_table = results[2]
    combos = REF[REF.method != "study"][["week", "measure", "method", "test"]].drop_duplicates()
    assert len(combos) == len(meta_table[meta_table.k >= 2]) + len(
        meta_table[(meta_table.k == 1) & (meta_table.method == "FE")]
    )
    for week, measure, method, test in combos.itertuples(index=False):
        exp = _expected(week, measure, method, test)
        row = meta_table[
            (meta_table.week == week)
            & (meta_table.measure == measure)
            & (meta_table.method == method)
            & (meta_table.ci_method == test)
        ].iloc[0]
        for q in QUANTITIES:
            if q not in exp:
                continue
            np.testing.assert_allclose(
                row[q],
                exp[q],
                rtol=1e-6,
                atol=1e-10,
                err_msg=f"{week} {measure} {method} {test} {q}",
            )
