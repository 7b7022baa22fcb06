"""Binary outcomes: figures (forest with events, log axis; classic L'Abbé; robustness) and the
benefit-and-harm overview of the report, from tables only (issue 10)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hairtrial.plots import forest_plot
from hairtrial.plots.labbe import labbe_plot
from hairtrial.plots.layout import get_renderer
from hairtrial.plots.robustness import robustness_plot
from hairtrial.plots.style import GREY, VERMILLION
from hairtrial.report.benefit_harm import overview


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts] + [
        t.get_text() for ax in fig.axes for t in ax.get_xticklabels()
    ]


def _study(**kw):
    base = {"study": "liang2022", "label": "Liang 2022", "events_experimental": 3,
            "n_experimental": 40, "events_control": 4, "n_control": 38,
            "yi": math.log(0.7125), "ci_lower": math.log(0.17), "ci_upper": math.log(2.98),
            "weight_pct": 100.0, "provenance": "reported"}  # fmt: skip
    return {**base, **kw}


def test_forest_shows_events_totals_and_ratios_on_a_log_axis():
    other = _study(study="x", label="X 2020", events_experimental=5,
                   provenance="events_from_percent;n_split_equally")  # fmt: skip
    rows = pd.DataFrame([_study(), other])
    pooled = {"method": "MH", "ci_method": "z", "k": 2, "estimate": math.log(0.8),
              "ci_lower": math.log(0.3), "ci_upper": math.log(2.1), "pvalue": 0.6, "Q": 0.1,
              "Q_df": 1, "Q_pvalue": 0.75, "I2": 0.0}  # fmt: skip
    fig = forest_plot(rows, pooled, xlabel="Risk ratio (log scale)", counts=True,
                      log_scale=True, effect_label="RR [95% CI]")  # fmt: skip
    text = _texts(fig)
    assert {"Events", "Total"} <= set(text)
    assert "0.71" in text and "[0.17," in text and "2.98]" in text  # ratios, not logs
    assert "0.80" in text and "8" in text and "80" in text  # pooled ratio, total events, n
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "1" in ticks and all(float(t) > 0 for t in ticks)
    assert any(t.startswith("Common effect, Mantel") for t in text)
    # derived counts keep their marks and footnotes
    footnotes = [code for _, _, code in fig.hairtrial_footnotes]
    assert footnotes == ["provenance:events_from_percent", "provenance:n_split_equally"]


def test_classic_labbe_plots_risks_and_the_pooled_ratio_curve():
    other = _study(study="b", label="B 2019", events_experimental=17, n_experimental=20,
                   events_control=9, n_control=20)  # fmt: skip
    rows = pd.DataFrame([_study(), other])
    fig = labbe_plot(rows, math.log(1.5), unit_label="", risk_measure="RR",
                     pooled_label="Pooled RR (MH)")  # fmt: skip
    ax = fig.axes[0]
    offsets = np.vstack([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(sorted(offsets[:, 0]), sorted([4 / 38, 9 / 20]))
    np.testing.assert_allclose(sorted(offsets[:, 1]), sorted([3 / 40, 17 / 20]))
    curves = [ln for ln in ax.get_lines() if ln.get_color() == VERMILLION]
    x, y = curves[0].get_xdata(), curves[0].get_ydata()
    np.testing.assert_allclose(y, 1.5 * x)
    assert y.max() <= 1.0
    assert ax.get_xlim()[0] <= 0.0 and ax.get_xlim()[1] <= 1.05
    assert any("Pooled RR (MH) = 1.50" in t.get_text() for t in fig.findobj(
        lambda a: hasattr(a, "get_text")))  # fmt: skip


def test_robustness_plot_log_scale_prints_ratios():
    rows = pd.DataFrame({
        "group": ["Primary", "Model"], "scenario": ["Primary: MH", "REML, z"], "k": [2, 2],
        "estimate": [math.log(2.0), math.log(2.5)], "ci_lower": [math.log(1.1), math.log(0.9)],
        "ci_upper": [math.log(3.6), math.log(7.0)], "primary": [True, False], "notes": ["", ""],
    })  # fmt: skip
    fig = robustness_plot(rows, xlabel="Risk ratio (log scale)", log_scale=True)
    text = _texts(fig)
    assert "2.00  [1.10, 3.60]" in text and "2.50  [0.90, 7.00]" in text
    assert "1" in [t.get_text() for t in fig.axes[0].get_xticklabels()]


def test_robustness_footer_names_the_scenarios_left_out_and_the_band_only_when_drawn():
    """The footer names a scenario left out of a group that keeps others (it said "Not drawn:
    Zero cells" beside drawn zero-cell rows) and a group left out whole by its name; with no
    primary estimate there is no band, and the footer does not describe one."""
    nan = math.nan
    rows = pd.DataFrame({
        "group": ["Primary", "Zero cells", "Zero cells", "Trials"],
        "scenario": ["Primary: MH", "0.5 added to every trial", "Double-zero trials kept",
                     "Without high risk-of-bias trials"],
        "k": [1, 1, 1, 1], "estimate": [nan, 2.2, 2.2, nan], "ci_lower": [nan, -0.7, -0.7, nan],
        "ci_upper": [nan, 5.1, 5.1, nan], "primary": [True, False, False, False],
        "notes": ["", "", "same as primary", "same as primary"],
    })  # fmt: skip
    text = _texts(robustness_plot(rows, xlabel="Risk ratio (log scale)", log_scale=True))
    assert (
        "Not drawn (no trial here uses the assumption varied): Double-zero trials kept; "
        "Trials (Without high risk-of-bias trials)."
    ) in text
    assert not any(t.startswith("Shaded band") for t in text)
    assert "Vertical line: no effect (the primary analysis has no estimate or CI here)." in text


def test_robustness_footer_is_wrapped_inside_the_figure():
    """A long list of scenarios not drawn is wrapped onto lines inside the figure (one line
    ran past the right edge of the binary robustness figures), and no word is lost."""
    nan = math.nan
    groups = ["Primary", "Zero cells", "Zero cells", "Zero cells", "Trials", "Trials",
              "Definitions", "Definitions"]  # fmt: skip
    scenarios = ["Primary: MH", "0.5 added to every trial", "Double-zero trials kept",
                 "Treatment-arm correction", "Without converted counts",
                 "Without high risk-of-bias trials", "Investigator-rated responders",
                 "Patient-rated responders"]  # fmt: skip
    rows = pd.DataFrame({
        "group": groups, "scenario": scenarios, "k": 1,
        "estimate": [nan, *[0.8] * 7], "ci_lower": [nan, *[-0.7] * 7],
        "ci_upper": [nan, *[2.1] * 7], "primary": [True, *[False] * 7],
        "notes": ["", "", *["same as primary"] * 6],
    })  # fmt: skip
    fig = robustness_plot(rows, xlabel="Risk ratio (log scale)", log_scale=True)
    renderer = get_renderer(fig)
    foot = [t for t in fig.texts if t.get_color() == GREY and t.get_text() != "not estimable"]
    assert len(foot) >= 3  # the reference-line sentence and the list on two lines or more
    for t in foot:
        box = t.get_window_extent(renderer)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, t.get_text()
        assert fig.bbox.y0 <= box.y0, t.get_text()
    joined = " ".join(t.get_text() for t in foot[1:])
    assert joined == (
        "Not drawn (no trial here uses the assumption varied): Double-zero trials kept; "
        "Treatment-arm correction; Trials (Without converted counts, Without high risk-of-bias "
        "trials); Definitions (Investigator-rated responders, Patient-rated responders)."
    )


def _tables():
    meta = pd.DataFrame({
        "outcome": ["hair_density"], "week": [12], "measure": ["MD"], "method": ["REML"],
        "ci_method": ["adhoc"], "k": [3], "estimate": [20.0], "ci_lower": [-5.0],
        "ci_upper": [45.0],
    })  # fmt: skip
    bmeta = pd.DataFrame({
        "outcome": ["responder", "itch", "nothing"], "week": [12, 24, 24], "measure": "RR",
        "method": "MH", "ci_method": "z", "k": [2, 1, 1],
        "estimate": [math.log(3.0), math.log(0.71), math.nan],
        "ci_lower": [math.log(1.5), math.log(0.17), math.nan],
        "ci_upper": [math.log(6.0), math.log(2.98), math.nan],
    })  # fmt: skip
    bst = pd.DataFrame({
        "outcome": ["responder", "responder", "itch", "nothing"], "week": [12, 12, 24, 24],
        "measure": "RR", "study": ["a", "b", "c", "c"],
        "events_experimental": [10, 12, 3, 0], "n_experimental": [20, 20, 40, 40],
        "events_control": [3, 5, 4, 0], "n_control": [20, 20, 38, 38],
        "yi": [1.0, 0.8, -0.3, math.nan], "ci_lower": [0.1, 0.0, -1.7, math.nan],
        "ci_upper": [2.0, 1.6, 1.1, math.nan], "correction": "none",
        "provenance": ["reported", "events_from_percent", "reported", "reported"],
    })  # fmt: skip
    return {"meta_analysis": meta, "binary_meta_analysis": bmeta, "binary_study_effects": bst}


def test_benefit_harm_overview_reads_each_outcome_in_its_direction(tmp_path):
    (tmp_path / "outcomes.csv").write_text(
        "outcome,label,kind,direction,unit,mid,mid_source\n"
        "hair_density,Hair density,continuous,benefit,hairs/cm2,,\n"
        "responder,Responder,binary,benefit,RR,,\n"
        "itch,Itch,binary,harm,RR,,\nnothing,Nothing,binary,harm,RR,,\n",
        encoding="utf-8",
    )
    config = {
        "data": {"outcomes": str(tmp_path / "outcomes.csv")}, "measures": ["MD"],
        "meta_analysis": {"tau2_methods": ["REML"], "ci_methods": ["adhoc"], "level": 0.95},
        "binary": {"measures": ["RR"], "methods": ["MH"], "ci_methods": ["z"]},
    }  # fmt: skip
    table, sentences = overview(_tables(), config)
    reading = dict(zip(table["outcome"], table["reading"], strict=True))
    assert reading["Responder"] == "benefit"
    assert "reaches into losses" in reading["Hair density"]
    assert reading["Itch"].startswith("inconclusive")
    assert reading["Nothing"].startswith("no information")
    assert list(table["direction"]) == ["benefit", "benefit", "harm", "harm"]
    effect = dict(zip(table["outcome"], table["effect"], strict=True))
    assert effect["Itch"] == "0.71 [0.17, 2.98]"
    text = " ".join(sentences)
    assert "Harm: 2 adverse outcomes" in text and "not evidence of safety" in text
    assert "reaches into losses" in text and "Hair density" in text
    assert "single trial" in text
    data = dict(zip(table["outcome"], table["data"], strict=True))
    assert "counts derived" in data["Responder"]


@pytest.mark.parametrize("bad", ["XX", "SMD"])
def test_labbe_rejects_unknown_risk_measure(bad):
    with pytest.raises(ValueError, match="risk_measure"):
        labbe_plot(pd.DataFrame([_study()]), None, unit_label="", risk_measure=bad)


def test_zero_cell_note_says_which_cell_in_the_readers_terms():
    """The forest shows events and totals: a zero cell can be an arm where everyone had the
    event (50 of 50), which a reader would not call zero without being told."""
    from hairtrial.report.binary_figures import _figure_notes

    rows = pd.DataFrame(
        [
            _study(study="dhurat2013", events_experimental=50, n_experimental=50,
                   events_control=31, n_control=50, correction="0.5 added to each cell"),
            _study(study="kumar2018", events_experimental=4, n_experimental=34,
                   events_control=0, n_control=34, correction="0.5 added to each cell"),
            _study(correction="none"),
        ]
    )  # fmt: skip
    info = pd.DataFrame({"study": ["dhurat2013", "kumar2018"], "label": ["Dhurat 2013", "K"]})
    notes = _figure_notes(rows, info, None, ("minoxidil + microneedling", "minoxidil alone"))
    assert (
        "Dhurat 2013: zero cell (all 50 with the event with minoxidil + microneedling), "
        "0.5 added to each cell for the trial's estimate" in notes
    )
    assert "K: zero cell (no events with minoxidil alone)" in notes
    assert "Liang" not in notes


def test_binary_figures_read_the_outcomes_file_once_per_version(tmp_path, monkeypatch):
    """Every binary figure labels its outcome from outcomes.csv: a figure job reads it once,
    and again only when the file changes."""
    import os
    import shutil
    from pathlib import Path

    from hairtrial.data import outcomes as outcomes_mod
    from hairtrial.report import binary_figures

    path = tmp_path / "outcomes.csv"
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "outcomes.csv", path)
    reads = []
    real = outcomes_mod.read_outcomes

    def counted(p):
        reads.append(p)
        return real(p)

    monkeypatch.setattr(outcomes_mod, "read_outcomes", counted)
    config = {"data": {"outcomes": str(path)}}
    for _ in range(3):
        assert binary_figures.outcome_text(config, "hair_density") == ("Hair density", "benefit")
    assert len(reads) == 1
    path.write_text(path.read_text().replace("Hair density,", "Density of hair,", 1))
    os.utime(path, ns=(1, 1))  # another version, even within the clock's resolution
    assert binary_figures.outcome_text(config, "hair_density") == ("Density of hair", "benefit")
    assert len(reads) == 2
