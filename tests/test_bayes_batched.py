"""The batched Bayesian model against the scalar one (models.bayes.fit), on random data sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hairtrial.models import bayes
from hairtrial.models.bayes_batched import PRIORS, fit_bayes_batched

# models.bayes guarantees ~1e-10 of the posterior's scale (its quadrature tolerance 1e-11);
# the batched fit meets rtol = 1e-9 per replicate or falls back to the scalar fit
TOL = 1e-8


@st.composite
def datasets(draw):
    k = draw(st.integers(1, 12))
    r = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    spread = draw(st.sampled_from([0.1, 1.0, 3.0]))
    vi = 10.0 ** rng.uniform(-2, np.log10(0.01) + 2 * spread, (r, k))
    tau = draw(st.sampled_from([0.0, 0.1, 0.5, 2.0]))
    yi = rng.normal(draw(st.floats(-2, 2)), np.sqrt(vi + tau**2))
    scale = 10.0 ** rng.uniform(-1.5, 0.5, r)
    mask = np.ones((r, k), bool)
    if k > 2 and draw(st.booleans()):
        mask[:, -1] = rng.random(r) < 0.5
        yi[~mask] = np.nan
    return (
        yi,
        vi,
        scale,
        mask,
        draw(st.sampled_from(sorted(PRIORS))),
        draw(st.sampled_from([0.8, 0.95])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_matches_scalar_fit(data):
    yi, vi, scale, mask, prior, level = data
    res = fit_bayes_batched(yi, vi, prior=prior, scale=scale, mask=mask, level=level)
    for i in range(yi.shape[0]):
        ref = bayes.fit(yi[i, mask[i]], np.sqrt(vi[i, mask[i]]), PRIORS[prior](float(scale[i])))
        lo, hi = ref.mu_interval(level)
        q16, q84 = ref.mu_quantile([0.158655, 0.841345])
        unit = float(q84 - q16) / 2  # posterior scale of mu (exists even where the SD does not)
        assert abs(res.mu_lower[i] - lo) <= TOL * unit
        assert abs(res.mu_upper[i] - hi) <= TOL * unit
        assert abs(res.mu_median[i] - ref.mu_median) <= TOL * unit
        assert abs(res.p_positive[i] - ref.p_positive) <= TOL
        if np.isnan(ref.mu_mean):
            assert np.isnan(res.mu_mean[i])
        else:
            assert abs(res.mu_mean[i] - ref.mu_mean) <= TOL * unit
        # the predictive interval of a new trial's effect, on the predictive distribution's scale
        p16, p84 = ref.predictive_quantile([0.158655, 0.841345])
        pred_unit = float(p84 - p16) / 2
        plo, phi = ref.predictive_interval(level)
        assert abs(res.pred_lower[i] - plo) <= TOL * pred_unit
        assert abs(res.pred_upper[i] - phi) <= TOL * pred_unit
        # the posterior median of tau, on the scale of tau's posterior
        t16, t84 = ref.tau_quantile([0.158655, 0.841345])
        assert abs(res.tau_median[i] - ref.tau_median) <= TOL * float(t84 - t16) / 2


def test_fallback_is_the_scalar_fit():
    # a sharp posterior of tau (many precise trials) defeats a coarse shared grid
    rng = np.random.default_rng(5)
    vi = np.full((2, 40), 1e-4)
    yi = rng.normal(0.3, 0.5, (2, 40))
    res = fit_bayes_batched(yi, vi, scale=0.5, panels=2)
    assert res.fallback.all()
    ref = bayes.fit(yi[0], np.sqrt(vi[0]), bayes.HalfNormal(0.5))
    assert res.mu_median[0] == ref.mu_median
    assert (res.pred_lower[0], res.pred_upper[0]) == ref.predictive_interval(0.95)
    assert res.tau_median[0] == ref.tau_median


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prior": "uniform"}, "prior must be one of"),
        ({"scale": -1.0}, "scales must be positive"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    args = {"prior": "half_normal", "scale": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_bayes_batched([[0.1, 0.2]], [[0.01, 0.02]], **args)
