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
# # The evidence: which trials, arms, weeks and outcomes — and which numbers are derived
#
# This notebook shows what the analysis stands on: the trials of topical minoxidil with and
# without microneedling, what each reported, and which numbers the pipeline had to derive
# (and how). Run `make run` first; the notebook reads `results/` and the data files.

# %% tags=["parameters"]
project_root = ".."
results_dir = "../results/default"
config_path = "config/config.yaml"  # relative to project_root

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from hairtrial.analyses import ipd, primary
from hairtrial.analyses.config import load_config, resolve_data_paths
from hairtrial.data import provenance, validate

pd.set_option("display.max_colwidth", 80)
config = resolve_data_paths(load_config(Path(project_root) / config_path), project_root)
tables = Path(results_dir) / "tables"
arms, studies = validate.read_inputs(config["data"]["arms"], config["data"]["studies"])
notice = ipd.synthetic_notice(config)  # None for real data
if notice:
    display(Markdown(notice))

# %% [markdown]
# ## Trials
#
# Every trial in `studies.csv`, with whether it belongs to the primary comparison
# (`primary`) and whether it gave numbers the analysis can use (`status`).

# %%
studies[["study", "year", "design", "primary", "status", "category", "sex", "n_randomised"]]

# %% [markdown]
# ## What each trial reported
#
# One row per trial, arm, week and outcome, as published (`stat`: `value` = level at that
# week, `change` = change from baseline). Empty cells were not reported.

# %%
arms[
    [
        "study",
        "arm",
        "treatment",
        "week",
        "outcome",
        "unit",
        "n",
        "mean",
        "stat",
        "sd",
        "p_value",
        "p_relation",
        "flags",
    ]
]

# %% [markdown]
# ## Which numbers are reported and which are derived
#
# `data_quality.csv` lists every number used that was not printed as such, with the rule
# that produced it and its inputs. The provenance codes mean:

# %%
display(Markdown("\n".join(f"- `{code}`: {text}" for code, text in provenance.PROVENANCE.items())))
quality = pd.read_csv(tables / "data_quality.csv")
quality.groupby(["quantity", "provenance"]).size().rename("numbers").reset_index()

# %%
quality

# %% [markdown]
# ## What could not be used, and why

# %%
pd.read_csv(tables / "excluded.csv")

# %% [markdown]
# ## Comparisons entering the meta-analysis
#
# Experimental (minoxidil + microneedling) minus control (minoxidil alone) change from
# baseline, per trial, outcome and week, with the provenance of every number behind it.

# %%
effects, _, _ = primary.prepare(config)
effects[
    [
        "outcome",
        "week",
        "measure",
        "study",
        "yi",
        "vi",
        "n_experimental",
        "n_control",
        "provenance",
        "flags",
    ]
]
