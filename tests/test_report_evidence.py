"""The report's evidence parts: it opens with the GRADE summary of findings, names the primary
answer and why the other intervals differ, states the probabilities of a noticeable benefit
and loss from the Bayesian table, states every GRADE rule, and labels arm-model terms in words."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from hairtrial.analyses import bayes as abayes
from hairtrial.analyses import grade
from hairtrial.analyses.config import DEFAULT_CONFIG, validate_config
from hairtrial.core.io import write_csv
from hairtrial.models import bayes, univariate
from hairtrial.report import document

_DEFAULT = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
CONFIG = validate_config(
    {
        **_DEFAULT,
        "meta_analysis": {"tau2_methods": ["REML"], "ci_methods": ["adhoc"]},
        "next_trial": {"n_per_arm": [10, 100], "replicates": 200},
    }
)
YI = {"MD": [43.2, 69.2, 1.65], "SMD": [1.17, 0.415, 0.993]}
VI = {"MD": [143.9, 1093.9, 0.158], "SMD": [0.130, 0.0409, 0.0661]}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("run")
    results, data = root / "results", root / "data"
    (results / "tables").mkdir(parents=True)
    data.mkdir()
    effects, meta = [], []
    for m in ("MD", "SMD"):
        fit = univariate.fit(YI[m], VI[m], method="REML", ci_method="adhoc")
        row = fit.summary_frame().iloc[0].to_dict()
        meta.append({"outcome": "hair_density", "week": 12, "measure": m, **row})
        effects.append(
            pd.DataFrame(
                {"outcome": "hair_density", "week": 12, "measure": m,
                 "study": ["a2024", "d2013", "k2018"], "yi": YI[m], "vi": VI[m],
                 "weight_pct": fit.weights, "n_control": [18, 50, 34],
                 "n_experimental": [18, 50, 34], "unit": "hairs/cm2"}
            )
        )  # fmt: skip
    eff, meta_t = pd.concat(effects, ignore_index=True), pd.DataFrame(meta)
    outcomes = pd.DataFrame(
        {"outcome": ["hair_density"], "label": ["Hair density"], "kind": ["continuous"],
         "direction": ["benefit"], "unit": ["hairs/cm2"], "mid": [np.nan],
         "mid_source": ["not established"]}
    )  # fmt: skip
    studies = pd.DataFrame({"study": ["a2024", "d2013", "k2018"], "rob": [None] * 3})
    b = abayes.bayes_tables(eff, outcomes, CONFIG)
    sof = grade.summary_of_findings(
        meta_t, eff, studies, outcomes, None, CONFIG, bayes_table=b["bayes"]
    )
    arm = pd.DataFrame(
        {"outcome": "hair_density", "term": ["C(week)12", "C(week)12:experimental"],
         "estimate": [28.0, 30.0], "se": [24.9, 19.2], "ci_lower": [-289, -23.3],
         "ci_upper": [345, 83.2], "pvalue": [0.46, 0.19], "statistic": [1.1, 1.6],
         "df": [1.0, 4.0]}
    )  # fmt: skip
    contrasts = pd.DataFrame(
        {"outcome": ["hair_density"], "week": [12], "contrast": ["experimental - control"],
         "estimate": [meta[0]["estimate"]], "se": [meta[0]["se"]], "ci_lower": [-23.3],
         "ci_upper": [83.2], "pvalue": [0.19], "df": [4.0]}
    )  # fmt: skip
    tables = {
        "meta_analysis": meta_t, "study_effects": eff, "summary_of_findings": sof,
        "arm_model_coefficients": arm, "arm_model_contrasts": contrasts,
        **{k: b[k] for k in ("bayes", "bayes_sensitivity", "next_trial",
                             "next_trial_sample_size")},
    }  # fmt: skip
    for name, df in tables.items():
        write_csv(df, results / "tables" / f"{name}.csv")
    (results / "config.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    studies.to_csv(data / "studies.csv", index=False)
    out = results / "report" / "report.html"
    document.build_report(
        results, data_dir_or_config=data, out_path=out,
        outputs=[f"tables/{n}.csv" for n in tables],
    )  # fmt: skip
    text = out.read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", " ", text)).replace("−", "-")
    return re.sub(r"\s+", " ", text)


def test_opens_with_the_summary_of_findings(report):
    summary = report[report.index("1. Summary") :]
    assert summary.index("Table 1. GRADE summary of findings") < summary.index(
        "What the evidence says"
    )
    assert "very low" in summary[:3000]
    assert "The evidence is very uncertain about the effect of adding microneedling" in report


def test_names_the_primary_answer_and_why_intervals_differ(report):
    assert "The primary answer is the pre-specified univariate random-effects model" in report
    assert "k - 1 = 2 degrees of freedom (critical value 4.30" in report
    assert "'contain' degrees of freedom, 4 (critical value 2.78)" in report


def test_states_probabilities_of_benefit_and_loss(report):
    res = bayes.fit(YI["SMD"], np.sqrt(VI["SMD"]), bayes.HalfNormal(0.5))
    benefit = f"{100 * float(res.prob_mu_greater(0.2)):.1f}%"
    loss = f"{100 * float(res.prob_mu_less(-0.2)):.1f}%"
    assert (
        f"probability of {benefit} that the average effect is a noticeable benefit and of "
        f"{loss} that it is a noticeable loss" in report
    )
    assert "How probable is a noticeable benefit, and a loss?" in report


def test_methods_state_every_rule_and_model(report):
    methods = report[report.index("2. Methods") :]
    for rule in grade.rules_text(CONFIG).values():
        assert re.sub(r"\s+", " ", rule).replace("−", "-") in methods
    for words in ("Arm-based longitudinal model (a multilevel model",
                  "Bayesian random-effects meta-analysis: the normal-normal hierarchical model",
                  "The next trial (Sutton et al. 2007"):  # fmt: skip
        assert words in methods


def test_arm_model_terms_in_words(report):
    assert "C(week)12:experimental" not in report
    assert "minoxidil + microneedling minus minoxidil: difference in mean change, week 12" in report


def test_says_how_much_the_bayesian_answer_owes_to_the_prior(report):
    """MD: the medians across the priors move by more than the credible interval's width, the
    default prior's scale is set by the one trial with nearly all the precision (k2018, vi 0.16
    against 144 and 1094): the report says so, naming it; SMD: the prior moves it little."""
    assert "It depends on the prior: with 3 trials" in report
    assert "k2018 carries 100% of the trials' precision and so sets that scale" in report
    assert "the trials' estimates span 67.5 hairs/cm²" in report
    assert "not an answer in itself; on the standardised scale (below) it depends much less" in (
        report
    )


def test_an_answer_the_prior_barely_moves_is_not_called_prior_dependent():
    """Ten homogeneous trials: the data pin tau down and the priors of the panel agree; the
    paragraph says the prior moves the answer little (measured), not that it depends on it."""
    from hairtrial.report.evidence_text import intervals_paragraphs

    rng = np.random.default_rng(5)
    k = 10
    vi = rng.uniform(20.0, 40.0, k)
    yi = 30.0 + rng.normal(0.0, np.sqrt(vi))
    fit = univariate.fit(yi, vi, method="REML", ci_method="adhoc")
    model = pd.Series({"outcome": "hair_density", "week": 12, "measure": "MD",
                       **fit.summary_frame().iloc[0].to_dict()})  # fmt: skip
    eff = pd.DataFrame(
        {"outcome": "hair_density", "week": 12, "measure": "MD",
         "study": [f"s{i}" for i in range(k)], "yi": yi, "vi": vi, "n_control": 40,
         "n_experimental": 40, "unit": "hairs/cm2"}
    )  # fmt: skip
    outcomes = pd.DataFrame(
        {"outcome": ["hair_density"], "label": ["Hair density"], "kind": ["continuous"],
         "direction": ["benefit"], "unit": ["hairs/cm2"], "mid": [np.nan],
         "mid_source": ["not established"]}
    )  # fmt: skip
    b = abayes.bayes_tables(eff, outcomes, CONFIG)
    tables = {
        "study_effects": eff,
        "bayes": b["bayes"],
        "bayes_sensitivity": b["bayes_sensitivity"],
    }
    text = " ".join(intervals_paragraphs(tables, CONFIG, model))
    assert "moves this answer little" in text
    assert "depends on the prior" not in text and "not an answer in itself" not in text


def test_a_run_on_synthetic_trials_says_so_first(tmp_path):
    """Synthetic studies given as arm-level data only (no participant-level tables): the
    report's title and its first paragraph say the data are synthetic."""
    results, data = tmp_path / "results", tmp_path / "data"
    (results / "tables").mkdir(parents=True)
    data.mkdir()
    fit = univariate.fit(YI["MD"], VI["MD"], method="REML", ci_method="adhoc")
    meta = pd.DataFrame(
        [{"outcome": "hair_density", "week": 12, "measure": "MD",
          **fit.summary_frame().iloc[0].to_dict()}]
    )  # fmt: skip
    eff = pd.DataFrame(
        {"outcome": "hair_density", "week": 12, "measure": "MD",
         "study": ["a2024", "d2013", "k2018"], "yi": YI["MD"], "vi": VI["MD"],
         "weight_pct": fit.weights, "n_control": [18, 50, 34],
         "n_experimental": [18, 50, 34], "unit": "hairs/cm2"}
    )  # fmt: skip
    for name, df in (("meta_analysis", meta), ("study_effects", eff)):
        write_csv(df, results / "tables" / f"{name}.csv")
    (results / "config.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    out = results / "report" / "report.html"

    def build(source: str) -> str:
        pd.DataFrame(
            {"study": ["a2024", "d2013", "k2018"], "primary": "yes", "source": source}
        ).to_csv(data / "studies.csv", index=False)
        document.build_report(
            results, data_dir_or_config=data, out_path=out,
            outputs=["tables/meta_analysis.csv", "tables/study_effects.csv"],
        )  # fmt: skip
        return re.sub(r"\s+", " ", html.unescape(out.read_text(encoding="utf-8")))

    text = build("hairtrial.data.simulate seed=3")
    assert "<title>SYNTHETIC DATA (example)" in text
    body = re.sub(r"<[^>]+>", " ", text[text.index("1. Summary") :])
    first = body.split("SYNTHETIC DATA: the trials of this run were generated", 1)
    assert len(first) == 2 and "hairtrial.data.simulate seed=3" in first[1][:200]
    assert "pools randomised trials" not in first[0]  # before everything else
    assert "SYNTHETIC" not in build("Abstract, Results")
