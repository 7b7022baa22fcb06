"""Profile-likelihood confidence intervals of variance components (metafor ``confint``).

Names without a leading underscore are shared between the modules of
:mod:`hairtrial.models.multilevel`; its API is what the subpackage exports.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy  # scipy.optimize and scipy.linalg load on first use: see hairtrial.models

from hairtrial.core import distributions as dist
from hairtrial.models.multilevel.inference import MVResult
from hairtrial.models.multilevel.likelihood import fit_model, theta_from_values
from hairtrial.models.multilevel.structures import EPS
from hairtrial.models.multilevel.threads import single_threaded

__all__ = ["profile_ci"]


def _refit_fixed(result: MVResult, comp: int, val: float) -> float:
    """(RE)ML criterion maximised with component `comp` fixed at `val` (others free)."""
    model = result._model
    vc = result._state["values"]
    m1 = model.with_fixed({comp: val})
    vals = vc.copy()
    vals[comp] = val
    th0 = theta_from_values(m1, vals)
    con = dict(model.spec["control"])
    reml = result.method == "REML"
    if m1.n_free() == 0:
        return float(m1.evaluate(np.zeros(0), reml, grad=False)["ll"])
    if not np.isfinite(m1.evaluate(th0, reml, grad=False)["ll"]):
        th0 = None
    m1, th, _ = fit_model(m1, reml, con, th0, boundary=True)
    return float(m1.evaluate(th, reml, grad=False)["ll"])


@single_threaded
def profile_ci(
    result: MVResult,
    component: str | int | None = None,
    level: float | None = None,
    tol: float = 1e-10,
) -> pd.DataFrame:
    """Profile-likelihood CIs of variance components / correlations (metafor ``confint``).

    The bound for component c is where ``-2 (ll_c(val) - ll_hat) = chi2_{1, level}``, with the
    other components re-estimated at each ``val`` (components fixed in the fit stay fixed).
    Search intervals follow metafor: variances ``[0, max(10, 100 * est)]`` (``[0, 10]`` if the
    estimate is <= sqrt(eps)); CS/HCS/UN correlations ``[-1, 1]``; AR/HAR/CAR ``[min(0, est),
    1]``. If the criterion at an end of the interval is still inside the region, that end is
    the bound (noted). Roots are found with Brent's method to ``tol``.

    Parameters
    ----------
    result : MVResult
    component : str, int or None
        Full or short component name (``"sigma2.1"``), a row of ``variance_components``, or
        None for all estimated components.
    level : float or None
        Confidence level (default: the fit's).
    tol : float
        Root-finding tolerance.

    Returns
    -------
    DataFrame
        ``component, estimate, ci_lower, ci_upper, note``.
    """
    level = result.level if level is None else level
    vc = result.variance_components
    if component is None:
        rows = [i for i in range(len(vc)) if not vc["fixed"].iloc[i]]
    elif isinstance(component, (int, np.integer)):
        rows = [int(component)]
    else:
        hit = vc.index[
            (vc["component"] == component) | (vc["component"].str.split(" ").str[0] == component)
        ]
        if len(hit) != 1:
            raise KeyError(f"no (unique) component {component!r}")
        rows = [int(hit[0])]
    crit = dist.chi2_isf(1 - level, 1)
    ll_hat = result.logLik
    model = result._model
    out = []
    for i in rows:
        if vc["fixed"].iloc[i]:
            raise ValueError(f"component {vc['component'].iloc[i]} was fixed")
        est = float(vc["estimate"].iloc[i])
        kind = vc["type"].iloc[i]
        if kind in ("sigma2", "tau2", "gamma2"):
            vmin = 0.0
            vmax = 10.0 if est <= math.sqrt(EPS) else max(10.0, 100 * est)
        else:
            struct = model.gterms[model.components()[i]["term"][1]].struct
            vmin = -1.0 if struct in ("CS", "HCS", "UN") else min(0.0, est)
            vmax = 1.0

        def f(val: float, i: int = i) -> float:
            try:
                return -2.0 * (_refit_fixed(result, i, val) - ll_hat) - crit
            except (ValueError, RuntimeError, np.linalg.LinAlgError):
                return float("nan")

        notes = []
        bounds = []
        for end, sign in ((vmin, -1), (vmax, 1)):
            step = abs(end - est) / 10
            e = end
            val = float("nan")
            for _ in range(10):
                fe = f(e)
                if np.isfinite(fe):
                    if fe < 0:
                        val = e
                        if (
                            kind in ("sigma2", "tau2", "gamma2")
                            and sign > 0
                            or (kind in ("rho", "phi") and abs(e) < 1)
                        ):
                            notes.append(
                                f"{'upper' if sign > 0 else 'lower'} bound at the end "
                                "of the search interval"
                            )
                    else:
                        lo_, hi_ = (e, est) if sign < 0 else (est, e)
                        val = scipy.optimize.brentq(
                            f, lo_, hi_, xtol=tol, rtol=4 * EPS, maxiter=500
                        )
                    break
                e = e - sign * step
            if not np.isfinite(val):
                notes.append(f"{'upper' if sign > 0 else 'lower'} bound not found")
            bounds.append(val)
        out.append(
            {
                "component": vc["component"].iloc[i],
                "estimate": est,
                "ci_lower": bounds[0],
                "ci_upper": bounds[1],
                "note": "; ".join(notes),
            }
        )
    return pd.DataFrame(out)
