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

A replicate whose fit gives no estimate or interval, or does not converge (the GLMM's
optimiser, Fisher scoring or a root search of the batched engine), is left out of ``n`` and
counted in ``n_failed``; ``replicates - n - n_failed`` replicates had too few usable trials to
be analysed at all (fewer than two with a derivable SD; binary: every table double-zero).

Heterogeneity and prediction, per method that estimates tau2 (every estimator but FE; the
Bayesian models; binary IV-DL, IV-REML and GLMM), over the same ``n`` replicates: bias,
empirical SE and RMSE of the tau2 estimate against the scenario's ``tau^2`` (Bayesian: the
posterior median of tau2, the square of that of tau), with MC SEs as above; the coverage of the
prediction interval (metafor's ``predict()``; Bayesian: the central posterior predictive
interval) for the true effect of a new trial, ``theta_new ~ N(effect, tau^2)``, and its mean
width. The coverage is the mean over replicates of the probability that theta_new falls in the
replicate's interval, ``Phi((upper - effect) / tau) - Phi((lower - effect) / tau)`` (with tau = 0
whether the interval holds the effect): the expectation of drawing one theta_new per replicate,
computed without drawing it (no random numbers, a smaller MC SE, ``sd / sqrt(n)``).
"""

from __future__ import annotations

import csv
import io
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy  # scipy.special loads on first use (see hairtrial.models)
from numpy.typing import NDArray

from hairtrial.analyses.simulation_plan import SCHEMA_PATH, chunk_size, jobs, load_study, scenarios
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
    "chunk_size",
    "job_seed",
    "jobs",
    "load_study",
    "performance",
    "pi_cover_probability",
    "read_sums",
    "run_job",
    "scenarios",
    "write_sums",
]

#: Columns of a job's file: the method, then the sums the measures need.
SUM_COLUMNS = [
    "scenario",
    "chunk",
    "family",
    "method",
    "ci",
    "replicates",
    "n",
    "n_failed",
    "err_mean",
    "err_m2",
    "sq_mean",
    "sq_m2",
    "width_mean",
    "width_m2",
    "cover",
    "reject",
    "n_tau2",
    "tau2_err_mean",
    "tau2_err_m2",
    "tau2_sq_mean",
    "tau2_sq_m2",
    "n_pi",
    "pi_cover_mean",
    "pi_cover_m2",
    "pi_width_mean",
    "pi_width_m2",
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
    "n_failed",
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
    "tau2_bias",
    "tau2_bias_mcse",
    "tau2_empse",
    "tau2_empse_mcse",
    "tau2_rmse",
    "tau2_rmse_mcse",
    "pi_coverage",
    "pi_coverage_mcse",
    "pi_width",
    "pi_width_mcse",
]


# ------------------------------------------------------------------------------------ plan


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


def _combine(g: pd.DataFrame, name: str, count: str = "n") -> tuple[int, float, float]:
    """(n, mean, M2) of the chunks together (Chan, Golub & LeVeque 1979), in chunk order.

    ``count``: the column with each chunk's number of values (``n``, ``n_tau2``, ``n_pi``).
    """
    n, mean, m2 = 0, 0.0, 0.0
    for nb, mb, m2b in zip(g[count], g[f"{name}_mean"], g[f"{name}_m2"], strict=True):
        if nb == 0:
            continue
        tot = n + nb
        delta = mb - mean
        mean += delta * nb / tot
        m2 += m2b + delta * delta * n * nb / tot
        n = tot
    return n, mean, m2


def pi_cover_probability(lower: NDArray, upper: NDArray, effect: float, tau: float) -> NDArray:
    """P(lower <= theta_new <= upper) for a new trial's true effect theta_new ~ N(effect, tau^2).

    With tau = 0, 1 where the interval holds the effect, else 0.
    """
    if tau == 0:
        return ((lower <= effect) & (effect <= upper)).astype(float)
    return scipy.special.ndtr((upper - effect) / tau) - scipy.special.ndtr((lower - effect) / tau)


def _sums(
    est: NDArray,
    lo: NDArray,
    hi: NDArray,
    truth: float,
    *,
    tau: float = 0.0,
    usable: NDArray | None = None,
    converged: NDArray | None = None,
    tau2: NDArray | None = None,
    pi: tuple[NDArray, NDArray] | None = None,
) -> dict[str, float | int]:
    """A job's sums for one method, per replicate arrays in (NaN: no estimate).

    ``usable``: replicates with enough trials to be analysed (default all); ``converged``: False
    where the fit did not converge (left out, counted as failed); ``tau2``, ``pi``: the tau2
    estimates and the prediction interval (None where the method has none); ``truth`` and
    ``tau``: the true effect and between-trial SD.
    """
    usable = np.ones(est.shape, bool) if usable is None else usable
    good = usable & np.isfinite(est) & np.isfinite(lo) & np.isfinite(hi)
    if converged is not None:
        good &= converged
    e, lo_g, hi_g = est[good], lo[good], hi[good]
    err = e - truth
    width = hi_g - lo_g
    out: dict[str, float | int] = {
        "replicates": int(est.size),
        "n": int(good.sum()),
        "n_failed": int(np.sum(usable & ~good)),
        **_moments("err", err),
        **_moments("sq", err**2),
        **_moments("width", width),
        "cover": int(np.sum((lo_g <= truth) & (truth <= hi_g))),
        "reject": int(np.sum((lo_g > 0) | (hi_g < 0))),
    }
    t2 = np.empty(0) if tau2 is None else tau2[good]
    t2 = t2[np.isfinite(t2)]
    t2_err = t2 - tau**2
    out.update(
        n_tau2=int(t2.size), **_moments("tau2_err", t2_err), **_moments("tau2_sq", t2_err**2)
    )
    p_lo, p_hi = (np.empty(0), np.empty(0)) if pi is None else (pi[0][good], pi[1][good])
    ok = np.isfinite(p_lo) & np.isfinite(p_hi)
    p_lo, p_hi = p_lo[ok], p_hi[ok]
    out.update(
        n_pi=int(p_lo.size),
        **_moments("pi_cover", pi_cover_probability(p_lo, p_hi, truth, tau)),
        **_moments("pi_width", p_hi - p_lo),
    )
    return out


def _continuous(plan: dict, sc: dict, rng: np.random.Generator, r: int, first: int) -> list[dict]:
    del first  # every continuous method is fitted to every replicate
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
    # a meta-analysis needs two trials; fewer -> not analysed (replicates - n - n_failed)
    enough = ok.sum(1) >= 2
    y, v, m = yi[enough], vi[enough], ok[enough]
    full = bool(m.all())
    truth = float(sc["effect"])
    tau = float(sc["tau"])
    level = plan["level"]
    rows: list[dict] = []

    def widen(*arrs: NDArray) -> list[NDArray]:
        out = []
        for a in arrs:
            b = np.full(r, np.nan if a.dtype.kind == "f" else False, dtype=a.dtype)
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
            est, lo, hi, t2, plo, phi = widen(
                res.estimate, res.ci_lower, res.ci_upper, res.tau2, res.pi_lower, res.pi_upper
            )
            (conv,) = widen(res.converged)
            fe = method == "FE"  # tau2 = 0 assumed, not estimated: no tau2 or PI measures
            sums = _sums(
                *(est, lo, hi, truth),
                tau=tau,
                usable=enough,
                converged=conv,
                tau2=None if fe else t2,
                pi=None if fe else (plo, phi),
            )
            rows.append({"family": "frequentist", "method": method, "ci": ci, **sums})
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
        est, lo, hi, t2, plo, phi = widen(
            res_b.mu_median,
            res_b.mu_lower,
            res_b.mu_upper,
            res_b.tau_median**2,  # the posterior median of tau2
            res_b.pred_lower,
            res_b.pred_upper,
        )
        name = f"{spec['prior']} x{spec['scale']:g}"
        sums = _sums(est, lo, hi, truth, tau=tau, usable=enough, tau2=t2, pi=(plo, phi))
        rows.append({"family": "bayesian", "method": name, "ci": "posterior", **sums})
    return rows


_IV = {"IV-FE": ("FE", "z"), "IV-DL": ("DL", "z"), "IV-REML-knha": ("REML", "knha")}


def _glmm(
    tables: tuple[NDArray, ...], rows: NDArray, level: float
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray, NDArray, NDArray]:
    """The GLMM (UM.FS) of each replicate in rows: estimate, CI, tau2, PI and convergence."""
    n = rows.size
    est, lo, hi, t2, plo, phi = (np.full(n, np.nan) for _ in range(6))
    conv = np.zeros(n, bool)
    for j, i in enumerate(rows):
        try:
            res = binary.glmm_um_fs(*(t[i] for t in tables), level=level)
        except (ValueError, ArithmeticError):  # counted as a failed fit, not a crashed job
            continue
        est[j], lo[j], hi[j], t2[j] = res.estimate, res.ci_lower, res.ci_upper, res.tau2
        plo[j], phi[j] = binary.glmm_prediction_interval(res)
        conv[j] = res.converged  # False also where the log odds ratio diverges
    return est, lo, hi, t2, plo, phi, conv


def _binary(plan: dict, sc: dict, rng: np.random.Generator, r: int, first: int) -> list[dict]:
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
    tau = float(sc["tau"])
    level = plan["level"]
    tables = (rep.events_e, rep.n_e, rep.events_c, rep.n_c)
    # inverse variance: escalc's log OR per table (binary.inverse_variance's rules: 1/2 added
    # to tables with a zero cell, double-zero tables left out), then the batched model
    es = binary_effects(*(t.ravel() for t in tables), measure="OR")
    yi = es["yi"].to_numpy().reshape(r, -1)
    vi = es["vi"].to_numpy().reshape(r, -1)
    keep = es["included"].to_numpy().reshape(r, -1) & (np.nan_to_num(vi) > 0)
    some = keep.any(1)  # not every table double-zero: the data can be analysed
    rows = []
    for method in plan["methods"]["binary"]:
        est, lo, hi = np.full(r, np.nan), np.full(r, np.nan), np.full(r, np.nan)
        tau2: NDArray | None = None  # methods without tau2 and prediction interval
        pi: tuple[NDArray, NDArray] | None = None
        conv = np.ones(r, bool)
        use = some
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
            conv[some] = res.converged
            if model != "FE":
                t2, plo, phi = np.full(r, np.nan), np.full(r, np.nan), np.full(r, np.nan)
                t2[some], plo[some], phi[some] = res.tau2, res.pi_lower, res.pi_upper
                tau2, pi = t2, (plo, phi)
            name = f"IV-{model}"
        elif method == "GLMM":
            # a scalar fit per replicate (~0.5 s): only the study's first glmm_replicates
            # replicates, by their index in the scenario, so however the jobs are spread
            cap = plan["methods"].get("glmm_replicates") or plan["replicates"]
            todo = np.arange(max(0, min(r, cap - first)))
            est, lo, hi, t2, plo, phi, conv = _glmm(tables, todo, level)
            tau2, pi = t2, (plo, phi)
            use = some[todo]
            name, ci = method, "z"
        else:  # Mantel-Haenszel and Peto: the pipeline's functions, table set by table set
            for i in range(r):
                cells = (t[i] for t in tables)
                if method == "MH":
                    res_i = binary.mantel_haenszel(*cells, measure="OR", level=level)
                else:
                    res_i = binary.peto(*cells, level=level)
                est[i], lo[i], hi[i] = res_i.estimate, res_i.ci_lower, res_i.ci_upper
            name, ci = method, "z"
        sums = _sums(est, lo, hi, truth, tau=tau, usable=use, converged=conv, tau2=tau2, pi=pi)
        rows.append({"family": "binary", "method": name, "ci": ci, **sums})
    return rows


def run_job(plan: dict[str, Any], scenario: str, chunk: int) -> pd.DataFrame:
    """Simulate and analyse one chunk of one scenario; the sums per method (:data:`SUM_COLUMNS`)."""
    sc = plan["scenario_list"][scenario]
    size = chunk_size(plan, scenario)
    first = chunk * size  # index of the chunk's first replicate in the scenario
    r = min(size, plan["replicates"] - first)
    if r <= 0:
        raise ValueError(f"chunk {chunk} of scenario {scenario!r} is beyond the replicates")
    rng = np.random.default_rng(job_seed(plan, scenario, chunk))
    fit = _binary if sc.get("outcome", "continuous") == "binary" else _continuous
    rows = fit(plan, sc, rng, r, first)
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


def _heterogeneity(g: pd.DataFrame) -> dict[str, float]:
    """tau2 bias, empirical SE, RMSE and PI coverage and width, with MC SEs (>= 2 values)."""
    out: dict[str, float] = {}
    n_t = int(g["n_tau2"].sum())
    if n_t >= 2:
        _, bias, m2 = _combine(g, "tau2_err", "n_tau2")
        empse = math.sqrt(m2 / (n_t - 1))
        _, mse, m2_sq = _combine(g, "tau2_sq", "n_tau2")
        rmse = math.sqrt(mse)
        out.update(
            tau2_bias=bias,
            tau2_bias_mcse=empse / math.sqrt(n_t),
            tau2_empse=empse,
            tau2_empse_mcse=empse / math.sqrt(2 * (n_t - 1)),
            tau2_rmse=rmse,
            tau2_rmse_mcse=(
                math.sqrt(m2_sq / (n_t - 1) / n_t) / (2 * rmse) if rmse > 0 else math.nan
            ),
        )
    n_p = int(g["n_pi"].sum())
    if n_p >= 2:
        _, cov, m2_c = _combine(g, "pi_cover", "n_pi")
        _, wid, m2_w = _combine(g, "pi_width", "n_pi")
        out.update(
            pi_coverage=cov,
            pi_coverage_mcse=math.sqrt(m2_c / (n_p - 1) / n_p),
            pi_width=wid,
            pi_width_mcse=math.sqrt(m2_w / (n_p - 1) / n_p),
        )
    return out


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
            "n_failed": int(g["n_failed"].sum()),
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
        row.update(_heterogeneity(g))
        rows.append(row)
    out = pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS)
    out["_o"] = out["scenario"].map(order)
    out = out.sort_values(["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return out
