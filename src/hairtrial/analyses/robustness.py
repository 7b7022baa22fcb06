"""Robustness: the pooled estimate under every analytic choice the answer depends on.

Each scenario is the primary analysis with one thing changed: the tau²
estimator and CI method; an assumed correlation (change-SD r, split-scalp r)
over a grid; the rule for p-values reported as bounds; which trials enter
(without trials whose SDs are derived, without high risk-of-bias trials, with
the flagged device categories and co-intervention trials). Each is run for
every measure (MD and SMD), so one table (and one figure per outcome x week x
measure) shows at a glance how far the answer moves.

A scenario that cannot change anything for the data at hand (no study uses the
assumption, no risk-of-bias assessment, no trial left) is still listed, with a
note that says so, rather than silently dropped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pandas as pd

from hairtrial.analyses import ipd, primary
from hairtrial.models import univariate

ROBUSTNESS_COLUMNS = [
    "outcome",
    "week",
    "measure",
    "unit",
    "group",
    "scenario",
    "k",
    "studies",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "pi_lower",
    "pi_upper",
    "tau2",
    "I2",
    "primary",
    "notes",
]
"""Columns of ``results/tables/robustness.csv``."""

DERIVED_SD_CODES = (
    "from_se",
    "from_ci",
    "from_median_iqr",
    "from_median_range",
    "from_five_numbers",
    "from_t",
    "from_p_value",
    "from_p_bound",
    "change_from_levels_r",
)
"""Provenance codes meaning an SD was not reported as such."""

DEFAULT_GRIDS = {
    "change_sd_correlations": [0.2, 0.35, 0.5, 0.65, 0.8],
    "split_scalp_correlations": [0.2, 0.35, 0.5, 0.65, 0.8],
    "p_bound_factors": [1.0, 0.5, 0.1],
}


@dataclass(frozen=True)
class Scenario:
    """One analysis variant: config overrides plus an optional study filter."""

    group: str
    name: str
    overrides: dict = field(default_factory=dict)
    drop_derived_sd: bool = False
    drop_high_rob: bool = False
    method: str | None = None
    ci_method: str | None = None
    uses: str | None = None  # provenance code the scenario acts on (for notes)


def scenarios(config: dict) -> list[Scenario]:
    """The scenarios of the robustness analysis for ``config``.

    Grids come from ``config['robustness']`` (defaults in :data:`DEFAULT_GRIDS`).

    Examples
    --------
    >>> from hairtrial.analyses.config import load_config, DEFAULT_CONFIG
    >>> names = [s.name for s in scenarios(load_config(DEFAULT_CONFIG))]
    >>> names[0]
    'Primary analysis'
    >>> "Including flagged trials" in names
    True
    """
    ma = config["meta_analysis"]
    grids = {**DEFAULT_GRIDS, **config.get("robustness", {})}
    m0, c0, _ = primary.primary_model(config)
    out = [Scenario("Primary", "Primary analysis")]
    for m in ma["tau2_methods"]:
        for c in ma["ci_methods"]:
            if (m, c) != (m0, c0):
                out.append(Scenario("Estimator and CI", f"{m}, {c}", method=m, ci_method=c))
    r0 = config["assumptions"]["change_sd_correlation"]
    for r in grids["change_sd_correlations"]:
        if r != r0:
            out.append(
                Scenario(
                    "Change-SD correlation",
                    f"r = {r:g}",
                    {"assumptions": {"change_sd_correlation": r}},
                    uses="change_from_levels_r",
                )
            )
    rho0 = config["assumptions"]["split_scalp_correlation"]
    for rho in grids["split_scalp_correlations"]:
        if rho != rho0:
            out.append(
                Scenario(
                    "Split-scalp correlation",
                    f"rho = {rho:g}",
                    {"assumptions": {"split_scalp_correlation": rho}},
                    uses="split_scalp_r",
                )
            )
    f0 = config["assumptions"].get("p_bound_factor", 1.0)
    for f in grids["p_bound_factors"]:
        if f != f0:
            out.append(
                Scenario(
                    "SD imputation",
                    f"p < x used as p = {f:g}x",
                    {"assumptions": {"p_bound_factor": f}},
                    uses="from_p_bound",
                )
            )
    out.append(Scenario("Trials", "Excluding trials with derived SDs", drop_derived_sd=True))
    out.append(Scenario("Trials", "Excluding high risk-of-bias trials", drop_high_rob=True))
    if config.get("selection", {}).get("studies", "primary") == "primary":
        out.append(
            Scenario("Trials", "Including flagged trials", {"selection": {"studies": "all"}})
        )
    return out


def _merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def robustness_table(
    config: dict,
    *,
    data: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    effects: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Run every scenario of :func:`scenarios` and tabulate the pooled estimates.

    Parameters
    ----------
    config : dict
        Validated config (the primary analysis).
    data : tuple of pandas.DataFrame, optional
        :func:`hairtrial.analyses.primary.read_data` of ``config``, if already read.
    effects : pandas.DataFrame, optional
        The effects of :func:`hairtrial.analyses.primary.prepare` of ``config`` and ``data``,
        if already prepared (not modified).

    Returns
    -------
    pandas.DataFrame
        :data:`ROBUSTNESS_COLUMNS`, one row per outcome x week x measure x
        scenario; ``primary`` marks the primary analysis; ``notes`` says when a
        scenario changes nothing or leaves too few trials.
    """
    if data is None:
        data = primary.read_data(config)  # once: the scenarios never change `data`
    studies = data[1]
    rob = dict(zip(studies["study"], studies["rob"], strict=True))
    ma = config["meta_analysis"]
    level = float(ma.get("level", 0.95))
    base_eff = primary.prepare(config, data)[0] if effects is None else effects
    keys = base_eff[["outcome", "week", "measure", "unit"]].drop_duplicates()
    by_combo = _by_combo(base_eff)
    # arm-level changes by what they depend on beyond `data`: the scenarios that change
    # another assumption build their comparisons from the same ones
    changes: dict[
        tuple[str, str, float], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list]
    ] = {}
    rows: list[dict] = []
    for sc in scenarios(config):
        cfg = _merge(config, sc.overrides)
        assert "data" not in sc.overrides  # the files read above are those of every scenario
        if sc.overrides:
            r = ipd.resolved_assumptions(cfg)[0]["change_sd_correlation"]
            key = (repr(cfg.get("selection")), repr(cfg.get("outcomes")), float(r))
            if key not in changes:
                changes[key] = primary.arm_level_changes(cfg, data)
            eff = primary.prepare(cfg, data, changes=changes[key])[0]
            groups = _by_combo(eff)
        else:
            eff, groups = base_eff, by_combo
        method = sc.method or primary.primary_model(config)[0]
        ci_method = sc.ci_method or primary.primary_model(config)[1]
        for outcome, week, measure, unit in keys.itertuples(index=False):
            g = groups.get((outcome, week, measure), eff.iloc[:0])
            notes: list[str] = []
            if sc.uses and not g["provenance"].str.contains(sc.uses).any():
                notes.append(f"no trial here uses this assumption ({sc.uses}): same as primary")
            if sc.drop_derived_sd:
                derived = g["provenance"].apply(
                    lambda p: any(c in p.split(";") for c in DERIVED_SD_CODES)
                )
                g = g[~derived]
            if sc.drop_high_rob:
                assessed = [s for s in g["study"] if isinstance(rob.get(s), str)]
                if not assessed:
                    notes.append("risk of bias not assessed for these trials: nothing excluded")
                g = g[[rob.get(s) != "high" for s in g["study"]]]
            row = {
                "outcome": outcome,
                "week": int(week),
                "measure": measure,
                "unit": unit,
                "group": sc.group,
                "scenario": sc.name,
                "k": len(g),
                "studies": ";".join(sorted(g["study"])),
                "primary": sc.group == "Primary",
            }
            if len(g) == 0:
                notes.append("no trials remain")
                rows.append({**row, "notes": "; ".join(notes)})
                continue
            res = univariate.fit(
                g["yi"].to_numpy(float),
                g["vi"].to_numpy(float),
                method=method,
                ci_method=ci_method,
                level=level,
            )
            rows.append(
                {
                    **row,
                    "estimate": res.estimate,
                    "se": res.estimate_se,
                    "ci_lower": res.estimate_ci_lower,
                    "ci_upper": res.estimate_ci_upper,
                    "pvalue": res.estimate_pvalue,
                    "pi_lower": res.pi_lower,
                    "pi_upper": res.pi_upper,
                    "tau2": res.tau2,
                    "I2": res.I2,
                    "notes": "; ".join([*notes, *res.notes]),
                }
            )
    return pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS)


def _by_combo(eff: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The rows of ``eff`` per (outcome, week, measure), in the order of ``eff``."""
    return dict(iter(eff.groupby(["outcome", "week", "measure"], sort=False)))
