"""Bayesian random-effects meta-analysis of every outcome x week x measure, and the next trial.

From the study effects as written (continuous ``study_effects.csv``, and binary
``binary_study_effects.csv`` when the run has binary outcomes: log RR, log OR and RD are
analysed on the scale of ``yi``), :func:`bayes_tables` fits the normal-normal hierarchical
model of :mod:`hairtrial.models.bayes` (numerical integration, no sampling) to every
outcome x week x measure with at least two trials, under the configured priors
(``bayes.tau_prior``, ``bayes.mu_prior``) and under a fixed panel of alternative priors (the
prior-sensitivity table), and simulates the next trial (:mod:`hairtrial.models.next_trial`).

Thresholds of a noticeable effect ("MID") on the analysis scale, per row:

* the outcome's ``mid`` from ``outcomes.csv`` when it is stated on the row's measure: a
  difference (continuous ``MD``, binary ``RD``) is used as ``+-mid``; a ratio (``RR``, ``OR``)
  as ``log(mid)`` for an increase and ``log(2 - mid)`` for a decrease (GRADE's symmetric
  relative change: RR 1.25 and 0.75 for 25%), or ``-log(mid)`` when ``mid >= 2``;
* for an SMD row of an outcome without a usable MID: ``bayes.smd_mid`` (0.2, Cohen's small
  effect) when set;
* otherwise none (``p_mid`` and ``p_minus_mid`` are empty).

``p_mid = P(mu > upper threshold)`` and ``p_minus_mid = P(mu < lower threshold)``, whatever the
outcome's direction: for a benefit outcome they are the probabilities of a noticeable benefit
and of a noticeable loss, for a harm outcome of a noticeable harm and of a noticeable reduction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.core import vocab
from hairtrial.models import bayes, next_trial

__all__ = [
    "BAYES_COLUMNS",
    "NEXT_TRIAL_COLUMNS",
    "POSTERIOR_COLUMNS",
    "SAMPLE_SIZE_COLUMNS",
    "SENSITIVITY_COLUMNS",
    "BayesFit",
    "bayes_fits",
    "bayes_tables",
    "mid_thresholds",
    "mu_prior_from_config",
    "tau_prior_from_config",
]

KEYS = list(vocab.KEYS)

BAYES_COLUMNS = [*KEYS, "prior", *bayes.SUMMARY_COLUMNS, "p_mid", "p_minus_mid"]
"""Columns of ``results/tables/bayes.csv`` (issue 11)."""

SENSITIVITY_COLUMNS = [
    *KEYS,
    "prior_family",
    "scale_factor",
    "prior",
    "primary",
    *bayes.SUMMARY_COLUMNS,
    "p_mid",
    "p_minus_mid",
]
"""Columns of ``results/tables/bayes_sensitivity.csv``: the answer under each prior."""

POSTERIOR_COLUMNS = [*KEYS, "x", "mu_density", "predictive_density", "mid_upper", "mid_lower"]
"""Columns of ``results/derived/bayes_posterior.csv``: posterior and predictive densities of
the primary prior on a grid (what the posterior figure draws)."""

NEXT_TRIAL_COLUMNS = [*KEYS, "direction", "mid", "posterior_threshold", *next_trial.POWER_COLUMNS]
"""Columns of ``results/tables/next_trial.csv``."""

SAMPLE_SIZE_COLUMNS = [*KEYS, "criterion", "target", "n_per_arm", "note"]
"""Columns of ``results/tables/next_trial_sample_size.csv``."""

#: Measures analysed on the log scale (``yi`` is the log ratio).
RATIO_MEASURES = frozenset({"RR", "OR", "LOGRR", "LOGOR"})

#: The panel of alternative priors: (family, multiples of the default scale).
SENSITIVITY_PANEL: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("half-normal", (0.5, 1.0, 2.0, 4.0)),
    ("half-cauchy", (0.5, 1.0, 2.0)),
    ("half-t", (1.0,)),
    ("uniform", (10.0,)),
    ("log-normal", (math.nan,)),
    ("fixed", (0.0,)),
)

#: Turner et al. (2012)'s generic predictive distribution of log tau² for log odds ratios
#: (any outcome, any comparison): N(-2.56, 1.74²); used in the sensitivity panel for ratio
#: measures only (it has no meaning on another scale).
TURNER_GENERIC = (-2.56, 1.74)


def _norm(measure: str) -> str:
    return str(measure).replace(" ", "").replace("_", "").upper()


def default_scale(measure: str, n: np.ndarray, se: np.ndarray) -> float:
    """The ``auto`` scale: :func:`hairtrial.models.bayes.default_tau_prior_scale`; for a
    measure without a default (RD) 0.5 x the unit-information SD, as for MD."""
    try:
        return bayes.default_tau_prior_scale(measure, n, se)
    except ValueError:
        return 0.5 * bayes.uisd(n, se)


def tau_prior_from_config(
    spec: Mapping[str, Any], measure: str, n: np.ndarray, se: np.ndarray
) -> bayes.TauPrior:
    """The prior of tau named by ``bayes.tau_prior`` for one analysis."""
    family = spec.get("family", "half-normal")
    scale = spec.get("scale", "auto")
    s = default_scale(measure, n, se) if scale == "auto" else float(scale)
    if family == "log-normal":
        return bayes.LogNormal(float(spec.get("meanlog", -2.56)), float(spec.get("sdlog", 1.74)))
    if family == "fixed":
        return bayes.Fixed(s)
    if s <= 0:
        raise ValueError(f"bayes.tau_prior: a {family} prior needs a positive scale, got {s}")
    if family == "half-normal":
        return bayes.HalfNormal(s)
    if family == "half-cauchy":
        return bayes.HalfCauchy(s)
    if family == "half-t":
        return bayes.HalfStudentT(float(spec.get("df", 3)), s)
    if family == "uniform":
        return bayes.Uniform(s)
    raise ValueError(f"unknown tau prior family {family!r}")


def mu_prior_from_config(spec: Mapping[str, Any]) -> bayes.FlatMu | bayes.NormalMu:
    """The prior of mu named by ``bayes.mu_prior``."""
    if spec.get("family", "uniform") == "normal":
        return bayes.NormalMu(float(spec.get("mean", 0.0)), float(spec.get("sd", 10.0)))
    return bayes.FlatMu()


def mid_thresholds(
    measure: str, outcome_row: Mapping[str, Any] | None, smd_mid: float | None
) -> tuple[float, float, str]:
    """(upper, lower, source) thresholds of a noticeable effect on the analysis scale.

    Examples
    --------
    >>> up, lo, _ = mid_thresholds("RR", {"unit": "RR", "mid": 1.25}, None)
    >>> round(math.exp(up), 4), round(math.exp(lo), 4)
    (1.25, 0.75)
    >>> mid_thresholds("SMD", {"unit": "hairs/cm2", "mid": float("nan")}, 0.2)[:2]
    (0.2, -0.2)
    >>> [math.isnan(x) for x in mid_thresholds("MD", {"unit": "hairs/cm2", "mid": None}, 0.2)[:2]]
    [True, True]
    """
    m = _norm(measure)
    mid = None if outcome_row is None else outcome_row.get("mid")
    unit = "" if outcome_row is None else str(outcome_row.get("unit", ""))
    has_mid = mid is not None and isinstance(mid, int | float) and math.isfinite(mid) and mid > 0
    if has_mid:
        assert mid is not None
        u = _norm(unit)
        if m in ("RR", "LOGRR") and u == "RR" or m in ("OR", "LOGOR") and u == "OR":
            lower = math.log(2.0 - mid) if mid < 2 else -math.log(mid)
            return math.log(mid), lower, f"outcome MID ({unit} {mid:g})"
        if m == "RD" and u == "RD" or m in ("MD", "MC") and u not in ("RR", "OR", "RD"):
            return float(mid), -float(mid), f"outcome MID ({mid:g} {unit})"
    if m.startswith("SM") and smd_mid is not None:
        return float(smd_mid), -float(smd_mid), f"SMD {smd_mid:g} (Cohen's small effect)"
    return math.nan, math.nan, "no MID"


@dataclass
class BayesFit:
    """The primary Bayesian fit of one outcome x week x measure with what the tables need."""

    outcome: str
    week: int
    measure: str
    result: bayes.BayesResult
    unit_sd: float
    mid_upper: float
    mid_lower: float
    mid_source: str
    direction: str


def _groups(effects: pd.DataFrame):
    for key, g in effects.groupby(KEYS, sort=True):
        g = g.sort_values("study", kind="stable")
        g = g[np.isfinite(g["yi"].to_numpy(float)) & (g["vi"].to_numpy(float) > 0)]
        if len(g) >= 2:
            yield key, g


def _n_se(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    n = (g["n_control"].to_numpy(float) + g["n_experimental"].to_numpy(float)).astype(float)
    return n, np.sqrt(g["vi"].to_numpy(float))


def _row_probs(res: bayes.BayesResult, up: float, lo: float) -> dict[str, float]:
    return {
        "p_mid": float(res.prob_mu_greater(up)) if math.isfinite(up) else math.nan,
        "p_minus_mid": float(res.prob_mu_less(lo)) if math.isfinite(lo) else math.nan,
    }


def bayes_fits(
    effects: pd.DataFrame, outcomes: pd.DataFrame | None, config: Mapping[str, Any]
) -> list[BayesFit]:
    """The primary-prior fit of every outcome x week x measure with k >= 2 (sorted by key)."""
    spec = config.get("bayes", {})
    mu_prior = mu_prior_from_config(spec.get("mu_prior", {}))
    by_outcome = {} if outcomes is None else outcomes.set_index("outcome").to_dict("index")
    fits = []
    for (o, w, m), g in _groups(effects):
        n, se = _n_se(g)
        prior = tau_prior_from_config(spec.get("tau_prior", {}), m, n, se)
        res = bayes.fit(g["yi"].to_numpy(float), se, prior, mu_prior)
        row = by_outcome.get(o)
        up, lo, src = mid_thresholds(m, row, spec.get("smd_mid", 0.2))
        direction = "benefit" if row is None else str(row.get("direction", "benefit"))
        fits.append(BayesFit(o, int(w), m, res, bayes.uisd(n, se), up, lo, src, direction))
    return fits


def _sensitivity_rows(fit: BayesFit, g: pd.DataFrame, mu_prior) -> list[dict[str, Any]]:
    n, se = _n_se(g)
    base = default_scale(fit.measure, n, se)
    y = g["yi"].to_numpy(float)
    rows = []
    for family, factors in SENSITIVITY_PANEL:
        for f in factors:
            prior: bayes.TauPrior
            if family == "log-normal":
                if _norm(fit.measure) not in RATIO_MEASURES:
                    continue
                prior = bayes.LogNormal(*TURNER_GENERIC)
            elif family == "half-normal":
                prior = bayes.HalfNormal(f * base)
            elif family == "half-cauchy":
                prior = bayes.HalfCauchy(f * base)
            elif family == "half-t":
                prior = bayes.HalfStudentT(3.0, f * base)
            elif family == "uniform":
                prior = bayes.Uniform(f * base)
            else:
                prior = bayes.Fixed(0.0)
            res = bayes.fit(y, se, prior, mu_prior)
            summary = res.summary_frame().iloc[0].to_dict()
            rows.append(
                {
                    "outcome": fit.outcome,
                    "week": fit.week,
                    "measure": fit.measure,
                    "prior_family": family,
                    "scale_factor": f,
                    "prior": str(prior),
                    "primary": str(prior) == str(fit.result.tau_prior),
                    **summary,
                    **_row_probs(res, fit.mid_upper, fit.mid_lower),
                }
            )
    return rows


def _posterior_grid(fit: BayesFit, points: int = 401) -> pd.DataFrame:
    res = fit.result
    lo, hi = res.predictive_quantile([0.001, 0.999])
    mlo, mhi = res.mu_quantile([0.0005, 0.9995])
    a, b = float(min(lo, mlo)), float(max(hi, mhi))
    for t in (fit.mid_upper, fit.mid_lower, 0.0):
        if math.isfinite(t):
            a, b = min(a, t), max(b, t)
    pad = 0.04 * (b - a)
    x = np.linspace(a - pad, b + pad, points)
    return pd.DataFrame(
        {
            "outcome": fit.outcome,
            "week": fit.week,
            "measure": fit.measure,
            "x": x,
            "mu_density": res.mu_pdf(x),
            "predictive_density": res.predictive_pdf(x),
            "mid_upper": fit.mid_upper,
            "mid_lower": fit.mid_lower,
        },
        columns=POSTERIOR_COLUMNS,
    )


def _next_trial_wanted(fit: BayesFit, config: Mapping[str, Any]) -> bool:
    """The next trial is simulated for benefit outcomes: every continuous measure, and the
    primary binary measure (``binary.measures[0]``)."""
    if fit.direction != "benefit":
        return False
    if _norm(fit.measure) in ("RR", "OR", "RD"):
        measures = (config.get("binary") or {}).get("measures") or ["RR"]
        return _norm(fit.measure) == _norm(measures[0])
    return True


def bayes_tables(
    effects: pd.DataFrame,
    outcomes: pd.DataFrame | None,
    config: Mapping[str, Any],
    *,
    next_trial_rows: bool = True,
) -> dict[str, pd.DataFrame]:
    """The Bayesian tables of a run from study effects (continuous and binary rows alike).

    Parameters
    ----------
    effects : pandas.DataFrame
        Study effects as written (``outcome, week, measure, study, yi, vi, n_control,
        n_experimental``); binary rows on the log scale for RR and OR.
    outcomes : pandas.DataFrame or None
        :func:`hairtrial.data.outcomes.read_outcomes` (direction and MID of each outcome).
    config : mapping
        The validated config (``bayes``, ``next_trial``, ``meta_analysis``).
    next_trial_rows : bool
        Also simulate the next trial (the slowest part).

    Returns
    -------
    dict
        ``bayes`` (:data:`BAYES_COLUMNS`), ``bayes_sensitivity``
        (:data:`SENSITIVITY_COLUMNS`), ``bayes_posterior`` (:data:`POSTERIOR_COLUMNS`, figure
        data), ``next_trial`` (:data:`NEXT_TRIAL_COLUMNS`) and ``next_trial_sample_size``
        (:data:`SAMPLE_SIZE_COLUMNS`).
    """
    spec = config.get("bayes", {})
    mu_prior = mu_prior_from_config(spec.get("mu_prior", {}))
    fits = bayes_fits(effects, outcomes, config)
    groups = dict(_groups(effects))
    main, sens, post, power, sizes = [], [], [], [], []
    nt = config.get("next_trial", {})
    ma = config.get("meta_analysis", {})
    method = ma.get("tau2_methods", ["REML"])[0]
    ci_method = ma.get("ci_methods", ["adhoc"])[0]
    level = float(ma.get("level", 0.95))
    for i, fit in enumerate(fits):
        keys = {"outcome": fit.outcome, "week": fit.week, "measure": fit.measure}
        summary = fit.result.summary_frame().iloc[0].to_dict()
        main.append(
            {
                **keys,
                "prior": str(fit.result.tau_prior),
                **summary,
                **_row_probs(fit.result, fit.mid_upper, fit.mid_lower),
            }
        )
        g = groups[(fit.outcome, fit.week, fit.measure)]
        sens.extend(_sensitivity_rows(fit, g, mu_prior))
        post.append(_posterior_grid(fit))
        if not next_trial_rows or not _next_trial_wanted(fit, config):
            continue
        sign = 1 if fit.direction == "benefit" else -1
        mid = fit.mid_upper if sign == 1 else -fit.mid_lower
        ns = list(nt.get("n_per_arm", [10, 20, 50, 100, 200, 500, 1000]))
        pw = next_trial.next_trial_power(
            fit.result, ns, fit.unit_sd,
            replicates=int(nt.get("replicates", 4000)), seed=int(nt.get("seed", 0)) + i,
            method=method, ci_method=ci_method, level=level, direction=sign,
            mid=mid if math.isfinite(mid) else None,
            threshold=float(nt.get("posterior_threshold", 0.9)),
        )  # fmt: skip
        thr = float(nt.get("posterior_threshold", 0.9))
        extra = {"direction": fit.direction, "mid": mid, "posterior_threshold": thr}
        for c, v in reversed(list({**keys, **extra}.items())):
            pw.insert(0, c, v)
        power.append(pw)
        for criterion in ("p_trial_benefit", "p_meta_benefit", "p_posterior_mid"):
            for target in (0.8, 0.9):
                p = pw[criterion].to_numpy(float)
                if np.all(np.isnan(p)):
                    n_req, note = math.nan, "no MID for this outcome and measure"
                else:
                    n_req = next_trial.sample_size_needed(pw["n_per_arm"], p, target)
                    if math.isnan(n_req):
                        note = f"not reached up to {max(ns)} per arm (highest {np.nanmax(p):.2f})"
                    elif p[0] >= target:
                        note = f"already reached at the smallest n of the grid ({min(ns)} per arm)"
                        if criterion == "p_posterior_mid":
                            now = (
                                fit.result.prob_mu_greater(mid)
                                if sign == 1
                                else (fit.result.prob_mu_less(-mid))
                            )
                            note += f"; the current posterior probability is {float(now):.3f}"
                    else:
                        note = ""
                sizes.append(
                    {
                        **keys,
                        "criterion": criterion,
                        "target": target,
                        "n_per_arm": n_req,
                        "note": note,
                    }  # fmt: skip
                )
    return {
        "bayes": pd.DataFrame(main, columns=BAYES_COLUMNS),
        "bayes_sensitivity": pd.DataFrame(sens, columns=SENSITIVITY_COLUMNS),
        "bayes_posterior": (
            pd.concat(post, ignore_index=True) if post else pd.DataFrame(columns=POSTERIOR_COLUMNS)
        ),
        "next_trial": (
            pd.concat(power, ignore_index=True)
            if power
            else pd.DataFrame(columns=NEXT_TRIAL_COLUMNS)
        ),
        "next_trial_sample_size": pd.DataFrame(sizes, columns=SAMPLE_SIZE_COLUMNS),
    }
