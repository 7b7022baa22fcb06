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
# # How robust is the answer?
#
# The primary analysis re-run with one choice changed at a time: the tau² estimator and CI
# method, the assumed correlations, the rule for p-values printed as bounds, and which trials
# enter. Then meta-regression, subgroups, influence and small-study effects where the number
# of trials allows them (the tables say plainly where it does not). Run `make run` first.

# %% tags=["parameters"]
project_root = ".."
results_dir = "../results/default"
config_path = "config/config.yaml"  # relative to project_root
outcome = "hair_density"
week = 12
measure = "MD"

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
label = ipd.synthetic_label(config)  # drawn across every figure below; None for real data
notice = ipd.synthetic_notice(config)  # None for real data
if notice:
    display(Markdown(notice))


def read(name: str) -> pd.DataFrame | None:
    path = tables / f"{name}.csv"
    if not path.exists():
        display(Markdown(f"*{name}.csv is not in {results_dir} (not produced by this run).*"))
        return None
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def select(df: pd.DataFrame | None) -> pd.DataFrame | None:
    if df is None:
        return None
    keep = pd.Series(True, index=df.index)
    for col, val in (("outcome", outcome), ("week", week), ("measure", measure)):
        if col in df.columns:
            keep &= df[col] == val
    return df[keep]


# %% [markdown]
# ## Every scenario on one axis

# %%
robustness = read("robustness")
rows = select(robustness)
if rows is not None and len(rows):
    display(show(watermark(figures.robustness_figure_object(
        rows, outcome=outcome, week=week, measure=measure), label)))  # fmt: skip
rows

# %% [markdown]
# ## Meta-regression, subgroups, influence, small-study effects

# %%
for name in ("meta_regression", "subgroups", "leave_one_out", "influence", "cumulative",
             "small_study"):  # fmt: skip
    display(Markdown(f"### {name.replace('_', ' ').capitalize()}"))
    table = select(read(name))
    if table is not None:
        display(table)
