"""Participant-level models of one trial: mixed model of change (statsmodels), pingouin fits.

The model of one trial and outcome (:func:`fit_trial`), as issue 12 specifies it:

* outcome: change from baseline of a unit (participant, or participant's side in a split-scalp
  trial) at each follow-up week (rows from :func:`hairtrial.derive.ipd.changes`);
* fixed effects ``0 + C(week) + C(week):experimental + baseline_c``: the control mean change
  at each week (at the trial's mean baseline), the experimental-minus-control difference at
  each week (the *contrasts*), and one baseline slope (term ``baseline``); ``baseline_c`` is
  the baseline centred at the trial's mean baseline;
* random effects: an intercept per participant; in split-scalp trials also a participant:side
  effect (a statsmodels variance component, ``vc_formula = {"participant:side": "0 + C(side)"}``,
  lme4's ``(1 | participant) + (1 | participant:side)``), fitted by REML with statsmodels
  :class:`~statsmodels.regression.mixed_linear_model.MixedLM`;
* a trial where every participant has one observation (a parallel trial with a single
  follow-up week) has no identifiable random effect: ANCOVA by least squares
  (statsmodels ``OLS``, R's ``lm``), said in the notes. A split-scalp trial with a single
  follow-up week has one observation per side, so the participant:side effect is confounded
  with the residual and left out (note).

Inference
---------
* Fixed-effect covariance: ``sigma^2 (X' V^-1 X)^-1`` at the REML estimates, conditional on the
  variance parameters, as lme4's ``vcov()``. statsmodels' own ``bse_fe`` inverts the joint
  Hessian of fixed effects and variance parameters, whose cross terms are not zero in a finite
  sample (zero in expectation), so its SEs differ from lme4's (by 3e-5 relative on the
  generated three-week parallel trial of ``tests/reference/lme4_ipd.R``, by 6e-3 on the
  split-scalp one); the conditional form is used (the inverse of the fixed-effect block of
  statsmodels' ``MixedLM.hessian``, which is ``X' V^-1 X / sigma^2``).
* Reference distribution: lme4 gives no p-values (the degrees of freedom of a mixed model are
  not defined). MixedLM fits use the Wald z (normal) CI and p, as statsmodels' summary does;
  with few participants this is anti-conservative (a Satterthwaite or Kenward-Roger t, as
  lmerTest / pbkrtest compute, would be wider). OLS fits use the exact t on ``n - p`` df.
  The ``distribution`` column says which.
* ``logLik``: the REML log-likelihood with lme4's constants,
  ``-1/2 [(n - p) log(2 pi) + log|V| + log|X' V^-1 X| + r' V^-1 r]`` (statsmodels' ``llf`` of a
  REML fit is exactly this; for OLS it is R's ``logLik(lm, REML = TRUE)``, the same formula
  with ``V = sigma^2 I``).

Fitting
-------
statsmodels' gradient optimizers stop on their own criteria (L-BFGS's default projected
gradient 1e-5 can leave a variance component 1e-3 relative from the optimum; BFGS with a tight
``gtol`` reaches the optimum but then reports "precision loss" as non-convergence). Each
optimizer of ``optimizers`` (default :data:`DEFAULT_OPTIMIZERS`) is therefore tried in turn,
with tight tolerances where MixedLM passes them on (:data:`OPTIMIZER_SETTINGS`), and a fit is
accepted when the gradient of the profiled REML log-likelihood (statsmodels' ``score``, in its
square-root parameterisation) is at most ``gradient_tol`` in every component (a variance
component at the boundary, below :data:`BOUNDARY_RELATIVE` times the residual variance, is
accepted when the likelihood decreases as it leaves 0, the Karush-Kuhn-Tucker condition); the
first accepted fit is used. If none is accepted, the fit with the largest REML log-likelihood
is reported with ``converged = False`` and a note. Every attempt is kept
(:attr:`IPDFit.attempts`).

Trial-level statistics with pingouin (model fits, so they live here; the arithmetic ones are in
:mod:`hairtrial.derive.ipd`): :func:`rm_correlation` (``rm_corr``), :func:`side_icc`
(``intraclass_corr``) and :func:`anova_table` (``mixed_anova`` / ``rm_anova`` / ``anova``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.core import distributions as dist
from hairtrial.derive import ipd as derive_ipd

__all__ = [
    "ANOVA_COLUMNS",
    "ATTEMPT_COLUMNS",
    "COEFFICIENT_COLUMNS",
    "CONTRAST_COLUMNS",
    "DEFAULT_OPTIMIZERS",
    "FIT_COLUMNS",
    "OPTIMIZER_SETTINGS",
    "VARIANCE_COLUMNS",
    "VARIANCE_COMPONENTS",
    "IPDFit",
    "anova_table",
    "correlation_table",
    "fit_one_stage",
    "fit_trial",
    "fit_trials",
    "rm_correlation",
    "side_icc",
    "summary_tables",
]

CONTROL = "minoxidil"
EXPERIMENTAL = "minoxidil_microneedling"

CONTRAST_COLUMNS = [
    "outcome",
    "study",
    "week",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "statistic",
    "df",
    "distribution",
]
"""Columns of ``summary_frame("contrasts")`` (experimental minus control per week)."""

COEFFICIENT_COLUMNS = [
    "outcome",
    "study",
    "term",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "statistic",
    "df",
    "distribution",
]
"""Columns of ``summary_frame("coefficients")``; terms ``C(week)<w>``,
``C(week)<w>:experimental`` and ``baseline``."""

VARIANCE_COLUMNS = ["outcome", "study", "component", "estimate"]
"""Columns of ``summary_frame("variance")``."""

VARIANCE_COMPONENTS = ("participant", "participant:side", "residual")
"""Variance components, in this order (NaN when the model has none)."""

FIT_COLUMNS = [
    "outcome",
    "study",
    "design",
    "method",
    "optimizer",
    "n_participants",
    "n_obs",
    "logLik",
    "converged",
    "notes",
]
"""Columns of ``summary_frame("fit")``."""

ATTEMPT_COLUMNS = ["optimizer", "accepted", "logLik", "max_abs_gradient", "message"]
"""Columns of :attr:`IPDFit.attempts`."""

ANOVA_COLUMNS = [
    "study",
    "outcome",
    "design",
    "test",
    "source",
    "SS",
    "df1",
    "df2",
    "MS",
    "F",
    "pvalue",
    "pvalue_gg",
    "effsize",
    "effsize_type",
    "n_subjects",
    "notes",
]
"""Columns of :func:`anova_table`."""

DEFAULT_OPTIMIZERS = ("bfgs", "lbfgs", "cg", "powell", "nm")
"""Optimizers tried in turn (statsmodels names; scipy's BFGS, L-BFGS-B, CG, Powell, Nelder-Mead)."""

OPTIMIZER_SETTINGS: dict[str, dict[str, Any]] = {
    "bfgs": {"gtol": 1e-10, "maxiter": 5000},
    "lbfgs": {"maxiter": 5000},
    "cg": {"gtol": 1e-10, "maxiter": 10000},
    "powell": {"ftol": 1e-14, "maxiter": 10000},
    "nm": {"ftol": 1e-14, "maxiter": 50000},
}
"""Keyword arguments per optimizer. ``MixedLM.fit`` passes on only ``gtol, maxiter, eps,
maxcor, ftol, tol, disp, maxls``: L-BFGS-B's ``pgtol``/``factr`` and Powell's / Nelder-Mead's
``xtol`` cannot be tightened, which is why the gradient is checked afterwards."""

#: A variance component below this fraction of the residual variance is reported as a
#: boundary fit (lme4 would call the fit singular).
BOUNDARY_RELATIVE = 1e-6


@dataclass(frozen=True)
class IPDFit:
    """Fit of one trial and outcome (:func:`fit_trial`).

    Attributes
    ----------
    study, outcome, design : str
        ``design`` is ``parallel`` or ``split_scalp``.
    method : str
        ``REML`` (MixedLM) or ``OLS`` (ANCOVA by least squares).
    optimizer : str
        The optimizer whose fit is reported (``""`` for OLS).
    distribution : str
        Reference distribution of CIs and p-values: ``z`` or ``t``.
    level : float
        Confidence level.
    coefficients : pandas.DataFrame
        ``term, estimate, se, ci_lower, ci_upper, pvalue, statistic, df``.
    variance : dict of str to float
        Estimates of :data:`VARIANCE_COMPONENTS` (NaN when not in the model).
    logLik : float
        REML log-likelihood with lme4's constants.
    converged : bool
    n_participants, n_obs : int
    weeks : tuple of int
        Follow-up weeks.
    notes : tuple of str
    attempts : pandas.DataFrame
        Every optimizer tried (:data:`ATTEMPT_COLUMNS`); empty for OLS.
    cov_fe : numpy.ndarray
        Covariance of the fixed effects (order of ``coefficients``).
    """

    study: str
    outcome: str
    design: str
    method: str
    optimizer: str
    distribution: str
    level: float
    coefficients: pd.DataFrame
    variance: dict[str, float]
    logLik: float
    converged: bool
    n_participants: int
    n_obs: int
    weeks: tuple[int, ...]
    notes: tuple[str, ...] = ()
    attempts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ATTEMPT_COLUMNS))
    cov_fe: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def contrasts(self) -> pd.DataFrame:
        """Experimental minus control at each follow-up week (``week, estimate, ...``)."""
        c = self.coefficients
        rows = c[c["term"].str.endswith(":experimental")].copy()
        rows.insert(
            0, "week", [int(t[len("C(week)") : -len(":experimental")]) for t in rows["term"]]
        )
        return rows.drop(columns="term").reset_index(drop=True)

    def summary_frame(self, table: str = "contrasts") -> pd.DataFrame:
        """One of the tidy tables of the fit.

        Parameters
        ----------
        table : {"contrasts", "coefficients", "variance", "fit"}
            ``contrasts``: :data:`CONTRAST_COLUMNS`, one row per follow-up week;
            ``coefficients``: :data:`COEFFICIENT_COLUMNS`; ``variance``:
            :data:`VARIANCE_COLUMNS`, one row per component of :data:`VARIANCE_COMPONENTS`
            (NaN when the model has none); ``fit``: :data:`FIT_COLUMNS`, one row, notes
            joined with ``"; "``.

        Returns
        -------
        pandas.DataFrame
        """
        ids = {"outcome": self.outcome, "study": self.study}
        if table == "contrasts":
            out = self.contrasts.assign(**ids, distribution=self.distribution)
            return out[CONTRAST_COLUMNS]
        if table == "coefficients":
            out = self.coefficients.assign(**ids, distribution=self.distribution)
            return out[COEFFICIENT_COLUMNS]
        if table == "variance":
            rows = [
                {**ids, "component": k, "estimate": self.variance[k]} for k in VARIANCE_COMPONENTS
            ]
            return pd.DataFrame(rows, columns=VARIANCE_COLUMNS)
        if table == "fit":
            row = {
                **ids,
                "design": self.design,
                "method": self.method,
                "optimizer": self.optimizer,
                "n_participants": self.n_participants,
                "n_obs": self.n_obs,
                "logLik": self.logLik,
                "converged": self.converged,
                "notes": "; ".join(self.notes),
            }
            return pd.DataFrame([row], columns=FIT_COLUMNS)
        raise ValueError(f"unknown table {table!r}: contrasts, coefficients, variance or fit")


