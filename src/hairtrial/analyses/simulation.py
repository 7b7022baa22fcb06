"""The simulation study of issue 13: plan, jobs, aggregation (Morris, White & Crowther 2019).

The plan is ``config/simulation_study.yaml`` (validated by
``resources/simulation_study.schema.yaml``). The study is split into jobs, one per scenario and
chunk of replicates (:func:`jobs`); :func:`run_job` simulates the chunk's evidence bases
(:mod:`hairtrial.data.simulate_reports`), derives each trial's effect and variance from what it
reports with the pipeline's derivation rules (:mod:`hairtrial.derive`), fits every method
(:mod:`hairtrial.models.batched`, :mod:`hairtrial.models.bayes_batched`,
:mod:`hairtrial.models.binary`) and returns, per method, the sums that the performance
measures need (:data:`SUM_COLUMNS`), so a job's file is small. :func:`performance` combines
the chunks' moments (in chunk order, Chan's pairwise rule) and computes the measures with
their Monte Carlo SEs.

Determinism: job (scenario, chunk) draws from
``SeedSequence(seed, spawn_key=(crc32(scenario), chunk))``, so its numbers do not depend on
which jobs run, where, or in which order; the moments are written with ``repr`` (exact) and
combined in chunk order.

Performance measures (``n`` replicates with an estimate and an interval; ``e`` the error
``estimate - effect``; Morris et al. 2019, Table 6): bias ``mean(e)`` (MC SE
``empse / sqrt(n)``); empirical SE ``sd(estimate)`` (MC SE ``empse / sqrt(2 (n - 1))``); RMSE
``sqrt(mean(e^2))`` (MC SE by the delta method, ``sd(e^2) / (2 RMSE sqrt(n))``); coverage
(MC SE ``sqrt(c (1 - c) / n)``); mean interval width (MC SE ``sd(width) / sqrt(n)``); rejection
rate, the share of intervals excluding 0 (power, or the type I error when the effect is 0;
MC SE as coverage). The point estimate of a Bayesian model is its posterior median, its
interval the central posterior interval; binary methods estimate the log odds ratio.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from numpy.typing import NDArray

from hairtrial.analyses.config import RESOURCES, validate_schema
from hairtrial.data import simulate_reports as sim
from hairtrial.derive import dispersion, effects
from hairtrial.derive.binary import binary_effects
from hairtrial.models import binary
from hairtrial.models.batched import fit_batched
from hairtrial.models.bayes import default_tau_prior_scale
from hairtrial.models.bayes_batched import fit_bayes_batched

__all__ = [
    "PERFORMANCE_COLUMNS",
    "SCHEMA_PATH",
    "SUM_COLUMNS",
    "job_seed",
    "jobs",
    "load_study",
    "performance",
    "read_sums",
    "run_job",
    "scenarios",
    "write_sums",
]

SCHEMA_PATH = RESOURCES / "simulation_study.schema.yaml"

#: Columns of a job's file: the method, then the sums the measures need.
SUM_COLUMNS = [
    "scenario",
    "chunk",
    "family",
    "method",
    "ci",
    "replicates",
    "n",
    "err_mean",
    "err_m2",
    "sq_mean",
    "sq_m2",
    "width_mean",
    "width_m2",
    "cover",
    "reject",
]

#: Columns of ``performance.csv``.
PERFORMANCE_COLUMNS = [
    "scenario",
    "label",
    "outcome",
    "measure",
    "k",
    "i2",
    "tau",
    "effect",
    "family",
    "method",
    "ci",
    "replicates",
    "n",
    "coverage",
    "coverage_mcse",
    "bias",
    "bias_mcse",
    "empse",
    "empse_mcse",
    "rmse",
    "rmse_mcse",
    "width",
    "width_mcse",
    "rejection",
    "rejection_mcse",
    "rejection_is",
]


# ------------------------------------------------------------------------------------ plan


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


def jobs(plan: dict[str, Any]) -> list[tuple[str, int]]:
    """(scenario, chunk) of every job."""
    n_chunks = math.ceil(plan["replicates"] / plan["chunk_size"])
    return [(s, c) for s in plan["scenario_list"] for c in range(n_chunks)]


def job_seed(plan: dict[str, Any], scenario: str, chunk: int) -> np.random.SeedSequence:
    """The job's seed sequence: from the root seed, the scenario's name and the chunk."""
    return np.random.SeedSequence(plan["seed"], spawn_key=(zlib.crc32(scenario.encode()), chunk))


# ------------------------------------------------------------------------------ one job


def _derive_continuous(
    rep: sim.ContinuousReports, measure: str, assumptions: dict[str, float]
) -> tuple[NDArray, NDArray, NDArray]:
    """Effect, variance and mask per trial, by the pipeline's derivation rules."""
    fmt = rep.fmt
    code = {name: i for i, name in enumerate(sim.FORMATS)}
    n_e, n_c = rep.n_e.astype(float), rep.n_c.astype(float)
    mean_e, mean_c = rep.mean_e.copy(), rep.mean_c.copy()
    sd_e, sd_c = rep.sd_e.copy(), rep.sd_c.copy()
    ok = np.ones(fmt.shape, bool)

    lev = fmt == code["levels"]
    r0 = assumptions["change_sd_correlation"]
    mean_e[lev] = rep.mean_e[lev] - rep.base_mean_e[lev]
    mean_c[lev] = rep.mean_c[lev] - rep.base_mean_c[lev]
    sd_e[lev] = dispersion.sd_change_from_levels(rep.base_sd_e[lev], rep.sd_e[lev], r0)
    sd_c[lev] = dispersion.sd_change_from_levels(rep.base_sd_c[lev], rep.sd_c[lev], r0)

    pf = (fmt == code["p_exact"]) | (fmt == code["p_bound"])
    md = mean_e - mean_c
    usable = pf & (md != 0)  # no SD can be derived from a zero difference: trial left out
    ok &= ~(pf & ~usable)
    p = np.where(rep.p_is_bound, rep.p * assumptions["p_bound_factor"], rep.p)
    sp = dispersion.pooled_sd_from_p(md[usable], n_e[usable], n_c[usable], p[usable])
    sd_e[usable] = sp
    sd_c[usable] = sp
    sd_e[pf & ~usable] = sd_c[pf & ~usable] = 1.0  # placeholders, masked

    split = fmt == code["split"]
    rs = assumptions["split_scalp_correlation"]
    par = ~split
    yi = np.empty(fmt.shape)
    vi = np.empty(fmt.shape)
    if measure == "MD":
        yi[par], vi[par] = effects.mean_difference(
            mean_e[par], sd_e[par], n_e[par], mean_c[par], sd_c[par], n_c[par]
        )
        yi[split], vi[split] = effects.paired_mean_difference(
            mean_e[split], sd_e[split], mean_c[split], sd_c[split], n_e[split], rs
        )
    else:
        yi[par], vi[par] = effects.hedges_g(
            mean_e[par], sd_e[par], n_e[par], mean_c[par], sd_c[par], n_c[par]
        )
        yi[split], vi[split] = effects.paired_smd(
            mean_e[split], sd_e[split], mean_c[split], sd_c[split], n_e[split], rs
        )
    ok &= np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    return np.where(ok, yi, np.nan), np.where(ok, vi, np.nan), ok


