"""The batched engine (hairtrial.models.batched) against the scalar path, replicate by replicate.

Every output of :func:`hairtrial.models.batched.fit_batched` is compared with
:func:`hairtrial.models.univariate.fit` (and :func:`hairtrial.models.tau2.estimate_tau2` for
the fallback) for every tau2 estimator x CI method, on random data sets drawn by hypothesis:
k = 1..30, heterogeneous, homogeneous, under-dispersed (tau2 at the boundary 0) and identical
outcomes, sampling variances spread up to 1000-fold, outcomes on the scale of an SMD or of a
hair-count mean difference. Tolerance: 1e-10 relative, or absolute on the quantity's natural
scale near 0 (see ``_SCALE``). ``converged`` and ``fallback`` must be equal; the Fisher-scoring
``iterations`` within 1, or any when tau2 is 0 to the tolerance: the stopping rule
``|change| <= 1e-12 max(1, tau2)`` can be met one step earlier or later when the last change is
of the size of rounding error (the two codes sum in a different order), and when tau2 creeps
to the boundary 0 every step is of that size (observed over 182,628 fits: 60 differ, by 1
where tau2 >= 1e-10, by up to 5 where tau2 < 1e-12).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hairtrial.models.batched import ARRAY_FIELDS, DEFAULT_CHUNK_SIZE, BatchedResult, fit_batched
from hairtrial.models.tau2 import estimate_tau2
from hairtrial.models.univariate import CI_METHODS, METHODS, fit

RTOL = 1e-10

#: Natural scale of each quantity for the absolute part of the tolerance: "y" the scale of the
#: outcomes (a location), "y2" its square (a variance), 1 for dimensionless quantities.
_SCALE = {
    "estimate": "y",
    "se": "y",
    "ci_lower": "y",
    "ci_upper": "y",
    "pi_lower": "y",
    "pi_upper": "y",
    "tau2": "y2",
    "tau2_se": "y2",
    "tau2_ci_lower": "y2",
    "tau2_ci_upper": "y2",
    "vt": "y2",
    "statistic": 1,
    "pvalue": 1,
    "s2w": 1,
    "I2": 1,
    "H2": 1,
    "Q": 1,
    "Q_pvalue": 1,
}
SCENARIOS = ("heterogeneous", "homogeneous", "boundary", "identical", "tied")


def _scalar_row(res) -> dict[str, float]:
    """The scalar result in the fields of BatchedResult."""
    return {
        "estimate": res.estimate,
        "se": res.estimate_se,
        "statistic": res.estimate_statistic,
        "pvalue": res.estimate_pvalue,
        "ci_lower": res.estimate_ci_lower,
        "ci_upper": res.estimate_ci_upper,
        "pi_lower": res.pi_lower,
        "pi_upper": res.pi_upper,
        "s2w": res.s2w,
        "tau2": res.tau2,
        "tau2_se": res.tau2_se,
        "tau2_ci_lower": res.tau2_ci_lower,
        "tau2_ci_upper": res.tau2_ci_upper,
        "I2": res.I2,
        "H2": res.H2,
        "Q": res.Q,
        "Q_pvalue": res.Q_pvalue,
        "vt": res.vt,
        "converged": res.converged,
        "iterations": res.iterations,
        "fallback": any("Fisher scoring did not converge" in n for n in res.notes),
    }


def _close(a: float, b: float, atol: float) -> bool:
    if math.isnan(b) or math.isnan(a):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= RTOL * abs(b) + atol


def _mismatches(batched: BatchedResult, i: int, scalar, yscale: float) -> list[tuple]:
    ref = _scalar_row(scalar)
    bad = []
    for name in ARRAY_FIELDS:
        ours = getattr(batched, name)[i]
        if name == "iterations":
            creeping = ref["tau2"] <= RTOL * yscale**2  # tau2 creeping to the boundary 0
            if abs(int(ours) - ref[name]) > 1 and not creeping:
                bad.append((name, ours, ref[name]))
            continue
        if name in ("converged", "fallback"):
            if ours != ref[name]:
                bad.append((name, ours, ref[name]))
            continue
        kind = _SCALE[name]
        scale = yscale if kind == "y" else yscale**2 if kind == "y2" else 1.0
        if not _close(float(ours), float(ref[name]), RTOL * scale):
            bad.append((name, float(ours), float(ref[name])))
    return bad


def _generate(k: int, n: int, scenario: str, spread: float, scale: float, seed: int):
    """n data sets of k studies; vi log-uniform over a `spread`-fold range, times scale^2."""
    rng = np.random.default_rng(seed)
    v = scale**2 * 0.05 * np.exp(rng.uniform(0.0, math.log(spread), (n, k)))
    mu = scale * rng.normal(0.3, 1.0, (n, 1))
    if scenario == "heterogeneous":
        tau2 = rng.uniform(0.2, 5.0, (n, 1)) * v.mean(axis=1, keepdims=True)
        y = mu + rng.normal(0.0, 1.0, (n, k)) * np.sqrt(v + tau2)
    elif scenario == "homogeneous":
        y = mu + rng.normal(0.0, 1.0, (n, k)) * np.sqrt(v)
    elif scenario == "boundary":  # under-dispersed: Q < k - 1, tau2 estimates at 0
        y = mu + 0.2 * rng.normal(0.0, 1.0, (n, k)) * np.sqrt(v)
    elif scenario == "identical":
        y = np.repeat(mu, k, axis=1)
    else:  # tied: two distinct values
        y = mu + scale * rng.integers(0, 2, (n, k)).astype(float)
    return y, v


@st.composite
def replicate_sets(draw: st.DrawFn):
    k = draw(st.integers(1, 30))
    n = draw(st.integers(1, 6))
    scenario = draw(st.sampled_from(SCENARIOS))
    spread = draw(st.sampled_from([1.0, 3.0, 30.0, 1000.0]))
    scale = draw(st.sampled_from([1.0, 30.0]))  # SMD-like, hair-count MD-like
    seed = draw(st.integers(0, 2**32 - 1))
    y, v = _generate(k, n, scenario, spread, scale, seed)
    return y, v, scale


PROPS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("method", METHODS)
@PROPS
@given(
    data=replicate_sets(),
    chunk_size=st.sampled_from([1, 4, DEFAULT_CHUNK_SIZE]),
    level=st.sampled_from([0.95, 0.95, 0.8, 0.99]),
)
def test_batched_equals_scalar_fit(method: str, data, chunk_size: int, level: float) -> None:
    y, v, scale = data
    for ci_method in CI_METHODS:
        res = fit_batched(
            y, v, method=method, ci_method=ci_method, level=level, chunk_size=chunk_size
        )
        assert len(res) == y.shape[0]
        assert (res.k == y.shape[1]).all() and (res.Q_df == y.shape[1] - 1).all()
        for i in range(y.shape[0]):
            scalar = fit(y[i], v[i], method=method, ci_method=ci_method, level=level)
            bad = _mismatches(res, i, scalar, scale)
            assert not bad, (method, ci_method, i, bad, y[i].tolist(), v[i].tolist())
            assert (res.df[i] == scalar.df) or (math.isnan(res.df[i]) and scalar.df is None)


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=replicate_sets(), seed=st.integers(0, 2**32 - 1), ci_method=st.sampled_from(CI_METHODS))
def test_mask_gives_unequal_k_the_scalar_results(method: str, data, seed: int, ci_method) -> None:
    y, v, scale = data
    rng = np.random.default_rng(seed)
    mask = rng.random(y.shape) < 0.7
    mask[np.arange(y.shape[0]), rng.integers(0, y.shape[1], y.shape[0])] = True
    y = np.where(mask, y, np.nan)  # unused entries are ignored
    res = fit_batched(y, v, mask=mask, method=method, ci_method=ci_method, weights=True)
    assert res.k.tolist() == mask.sum(axis=1).tolist()
    for i in range(y.shape[0]):
        scalar = fit(y[i][mask[i]], v[i][mask[i]], method=method, ci_method=ci_method)
        assert not _mismatches(res, i, scalar, scale), (i, _mismatches(res, i, scalar, scale))
        np.testing.assert_allclose(res.weights[i][mask[i]], scalar.weights, rtol=1e-9)
        assert np.isnan(res.weights[i][~mask[i]]).all()


# ---------------------------------------------------------------------------------------------
# the fallback, the ll0check, chunks, options, errors
# ---------------------------------------------------------------------------------------------
def _oscillating(n: int = 400, seed: int = 1):
    """k = 10 data sets, vi spread 100-fold: ~1.5% make REML Fisher scoring oscillate."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 1, (n, 10))
    y = rng.normal(0.3, np.sqrt(v + 0.1))
    return y, v


