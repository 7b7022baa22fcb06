"""Vectorised simulation of trial *reports* for the simulation study (issue 13).

:mod:`hairtrial.data.simulate` writes one complete evidence base (CSV files) per seed; a
simulation study needs tens of thousands of small evidence bases per scenario, so this module
draws many at once, as arrays of shape ``(replicates, k)``. It keeps the part that matters for
the methods under study: individual participants are drawn and summarised as papers report
them, so that the derivation rules the pipeline applies to reports (SD of change from the SDs
of levels with an assumed correlation, pooled SD from a between-arm p-value, exact or printed
as a bound, the paired analysis of a split-scalp trial with an assumed between-side
correlation) act on the simulated data exactly as on real ones.

Model (hair density in hairs/cm2, one follow-up visit)
------------------------------------------------------
Trial ``i`` of a replicate has a true mean difference in change from baseline
``theta_i = delta + u_i``, ``u_i ~ N(0, tau^2)``, between minoxidil plus microneedling
(experimental) and minoxidil alone (control). Arm sizes are uniform on ``n_min..n_max``,
independently per arm (a split-scalp trial draws one ``n`` for its patients). Participant
``j`` has a baseline level ``Y0 = b + sd * Z0`` and a follow-up level
``Y1 = b + c + theta_i [experimental] + sd * (r Z0 + sqrt(1 - r^2) E)`` with independent
standard normal ``Z0`` and ``E``; ``r`` is the true baseline / follow-up correlation and
``b = 150``, ``c = 20`` (they cancel in every contrast). The true SD of change is therefore
``sd * sqrt(2 (1 - r))``. In a split-scalp trial the two sides of a patient have latent
vectors correlated ``split_r``, so the changes of the two sides correlate ``split_r``.

What a trial reports (each trial independently, with the scenario's shares as
probabilities; the rest report SDs):

* ``split``: split-scalp trial; mean and SD of change per side (``n`` patients).
* ``levels``: mean and SD at baseline and follow-up per arm (no SD of change).
* ``p_exact``: mean change per arm and the two-sided p-value of the pooled two-sample t-test
  of the changes, printed with three decimals (``p = 0.000`` is printed ``p < 0.001``).
* ``p_bound``: as ``p_exact`` but the p-value printed only as the smallest of the bounds
  0.001, 0.01, 0.05 above it (``p < 0.01``); p >= 0.05 is printed exactly.
* ``sd``: the rest; mean and SD of change per arm.

Means and SDs are printed with ``decimals`` decimals.

Binary outcome: trial ``i`` has control risk ``expit(logit(p0) + v_i)``,
``v_i ~ N(0, control_sd^2)``, and log odds ratio ``log(or) + u_i``, ``u_i ~ N(0, tau^2)``;
participants have events independently (the arm's event count is binomial).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy  # scipy.special loads on first use (see hairtrial.models)
from numpy.typing import NDArray

from hairtrial.core import distributions as dist

__all__ = [
    "FORMATS",
    "P_BOUNDS",
    "BinaryReports",
    "BinaryScenario",
    "ContinuousReports",
    "ContinuousScenario",
    "simulate_binary",
    "simulate_continuous",
]

#: Report formats of a continuous-outcome trial (codes of :attr:`ContinuousReports.fmt`).
FORMATS: tuple[str, ...] = ("sd", "levels", "p_exact", "p_bound", "split")
#: Bounds a p-value is printed as in the ``p_bound`` format.
P_BOUNDS: tuple[float, ...] = (0.001, 0.01, 0.05)

_BASELINE = 150.0
_CONTROL_CHANGE = 20.0
_ROLES = ("split", "levels", "p_exact", "p_bound")

Float = NDArray[np.float64]
Int = NDArray[np.int64]


@dataclass(frozen=True)
class ContinuousScenario:
    """Data-generating parameters of a continuous-outcome scenario (see the module doc)."""

    k: int
    n_min: int
    n_max: int
    delta: float
    tau: float
    sd: float = 30.0
    prepost_r: float = 0.7
    split_r: float = 0.5
    share_levels: float = 0.0
    share_p_exact: float = 0.0
    share_p_bound: float = 0.0
    share_split: float = 0.0
    decimals: int = 2

    def __post_init__(self) -> None:
        if self.k < 1 or self.n_min < 3 or self.n_max < self.n_min:
            raise ValueError("need k >= 1 and 3 <= n_min <= n_max")
        shares = [self.share_split, self.share_levels, self.share_p_exact, self.share_p_bound]
        if any(s < 0 for s in shares) or sum(shares) > 1 + 1e-12:
            raise ValueError("report shares must be >= 0 and sum to at most 1")

    @property
    def sd_change(self) -> float:
        """True SD of change from baseline."""
        return float(self.sd * np.sqrt(2.0 * (1.0 - self.prepost_r)))


@dataclass(frozen=True)
class ContinuousReports:
    """What the trials of each replicate report; arrays of shape (replicates, k).

    Attributes
    ----------
    fmt : ndarray of int
        Index into :data:`FORMATS`.
    n_e, n_c : ndarray of int
        Participants analysed per arm (a split-scalp trial: patients, equal).
    mean_e, mean_c, sd_e, sd_c : ndarray
        Mean and SD of change (formats ``sd``, ``split``); mean change only (``p_*``; SD NaN);
        follow-up level (``levels``).
    base_mean_e, base_mean_c, base_sd_e, base_sd_c : ndarray
        Baseline level (``levels`` only; NaN otherwise).
    p : ndarray
        Printed p-value, or the bound for ``p < bound`` (``p_*`` formats; NaN otherwise).
    p_is_bound : ndarray of bool
        The p-value was printed as a bound.
    theta : ndarray
        True mean difference of each trial (hairs/cm2).
    """

    fmt: Int
    n_e: Int
    n_c: Int
    mean_e: Float
    mean_c: Float
    sd_e: Float
    sd_c: Float
    base_mean_e: Float
    base_mean_c: Float
    base_sd_e: Float
    base_sd_c: Float
    p: Float
    p_is_bound: NDArray[np.bool_]
    theta: Float


def _roles(rng: np.random.Generator, r: int, k: int, shares: list[float]) -> Int:
    """Per trial, role j + 1 with probability shares[j]; 0 (the rest) otherwise."""
    cum = np.cumsum(shares)
    idx = np.searchsorted(cum, rng.random((r, k)), side="right").astype(np.int64)
    return (idx + 1) % (len(shares) + 1)


def _summaries(x: Float, mask: NDArray[np.bool_], n: Int) -> tuple[Float, Float]:
    """Mean and SD (ddof 1) over the last axis where mask is True."""
    xm = np.where(mask, x, 0.0)
    mean = xm.sum(-1) / n
    dev = np.where(mask, x - mean[..., None], 0.0)
    return mean, np.sqrt((dev * dev).sum(-1) / (n - 1))


def _print_p(p: Float, bound: NDArray[np.bool_]) -> tuple[Float, NDArray[np.bool_]]:
    """The p-value as printed: three decimals, or a bound."""
    exact = np.round(p, 3)
    small = exact < 0.001
    out = np.where(small, 0.001, exact)
    is_bound = small.copy()
    for b in reversed(P_BOUNDS):
        hit = bound & (p < b)
        out = np.where(hit, b, out)
        is_bound |= hit
    return np.minimum(out, 0.999), is_bound


def simulate_continuous(
    sc: ContinuousScenario, replicates: int, rng: np.random.Generator
) -> ContinuousReports:
    """Draw ``replicates`` evidence bases of ``sc.k`` trials and summarise them as reports.

    Parameters
    ----------
    sc : ContinuousScenario
        The scenario.
    replicates : int
        Number of evidence bases.
    rng : numpy.random.Generator
        Source of randomness (the only one).

    Returns
    -------
    ContinuousReports

    Examples
    --------
    >>> sc = ContinuousScenario(k=3, n_min=10, n_max=20, delta=15.0, tau=5.0, share_p_bound=1)
    >>> rep = simulate_continuous(sc, 4, np.random.default_rng(1))
    >>> rep.fmt.shape, bool(np.all(np.isnan(rep.sd_e)))
    ((4, 3), True)
    """
    r, k = replicates, sc.k
    shares = [sc.share_split, sc.share_levels, sc.share_p_exact, sc.share_p_bound]
    roles = _roles(rng, r, k, shares)
    fmt = np.array([FORMATS.index(x) for x in ("sd", *_ROLES)])[roles]
    split = fmt == FORMATS.index("split")
    theta = sc.delta + sc.tau * rng.standard_normal((r, k))
    n = rng.integers(sc.n_min, sc.n_max + 1, size=(r, k, 2))
    n[..., 1] = np.where(split, n[..., 0], n[..., 1])
    m = sc.n_max
    z0 = rng.standard_normal((r, k, 2, m))
    e = rng.standard_normal((r, k, 2, m))
    rho = sc.split_r
    s = split[..., None]
    z0[..., 1, :] = np.where(
        s, rho * z0[..., 0, :] + np.sqrt(1 - rho**2) * z0[..., 1, :], z0[..., 1, :]
    )
    e[..., 1, :] = np.where(
        s, rho * e[..., 0, :] + np.sqrt(1 - rho**2) * e[..., 1, :], e[..., 1, :]
    )
    mask = np.arange(m) < n[..., None]
    y0 = _BASELINE + sc.sd * z0
    shift = np.stack([theta, np.zeros_like(theta)], axis=-1)[..., None]  # arm 0 experimental
    y1 = (
        _BASELINE
        + _CONTROL_CHANGE
        + shift
        + sc.sd * (sc.prepost_r * z0 + np.sqrt(1 - sc.prepost_r**2) * e)
    )
    mean_ch, sd_ch = _summaries(y1 - y0, mask, n)
    mean_1, sd_1 = _summaries(y1, mask, n)
    mean_0, sd_0 = _summaries(y0, mask, n)

    # the between-arm pooled t-test of the changes (p formats)
    ne, nc = n[..., 0].astype(float), n[..., 1].astype(float)
    sp = np.sqrt(((ne - 1) * sd_ch[..., 0] ** 2 + (nc - 1) * sd_ch[..., 1] ** 2) / (ne + nc - 2))
    t = (mean_ch[..., 0] - mean_ch[..., 1]) / (sp * np.sqrt(1 / ne + 1 / nc))
    p_true = 2.0 * dist.t_sf(np.abs(t), ne + nc - 2)
    p_fmt = (fmt == FORMATS.index("p_exact")) | (fmt == FORMATS.index("p_bound"))
    p, p_bound = _print_p(p_true, fmt == FORMATS.index("p_bound"))

    levels = fmt == FORMATS.index("levels")
    dec = sc.decimals
    nan = np.full((r, k), np.nan)

    def arm(x: Float, i: int) -> Float:
        return np.round(x[..., i], dec)

    mean_e = np.where(levels, arm(mean_1, 0), arm(mean_ch, 0))
    mean_c = np.where(levels, arm(mean_1, 1), arm(mean_ch, 1))
    sd_e = np.where(p_fmt, np.nan, np.where(levels, arm(sd_1, 0), arm(sd_ch, 0)))
    sd_c = np.where(p_fmt, np.nan, np.where(levels, arm(sd_1, 1), arm(sd_ch, 1)))
    return ContinuousReports(
        fmt=fmt,
        n_e=n[..., 0],
        n_c=n[..., 1],
        mean_e=mean_e,
        mean_c=mean_c,
        sd_e=sd_e,
        sd_c=sd_c,
        base_mean_e=np.where(levels, arm(mean_0, 0), nan),
        base_mean_c=np.where(levels, arm(mean_0, 1), nan),
        base_sd_e=np.where(levels, arm(sd_0, 0), nan),
        base_sd_c=np.where(levels, arm(sd_0, 1), nan),
        p=np.where(p_fmt, p, np.nan),
        p_is_bound=p_fmt & p_bound,
        theta=theta,
    )


@dataclass(frozen=True)
class BinaryScenario:
    """Data-generating parameters of a binary-outcome scenario (see the module doc)."""

    k: int
    n_min: int
    n_max: int
    control_risk: float
    odds_ratio: float
    tau: float
    control_sd: float = 0.5


@dataclass(frozen=True)
class BinaryReports:
    """Events and participants per arm; arrays of shape (replicates, k)."""

    events_e: Int
    n_e: Int
    events_c: Int
    n_c: Int
    theta: Float


def simulate_binary(sc: BinaryScenario, replicates: int, rng: np.random.Generator) -> BinaryReports:
    """Draw ``replicates`` evidence bases of 2x2 tables (events / participants per arm).

    Examples
    --------
    >>> sc = BinaryScenario(k=4, n_min=20, n_max=40, control_risk=0.1, odds_ratio=1.0, tau=0.0)
    >>> rep = simulate_binary(sc, 3, np.random.default_rng(2))
    >>> rep.events_e.shape, bool(np.all(rep.events_e <= rep.n_e))
    ((3, 4), True)
    """
    r, k = replicates, sc.k
    n = rng.integers(sc.n_min, sc.n_max + 1, size=(r, k, 2))
    theta = np.log(sc.odds_ratio) + sc.tau * rng.standard_normal((r, k))
    base = scipy.special.logit(sc.control_risk) + sc.control_sd * rng.standard_normal((r, k))
    events_c = rng.binomial(n[..., 1], scipy.special.expit(base))
    events_e = rng.binomial(n[..., 0], scipy.special.expit(base + theta))
    return BinaryReports(events_e, n[..., 0], events_c, n[..., 1], theta)
