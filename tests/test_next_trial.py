"""The next trial (models.next_trial): closed-form checks, exactness of the update, invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr, ndtri

from hairtrial.models import bayes
from hairtrial.models.next_trial import (
    next_trial_power,
    sample_size_needed,
    updated_posterior_prob,
)

YI = np.array([0.42, 1.17, 0.99])
SEI = np.sqrt([0.041, 0.130, 0.066])


def _closed_form(n, unit_sd, mid, thr, level=0.95):
    """Common effect (tau fixed at 0), flat prior: every probability in closed form."""
    w = 1 / SEI**2
    W, ybar = w.sum(), float((w * YI).sum() / w.sum())
    v = unit_sd**2 / (2.0 * n)
    sd_y = math.sqrt(1 / W + v)  # predictive SD of the new estimate
    z = float(ndtri(0.5 + level / 2))
    p_trial = float(ndtr((ybar - z * math.sqrt(v)) / sd_y))
    prec = W + 1 / v
    se1 = 1 / math.sqrt(prec)

    def p_est_above(c):  # P(updated estimate > c)
        y_cut = v * (c * prec - W * ybar)
        return float(1 - ndtr((y_cut - ybar) / sd_y))

    return p_trial, p_est_above(z * se1), p_est_above(mid + float(ndtri(thr)) * se1)


@pytest.mark.parametrize("n", [10, 40, 200])
def test_common_effect_matches_closed_form(n):
    post = bayes.fit(YI, SEI, bayes.Fixed(0.0))
    unit_sd, mid, thr, reps = 2.0, 0.6, 0.9, 20000
    res = next_trial_power(
        post, [n], unit_sd, replicates=reps, seed=7, method="FE", ci_method="z",
        mid=mid, threshold=thr,
    )  # fmt: skip
    want = _closed_form(n, unit_sd, mid, thr)
    got = res.loc[0, ["p_trial_benefit", "p_meta_benefit", "p_posterior_mid"]].to_numpy(float)
    for g, w in zip(got, want, strict=True):
        mcse = math.sqrt(w * (1 - w) / reps)
        assert abs(g - w) <= 4.5 * mcse + 1e-12, (g, w, mcse)


@pytest.mark.parametrize("direction", [1, -1])
def test_updated_posterior_equals_refit(direction):
    prior = bayes.HalfNormal(0.5)
    post = bayes.fit(YI, SEI, prior)
    y = np.array([-0.8, 0.1, 0.7, 2.5])
    v = np.array([0.2, 0.05, 0.01, 0.3])
    got = updated_posterior_prob(post, y, v, 0.2, direction)
    for yy, vv, g in zip(y, v, got, strict=True):
        ref = bayes.fit(np.append(YI, yy), np.append(SEI, math.sqrt(vv)), prior)
        want = ref.prob_mu_greater(0.2) if direction == 1 else ref.prob_mu_less(-0.2)
        assert g == pytest.approx(float(want), rel=1e-6, abs=1e-9)


def test_seeded_and_reproducible():
    post = bayes.fit(YI, SEI, bayes.HalfNormal(0.5))
    a = next_trial_power(post, [20, 100], 2.0, replicates=500, seed=3, mid=0.2)
    b = next_trial_power(post, [20, 100], 2.0, replicates=500, seed=3, mid=0.2)
    c = next_trial_power(post, [20, 100], 2.0, replicates=500, seed=4, mid=0.2)
    assert a.equals(b)
    assert not a.equals(c)


@settings(max_examples=25, deadline=None)
@given(
    y=st.lists(st.floats(-3, 3), min_size=2, max_size=5),
    se=st.floats(0.05, 1.0),
    unit_sd=st.floats(0.5, 5.0),
    direction=st.sampled_from([1, -1]),
    seed=st.integers(0, 2**32 - 1),
)
def test_invariants(y, se, unit_sd, direction, seed):
    post = bayes.fit(np.array(y), np.full(len(y), se), bayes.HalfNormal(0.5))
    res = next_trial_power(
        post, [5, 50, 500], unit_sd, replicates=200, seed=seed, direction=direction, mid=0.1
    )
    probs = res[["p_trial_benefit", "p_meta_conclusive", "p_meta_benefit", "p_posterior_mid"]]
    assert ((probs >= 0) & (probs <= 1)).all(axis=None)
    assert (res["p_meta_benefit"] <= res["p_meta_conclusive"]).all()
    assert (np.diff(res["se_new"]) < 0).all()  # bigger trials, smaller SE


@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0, 1), min_size=2, max_size=8),
    target=st.floats(0.05, 0.95),
)
def test_sample_size_needed(p, target):
    n = np.geomspace(10, 1000, len(p))
    got = sample_size_needed(n, p, target)
    if max(p) < target:
        assert math.isnan(got)
    else:
        i = next(j for j, x in enumerate(p) if x >= target)
        assert n[max(0, i - 1)] - 1e-9 <= got <= n[i] + 1e-9


def test_arguments_checked():
    post = bayes.fit(YI, SEI, bayes.HalfNormal(0.5))
    with pytest.raises(ValueError, match="direction"):
        next_trial_power(post, [10], 1.0, direction=0)
    with pytest.raises(ValueError, match="unit_sd"):
        next_trial_power(post, [10], -1.0)