@pytest.mark.parametrize("method", ["ML", "REML", "EB"])
def test_fallback_forced_by_maxiter_equals_scalar(method: str) -> None:
    y, v = _oscillating(60)
    for maxiter in (1, 3):
        res = fit_batched(y, v, method=method, maxiter=maxiter, chunk_size=16)
        for i in range(y.shape[0]):
            est = estimate_tau2(y[i], v[i], method=method, maxiter=maxiter)
            assert _close(res.tau2[i], est.tau2, 1e-10), (i, res.tau2[i], est.tau2)
            assert _close(res.tau2_se[i], est.se, 1e-10)
            assert res.iterations[i] == est.iterations
            assert res.converged[i] == est.converged
            assert res.fallback[i] == any("did not converge" in n for n in est.notes)


def test_oscillating_fisher_scoring_takes_the_fallback_as_the_scalar_code() -> None:
    y, v = _oscillating()
    res = fit_batched(y, v, method="REML", ci_method="knha", chunk_size=64)
    rows = np.flatnonzero(res.fallback)
    assert rows.size >= 3  # the scenario does exercise the fallback
    for i in rows:
        scalar = fit(y[i], v[i], method="REML", ci_method="knha")
        assert scalar.iterations == 1001
        assert not _mismatches(res, int(i), scalar, 1.0)


