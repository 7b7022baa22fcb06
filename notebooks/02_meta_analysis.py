# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The primary meta-analysis
#
# Random-effects meta-analysis of the change from baseline, minoxidil + microneedling minus
# minoxidil alone, per outcome, week and effect measure. The primary model is the first
# tau² estimator and CI method of the config (default REML with the Hartung-Knapp CI that
# is never narrower than Wald, as the Cochrane Handbook 2022 recommends). Run `make run`
# first.

# %% tags=["parameters"]
project_root = ".."
results_dir = "../results/default"
config_path = "config/config.yaml"  # relative to project_root
outcome = "hair_density"
week = 12

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from hairtrial.analyses import ipd
from hairtrial.analyses.config import load_config, resolve_data_paths
from hairtrial.analyses.primary import primary_model
from hairtrial.plots import show, watermark
from hairtrial.report import figures

config = resolve_data_paths(load_config(Path(project_root) / config_path), project_root)
tables = Path(results_dir) / "tables"
meta_table = pd.read_csv(tables / "meta_analysis.csv", keep_default_na=False, na_values=[""])
study_effects = pd.read_csv(tables / "study_effects.csv", keep_default_na=False, na_values=[""])
method, ci_method, _ = primary_model(config)  # the one rule for the primary model
primary = meta_table[(meta_table.method == method) & (meta_table.ci_method == ci_method)]
label = ipd.synthetic_label(config)  # drawn across every figure below; None for real data
notice = ipd.synthetic_notice(config)  # None for real data
if notice:
    display(Markdown(notice))

# %% [markdown]
# ## Primary model, every outcome and week

# %%
primary[
    [
        "outcome",
        "week",
        "measure",
        "k",
        "estimate",
        "ci_lower",
        "ci_upper",
        "pvalue",
        "pi_lower",
        "pi_upper",
        "tau2",
        "I2",
        "Q",
        "Q_pvalue",
        "notes",
    ]
]

# %% [markdown]
# ## Forest plots of the chosen outcome and week

# %%
for measure in config["measures"]:
    rows = study_effects[
        (study_effects.outcome == outcome)
        & (study_effects.week == week)
        & (study_effects.measure == measure)
    ]
    if rows.empty:
        display(Markdown(f"No {measure} comparison for {outcome} at week {week}."))
        continue
    fig = figures.forest_figure_object(
        meta_table, study_effects, config, outcome=outcome, week=week, measure=measure
    )
    display(show(watermark(fig, label)))

# %% [markdown]
# ## How much does the answer depend on the estimator and the CI method?
#
# The same data under every tau² estimator and CI method of the config. With three small
# trials, the CI method matters far more than the estimator.

# %%
sel = meta_table[(meta_table.outcome == outcome) & (meta_table.week == week)]
sel.pivot_table(
    index=["measure", "method"], columns="ci_method", values=["ci_lower", "ci_upper"]
).round(3)

# %% [markdown]
# ## Study weights and provenance in the primary model

# %%
study_effects[(study_effects.outcome == outcome) & (study_effects.week == week)][
    ["measure", "study", "yi", "ci_lower", "ci_upper", "weight_pct", "provenance"]
]
