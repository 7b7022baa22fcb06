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
    ("rows", "why"),
    [
        (  # an extreme mean, the SD from a p-value: the derived SD overflows
            "s2020,A,minoxidil,12,hair_density,hairs/cm2,50,22.2,change,,0.039,=\n"
            "s2020,B,minoxidil_microneedling,12,hair_density,hairs/cm2,50,1e308,change,,0.039,=\n",
            "the SD derived from the test (p = 0.039; MD=1e+308; n1=50; n2=50) is inf",
        ),
        (  # means of opposite extreme signs: their difference is not finite
            "s2020,A,minoxidil,12,hair_density,hairs/cm2,50,-1e308,change,,0.039,=\n"
            "s2020,B,minoxidil_microneedling,12,hair_density,hairs/cm2,50,1e308,change,,0.039,=\n",
            "the difference of the arm means (1e+308 and -1e+308) is not finite",
        ),
        (  # a reported SD so small that its square underflows: zero variance, not "r = 1"
            "s2020,A,minoxidil,12,hair_density,hairs/cm2,20,10,change,1e-300,,\n"
            "s2020,B,minoxidil_microneedling,12,hair_density,hairs/cm2,20,20,change,1e-300,,\n",
            "SD 1e-300 gives a sampling variance of 0",
        ),
    ],
)
def test_extreme_values_are_excluded_with_the_values_named(
    tmp_path, default_config, rows, why, recwarn
):
    """Found by a user-style check (issue 9): these passed validation and either crashed a
    notebook job (the arm model kept the arm, mean 1e308 and SD inf) or were excluded with a
    reason that named neither the value nor the cause, with numpy warnings on the terminal."""
    from hairtrial.analyses import arm_model

    eff, notes = _run(tmp_path, default_config, rows)
    mine = [n for n in notes if n.startswith("s2020")]
    assert any(why in n for n in mine), notes
    assert len(mine) == 1, mine  # one reason, not a second "SD not available" line
    assert (eff["study"] == "s2020").sum() == 0
    # the arm model leaves the arms out with the same kind of reason
    cfg = dict(default_config)
    cfg["data"] = {"arms": str(tmp_path / "arms.csv"), "studies": str(tmp_path / "studies.csv")}
    cfg["selection"] = {"studies": "all"}
    rows_, arm_notes = arm_model.arm_rows(cfg)
    assert not (rows_["study"] == "s2020").any()
    assert any(n.startswith("s2020") for n in arm_notes), arm_notes
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


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
            "SD 1e+308 is too large: its sampling variance overflows",
        ),
        (  # r = 1 with equal baseline and follow-up SDs: SD of change 0, infinite weight
            "s2020,A,minoxidil,0,hair_density,hairs/cm2,20,100,value,5,,\n"
            "s2020,A,minoxidil,12,hair_density,hairs/cm2,20,110,value,5,,\n"
            "s2020,B,minoxidil_microneedling,0,hair_density,hairs/cm2,20,100,value,5,,\n"
            "s2020,B,minoxidil_microneedling,12,hair_density,hairs/cm2,20,130,value,5,,\n",
            {"change_sd_correlation": 1.0},
            "SD of change 0: change_sd_correlation = 1 with equal baseline and follow-up SDs",
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