def _moments(name: str, x: NDArray) -> dict[str, float]:
    """Mean and sum of squared deviations from it (combined across chunks by Chan's rule)."""
    if x.size == 0:
        return {f"{name}_mean": 0.0, f"{name}_m2": 0.0}
    mean = float(np.mean(x))
    return {f"{name}_mean": mean, f"{name}_m2": float(np.sum((x - mean) ** 2))}


def _combine(g: pd.DataFrame, name: str) -> tuple[int, float, float]:
    """(n, mean, M2) of the chunks together (Chan, Golub & LeVeque 1979), in chunk order."""
    n, mean, m2 = 0, 0.0, 0.0
    for nb, mb, m2b in zip(g["n"], g[f"{name}_mean"], g[f"{name}_m2"], strict=True):
        if nb == 0:
            continue
        tot = n + nb
        delta = mb - mean
        mean += delta * nb / tot
        m2 += m2b + delta * delta * n * nb / tot
        n = tot
    return n, mean, m2


def _sums(est: NDArray, lo: NDArray, hi: NDArray, truth: float) -> dict[str, float | int]:
    good = np.isfinite(est) & np.isfinite(lo) & np.isfinite(hi)
    e, lo, hi = est[good], lo[good], hi[good]
    err = e - truth
    width = hi - lo
    return {
        "replicates": int(est.size),
        "n": int(good.sum()),
        **_moments("err", err),
        **_moments("sq", err**2),
        **_moments("width", width),
        "cover": int(np.sum((lo <= truth) & (truth <= hi))),
        "reject": int(np.sum((lo > 0) | (hi < 0))),
    }