def _design(frame: pd.DataFrame, weeks: Sequence[int]) -> pd.DataFrame:
    """Fixed-effect design ``0 + C(week) + C(week):experimental + baseline_c``, named."""
    cols: dict[str, np.ndarray] = {}
    week = frame["week"].to_numpy()
    expt = frame["experimental"].to_numpy(dtype=float)
    for w in weeks:
        cols[f"C(week){w}"] = (week == w).astype(float)
    cols["baseline"] = frame["baseline_c"].to_numpy(dtype=float)
    for w in weeks:
        cols[f"C(week){w}:experimental"] = (week == w) * expt
    return pd.DataFrame(cols, index=frame.index)


def _inference(
    estimate: np.ndarray, cov: np.ndarray, df: float | None, level: float
) -> dict[str, np.ndarray]:
    se = np.sqrt(np.diag(cov))
    stat = estimate / se
    if df is None:
        crit = float(dist.norm_ppf(0.5 + level / 2))
        p = 2 * dist.norm_sf(np.abs(stat))
    else:
        crit = float(dist.t_ppf(0.5 + level / 2, df))
        p = 2 * dist.t_sf(np.abs(stat), df)
    return {
        "estimate": estimate,
        "se": se,
        "ci_lower": estimate - crit * se,
        "ci_upper": estimate + crit * se,
        "pvalue": p,
        "statistic": stat,
        "df": np.full(estimate.shape, np.nan if df is None else float(df)),
    }


