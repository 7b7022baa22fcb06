"""hairtrial.core.distributions gives scipy.stats' numbers bit for bit (without importing it).

Compared on random arguments and on the edge cases rv_continuous handles itself (probabilities
0, 1 and outside [0, 1], x outside the support, invalid degrees of freedom, NaN, infinities,
signed zeros): the same values, the same signs of zero, NaN in the same places, the same
types (NumPy scalars for scalars).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats

from hairtrial.core import distributions as d

EDGE_Q = [0.0, 1.0, -0.0, 0.5, 0.025, 0.975, 1e-300, 1 - 1e-16, -0.1, 1.1, np.nan]
EDGE_X = [0.0, -0.0, 1.96, -1.96, 40.0, -40.0, 1e-300, np.inf, -np.inf, np.nan, 1e308]
EDGE_DF = [1.0, 2.0, 3.5, 1e6, 1e10, np.inf, 0.0, -1.0, np.nan, 0.5]


def pair(name: str, *, dfn: float | None = None, dfd: float | None = None):
    """``hairtrial.core.distributions.<name>`` and the scipy.stats method it stands for, both
    called as ``f(value, df)``: the normal ignores ``df``; the F distribution takes ``df`` as
    the numerator's degrees of freedom (``dfd`` fixed) or the denominator's (``dfn`` fixed)."""
    dist, method = name.split("_")
    ours, theirs = getattr(d, name), getattr(getattr(stats, dist), method)
    if dist == "norm":
        return (lambda v, df: ours(v)), (lambda v, df: theirs(v))
    if dist == "f":
        return (
            (lambda v, df: ours(v, df, dfd), lambda v, df: theirs(v, df, dfd))
            if dfn is None
            else (lambda v, df: ours(v, dfn, df), lambda v, df: theirs(v, dfn, df))
        )
    return ours, theirs


QUANTILES = {n: pair(n) for n in ("norm_ppf", "norm_isf", "t_ppf", "t_isf", "chi2_ppf", "chi2_isf")}
PROBABILITIES = {
    **{n: pair(n) for n in ("norm_cdf", "norm_sf", "t_sf", "chi2_cdf", "chi2_sf")},
    "f_sf": pair("f_sf", dfd=7.5),
    "f_sf_dfd": pair("f_sf", dfn=3.0),
}


def assert_same(ours, theirs) -> None:
    assert type(ours) is type(theirs)
    a, b = np.asarray(ours), np.asarray(theirs)
    assert a.shape == b.shape and a.dtype == b.dtype
    nan = np.isnan(b)
    assert np.array_equal(np.isnan(a), nan)
    assert np.array_equal(a[~nan], b[~nan])
    assert np.array_equal(np.signbit(a[~nan]), np.signbit(b[~nan]))  # -0.0 is not 0.0


@pytest.mark.parametrize("name", QUANTILES)
def test_quantiles_on_every_edge_case(name):
    ours, theirs = QUANTILES[name]
    q, df = (np.array(v) for v in zip(*[(a, b) for a in EDGE_Q for b in EDGE_DF], strict=True))
    assert_same(ours(q, df), theirs(q, df))
    for a in EDGE_Q:  # scalars
        for b in EDGE_DF:
            assert_same(ours(a, b), theirs(a, b))


@pytest.mark.parametrize("name", PROBABILITIES)
def test_probabilities_on_every_edge_case(name):
    ours, theirs = PROBABILITIES[name]
    x, df = (np.array(v) for v in zip(*[(a, b) for a in EDGE_X for b in EDGE_DF], strict=True))
    assert_same(ours(x, df), theirs(x, df))
    for a in EDGE_X:
        for b in EDGE_DF:
            assert_same(ours(a, b), theirs(a, b))


probability = st.floats(0, 1) | st.sampled_from(EDGE_Q)
real = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-50, 50)
dof = st.floats(0.01, 1e4) | st.sampled_from(EDGE_DF)


@given(st.lists(st.tuples(probability, dof), min_size=1, max_size=8))
@example([(0.0, 3.0), (1.0, 3.0), (0.975, 1.0)])
def test_quantiles_match_scipy(pairs):
    q, df = (np.array(v) for v in zip(*pairs, strict=True))
    for ours, theirs in QUANTILES.values():
        assert_same(ours(q, df), theirs(q, df))


@given(st.lists(st.tuples(real, dof), min_size=1, max_size=8))
@example([(-0.0, 2.0), (np.inf, 2.0), (-3.0, 2.0)])
def test_probabilities_match_scipy(pairs):
    x, df = (np.array(v) for v in zip(*pairs, strict=True))
    for ours, theirs in PROBABILITIES.values():
        assert_same(ours(x, df), theirs(x, df))


def test_broadcasting_as_scipy():
    q = np.array([[0.025], [0.5], [0.975]])
    df = np.array([1.0, 4.0, 30.0, np.inf])
    assert_same(d.t_ppf(q, df), stats.t.ppf(q, df))
    assert_same(d.chi2_sf(np.array([0.5, 3.0]), 2), stats.chi2.sf(np.array([0.5, 3.0]), 2))
    assert_same(d.norm_ppf([0.1, 0.9]), stats.norm.ppf([0.1, 0.9]))  # lists as arrays


def imported_by(modules: list[str], watched: list[str]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has imported after importing ``modules``."""
    code = (
        f"import sys, {', '.join(modules)}; "
        f"print(' '.join(m for m in {watched!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_library_imports_without_scipy_stats():
    """The point of the module: importing the models, analyses and report does not import
    scipy.stats (the participant-level statistics import it when they run)."""
    modules = ["hairtrial.analyses.primary", "hairtrial.analyses.binary",
               "hairtrial.analyses.evidence", "hairtrial.analyses.arm_model",
               "hairtrial.report.figures", "hairtrial.report.document",
               "hairtrial.cli"]  # fmt: skip
    assert imported_by(modules, ["scipy.stats"]) == []


def test_drawing_and_reporting_import_no_optimizer():
    """The figure, notebook and report processes fit nothing: importing what they use does
    not import scipy.optimize, scipy.linalg or scipy.special (loaded on first use)."""
    modules = ["hairtrial.report.figures", "hairtrial.plots", "hairtrial.report.document",
               "hairtrial.report.notebooks", "hairtrial.analyses.ipd",
               "hairtrial.analyses.primary"]  # fmt: skip
    assert imported_by(modules, ["scipy.optimize", "scipy.linalg", "scipy.special"]) == []


def test_notebook_imports_leave_out_the_sensitivity_and_evidence_code():
    """What the notebooks import to draw a forest, a trajectory or the robustness figure
    (report.figures, analyses.ipd, analyses.primary) does not import the meta-regression,
    diagnostics and Bayesian code: ~0.45 s in each notebook's kernel."""
    modules = ["hairtrial.report.figures", "hairtrial.analyses.ipd", "hairtrial.analyses.primary"]
    watched = ["hairtrial.analyses.sensitivity", "hairtrial.analyses.evidence",
               "hairtrial.models.metareg", "hairtrial.models.bayes",
               "hairtrial.diagnostics.influence"]  # fmt: skip
    assert imported_by(modules, watched) == []


def test_config_validation_imports_no_format_library():
    """jsonschema's optional format libraries (no format is checked) are not imported with
    the config code, and stay importable for whatever else needs them."""
    from hairtrial.analyses import config

    assert imported_by(["hairtrial.analyses.config"], list(config._FORMAT_LIBRARIES)) == []
    installed = [m for m in config._FORMAT_LIBRARIES if importlib.util.find_spec(m)]
    assert installed  # the Jupyter stack installs some: the check above means something
    after = imported_by(["hairtrial.analyses.config", *installed], installed)
    assert after == installed


def test_the_models_still_reach_the_optimizer():
    from hairtrial.models import cr2, tau2

    assert tau2.scipy.optimize.brentq(lambda x: x - 1.0, 0.0, 3.0) == pytest.approx(1.0)
    assert cr2.scipy.linalg.cholesky([[4.0]])[0, 0] == 2.0
    assert d.norm_cdf(0.0) == 0.5  # scipy.special, loaded on first use
