"""Valid-looking inputs whose derivations cannot work are excluded with a reason, not crashed on.

Each case used to pass validation and then kill a workflow job with a traceback (issue 9).
"""

from __future__ import annotations

import pytest

from hairtrial.analyses import primary

STUDIES = "study,year,design\ns2020,2020,parallel\nt2021,2021,parallel\n"
HEADER = "study,arm,treatment,week,outcome,unit,n,mean,stat,sd,p_value,p_relation\n"
GOOD = (
    "t2021,A,minoxidil,12,hair_density,hairs/cm2,20,10,change,5,,\n"
    "t2021,B,minoxidil_microneedling,12,hair_density,hairs/cm2,20,20,change,6,,\n"
)


def _run(tmp_path, default_config, rows: str, **assumptions):
    (tmp_path / "studies.csv").write_text(STUDIES)
    (tmp_path / "arms.csv").write_text(HEADER + rows + GOOD)
    cfg = dict(default_config)
    cfg["data"] = {"arms": str(tmp_path / "arms.csv"), "studies": str(tmp_path / "studies.csv")}
    cfg["selection"] = {"studies": "all"}
    cfg["assumptions"] = {**cfg["assumptions"], **assumptions}
    eff, _quality, notes = primary.prepare(cfg)
    return eff, list(notes["note"])


@pytest.mark.parametrize(
    ("rows", "assumptions", "why"),
    [
        (  # n = 1 in both arms: Hedges' correction has no degrees of freedom
            "s2020,A,minoxidil,12,hair_density,hairs/cm2,1,10,change,5,,\n"
            "s2020,B,minoxidil_microneedling,12,hair_density,hairs/cm2,1,20,change,6,,\n",
            {},
            "SMD not computable",
        ),
        (  # equal means, SD from a p-value: no SD can be derived from MD = 0
            "s2020,A,minoxidil,12,hair_density,hairs/cm2,20,10,change,,0.5,=\n"
            "s2020,B,minoxidil_microneedling,12,hair_density,hairs/cm2,20,10,change,,0.5,=\n",
            {},
            "arm means are equal",
        ),
        (  # an absurd mean: the variance overflows
            "s2020,A,minoxidil,12,hair_density,hairs/cm2,20,1e308,change,1e308,,\n"
            "s2020,B,minoxidil_microneedling,12,hair_density,hairs/cm2,20,-1e308,change,1e308,,\n",
            {},
            "not finite",
        ),
        (  # r = 1 with equal baseline and follow-up SDs: SD of change 0, infinite weight
            "s2020,A,minoxidil,0,hair_density,hairs/cm2,20,100,value,5,,\n"
            "s2020,A,minoxidil,12,hair_density,hairs/cm2,20,110,value,5,,\n"
            "s2020,B,minoxidil_microneedling,0,hair_density,hairs/cm2,20,100,value,5,,\n"
            "s2020,B,minoxidil_microneedling,12,hair_density,hairs/cm2,20,130,value,5,,\n",
            {"change_sd_correlation": 1.0},
            "sampling variance is 0",
        ),
    ],
)
def test_bad_derivation_is_excluded_with_its_reason(
    tmp_path, default_config, rows, assumptions, why
):
    eff, notes = _run(tmp_path, default_config, rows, **assumptions)
    mine = [n for n in notes if n.startswith("s2020")]
    assert any(why in n for n in mine), notes
    # what could not be computed is absent; the other trial is untouched
    assert set(eff["study"]) <= {"s2020", "t2021"}
    assert (eff["study"] == "t2021").sum() == 2
    bad = eff[eff["study"] == "s2020"]
    assert ((bad["vi"] > 0) & bad["vi"].map(float).apply(lambda v: v < float("inf"))).all()