def _coef_table(names: Sequence[str], inf: dict[str, np.ndarray]) -> pd.DataFrame:
    cols = ["term", "estimate", "se", "ci_lower", "ci_upper", "pvalue", "statistic", "df"]
    return pd.DataFrame({"term": list(names), **inf})[cols]


def _fit_ols(y: np.ndarray, X: pd.DataFrame, level: float) -> dict[str, Any]:
    """ANCOVA by least squares (statsmodels OLS); REML logLik as R's ``logLik(lm, REML=TRUE)``."""
    import statsmodels.api as sm  # imported on first use (slow import)

    res = sm.OLS(y, X.to_numpy()).fit()
    n, p = X.shape
    df = n - p
    sigma2 = float(res.scale)
    cov = sigma2 * np.linalg.inv(X.to_numpy().T @ X.to_numpy())
    _, logdet_xtx = np.linalg.slogdet(X.to_numpy().T @ X.to_numpy())
    loglik = -0.5 * (df * math.log(2 * math.pi * sigma2) + logdet_xtx + df)
    return {
        "coefficients": _coef_table(X.columns, _inference(np.asarray(res.params), cov, df, level)),
        "cov_fe": cov,
        "variance": {"residual": sigma2},
        "logLik": loglik,
        "loglik_ml": float(res.llf),
    }


def _kkt_gradient(sqrt_params: np.ndarray, grad: np.ndarray) -> float:
    """Largest violation of the optimality conditions of the profiled REML fit.

    ``sqrt_params`` are statsmodels' packed parameters with ``use_sqrt``: here (random
    intercept, scalar variance components) each is the square root ``s`` of a variance
    relative to the residual, ``psi = s^2``, and ``grad`` is the gradient in ``s``. Interior
    optimum: ``|d logLik / d s| = 0``. Boundary optimum (``psi <= BOUNDARY_RELATIVE``): the
    derivative in ``psi``, ``(d logLik / d s) / (2 s)``, must be <= 0 (the likelihood falls as
    the variance leaves 0); then the component counts as satisfied. Returns the largest
    ``|d logLik / d s|`` over the components that are not such a boundary optimum (0 if none).
    """
    if not grad.size:
        return 0.0
    s, g = np.abs(sqrt_params), np.asarray(grad, dtype=float)
    at_boundary = s**2 <= BOUNDARY_RELATIVE
    with np.errstate(divide="ignore", invalid="ignore"):
        d_psi = np.where(s > 0, g * np.sign(sqrt_params) / (2 * s), -np.inf)
    ok = at_boundary & (d_psi <= 0)
    bad = np.abs(g[~ok])
    return float(bad.max()) if bad.size else 0.0


