"""The simulation study's plan: read, validated, expanded into scenarios and jobs.

Apart from :mod:`hairtrial.analyses.simulation` (which simulates and fits) because Snakemake
reads the plan whenever it parses the workflow (``workflow/rules/simulation.smk`` lists the
study's jobs): this module imports only the config code, so a run that is not the study does
not import the simulation and its models (~0.7 s). :mod:`hairtrial.analyses.simulation`
re-exports these names.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import yaml

from hairtrial.analyses.config import RESOURCES, ConfigError, validate_schema

__all__ = [
    "SCHEMA_PATH", "PlanError", "chunk_size", "jobs", "load_study", "plan_error_message",
    "scenarios",
]  # fmt: skip

SCHEMA_PATH = RESOURCES / "simulation_study.schema.yaml"


#: What :func:`load_study` raises for a plan it cannot use: a file that cannot be read, YAML
#: that cannot be parsed, a plan that breaks a rule of its schema.
PlanError = (OSError, UnicodeDecodeError, yaml.YAMLError, ConfigError)


def plan_error_message(path: str | Path, err: BaseException) -> str:
    """A rejected plan in words for the user: the file and what is wrong with it.

    Examples
    --------
    >>> print(plan_error_message("plan.yaml", ConfigError("config key 'seed': missing")))
    Simulation plan rejected; nothing was run or written.
    plan.yaml: config key 'seed': missing
    """
    return f"Simulation plan rejected; nothing was run or written.\n{path}: {err}"


def load_study(path: str | Path) -> dict[str, Any]:
    """Read and validate the study plan (defaults filled in); scenarios expanded.

    Returns
    -------
    dict
        The plan, with ``scenario_list``: name -> complete scenario (defaults, grid values,
        the scenario's own fields, and ``tau`` computed from ``i2`` where not given).
    """
    path = Path(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    plan = validate_schema(raw, SCHEMA_PATH)
    # validation sorts the keys; the grid's and the scenarios' order is the file's
    plan["grid"] = {key: plan["grid"][key] for key in raw.get("grid") or {}}
    plan["scenarios"] = {key: plan["scenarios"][key] for key in raw["scenarios"] or {}}
    plan["scenario_list"] = scenarios(plan)
    return plan


def _name(values: dict[str, Any]) -> str:
    return "_".join(f"{k}{v:g}" if k == "k" else f"{k}-{v:g}" for k, v in values.items())


def scenarios(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every scenario of the plan: the grid's, then the named ones."""
    base = plan.get("defaults") or {}
    out: dict[str, dict[str, Any]] = {}
    grid = plan.get("grid") or {}
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else ():
        values = dict(zip(keys, combo, strict=True))
        out[_name(values)] = {**base, **values}
    for name, sc in (plan.get("scenarios") or {}).items():
        out[name] = {**base, **sc}
    for name, sc in out.items():
        sc.setdefault("label", name.replace("_", ", "))
        sc["i2"] = sc.get("i2") if sc.get("tau") is None else None
        sc["tau"] = _tau(sc)
    return out


def _tau(sc: dict[str, Any]) -> float:
    """tau on the measure's scale: given, or from the I2 of a typical trial."""
    if sc.get("tau") is not None:
        return float(sc["tau"])
    i2 = float(sc.get("i2") or 0.0)
    n = (sc["n_min"] + sc["n_max"]) / 2.0
    if sc.get("outcome", "continuous") == "binary":
        p = sc["control_risk"]
        v = 2.0 / (n * p * (1 - p))
    elif sc.get("measure", "MD") == "SMD":
        v = 2.0 / n
    else:
        sd_change = sc["sd"] * math.sqrt(2 * (1 - sc["prepost_r"]))
        v = 2.0 * sd_change**2 / n
    return math.sqrt(i2 / (1.0 - i2) * v)


def chunk_size(plan: dict[str, Any], scenario: str) -> int:
    """Replicates per job of the scenario: its own ``chunk_size``, else the plan's."""
    return int(plan["scenario_list"][scenario].get("chunk_size") or plan["chunk_size"])


def jobs(plan: dict[str, Any]) -> list[tuple[str, int]]:
    """(scenario, chunk) of every job."""
    out = []
    for s in plan["scenario_list"]:
        out += [(s, c) for c in range(math.ceil(plan["replicates"] / chunk_size(plan, s)))]
    return out