def _continuous(plan: dict, sc: dict, rng: np.random.Generator, r: int) -> list[dict]:
    measure = sc["measure"]
    sd_change = sc["sd"] * math.sqrt(2 * (1 - sc["prepost_r"]))
    unit = sd_change if measure == "SMD" else 1.0  # MD-scale value of one unit of the measure
    scen = sim.ContinuousScenario(
        k=sc["k"],
        n_min=sc["n_min"],
        n_max=sc["n_max"],
        delta=sc["effect"] * unit,
        tau=sc["tau"] * unit,
        sd=sc["sd"],
        prepost_r=sc["prepost_r"],
        split_r=sc["split_r"],
        share_levels=sc["share_levels"],
        share_p_exact=sc["share_p_exact"],
        share_p_bound=sc["share_p_bound"],
        share_split=sc["share_split"],
        decimals=sc["decimals"],
    )
    rep = sim.simulate_continuous(scen, r, rng)
    yi, vi, ok = _derive_continuous(rep, measure, plan["assumptions"])
    # a meta-analysis needs two trials; fewer -> no estimate (counted in n vs replicates)
    enough = ok.sum(1) >= 2
    y, v, m = yi[enough], vi[enough], ok[enough]
    full = bool(m.all())
    truth = float(sc["effect"])
    level = plan["level"]
    rows: list[dict] = []

    def widen(*arrs: NDArray) -> list[NDArray]:
        out = []
        for a in arrs:
            b = np.full(r, np.nan)
            b[enough] = a
            out.append(b)
        return out

    for method in plan["methods"]["tau2"]:
        for ci in plan["methods"]["ci"]:
            res = fit_batched(
                y if full else np.where(m, y, 0.0),
                v if full else np.where(m, v, 1.0),
                method=method,
                ci_method=ci,
                level=level,
                tau2_ci=False,
                mask=None if full else m,
            )
            est, lo, hi = widen(res.estimate, res.ci_lower, res.ci_upper)
            rows.append(
                {"family": "frequentist", "method": method, "ci": ci, **_sums(est, lo, hi, truth)}
            )
    n_tot = (rep.n_e + rep.n_c)[enough]
    for spec in plan["methods"]["bayes"]:
        if measure == "SMD":
            base = np.full(y.shape[0], default_tau_prior_scale("SMD"))
        else:  # 0.5 x unit-information SD, per replicate (bayes.uisd, masked)
            base = 0.5 * np.sqrt(
                np.sum(np.where(m, n_tot, 0), 1) / np.sum(np.where(m, 1 / v, 0), 1)
            )
        res_b = fit_bayes_batched(
            y, v, prior=spec["prior"], scale=spec["scale"] * base, level=level, mask=m
        )
        est, lo, hi = widen(res_b.mu_median, res_b.mu_lower, res_b.mu_upper)
        name = f"{spec['prior']} x{spec['scale']:g}"
        rows.append(
            {"family": "bayesian", "method": name, "ci": "posterior", **_sums(est, lo, hi, truth)}
        )
    return rows


_IV = {"IV-FE": ("FE", "z"), "IV-DL": ("DL", "z"), "IV-REML-knha": ("REML", "knha")}


def _binary(plan: dict, sc: dict, rng: np.random.Generator, r: int) -> list[dict]:
    scen = sim.BinaryScenario(
        k=sc["k"],
        n_min=sc["n_min"],
        n_max=sc["n_max"],
        control_risk=sc["control_risk"],
        odds_ratio=sc["effect"],
        tau=sc["tau"],
        control_sd=sc.get("control_sd", 0.5),
    )
    rep = sim.simulate_binary(scen, r, rng)
    truth = math.log(sc["effect"])
    level = plan["level"]
    tables = (rep.events_e, rep.n_e, rep.events_c, rep.n_c)
    # inverse variance: escalc's log OR per table (binary.inverse_variance's rules: 1/2 added
    # to tables with a zero cell, double-zero tables left out), then the batched model
    es = binary_effects(*(t.ravel() for t in tables), measure="OR")
    yi = es["yi"].to_numpy().reshape(r, -1)
    vi = es["vi"].to_numpy().reshape(r, -1)
    keep = es["included"].to_numpy().reshape(r, -1) & (np.nan_to_num(vi) > 0)
    some = keep.any(1)
    rows = []
    for method in plan["methods"]["binary"]:
        est, lo, hi = np.full(r, np.nan), np.full(r, np.nan), np.full(r, np.nan)
        if method in _IV:
            model, ci = _IV[method]
            res = fit_batched(
                np.where(keep, yi, 0.0)[some],
                np.where(keep, vi, 1.0)[some],
                method=model,
                ci_method=ci,
                level=level,
                tau2_ci=False,
                mask=keep[some],
            )
            est[some], lo[some], hi[some] = res.estimate, res.ci_lower, res.ci_upper
            name = f"IV-{model}"
        else:  # Mantel-Haenszel and Peto: the pipeline's functions, table set by table set
            for i in range(r):
                cells = (t[i] for t in tables)
                if method == "MH":
                    res_i = binary.mantel_haenszel(*cells, measure="OR", level=level)
                else:
                    res_i = binary.peto(*cells, level=level)
                est[i], lo[i], hi[i] = res_i.estimate, res_i.ci_lower, res_i.ci_upper
            name, ci = method, "z"
        rows.append({"family": "binary", "method": name, "ci": ci, **_sums(est, lo, hi, truth)})
    return rows