def _polished(model: Any, res: Any, row: dict[str, Any], steps: int = 5) -> Any:
    """An accepted fit moved to the optimum by Newton steps on the gradient.

    Where the REML likelihood is flat in a variance component (one small beside the
    residual variance), a quasi-Newton optimizer stops on "precision loss": differences of
    the likelihood are below floating-point resolution while its gradient (statsmodels'
    analytic ``score``) is still ~1e-7, and the component is then ~1e-5 relative from the
    optimum - different for the same data with the arms' labels swapped. The gradient stays
    accurate there, so Newton steps on it (Hessian by central differences of the gradient)
    reach the optimum to ~1e-15. A step is kept only while it shrinks the gradient, the
    Hessian is negative definite and the likelihood does not fall; a parameter at its
    boundary (0) is left as it is. ``row`` (the fit's attempt) gets the polished gradient,
    log-likelihood and a note in its message.
    """
    theta = np.asarray(res.params_object.get_packed(use_sqrt=model.use_sqrt, has_fe=False))
    theta = theta.astype(float)
    free = np.flatnonzero(theta**2 > BOUNDARY_RELATIVE)  # a boundary component stays at 0
    if free.size == 0:
        return res

    def score(t: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # near-singular steps are judged by the gradient
            return np.asarray(model.score(t, profile_fe=True), dtype=float)[free]

    start = theta
    try:
        grad = score(theta)
        for _ in range(steps):
            hess = np.empty((free.size, free.size))
            for col, j in enumerate(free):
                h = 1e-6 * max(abs(theta[j]), 1e-3)
                e = np.zeros(theta.size)
                e[j] = h
                hess[:, col] = (score(theta + e) - score(theta - e)) / (2 * h)
            hess = (hess + hess.T) / 2
            if not np.all(np.isfinite(hess)) or np.any(np.linalg.eigvalsh(hess) >= 0):
                break
            new = theta.copy()
            new[free] -= np.linalg.solve(hess, grad)
            new_grad = score(new)
            if not np.abs(new_grad).max() < np.abs(grad).max():
                break
            theta, grad = new, new_grad
    except (np.linalg.LinAlgError, ValueError, FloatingPointError, OverflowError):
        pass  # a step into a singular model: the last good point stands
    if theta is start:
        return res
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no iteration: the "convergence" warnings say nothing
        polished = model.fit(reml=True, method=["bfgs"], start_params=theta, maxiter=0)
    if not float(polished.llf) >= float(res.llf) - 1e-9 * abs(float(res.llf)):
        return res
    packed = polished.params_object.get_packed(use_sqrt=model.use_sqrt, has_fe=False)
    full = np.asarray(model.score(packed, profile_fe=True), dtype=float)
    row["max_abs_gradient"] = _kkt_gradient(np.asarray(packed, dtype=float), full)
    row["logLik"] = float(polished.llf)
    row["message"] = "; ".join(filter(None, [row["message"], "then Newton steps on the gradient"]))
    return polished


def _reml_fit(
    model: Any, n_fe: int, optimizers: Sequence[str], gradient_tol: float
) -> tuple[Any, dict[str, Any], pd.DataFrame, np.ndarray]:
    """REML fit of a statsmodels MixedLM with every optimizer tried in turn (module docstring).

    Returns the accepted (else the best) fit, its attempt row, the table of attempts and the
    fixed-effect covariance conditional on the variance parameters (lme4's ``vcov``).
    """
    attempts: list[dict[str, Any]] = []
    fits: list[tuple[Any, dict[str, Any]]] = []
    for name in optimizers:
        if name not in OPTIMIZER_SETTINGS:
            raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZER_SETTINGS)}")
        row: dict[str, Any] = {"optimizer": name, "accepted": False, "logLik": math.nan}
        row["max_abs_gradient"], row["message"] = math.nan, ""
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = model.fit(reml=True, method=[name], **OPTIMIZER_SETTINGS[name])
                packed = res.params_object.get_packed(use_sqrt=model.use_sqrt, has_fe=False)
                grad = np.asarray(model.score(packed, profile_fe=True), dtype=float)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError, OverflowError) as err:
            row["message"] = f"{type(err).__name__}: {err}"
            attempts.append(row)
            continue
        row["logLik"] = float(res.llf)
        row["max_abs_gradient"] = _kkt_gradient(np.asarray(packed, dtype=float), grad)
        msgs = sorted({str(w.message).splitlines()[0] for w in caught})
        row["message"] = "; ".join(msgs)
        row["accepted"] = bool(
            np.isfinite(row["logLik"]) and row["max_abs_gradient"] <= gradient_tol
        )
        attempts.append(row)
        fits.append((res, row))
        if row["accepted"]:
            break
    if not fits:
        messages = "; ".join(r["message"] for r in attempts)
        raise RuntimeError(f"every optimizer failed: {messages}")
    accepted = [f for f in fits if f[1]["accepted"]]
    res, row = accepted[0] if accepted else max(fits, key=lambda f: f[1]["logLik"])
    res = _polished(model, res, row)
    if not row["accepted"] and row["max_abs_gradient"] <= gradient_tol:
        row["accepted"] = True  # the best fit, taken to the optimum by the Newton steps
    table = pd.DataFrame(attempts, columns=ATTEMPT_COLUMNS)
    hess, _ = model.hessian(res.params_object)
    p = n_fe
    cov = np.linalg.inv(-hess[:p, :p])
    cov = (cov + cov.T) / 2
    return res, row, table, cov


def _mixed_model(frame: pd.DataFrame, X: pd.DataFrame, side_effect: bool) -> Any:
    """The statsmodels MixedLM of :func:`_fit_mixed`, built from arrays.

    The model ``MixedLM.from_formula("change ~ 0 + X", groups="participant", re_formula="1",
    vc_formula={"participant:side": "0 + C(side)"})`` builds, without the formula layer (it
    took 12-20% of a trial's fit): the same matrices in the same memory order (column-major,
    as the formula layer gives them; the fit's floating-point sums depend on it), the groups
    sorted, and per participant one indicator column per side it has, in sorted order.
    """
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    groups = np.asarray(frame["participant"])
    endog = np.asarray(frame["change"], dtype=float)
    exog = np.asfortranarray(X, dtype=float)
    vc = None
    if side_effect:
        side = np.asarray(frame["side"])
        names, mats = [], []
        for label in sorted(set(groups)):
            sides = side[groups == label]
            levels = sorted(set(sides))
            names.append([f"C(side)[{level}]" for level in levels])
            mats.append(np.asfortranarray(sides[:, None] == np.asarray(levels)[None, :], float))
        vc = VCSpec(["participant:side"], [names], [mats])
    return MixedLM(endog, exog, groups=groups, exog_re=np.ones((len(frame), 1)), exog_vc=vc)


def _fit_mixed(
    frame: pd.DataFrame,
    X: pd.DataFrame,
    side_effect: bool,
    level: float,
    optimizers: Sequence[str],
    gradient_tol: float,
) -> dict[str, Any]:
    """REML MixedLM with optimizers tried in turn until the gradient check passes."""
    model = _mixed_model(frame, X, side_effect)
    res, row, table, cov = _reml_fit(model, X.shape[1], optimizers, gradient_tol)
    variance = {
        "participant": float(np.asarray(res.cov_re)[0, 0]),
        "residual": float(res.scale),
    }
    if side_effect:
        variance["participant:side"] = float(res.vcomp[0])
    return {
        "coefficients": _coef_table(
            X.columns, _inference(np.asarray(res.fe_params, dtype=float), cov, None, level)
        ),
        "cov_fe": cov,
        "variance": variance,
        "logLik": float(res.llf),
        "optimizer": row["optimizer"],
        "converged": bool(row["accepted"]),
        "max_abs_gradient": row["max_abs_gradient"],
        "attempts": table,
    }