def test_ll0check_sets_tau2_to_zero_as_the_scalar_code() -> None:
    """Find data sets where metafor's ll0check fires in the scalar code; batched agrees."""
    rng = np.random.default_rng(7)
    y, v = _generate(4, 3000, "boundary", 1000.0, 1.0, 7)
    y = y + rng.normal(0, 1, y.shape) * np.sqrt(v) * rng.uniform(0, 1.5, (y.shape[0], 1))
    fired = []
    for method in ("ML", "REML"):
        res = fit_batched(y, v, method=method)
        for i in range(0, y.shape[0], 7):
            est = estimate_tau2(y[i], v[i], method=method)
            if any("local maximum" in n for n in est.notes):
                fired.append((method, i))
            assert _close(res.tau2[i], est.tau2, 1e-10), (method, i)
    if not fired:
        pytest.skip("no data set triggered ll0check")


def test_chunk_size_does_not_change_results() -> None:
    y, v = _oscillating(300, seed=3)
    ref = fit_batched(y, v, method="REML", ci_method="adhoc")
    for cs in (1, 5, 64):
        res = fit_batched(y, v, method="REML", ci_method="adhoc", chunk_size=cs)
        for name in ARRAY_FIELDS:
            np.testing.assert_allclose(
                getattr(res, name), getattr(ref, name), rtol=1e-12, atol=1e-12, err_msg=name
            )


def test_k1_and_one_dimensional_input() -> None:
    res = fit_batched([0.4], [0.04], method="REML", ci_method="z")
    assert res.estimate[0] == pytest.approx(0.4) and res.se[0] == pytest.approx(0.2)
    assert math.isnan(res.Q[0]) and math.isnan(res.tau2_ci_lower[0]) and res.tau2[0] == 0
    hk = fit_batched([[0.4], [0.1]], [[0.04], [0.01]], method="DL", ci_method="knha")
    assert np.isnan(hk.ci_lower).all() and np.isnan(hk.pvalue).all() and np.isnan(hk.df).all()


def test_weights_and_frame() -> None:
    y, v = _oscillating(5)
    res = fit_batched(y, v, method="DL", weights=True)
    for i in range(5):
        np.testing.assert_allclose(res.weights[i], fit(y[i], v[i], method="DL").weights)
    frame = res.to_frame()
    assert list(frame.columns[-len(ARRAY_FIELDS) :]) == list(ARRAY_FIELDS)
    assert len(frame) == 5
    assert fit_batched(y, v, method="DL").weights is None


def test_tau2_ci_can_be_skipped() -> None:
    y, v = _oscillating(5)
    res = fit_batched(y, v, method="PM", tau2_ci=False)
    assert np.isnan(res.tau2_ci_lower).all() and np.isnan(res.tau2_ci_upper).all()


@pytest.mark.parametrize(
    ("yi", "vi", "kwargs", "match"),
    [
        ([[0.1, 0.2]], [[0.1]], {}, "differ in shape"),
        ([[0.1, np.nan]], [[0.1, 0.1]], {}, "non-finite"),
        ([[0.1, 0.2]], [[0.1, 0.0]], {}, "must be > 0"),
        (np.zeros((2, 0)), np.zeros((2, 0)), {}, "k = 0"),
        (np.zeros((0, 3)), np.ones((0, 3)), {}, "no replicates"),
        ([[0.1, 0.2]], [[0.1, 0.1]], {"method": "XX"}, "unknown method"),
        ([[0.1, 0.2]], [[0.1, 0.1]], {"ci_method": "t"}, "unknown ci_method"),
        ([[0.1, 0.2]], [[0.1, 0.1]], {"level": 1.0}, "level"),
        ([[0.1, 0.2]], [[0.1, 0.1]], {"chunk_size": 0}, "chunk_size"),
        (np.zeros((1, 2, 2)), np.ones((1, 2, 2)), {}, "two-dimensional"),
        ([[0.1, 0.2]], [[0.1, 0.1]], {"mask": [[True]]}, "shape of yi"),
        ([[0.1, 0.2]], [[0.1, 0.1]], {"mask": [[False, False]]}, "without studies"),
        ([[0.1, np.nan]], [[0.1, 0.1]], {"mask": [[True, True]]}, "non-finite"),
    ],
)
def test_invalid_input(yi, vi, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        fit_batched(yi, vi, **kwargs)
