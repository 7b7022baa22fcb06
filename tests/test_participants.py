"""participants.csv: the reader's rules (issue 12) and the example built from the simulator."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hairtrial.analyses import ipd as aipd
from hairtrial.analyses.config import load_config
from hairtrial.data.participants import read_participants
from hairtrial.data.simulate import SimulationSpec, simulate, simulate_participants
from hairtrial.data.validate import DataValidationError, read_inputs
from hairtrial.derive import ipd as dipd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "examples" / "ipd"
HEADER = "study,participant,side,treatment,week,outcome,unit,value\n"
STUDIES = pd.DataFrame({"study": ["par", "spl"], "design": ["parallel", "split_scalp"]})
GOOD = [
    "par,a1,,minoxidil,0,hair_density,hairs/cm2,150",
    "par,a1,,minoxidil,12,hair_density,hairs/cm2,160",
    "par,b1,,minoxidil_microneedling,0,hair_density,hairs/cm2,140",
    "par,b1,,minoxidil_microneedling,12,hair_density,hairs/cm2,170",
    "spl,p1,left,minoxidil,0,hair_density,hairs/cm2,150",
    "spl,p1,right,minoxidil_microneedling,0,hair_density,hairs/cm2,151",
    "spl,p1,left,minoxidil,12,hair_density,hairs/cm2,155",
    "spl,p1,right,minoxidil_microneedling,12,hair_density,hairs/cm2,171",
]


def _problems(tmp_path: Path, lines: list[str], arms: pd.DataFrame | None = None) -> list[str]:
    path = tmp_path / "participants.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        read_participants(path, STUDIES, arms)
    return [str(p).split("participants.csv, ")[1] for p in err.value.problems]


def test_valid_file_is_read(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_text(HEADER + "\n".join(GOOD) + "\n", encoding="utf-8")
    d = read_participants(path, STUDIES)
    assert d["side"].tolist()[:2] == ["", ""]
    assert d["line"].tolist() == list(range(2, 10))
    assert d["week"].dtype.kind == "i" and d["value"].dtype.kind == "f"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ((1, "par,a1,,minoxidil,0,hair_density,hairs/cm2,161"), "line 3, column 'week': value '0': a second baseline"),  # noqa: E501
        ((1, "par,a1,,minoxidil,-4,hair_density,hairs/cm2,160"), "line 3, column 'week': value '-4': must be >= 0"),  # noqa: E501
        ((1, "par,a1,,minoxidil,1.5,hair_density,hairs/cm2,160"), "must be a whole number"),
        ((1, "par,a1,,minoxidil,12,hair_density,hairs/cm2,inf"), "column 'value': value 'inf': must be a finite number"),  # noqa: E501
        ((1, "par,a1,,minoxidil_microneedling,12,hair_density,hairs/cm2,160"), "had treatment 'minoxidil' on line 2"),  # noqa: E501
        ((1, "par,a1,top,minoxidil,12,hair_density,hairs/cm2,160"), "column 'side': value 'top': must be one of left, right"),  # noqa: E501
        ((1, "par,a1,left,minoxidil,12,hair_density,hairs/cm2,160"), "side must be empty"),
        ((6, "spl,p1,,minoxidil,12,hair_density,hairs/cm2,155"), "every row needs a side"),
        ((5, "spl,p1,right,minoxidil,0,hair_density,hairs/cm2,151"), "(right side) had treatment 'minoxidil' on line 7"),  # noqa: E501
        ((1, "xx,a1,,minoxidil,12,hair_density,hairs/cm2,160"), "study is not listed in studies.csv"),  # noqa: E501
        ((1, "par,a1,,minoxidil,12,hair_density,hairs/inch2,1000"), "give one unit per study and outcome"),  # noqa: E501
        ((1, "par,a1,,minoxidil,12,hair_density,um,60"), "cannot be converted"),
        ((0, "par,a1,,minoxidil,4,hair_density,hairs/cm2,150"), "no baseline (week 0)"),
    ],
)  # fmt: skip
def test_each_rule_names_line_column_value(tmp_path, edit, expected):
    lines = list(GOOD)
    lines[edit[0]] = edit[1]
    problems = _problems(tmp_path, lines)
    assert any(expected in p for p in problems), problems


def test_both_sides_on_one_treatment(tmp_path):
    lines = [x.replace("minoxidil_microneedling", "minoxidil") if "spl" in x else x for x in GOOD]
    assert any("both sides of participant p1" in p for p in _problems(tmp_path, lines))


def test_a_trial_outcome_in_arms_and_participants(tmp_path):
    arms = pd.DataFrame(
        {"study": ["par"], "outcome": ["hair_density"], "unit": ["hairs/cm2"], "line": [2]}
    )
    assert any("also in arms.csv" in p for p in _problems(tmp_path, GOOD, arms))


def test_every_problem_is_collected(tmp_path):
    lines = list(GOOD)
    lines[1] = "par,a1,,minoxidil,12,hair_density,hairs/cm2,x"
    lines[3] = "par,b1,,minoxidil_microneedling,12,Hair Density,hairs/cm2,170"
    assert len(_problems(tmp_path, lines)) == 2


def test_simulated_participants_leave_the_arm_level_draws_unchanged():
    spec = SimulationSpec(n_trials=4, three_arm_fraction=0.0)
    arms, _, _, part = simulate_participants(spec, seed=11)
    assert simulate(spec, seed=11)[0].equals(arms)
    # a trial reporting changes with SDs: the arm rows are the participants' summaries
    rows = dipd.arm_rows(part)
    sd_rows = arms[(arms["stat"] == "change") & arms["sd"].notna() & (arms["unit"] == "hairs/cm2")]
    assert len(sd_rows)
    for r in sd_rows.itertuples():
        mine = rows[(rows["study"] == r.study) & (rows["treatment"] == r.treatment)
                    & (rows["week"] == r.week)].iloc[0]  # fmt: skip
        assert mine["n"] == r.n
        # participants are rounded to 0.01 before summarising, the arm rows after
        assert mine["mean"] == pytest.approx(r.mean, abs=0.011)
        assert mine["sd"] == pytest.approx(r.sd, abs=0.02)


def test_example_is_regenerated_byte_for_byte(tmp_path):
    paths = aipd.write_example(tmp_path)
    for name, path in paths.items():
        assert path.read_bytes() == (EXAMPLE / f"{name}.csv").read_bytes(), name


def test_example_config_feeds_from_ipd_rows_and_measured_correlations():
    config = load_config(ROOT / "config" / "examples" / "ipd.yaml")
    config = {**config, "data": {k: str(ROOT / v) if v else v for k, v in config["data"].items()}}
    arms, studies = read_inputs(config["data"]["arms"], config["data"]["studies"])
    part = read_participants(config["data"]["participants"], studies, arms)
    assumptions, measured = aipd.resolved_assumptions(config)
    cor = dipd.correlations(part)
    split = cor[cor["quantity"] == "side_to_side_change"].dropna(subset=["r"])
    import numpy as np

    w = split["n"] - 3
    want = np.tanh(np.sum(w * np.arctanh(split["r"])) / np.sum(w))
    assert assumptions["split_scalp_correlation"] == pytest.approx(want, rel=1e-12)
    assert set(measured) == {"change_sd_correlation", "split_scalp_correlation"}
    rows = aipd.arm_level_rows(part, aipd.data_sources(studies))
    assert set(rows["provenance"]) == {"from_ipd"}
    assert rows["source"].str.startswith("synthetic (hairtrial.data.simulate seed=").all()


def test_correlations_are_measured_once_per_participant_table(tmp_path, monkeypatch):
    """Every robustness scenario and the arm model resolve the same from_ipd assumptions:
    the correlations are measured once a process per table (a changed file: again), and
    what one caller gets cannot change what the next one gets."""
    config = load_config(ROOT / "config" / "examples" / "ipd.yaml")
    config = {**config, "data": {k: str(ROOT / v) if v else v for k, v in config["data"].items()}}
    copied = tmp_path / "participants.csv"
    shutil.copy(config["data"]["participants"], copied)
    config["data"]["participants"] = str(copied)
    calls = []
    real = dipd.correlations
    monkeypatch.setattr(dipd, "correlations", lambda part: calls.append(1) or real(part))
    first, measured = aipd.resolved_assumptions(config)
    measured["split_scalp_correlation"] = "changed by a caller"
    for _ in range(3):
        again = aipd.resolved_assumptions(config)
        assert again[0] == first and again[1]["split_scalp_correlation"].startswith("r = ")
    assert len(calls) == 1
    lines = copied.read_text().splitlines()  # another table, same path: one value changed
    head, *rows = lines
    i = next(i for i, r in enumerate(rows) if ",right," in r)  # a split-scalp measurement
    fields = rows[i].split(",")
    fields[-1] = f"{float(fields[-1]) + 25.0:.2f}"
    rows[i] = ",".join(fields)
    copied.write_text("\n".join([head, *rows]) + "\n")
    os.utime(copied, ns=(1, 1))
    changed, _ = aipd.resolved_assumptions(config)
    assert len(calls) == 2 and changed != first


def test_from_ipd_without_participants_is_a_config_error(tmp_path):
    from hairtrial.analyses.config import ConfigError

    config = load_config(ROOT / "config" / "config.yaml")
    config["assumptions"]["change_sd_correlation"] = "from_ipd"
    with pytest.raises(ConfigError, match="needs participant-level data"):
        aipd.resolved_assumptions(config)
    # parallel trials only: no side-to-side correlation to measure
    config = load_config(ROOT / "config" / "examples" / "ipd.yaml")
    config["data"] = {k: str(ROOT / v) if v else v for k, v in config["data"].items()}
    part = pd.read_csv(config["data"]["participants"], keep_default_na=False)
    parallel = tmp_path / "participants.csv"
    part[part["side"] == ""].to_csv(parallel, index=False)
    config["data"]["participants"] = str(parallel)
    with pytest.raises(ConfigError, match="split_scalp_correlation: from_ipd"):
        aipd.resolved_assumptions(config)


def test_report_section_comes_from_the_manifest(tmp_path):
    import yaml

    from hairtrial.core.manifest import write_manifest
    from hairtrial.report import document

    results = tmp_path / "results"
    tables = results / "tables"
    tables.mkdir(parents=True)
    source = "synthetic (hairtrial.data.simulate seed=7)"
    pd.DataFrame(
        {"outcome": "hair_density", "study": ["s1", "s2"], "design": "parallel",
         "method": ["REML", "OLS"], "n_participants": [40, 30], "n_obs": [120, 30],
         "logLik": [-400.0, -100.0], "converged": True,
         "notes": ["boundary fit: participant variance estimated at 0 (1e-09)", ""],
         "data_source": source}
    ).to_csv(tables / "ipd_fit.csv", index=False)  # fmt: skip
    pd.DataFrame(
        {"outcome": "hair_density", "study": ["s1", "s2"], "week": 12, "estimate": [10.0, 12.0],
         "se": 2.0, "ci_lower": [6.0, 8.0], "ci_upper": [14.0, 16.0], "pvalue": 0.001,
         "data_source": source}
    ).to_csv(tables / "ipd_contrasts.csv", index=False)  # fmt: skip
    pd.DataFrame(
        {"outcome": "hair_density", "week": 12,
         "approach": ["one-stage (MixedLM, REML)", "two-stage (per-trial model, REML)"],
         "k": 2, "n_participants": 70, "estimate": [11.0, 11.5], "se": 1.5,
         "ci_lower": [8.1, 8.4], "ci_upper": [13.9, 14.6], "pvalue": 0.001, "tau2": 0.0,
         "distribution": "z", "converged": True, "notes": "", "data_source": source}
    ).to_csv(tables / "ipd_one_stage.csv", index=False)  # fmt: skip
    config = load_config(ROOT / "config" / "config.yaml")
    (results / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    out = results / "report" / "report.html"
    # not in any manifest: not reported, whatever lies in results/
    text = document.render_report(results, data_dir_or_config=config, out_path=out, outputs=[])
    assert 'id="participants"' not in text and "SYNTHETIC" not in text
    write_manifest(results / "manifests" / "ipd.csv", sorted(tables.glob("*.csv")), results)
    text = document.render_report(results, data_dir_or_config=config, out_path=out)
    start = text.index('id="participants"')
    section = text[start : text.index("</section>", start)]
    assert "SYNTHETIC DATA: the participant-level data of this run were generated" in section
    assert "hairtrial.data.simulate seed=7" in section
    assert "Two trials (s1 and s2) gave participant-level data, 70 participants" in section
    assert "s1: boundary fit" in section
    assert "one-stage 11 [8.1, 13.9], two-stage 11.5 [8.4, 14.6]" in section
    assert "<title>SYNTHETIC DATA (example)" in text


def test_ipd_tables_give_each_estimate_the_unit_of_its_participants(tmp_path):
    """Every ipd table on the outcome's scale names the unit of the participants' values: a
    contrast of 12.3 means nothing without it. Two trials of the example, one of them given
    in hairs/inch² (its values converted), so a unit taken from anywhere but the trial's own
    rows would show."""
    for name in ("arms", "studies"):
        (tmp_path / f"{name}.csv").write_bytes((EXAMPLE / f"{name}.csv").read_bytes())
    part = pd.read_csv(EXAMPLE / "participants.csv", keep_default_na=False)
    part = part[part["study"].isin(["sim01", "sim02"])].copy()
    inch = part["study"] == "sim01"
    part["value"] = part["value"].astype(float)
    part.loc[inch, "value"] *= 6.4516
    part.loc[inch, "unit"] = "hairs/inch2"
    part.to_csv(tmp_path / "participants.csv", index=False)
    config = load_config(ROOT / "config" / "examples" / "ipd.yaml")
    config["data"] = {
        "arms": str(tmp_path / "arms.csv"),
        "studies": str(tmp_path / "studies.csv"),
        "participants": str(tmp_path / "participants.csv"),
    }
    tables, derived = aipd.ipd_tables(config)
    want = {"sim01": "hairs/inch2", "sim02": "hairs/cm2"}
    for name in ("ipd_contrasts", "ipd_coefficients", "ipd_variance", "ipd_anova"):
        t = tables[name]
        assert list(t.columns[-2:]) == ["unit", "data_source"], name
        assert len(t) and t["unit"].tolist() == t["study"].map(want).tolist(), name
    means = derived["ipd_arm_means"]
    assert means["unit"].tolist() == means["study"].map(want).tolist()
    # two trials pooled on one scale: sim01's values converted to hairs/cm2 first, so the
    # pooled estimates are those of the same participants given in hairs/cm2 throughout
    one = tables["ipd_one_stage"]
    assert len(one) and set(one["unit"]) == {"hairs/cm2"}
    assert one["notes"].str.contains("hairs/inch2 converted to hairs/cm2 before pooling").all()
    base = pd.read_csv(EXAMPLE / "participants.csv", keep_default_na=False)
    base[base["study"].isin(["sim01", "sim02"])].to_csv(tmp_path / "participants.csv", index=False)
    same = aipd.ipd_tables(config)[0]["ipd_one_stage"]
    for col in ("estimate", "se", "ci_lower", "ci_upper", "tau2"):
        np.testing.assert_allclose(one[col], same[col], rtol=1e-6, atol=1e-9, err_msg=col)
    for name in ("ipd_fit", "ipd_correlations"):  # no number on the outcome's scale
        assert "unit" not in tables[name].columns, name