def fit_trial(
    data: pd.DataFrame,
    control: str = CONTROL,
    experimental: str = EXPERIMENTAL,
    *,
    level: float = 0.95,
    optimizers: Sequence[str] = DEFAULT_OPTIMIZERS,
    gradient_tol: float = 1e-6,
) -> IPDFit:
    """Fit the participant-level model of change of one trial and outcome.

    Parameters
    ----------
    data : pandas.DataFrame
        Participant-level rows of one study and one outcome
        (:data:`hairtrial.derive.ipd.IPD_COLUMNS`); rows of other treatments are left out
        (noted).
    control, experimental : str
        Treatment codes; contrasts are experimental minus control.
    level : float, default 0.95
        Confidence level.
    optimizers : sequence of str, default :data:`DEFAULT_OPTIMIZERS`
        statsmodels optimizers tried in turn (keys of :data:`OPTIMIZER_SETTINGS`).
    gradient_tol : float, default 1e-6
        A MixedLM fit is accepted when every component of the gradient of the profiled REML
        log-likelihood (in statsmodels' square-root parameters) is at most this in absolute
        value, a variance component at 0 with the likelihood falling away from 0 excepted
        (``max_abs_gradient`` of :attr:`IPDFit.attempts`).

    Returns
    -------
    IPDFit

    Raises
    ------
    ValueError
        Not exactly one study and outcome; an arm without any change from baseline; in a
        split-scalp trial a participant with both sides on one treatment.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> rows = []
    >>> for j in range(20):
    ...     trt = "minoxidil" if j < 10 else "minoxidil_microneedling"
    ...     b = 150 + 30 * rng.standard_normal()
    ...     rows.append(("s", f"p{j}", "", trt, 0, "hair_density", "hairs/cm2", b))
    ...     y = b + 20 + 10 * (j >= 10) + 5 * rng.standard_normal()
    ...     rows.append(("s", f"p{j}", "", trt, 12, "hair_density", "hairs/cm2", y))
    >>> fit = fit_trial(pd.DataFrame(rows, columns=derive_ipd.IPD_COLUMNS))
    >>> fit.method, fit.distribution, fit.summary_frame()["week"].tolist()
    ('OLS', 't', [12])
    """
    d = derive_ipd.check_ipd(data)
    keys = d[["study", "outcome"]].drop_duplicates()
    if len(keys) != 1:
        raise ValueError(f"fit_trial needs one study and outcome, got {len(keys)} (use fit_trials)")
    study, outcome = (str(x) for x in keys.iloc[0])
    split = derive_ipd.is_split_scalp(d)
    notes: list[str] = []
    others = sorted(set(d["treatment"]) - {control, experimental})
    if others:
        notes.append(f"rows of treatment(s) {', '.join(others)} not modelled")
    frame = derive_ipd.changes(d, treatments=[control, experimental])
    lacking = (
        d[(d["week"] > 0) & d["treatment"].isin([control, experimental])]
        .assign(u=lambda x: x["participant"] + "|" + x["side"])["u"]
        .nunique()
        - (frame["participant"] + "|" + frame["side"]).nunique()
    )
    if lacking:
        notes.append(f"{lacking} unit(s) with follow-up values but no baseline left out")
    for trt in (control, experimental):
        if not (frame["treatment"] == trt).any():
            raise ValueError(f"study {study}, outcome {outcome}: no change from baseline for {trt}")
    if split:
        per = (
            d[d["treatment"].isin([control, experimental])]
            .groupby("participant")
            .agg(sides=("side", "nunique"), treatments=("treatment", "nunique"))
        )
        if ((per["sides"] == 2) & (per["treatments"] < 2)).any():
            raise ValueError(f"study {study}: a participant has both sides on one treatment")
    frame = frame.assign(experimental=(frame["treatment"] == experimental).astype(float))
    weeks = tuple(int(w) for w in sorted(frame["week"].unique()))
    X = _design(frame, weeks)
    y = frame["change"].to_numpy(dtype=float)
    n_obs, n_part = len(frame), int(frame["participant"].nunique())
    obs_per_participant = frame.groupby("participant").size()
    obs_per_unit = frame.groupby(["participant", "side"]).size()
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise ValueError(
            f"study {study}, outcome {outcome}: the fixed effects are not estimable "
            "(an arm missing at a week, or a constant baseline)"
        )
    variance = dict.fromkeys(VARIANCE_COMPONENTS, math.nan)
    attempts = pd.DataFrame(columns=ATTEMPT_COLUMNS)
    if int(obs_per_participant.max()) == 1:
        fit = _fit_ols(y, X, level)
        notes.append(
            "one observation per participant (one follow-up week, parallel trial): no random "
            "participant effect is identifiable; ANCOVA by least squares (OLS), t on n - p df"
        )
        method, optimizer, distribution, converged = "OLS", "", "t", True
    else:
        side_effect = split and int(obs_per_unit.max()) > 1
        if split and not side_effect:
            notes.append(
                "one follow-up week: the participant:side effect is confounded with the "
                "residual (one observation per side) and is not fitted"
            )
        fit = _fit_mixed(frame, X, side_effect, level, optimizers, gradient_tol)
        method, optimizer, distribution = "REML", fit["optimizer"], "z"
        converged, attempts = fit["converged"], fit["attempts"]
        rejected = attempts.loc[~attempts["accepted"], "optimizer"].tolist()
        if rejected and converged:
            notes.append(f"optimizer {optimizer} used after {', '.join(rejected)} did not converge")
        if not converged:
            notes.append(
                f"non-convergence: no optimizer reached max|gradient| <= {gradient_tol:g}; "
                f"best REML fit ({optimizer}) has max|gradient| = {fit['max_abs_gradient']:.3g}"
            )
        for comp in ("participant", "participant:side"):
            v = fit["variance"].get(comp)
            if v is not None and v <= BOUNDARY_RELATIVE * fit["variance"]["residual"]:
                notes.append(f"boundary fit: {comp} variance estimated at 0 ({v:.3g})")
    variance.update(fit["variance"])
    return IPDFit(
        study=study,
        outcome=outcome,
        design="split_scalp" if split else "parallel",
        method=method,
        optimizer=optimizer,
        distribution=distribution,
        level=level,
        coefficients=fit["coefficients"],
        variance=variance,
        logLik=float(fit["logLik"]),
        converged=converged,
        n_participants=n_part,
        n_obs=n_obs,
        weeks=weeks,
        notes=tuple(notes),
        attempts=attempts,
        cov_fe=fit["cov_fe"],
    )


