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
# # The arm-based longitudinal model
#
# Every arm's mean change from baseline at every reported week enters one multilevel model
# (metafor's `rma.mv` in R): fixed effects for the control mean change at each week and the
# experimental-minus-control difference at each week; random effects for trials and for arms
# within trials; known sampling covariance, with weeks of one arm correlated. It answers how
# the gain from adding microneedling evolves over weeks and how much it varies between
# trials. Run `make run` first.

# %% tags=["parameters"]
project_root = ".."
results_dir = "../results/default"
config_path = "config/config.yaml"  # relative to project_root
outcome = "hair_density"

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from hairtrial.analyses import ipd
from hairtrial.analyses.config import load_config, resolve_data_paths
from hairtrial.plots import show, watermark
from hairtrial.report import figures

config = resolve_data_paths(load_config(Path(project_root) / config_path), project_root)
tables = Path(results_dir) / "tables"


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(tables / f"{name}.csv", keep_default_na=False, na_values=[""])


label = ipd.synthetic_label(config)  # drawn across every figure below; None for real data
notice = ipd.synthetic_notice(config)  # None for real data
if notice:
    display(Markdown(notice))
fit = read("arm_model_fit")
display(Markdown(f"Model specification: `{config['arm_model']}`"))

# %% [markdown]
# ## Fit of each outcome
#
# `notes` names every boundary estimate, non-identifiable component and input that could not
# be modelled.

# %%
fit

# %% [markdown]
# ## Experimental minus control, week by week

# %%
contrasts = read("arm_model_contrasts")
contrasts[contrasts.outcome == outcome]

# %% [markdown]
# ## Variance components, with profile-likelihood CIs

# %%
variance = read("arm_model_variance")
variance[variance.outcome == outcome]

# %% [markdown]
# ## Trajectories

# %%
if (fit.outcome == outcome).any():
    display(show(watermark(figures.trajectory_figure_object(
        read("arm_model_means"), contrasts,
        pd.read_csv(Path(results_dir) / "derived" / "arm_model_data.csv"),
        config, outcome=outcome), label)))  # fmt: skip

# %% [markdown]
# ## All coefficients

# %%
coefficients = read("arm_model_coefficients")
coefficients[coefficients.outcome == outcome]