def run_job(plan: dict[str, Any], scenario: str, chunk: int) -> pd.DataFrame:
    """Simulate and analyse one chunk of one scenario; the sums per method (:data:`SUM_COLUMNS`)."""
    sc = plan["scenario_list"][scenario]
    size = plan["chunk_size"]
    r = min(size, plan["replicates"] - chunk * size)
    if r <= 0:
        raise ValueError(f"chunk {chunk} of scenario {scenario!r} is beyond the replicates")
    rng = np.random.default_rng(job_seed(plan, scenario, chunk))
    fit = _binary if sc.get("outcome", "continuous") == "binary" else _continuous
    rows = fit(plan, sc, rng, r)
    frame = pd.DataFrame([{"scenario": scenario, "chunk": chunk, **row} for row in rows])
    return frame[SUM_COLUMNS]


def write_sums(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a job's sums exactly (floats by ``repr``), byte-for-byte reproducibly."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUM_COLUMNS)
    for row in frame[SUM_COLUMNS].itertuples(index=False):
        w.writerow([repr(x) if isinstance(x, float) else x for x in row])
    Path(path).write_text(buf.getvalue(), encoding="utf-8")


def read_sums(paths: list[str | Path]) -> pd.DataFrame:
    """The jobs' sums, concatenated in (scenario, chunk, row) order."""
    frames = [pd.read_csv(p) for p in paths]  # pandas 3 reads floats round-trip
    out = pd.concat(frames, ignore_index=True)
    return out


# ----------------------------------------------------------------------- performance


def _mcse_prop(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n > 0 else math.nan


def performance(sums: pd.DataFrame, plan: dict[str, Any]) -> pd.DataFrame:
    """Measures with Monte Carlo SEs per scenario and method (:data:`PERFORMANCE_COLUMNS`)."""
    rows = []
    key = ["scenario", "family", "method", "ci"]
    order = {s: i for i, s in enumerate(plan["scenario_list"])}
    for (scen, family, method, ci), g in sums.groupby(key, sort=False):
        sc = plan["scenario_list"][scen]
        g = g.sort_values("chunk", kind="stable")
        n = int(g["n"].sum())
        row = {
            "scenario": scen,
            "label": sc["label"],
            "outcome": sc.get("outcome", "continuous"),
            "measure": "logOR" if sc.get("outcome") == "binary" else sc["measure"],
            "k": sc["k"],
            "i2": math.nan if sc["i2"] is None else sc["i2"],
            "tau": sc["tau"],
            "effect": sc["effect"],
            "family": family,
            "method": method,
            "ci": ci,
            "replicates": int(g["replicates"].sum()),
            "n": n,
        }
        if n >= 2:
            _, bias, m2_err = _combine(g, "err")
            empse = math.sqrt(m2_err / (n - 1))
            _, mse, m2_sq = _combine(g, "sq")
            var_e2 = m2_sq / (n - 1)
            rmse = math.sqrt(mse)
            _, wid, m2_w = _combine(g, "width")
            var_w = m2_w / (n - 1)
            cov = int(g["cover"].sum()) / n
            rej = int(g["reject"].sum()) / n
            row.update(
                coverage=cov,
                coverage_mcse=_mcse_prop(cov, n),
                bias=bias,
                bias_mcse=empse / math.sqrt(n),
                empse=empse,
                empse_mcse=empse / math.sqrt(2 * (n - 1)),
                rmse=rmse,
                rmse_mcse=math.sqrt(var_e2 / n) / (2 * rmse) if rmse > 0 else math.nan,
                width=wid,
                width_mcse=math.sqrt(var_w / n),
                rejection=rej,
                rejection_mcse=_mcse_prop(rej, n),
            )
        null = sc["effect"] == (1.0 if sc.get("outcome") == "binary" else 0.0)
        row["rejection_is"] = "type_I_error" if null else "power"
        rows.append(row)
    out = pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS)
    out["_o"] = out["scenario"].map(order)
    out = out.sort_values(["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return out