def fit_trials(
    data: pd.DataFrame,
    control: str = CONTROL,
    experimental: str = EXPERIMENTAL,
    **kwargs: Any,
) -> list[IPDFit]:
    """:func:`fit_trial` for every study x outcome of a participant-level table.

    Parameters
    ----------
    data : pandas.DataFrame
        Participant-level table (:data:`hairtrial.derive.ipd.IPD_COLUMNS`).
    control, experimental : str
        Treatment codes.
    **kwargs
        Passed to :func:`fit_trial`.

    Returns
    -------
    list of IPDFit
        In study, outcome order.
    """
    d = derive_ipd.check_ipd(data)
    return [
        fit_trial(g, control, experimental, **kwargs)
        for _, g in d.groupby(["study", "outcome"], sort=True)
    ]


def summary_tables(fits: Sequence[IPDFit]) -> dict[str, pd.DataFrame]:
    """The four tables of several fits, stacked.

    Parameters
    ----------
    fits : sequence of IPDFit

    Returns
    -------
    dict of str to pandas.DataFrame
        Keys ``contrasts, coefficients, variance, fit`` (see :meth:`IPDFit.summary_frame`).
    """
    cols = {
        "contrasts": CONTRAST_COLUMNS,
        "coefficients": COEFFICIENT_COLUMNS,
        "variance": VARIANCE_COLUMNS,
        "fit": FIT_COLUMNS,
    }
    out = {}
    for name, columns in cols.items():
        parts = [f.summary_frame(name) for f in fits]
        out[name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return out


def _ci95(ci: Any) -> tuple[float, float]:
    lo, hi = np.asarray(ci, dtype=float).ravel()[:2]
    return float(lo), float(hi)


def rm_correlation(data: pd.DataFrame) -> pd.DataFrame:
    """Pooled within-arm baseline-to-follow-up correlation (pingouin ``rm_corr``).

    Per study and outcome, ``pingouin.rm_corr(x=baseline, y=follow-up level,
    subject=treatment x week cell)``: the correlation after removing each arm-week cell's means
    (an ANCOVA with the cell as factor, Bakdash & Marusich 2017), i.e. the baseline-to-follow-up
    correlation pooled over arms and weeks, which the Cochrane SD-of-change formula needs. The
    same unit appears in several weeks, so the pairs are not independent across cells: the CI
    (pingouin's, 95% only) is narrower than it should be; the per-arm, per-week Pearson rows of
    :func:`hairtrial.derive.ipd.correlations` are the exact descriptions. ``rm_corr`` needs at
    least 3 cells: a two-arm trial with one follow-up week gets a row with NaN and a note.

    Parameters
    ----------
    data : pandas.DataFrame
        Participant-level table (:data:`hairtrial.derive.ipd.IPD_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        :data:`hairtrial.derive.ipd.CORRELATION_COLUMNS`, ``quantity = baseline_followup``,
        ``method = rm_corr``, ``week`` -1 (all follow-up weeks), ``treatment`` empty; ``n`` is
        the number of pairs.
    """
    import pingouin as pg  # imported on first use (slow import)

    ch = derive_ipd.changes(data)
    rows = []
    for (study, outcome), g in ch.groupby(["study", "outcome"], sort=True):
        g = g.assign(cell=g["treatment"] + "|" + g["week"].astype(str))
        row = {
            "study": study,
            "outcome": outcome,
            "quantity": "baseline_followup",
            "treatment": "",
            "week": -1,
            "method": "rm_corr",
            "n": len(g),
            "r": math.nan,
            "ci_lower": math.nan,
            "ci_upper": math.nan,
            "pvalue": math.nan,
            "notes": "pooled over arms and follow-up weeks (cells as rm_corr subjects); 95% CI",
        }
        if g["cell"].nunique() < 3:
            row["notes"] = "not computed: rm_corr needs at least 3 arm x week cells"
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", module="pingouin")
                res = pg.rm_corr(data=g, x="baseline", y="value", subject="cell")
            row["r"] = float(res["r"].iloc[0])
            row["pvalue"] = float(res["pval"].iloc[0])
            row["ci_lower"], row["ci_upper"] = _ci95(res["CI95"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows, columns=derive_ipd.CORRELATION_COLUMNS)


def side_icc(data: pd.DataFrame) -> pd.DataFrame:
    """Side-to-side intraclass correlation of split-scalp trials (pingouin ``intraclass_corr``).

    Per split-scalp study, outcome and week: ``targets = participant``, ``raters = treatment``
    (the two sides), ``ratings`` = baseline level at week 0 and change from baseline at
    follow-up weeks, participants with both sides observed. Reported: ICC(C,1) (Shrout & Fleiss
    ICC3, two-way mixed, consistency, single measurement), which ignores the difference between
    the sides' means (the treatment effect), with pingouin's 95% F-based CI.

    Parameters
    ----------
    data : pandas.DataFrame
        Participant-level table (:data:`hairtrial.derive.ipd.IPD_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        :data:`hairtrial.derive.ipd.CORRELATION_COLUMNS`, quantities ``side_to_side_baseline``
        (week 0) and ``side_to_side_change``, ``method = ICC(C,1)``; no rows for parallel
        trials.
    """
    import pingouin as pg  # imported on first use (slow import)

    d = derive_ipd.check_ipd(data)
    ch = derive_ipd.changes(d)
    rows = []
    for (study, outcome), trial in d.groupby(["study", "outcome"], sort=True):
        if not derive_ipd.is_split_scalp(trial):
            continue
        tch = ch[(ch["study"] == study) & (ch["outcome"] == outcome)]
        pieces = [("side_to_side_baseline", 0, trial[trial["week"] == 0], "value")]
        pieces += [("side_to_side_change", int(w), g, "change") for w, g in tch.groupby("week")]
        for quantity, week, g, col in pieces:
            complete = g.groupby("participant").filter(lambda x: x["treatment"].nunique() == 2)
            row = {
                "study": study,
                "outcome": outcome,
                "quantity": quantity,
                "treatment": "",
                "week": week,
                "method": "ICC(C,1)",
                "n": int(complete["participant"].nunique()),
                "r": math.nan,
                "ci_lower": math.nan,
                "ci_upper": math.nan,
                "pvalue": math.nan,
                "notes": "raters = treatment (side); 95% CI",
            }
            if row["n"] >= 3:
                with warnings.catch_warnings():  # pandas deprecations inside pingouin
                    warnings.filterwarnings("ignore", module="pingouin")
                    res = pg.intraclass_corr(
                        data=complete, targets="participant", raters="treatment", ratings=col
                    ).set_index("Type")
                row["r"] = float(res.loc["ICC(C,1)", "ICC"])
                row["pvalue"] = float(res.loc["ICC(C,1)", "pval"])
                row["ci_lower"], row["ci_upper"] = _ci95(res.loc["ICC(C,1)", "CI95"])
            else:
                row["notes"] = "not computed: fewer than 3 participants with both sides"
            rows.append(row)
    return pd.DataFrame(rows, columns=derive_ipd.CORRELATION_COLUMNS)


def correlation_table(data: pd.DataFrame) -> pd.DataFrame:
    """Every measured correlation of a participant-level table, in one table.

    The Pearson rows of :func:`hairtrial.derive.ipd.correlations` (per arm and week; side to
    side), then :func:`rm_correlation` and :func:`side_icc`: the content of issue 12's
    ``ipd_correlations.csv``.

    Parameters
    ----------
    data : pandas.DataFrame
        Participant-level table (:data:`hairtrial.derive.ipd.IPD_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        :data:`hairtrial.derive.ipd.CORRELATION_COLUMNS`, sorted by study, outcome, quantity,
        method, treatment and week.
    """
    parts = [derive_ipd.correlations(data), rm_correlation(data), side_icc(data)]
    out = pd.concat([p for p in parts if len(p)], ignore_index=True)
    out = out.sort_values(
        ["study", "outcome", "quantity", "method", "treatment", "week"], kind="mergesort"
    )
    return out.reset_index(drop=True)[derive_ipd.CORRELATION_COLUMNS]


def _anova_rows(res: pd.DataFrame, base: dict[str, Any], effsize_type: str) -> list[dict]:
    res = res.rename(columns={"DF1": "df1", "DF2": "df2", "ddof1": "df1", "ddof2": "df2"})
    if "df1" not in res and "DF" in res:  # one-way tables: the error row holds df2
        err = res[res["F"].isna()]
        res = res[res["F"].notna()].assign(df1=lambda x: x["DF"], df2=float(err["DF"].iloc[0]))
    rows = []
    for _, r in res.iterrows():
        rows.append(
            {
                **base,
                "source": str(r["Source"]),
                "SS": float(r["SS"]),
                "df1": float(r["df1"]),
                "df2": float(r["df2"]),
                "MS": float(r["MS"]),
                "F": float(r["F"]),
                "pvalue": float(r["p_unc"]),
                "pvalue_gg": float(r.get("p_GG_corr", math.nan)),
                "effsize": float(r[effsize_type]),
                "effsize_type": effsize_type,
            }
        )
    return rows


def anova_table(
    data: pd.DataFrame, control: str = CONTROL, experimental: str = EXPERIMENTAL
) -> pd.DataFrame:
    """The ANOVA of change many trial reports give, beside the mixed model (pingouin).

    * parallel, several follow-up weeks: ``mixed_anova(dv=change, within=week,
      between=treatment, subject=participant)`` (partial eta squared; Greenhouse-Geisser p);
    * split-scalp, several weeks: ``rm_anova(within=[week, treatment])`` (generalised eta
      squared);
    * one follow-up week: ``anova(between=treatment)`` (parallel) or
      ``rm_anova(within=treatment)`` (split-scalp).

    Repeated-measures ANOVA needs complete cases: participants missing any follow-up cell are
    left out (counted in ``notes``), unlike the mixed model, which uses every observation.

    Parameters
    ----------
    data : pandas.DataFrame
        Participant-level table (:data:`hairtrial.derive.ipd.IPD_COLUMNS`).
    control, experimental : str
        Treatment codes (other treatments are left out).

    Returns
    -------
    pandas.DataFrame
        :data:`ANOVA_COLUMNS`, one row per effect.
    """
    import pingouin as pg  # imported on first use (slow import)

    d = derive_ipd.check_ipd(data)
    ch = derive_ipd.changes(d, treatments=[control, experimental])
    rows: list[dict] = []
    for (study, outcome), g in ch.groupby(["study", "outcome"], sort=True):
        split = bool((g["side"] != "").all())
        weeks = sorted(g["week"].unique())
        cells = len(weeks) * (2 if split else 1)
        size = g.groupby("participant")["change"].transform("size")
        complete = g[size == cells]
        dropped = g["participant"].nunique() - complete["participant"].nunique()
        base = {
            "study": study,
            "outcome": outcome,
            "design": "split_scalp" if split else "parallel",
            "n_subjects": int(complete["participant"].nunique()),
            "notes": f"complete cases; {dropped} participant(s) with missing cells left out"
            if dropped
            else "complete cases",
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if split and len(weeks) > 1:
                res = pg.rm_anova(
                    data=complete, dv="change", within=["week", "treatment"], subject="participant"
                )
                rows += _anova_rows(res, {**base, "test": "rm_anova"}, "ng2")
            elif split:
                res = pg.rm_anova(
                    data=complete,
                    dv="change",
                    within="treatment",
                    subject="participant",
                    detailed=True,
                )
                rows += _anova_rows(res, {**base, "test": "rm_anova"}, "ng2")
            elif len(weeks) > 1:
                res = pg.mixed_anova(
                    data=complete,
                    dv="change",
                    within="week",
                    between="treatment",
                    subject="participant",
                )
                rows += _anova_rows(res, {**base, "test": "mixed_anova"}, "np2")
            else:
                res = pg.anova(data=complete, dv="change", between="treatment", detailed=True)
                rows += _anova_rows(res, {**base, "test": "anova"}, "np2")
    return pd.DataFrame(rows, columns=ANOVA_COLUMNS)


@dataclass(frozen=True)
class OneStageFit:
    """One-stage model of several trials at one follow-up week (:func:`fit_one_stage`)."""

    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    pvalue: float
    variance: dict[str, float]
    logLik: float
    converged: bool
    optimizer: str
    k: int
    n_participants: int
    n_obs: int
    notes: tuple[str, ...] = ()


def fit_one_stage(
    frame: pd.DataFrame,
    *,
    level: float = 0.95,
    optimizers: Sequence[str] = DEFAULT_OPTIMIZERS,
    gradient_tol: float = 1e-5,
) -> OneStageFit:
    """One-stage model of the participants of several trials at one follow-up week (REML).

    ``change ~ 0 + study + study:baseline_c + experimental``: trial-specific intercepts and
    baseline slopes (trial as a fixed effect, stratified; ``baseline_c`` centred within each
    trial), one treatment effect (``experimental``) that varies between trials as a random
    effect (variance ``tau2``; statsmodels ``re_formula = "0 + experimental"``, groups =
    study), and, in split-scalp trials, a random participant effect shared by the two sides
    (variance ``participant``; a variance component on split-scalp participants only, lme4's
    ``(0 + split | pid)``); one residual variance for all trials. lme4:
    ``lmer(change ~ 0 + study + study:baseline_c + experimental + (0 + experimental | study)
    + (0 + split | pid), REML = TRUE)`` (``tests/reference/lme4_ipd.R``). Fitted as
    :func:`fit_trial`'s mixed models (optimizers in turn, gradient check); the SE is
    conditional on the variance parameters (lme4's ``vcov``); Wald z CI and p.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``study, participant, side, change, baseline_c, experimental`` (0/1): the
        changes at one week of every trial (rows of :func:`hairtrial.derive.ipd.changes` with
        ``baseline_c`` recentred within each trial).
    level : float
        Confidence level.
    optimizers, gradient_tol
        As :func:`fit_trial`. The default tolerance is 1e-5, not 1e-6: with tau2 at the
        boundary (few trials agreeing) the gradient optimizers stop short of it, and Powell /
        Nelder-Mead reach the optimum (REML logLik equal to lme4's to 1e-11 relative on the
        reference trials) with a gradient of about 1e-6 on the participant component.

    Returns
    -------
    OneStageFit
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    d = frame.reset_index(drop=True)
    studies = sorted(d["study"].unique())
    if len(studies) < 2:
        raise ValueError("a one-stage model across trials needs at least two trials")
    cols: dict[str, np.ndarray] = {}
    for i, st in enumerate(studies):
        cols[f"fe{i}"] = (d["study"] == st).to_numpy(float)
    for i, st in enumerate(studies):
        cols[f"fb{i}"] = (d["study"] == st).to_numpy(float) * d["baseline_c"].to_numpy(float)
    cols["experimental"] = d["experimental"].to_numpy(float)
    split = (d["side"].astype(str) != "").to_numpy()
    data = pd.DataFrame(cols).assign(
        change=d["change"].to_numpy(float),
        study=d["study"].to_numpy(),
        pid=np.where(split, d["study"] + "|" + d["participant"], "~parallel"),
        split=split.astype(float),
    )
    notes = []
    vc = None
    if split.any():
        vc = {"participant": "0 + C(pid):split"}
        notes.append("random participant effect in split-scalp trials")
    fe = [c for c in cols]
    model = MixedLM.from_formula(
        "change ~ 0 + " + " + ".join(fe),
        groups="study",
        re_formula="0 + experimental",
        vc_formula=vc,
        data=data,
    )
    res, row, _, cov = _reml_fit(model, len(fe), optimizers, gradient_tol)
    j = fe.index("experimental")
    est = float(np.asarray(res.fe_params, dtype=float)[j])
    inf = _inference(np.array([est]), cov[[j]][:, [j]], None, level)
    variance = {
        "tau2": float(np.asarray(res.cov_re)[0, 0]),
        "participant": float(res.vcomp[0]) if split.any() else math.nan,
        "residual": float(res.scale),
    }
    for comp in ("tau2", "participant"):
        v = variance[comp]
        if math.isfinite(v) and v <= BOUNDARY_RELATIVE * variance["residual"]:
            notes.append(f"boundary fit: {comp} estimated at 0 ({v:.3g})")
    if not row["accepted"]:
        notes.append(
            f"non-convergence: best REML fit ({row['optimizer']}) has max|gradient| = "
            f"{row['max_abs_gradient']:.3g}"
        )
    units = d["study"] + "|" + d["participant"]
    return OneStageFit(
        estimate=est,
        se=float(inf["se"][0]),
        ci_lower=float(inf["ci_lower"][0]),
        ci_upper=float(inf["ci_upper"][0]),
        pvalue=float(inf["pvalue"][0]),
        variance=variance,
        logLik=float(res.llf),
        converged=bool(row["accepted"]),
        optimizer=str(row["optimizer"]),
        k=len(studies),
        n_participants=int(units.nunique()),
        n_obs=len(d),
        notes=tuple(notes),
    )
