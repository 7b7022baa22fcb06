"""Figures of the evidence job, drawn from its tables as written (nothing is fitted here).

The figure list is :func:`hairtrial.analyses.evidence.evidence_figure_list`.

* ``summary_of_findings``: the GRADE judgements of every outcome
  (:func:`hairtrial.plots.grade.sof_plot`);
* ``bayes_posterior_{outcome}_week{w}_{measure}``: posterior of the mean effect with the MIDs
  and the probabilities (:func:`hairtrial.plots.bayes.posterior_plot`);
* ``bayes_priors_...``: the answer under each prior
  (:func:`hairtrial.plots.bayes.prior_sensitivity_plot`);
* ``next_trial_...``: probability that a new trial settles the question against its size
  (:func:`hairtrial.plots.bayes.next_trial_plot`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from hairtrial.core import vocab

__all__ = ["evidence_figure_object"]

KEYS = list(vocab.KEYS)


def _sel(df: pd.DataFrame, key: tuple) -> pd.DataFrame:
    o, w, m = key
    return df[(df["outcome"] == o) & (df["week"] == int(w)) & (df["measure"] == m)].reset_index(
        drop=True
    )


def _units(study_effects: pd.DataFrame | None) -> dict[str, str]:
    if study_effects is None or "unit" not in study_effects.columns:
        return {}
    return dict(zip(study_effects["outcome"], study_effects["unit"].astype(str), strict=False))


def _xlabel(measure: str, unit: str) -> str:
    names = {"RR": "log risk ratio", "OR": "log odds ratio", "RD": "Risk difference"}
    if measure in names:
        return names[measure][:1].upper() + names[measure][1:]
    if measure in vocab.MEASURE_AXIS_LABELS:
        from hairtrial.data.units import UNIT_LABELS

        return vocab.MEASURE_AXIS_LABELS[measure].format(unit=UNIT_LABELS.get(unit, unit))
    return measure


def evidence_figure_object(
    row: Mapping,
    tables: Mapping[str, pd.DataFrame],
    data: Mapping[str, pd.DataFrame],
    config: Mapping,
):
    """The Figure of one row of :func:`hairtrial.analyses.evidence.evidence_figure_list`,
    from the tables as written."""
    from hairtrial.analyses.bayes import mu_prior_from_config
    from hairtrial.plots import bayes as pbayes
    from hairtrial.plots.grade import sof_plot

    sof = tables["summary_of_findings"]
    kind = row["kind"]
    if kind == "summary_of_findings":
        return sof_plot(sof, title="Summary of findings: certainty of the evidence (GRADE)")
    key = (row["outcome"], int(row["week"]), row["measure"])
    o, w, m = key
    parts = [tables[n] for n in ("study_effects", "binary_study_effects") if n in tables]
    st = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    units = _units(st)
    directions = dict(zip(sof["outcome"], sof["direction"], strict=False))
    labels = dict(zip(sof["outcome"], sof["label"], strict=False))
    title = f"{labels.get(o, o.replace('_', ' ').capitalize())}, week {w} ({m})"
    xlabel = _xlabel(m, units.get(o, ""))
    mu = mu_prior_from_config(config.get("bayes", {}).get("mu_prior", {}))
    mu_text = "flat (improper uniform)" if str(mu).startswith("uniform") else str(mu)
    if kind == "bayes_posterior":
        brow = _sel(tables["bayes"], key).iloc[0]
        return pbayes.posterior_plot(
            _sel(data["bayes_posterior"], key), brow, xlabel=xlabel,
            title=f"{title}: posterior of the mean effect",
            benefit_direction=-1 if directions.get(o) == "harm" else 1,
            mid_label="SMD ±0.2 threshold" if m == "SMD" else "MID", mu_prior=mu_text,
        )  # fmt: skip
    if kind == "bayes_priors":
        return pbayes.prior_sensitivity_plot(
            _sel(tables["bayes_sensitivity"], key), xlabel=xlabel,
            title=f"{title}: the answer under each prior", mu_prior=mu_text,
        )  # fmt: skip
    if kind == "next_trial":
        tr = _sel(st, key)
        sizes = pd.DataFrame(
            {
                "label": tr["label"].fillna(tr["study"]) if "label" in tr else tr["study"],
                "n_per_arm": (tr["n_control"] + tr["n_experimental"]) / 2.0,
            }
        )
        return pbayes.next_trial_plot(
            _sel(tables["next_trial"], key), sizes, title=f"{title}: the next trial",
            sample_size=_sel(tables["next_trial_sample_size"], key),
        )  # fmt: skip
    raise ValueError(f"unknown evidence figure kind {kind!r}")
