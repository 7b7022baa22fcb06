"""Seeded simulation of arm-level longitudinal trial data with a known truth.

The generator draws *individual participants* of hypothetical randomised trials
of topical minoxidil alone (control) versus minoxidil plus microneedling
(experimental) and summarises them exactly as a paper would: per arm and week,
``n`` and a mean with SD, SE or 95% CI, or a median with quartiles; either as
levels (``stat = value``, with the baseline) or as changes from baseline. The
result follows the input contract of ``data/README.md`` (it passes
:func:`hairtrial.data.validate.read_inputs`), so the whole pipeline can be run on
data whose true parameters are known: the benchmark and coverage studies.

Model (hair density, hairs/cm2; ``w`` = week, ``w_ref`` = ``spec.ref_week``)
--------------------------------------------------------------------------
Population mean change from baseline:

* minoxidil: ``c(w) = control_plateau * (1 - exp(-w / control_timescale_weeks))``
  (rises, then plateaus);
* microneedling adds ``delta(w) = delta_ref * s(w)`` with the shape
  ``s(w) = (1 - exp(-w / delta_timescale_weeks)) / (1 - exp(-w_ref / delta_timescale_weeks))``,
  so ``delta(0) = 0`` and ``delta(w_ref) = delta_ref``.

Trial ``i`` draws a baseline mean ``b_i ~ N(baseline_mean, baseline_between_sd^2)``,
a control plateau ``control_plateau + v_i`` with ``v_i ~ N(0, control_between_sd^2)``
and a difference at the reference week ``delta_ref + u_i`` with
``u_i ~ N(0, tau^2)``. Each experimental arm ``a`` of the trial adds
``e_a ~ N(0, between_arm_sd^2)`` (a second microneedling arm, e.g. another
needle depth, differs by this much); its true mean change is
``c_i(w) + (delta_ref + u_i + e_a) * s(w)``. An ``other`` arm has true change
``c_i(w) + (other_delta_ref + e_a) * s(w)``.

Participant ``j`` of an arm with weeks ``0 = w_0 < w_1 < ... < w_K`` has levels
``Y_jk = mu_k + sd_k * Z_jk``, ``sd_0 = sd``, ``sd_k = sd * followup_sd_ratio``,
where ``Z_j`` is multivariate normal with correlation
``corr(Z_0, Z_k) = prepost_r`` and, between follow-up weeks,
``corr(Z_k, Z_l) = r^2 + (1 - r^2) * followup_ar^(|w_k - w_l| / 4)`` (the
follow-up deviation is ``r * Z_0`` plus an AR(1)-in-time innovation whose
correlation four weeks apart is ``followup_ar``). The true SD of change is
therefore ``sqrt(sd_0^2 + sd_k^2 - 2 r sd_0 sd_k)`` (Cochrane Handbook 6.5.2.8).
In the split-scalp trial both sides belong to the same patients: the latent
vectors of the two sides are correlated ``split_scalp_r`` (Kronecker
structure), so the true correlation between the two sides' *changes* is
exactly ``split_scalp_r``. Data are normal (no skew), so the
median/IQR-to-mean/SD conversions are approximately unbiased.

Participants drop out completely at random with a constant hazard such that
a fraction ``dropout_by_week24`` has left by week 24; each week is summarised
over the participants still observed (baseline over everyone randomised).

The truth frame
---------------
:func:`simulate` also returns a tidy frame (columns :data:`TRUTH_COLUMNS`),
one row per ``scope`` x ``study`` x ``arm`` x ``week`` x ``quantity``:

* ``scope = "population"`` (study and arm empty): per week of
  ``{0} | week_grid``: ``control_change`` (``c(w)``), ``experimental_change``
  (``c(w) + delta(w)``), ``delta`` (the pooled target of the MD
  meta-analysis), ``tau`` (``tau * s(w)``, between-trial SD of the trial
  difference), ``tau_total`` (``sqrt(tau^2 + between_arm_sd^2) * s(w)``, the SD
  of a one-experimental-arm trial's true difference around ``delta(w)``),
  ``sd_level``, and at follow-up weeks ``sd_change`` and ``smd``
  (``delta / sd_change``, the target of the SMD meta-analysis). Without a week:
  ``baseline_mean``, ``prepost_r``, ``followup_ar``, ``split_scalp_r``.
* ``scope = "study"`` (arm empty), per reported follow-up week:
  ``control_change`` and ``experimental_change`` (n-weighted over the study's
  experimental arms, as :mod:`hairtrial.derive.comparisons` combines them),
  ``difference`` (experimental minus control; what the study's MD estimates),
  ``smd``; and ``baseline_mean`` at week 0.
* ``scope = "arm"``, per reported week: ``n`` (analysed), ``mean_level``,
  ``mean_change``, ``sd_level`` and (follow-up weeks) ``sd_change``, all in
  hairs/cm2 whatever unit the arm is reported in.

Examples
--------
>>> arms, studies, truth = simulate(SimulationSpec(n_trials=4), seed=1)
>>> sorted(studies["design"].unique().tolist())
['parallel', 'split_scalp']
>>> pop = truth[(truth["scope"] == "population") & (truth["quantity"] == "delta")]
>>> float(pop.loc[pop["week"] == 12, "value"].iloc[0])
15.0
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hairtrial.core import distributions as dist
from hairtrial.data import units, validate

TRUTH_COLUMNS = ["scope", "study", "arm", "treatment", "week", "quantity", "value"]
"""Columns of the truth frame returned by :func:`simulate` (``truth.csv``)."""

ARM_OUTPUT_COLUMNS = [c.name for c in validate.ARM_COLUMNS]
"""Columns of the simulated ``arms.csv``: every column of the contract, in its order."""

STUDY_OUTPUT_COLUMNS = [
    "study",
    "year",
    "design",
    "primary",
    "status",
    "category",
    "sex",
    "n_randomised",
    "n_arms",
    "minoxidil_pct",
    "needle_mm",
    "interval_weeks",
    "sessions",
    "treatment_weeks",
    "rob",
    "source",
    "note",
]
"""Columns of the simulated ``studies.csv``."""

FORMATS = ("sd", "se", "ci", "median_iqr")
"""How an arm's dispersion is reported: mean/SD, mean/SE, mean/95% CI, median/IQR."""

_AR_GAP_WEEKS = 4.0
_NEEDLE_MM = (0.5, 0.6, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class SimulationSpec:
    """Parameters of a simulated evidence base (all documented defaults).

    Densities are in hairs/cm2 and times in weeks. Fractions of trials are
    honoured exactly up to rounding: ``round(fraction * eligible trials)``
    trials, chosen at random, get the feature.

    Parameters
    ----------
    n_trials : int, default 12
        Number of trials (the published evidence has about 10).
    three_arm_fraction : float, default 0.25
        Fraction of the *parallel* trials with a third arm.
    third_arm_other_fraction : float, default 0.5
        Among three-arm trials, the fraction whose third arm is an ``other``
        treatment (not analysed); the rest have a second microneedling arm
        with another needle depth (combined with the first by the pipeline).
    week_grid : tuple of int, default (4, 8, 12, 16, 24)
        Follow-up weeks a trial can report.
    min_weeks, max_weeks : int, default 2 and 5
        Number of follow-up weeks per trial, uniform on this range (the
        baseline, week 0, is always reported in addition).
    required_weeks : tuple of int, default (12,)
        Follow-up weeks every trial reports (the usual primary endpoint), so
        that one week pools all trials.
    n_min, n_max : int, default 10 and 60
        Participants randomised per arm, uniform on this range, drawn
        independently per arm (so arms are unequal). The split-scalp trial
        draws one n for both sides.
    dropout_by_week24 : float, default 0.1
        Probability that a participant has dropped out (completely at random)
        by week 24; constant hazard.
    baseline_mean : float, default 150.0
        Population mean baseline density (hairs/cm2; typical of AGA
        phototrichograms).
    baseline_between_sd : float, default 15.0
        Between-trial SD of the trial's baseline mean.
    sd : float, default 30.0
        Between-participant SD of the density at baseline.
    followup_sd_ratio : float, default 1.0
        SD at follow-up weeks relative to ``sd``.
    control_plateau : float, default 20.0
        Plateau of the minoxidil mean change (hairs/cm2).
    control_between_sd : float, default 5.0
        Between-trial SD of the minoxidil plateau.
    control_timescale_weeks : float, default 6.0
        Time constant of the minoxidil response (63% of the plateau).
    delta_ref : float, default 15.0
        True population difference (microneedling minus minoxidil alone) in
        mean change at ``ref_week``.
    ref_week : int, default 12
        Week at which ``delta_ref`` and ``tau`` apply.
    delta_timescale_weeks : float, default 8.0
        Time constant of the difference's shape ``s(w)``.
    tau : float, default 5.0
        Between-trial SD of the difference at ``ref_week`` (scaled by ``s(w)``).
    between_arm_sd : float, default 2.0
        SD of arm-specific deviations of each experimental (and ``other``) arm
        from its trial's difference at ``ref_week``.
    other_delta_ref : float, default 5.0
        True difference of an ``other`` arm from the control at ``ref_week``.
    prepost_r : float, default 0.7
        Within-participant correlation between baseline and every follow-up
        level (hair density is stable within a scalp; note the pipeline's
        default assumption is 0.5, which then overestimates the SD of change).
    followup_ar : float, default 0.8
        Correlation of the follow-up innovations four weeks apart (AR(1) in
        time; must lie in [0, 1)).
    split_scalp : bool, default True
        Whether exactly one trial (a two-arm one) is a split-scalp trial.
    split_scalp_r : float, default 0.5
        Correlation between the two sides of one patient (of levels and of
        changes); equal to the pipeline's default assumption.
    se_fraction, ci_fraction, median_iqr_fraction : float, default 0.2, 0.1, 0.15
        Fractions of trials that report mean/SE, mean/95% CI or
        median/quartiles instead of mean/SD (disjoint; the rest report SDs).
    levels_fraction : float, default 0.3
        Fraction of trials reporting levels at every week (``stat = value``)
        instead of changes; all trials report the baseline level.
    inch2_fraction : float, default 0.15
        Fraction of trials reporting hairs/inch2 (values times 6.4516).
    p_value_fraction : float, default 0.5
        Fraction of the eligible trials (two arms, changes) that also report
        the between-arm p-value of the change (pooled t-test; paired for the
        split-scalp trial) on both rows; p < 0.001 is printed as a bound.
    decimals : int, default 2
        Decimals printed for means, SDs and quantiles (as in a paper).
    outcome : str, default "hair_density"
        Outcome code.
    control, experimental, other : str
        Treatment codes; the first two are the pipeline's defaults.
    first_year, last_year : int, default 2010 and 2024
        Range of publication years.

    Examples
    --------
    >>> SimulationSpec(n_trials=6).n_trials
    6
    >>> SimulationSpec(n_min=50, n_max=10)
    Traceback (most recent call last):
    ...
    ValueError: n_min (50) must not exceed n_max (10)
    """

    n_trials: int = 12
    three_arm_fraction: float = 0.25
    third_arm_other_fraction: float = 0.5
    week_grid: tuple[int, ...] = (4, 8, 12, 16, 24)
    min_weeks: int = 2
    max_weeks: int = 5
    required_weeks: tuple[int, ...] = (12,)
    n_min: int = 10
    n_max: int = 60
    dropout_by_week24: float = 0.1
    baseline_mean: float = 150.0
    baseline_between_sd: float = 15.0
    sd: float = 30.0
    followup_sd_ratio: float = 1.0
    control_plateau: float = 20.0
    control_between_sd: float = 5.0
    control_timescale_weeks: float = 6.0
    delta_ref: float = 15.0
    ref_week: int = 12
    delta_timescale_weeks: float = 8.0
    tau: float = 5.0
    between_arm_sd: float = 2.0
    other_delta_ref: float = 5.0
    prepost_r: float = 0.7
    followup_ar: float = 0.8
    split_scalp: bool = True
    split_scalp_r: float = 0.5
    se_fraction: float = 0.2
    ci_fraction: float = 0.1
    median_iqr_fraction: float = 0.15
    levels_fraction: float = 0.3
    inch2_fraction: float = 0.15
    p_value_fraction: float = 0.5
    decimals: int = 2
    outcome: str = "hair_density"
    control: str = "minoxidil"
    experimental: str = "minoxidil_microneedling"
    other: str = "other"
    first_year: int = 2010
    last_year: int = 2024

    def __post_init__(self) -> None:
        for name in ("week_grid", "required_weeks"):
            object.__setattr__(self, name, tuple(int(w) for w in getattr(self, name)))
        errors = _spec_errors(self)
        if errors:
            raise ValueError("; ".join(errors))

    def population_delta(self, week: float) -> float:
        """True population difference ``delta(week)`` in mean change (hairs/cm2)."""
        return self.delta_ref * _shape(self, week)

    def population_control_change(self, week: float) -> float:
        """True population mean change under minoxidil alone (hairs/cm2)."""
        return self.control_plateau * (1.0 - math.exp(-week / self.control_timescale_weeks))

    def sd_change(self, week: float) -> float:
        """True SD of change from baseline at a follow-up week."""
        s0, s1 = self.sd, self.sd * self.followup_sd_ratio
        return math.sqrt(s0**2 + s1**2 - 2 * self.prepost_r * s0 * s1)


def _spec_errors(s: SimulationSpec) -> list[str]:
    errors: list[str] = []
    if s.n_trials < 1:
        errors.append(f"n_trials ({s.n_trials}) must be >= 1")
    if s.n_trials < 2 and s.split_scalp:
        errors.append("split_scalp needs n_trials >= 2 (one parallel trial besides it)")
    for name in (
        "three_arm_fraction",
        "third_arm_other_fraction",
        "dropout_by_week24",
        "se_fraction",
        "ci_fraction",
        "median_iqr_fraction",
        "levels_fraction",
        "inch2_fraction",
        "p_value_fraction",
    ):
        v = getattr(s, name)
        if not 0.0 <= v <= 1.0:
            errors.append(f"{name} ({v}) must lie in [0, 1]")
    if s.dropout_by_week24 >= 1:
        errors.append("dropout_by_week24 must be < 1")
    if s.se_fraction + s.ci_fraction + s.median_iqr_fraction > 1 + 1e-12:
        errors.append("se_fraction + ci_fraction + median_iqr_fraction must not exceed 1")
    grid = s.week_grid
    if not grid or len(set(grid)) != len(grid) or min(grid) <= 0:
        errors.append(f"week_grid {grid} must hold distinct weeks > 0")
    if not set(s.required_weeks) <= set(grid):
        errors.append(f"required_weeks {s.required_weeks} must be in week_grid {grid}")
    if s.min_weeks > s.max_weeks:
        errors.append(f"min_weeks ({s.min_weeks}) must not exceed max_weeks ({s.max_weeks})")
    if s.min_weeks < max(1, len(set(s.required_weeks))) or s.max_weeks > len(set(grid)):
        errors.append(
            f"min_weeks..max_weeks ({s.min_weeks}..{s.max_weeks}) must lie within "
            f"{max(1, len(set(s.required_weeks)))}..{len(set(grid))} (required weeks, week_grid)"
        )
    if s.n_min > s.n_max:
        errors.append(f"n_min ({s.n_min}) must not exceed n_max ({s.n_max})")
    if s.n_min < 5:
        errors.append(f"n_min ({s.n_min}) must be >= 5")
    for name in ("sd", "followup_sd_ratio", "control_timescale_weeks", "delta_timescale_weeks"):
        if not getattr(s, name) > 0:
            errors.append(f"{name} ({getattr(s, name)}) must be > 0")
    for name in ("baseline_between_sd", "control_between_sd", "tau", "between_arm_sd"):
        if getattr(s, name) < 0:
            errors.append(f"{name} ({getattr(s, name)}) must be >= 0")
    if s.ref_week <= 0:
        errors.append(f"ref_week ({s.ref_week}) must be > 0")
    if not -1 < s.prepost_r < 1:
        errors.append(f"prepost_r ({s.prepost_r}) must lie in (-1, 1)")
    if not -1 < s.split_scalp_r < 1:
        errors.append(f"split_scalp_r ({s.split_scalp_r}) must lie in (-1, 1)")
    if not 0 <= s.followup_ar < 1:
        errors.append(f"followup_ar ({s.followup_ar}) must lie in [0, 1)")
    if s.decimals < 0:
        errors.append(f"decimals ({s.decimals}) must be >= 0")
    codes = (s.outcome, s.control, s.experimental, s.other)
    for code in codes:
        if not validate.CODE_PATTERN.match(code):
            errors.append(f"code {code!r} must be lower-case letters, digits and _")
    if len(set(codes[1:])) != 3:
        errors.append("control, experimental and other treatment codes must differ")
    if s.first_year > s.last_year:
        errors.append("first_year must not exceed last_year")
    return errors


def _shape(spec: SimulationSpec, week: float) -> float:
    """``s(w)``: 0 at baseline, 1 at the reference week, plateauing."""
    t = spec.delta_timescale_weeks
    return (1.0 - math.exp(-week / t)) / (1.0 - math.exp(-spec.ref_week / t))


def _time_correlation(weeks: list[int], r: float, phi: float) -> np.ndarray:
    """Correlation of the standardised levels at ``weeks`` (``weeks[0] == 0``)."""
    w = np.asarray(weeks, dtype=float)
    lag = np.abs(w[:, None] - w[None, :]) / _AR_GAP_WEEKS
    c = r**2 + (1.0 - r**2) * phi**lag
    c[0, :] = r
    c[:, 0] = r
    c[0, 0] = 1.0
    np.fill_diagonal(c, 1.0)
    return c


def _allocate(rng: np.random.Generator, eligible: list[int], fraction: float) -> set[int]:
    """``round(fraction * len(eligible))`` members of ``eligible`` at random."""
    k = int(math.floor(fraction * len(eligible) + 0.5))
    if k == 0:
        return set()
    return {int(i) for i in rng.choice(np.asarray(eligible), size=k, replace=False)}


def _round(x: float, decimals: int, positive: bool = False) -> float:
    """Round as printed; a positive quantity keeps enough decimals to stay > 0."""
    out = round(float(x), decimals)
    d = decimals
    while positive and out <= 0 and d < 12:
        d += 1
        out = round(float(x), d)
    return out


def _p_cells(p: float) -> tuple[float, str]:
    """A p-value as printed: three decimals, or the bound ``< 0.001``."""
    if p < 0.001:
        return 0.001, "<"
    return min(round(p, 3), 0.999), "="


def _summary(x: np.ndarray, fmt: str, factor: float, decimals: int) -> dict[str, float]:
    """The cells a paper prints for the sample ``x`` (hairs/cm2) in ``fmt``."""
    x = np.asarray(x, dtype=float) * factor
    n = x.size
    if fmt == "median_iqr":
        q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
        return {
            "median": _round(med, decimals),
            "q1": _round(q1, decimals),
            "q3": _round(q3, decimals),
        }
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    out = {"mean": _round(mean, decimals)}
    if fmt == "sd":
        out["sd"] = _round(sd, decimals, positive=True)
    elif fmt == "se":
        out["se"] = _round(sd / math.sqrt(n), decimals, positive=True)
    else:  # ci
        half = float(dist.t_ppf(0.975, n - 1)) * sd / math.sqrt(n)
        lo, hi = _round(mean - half, decimals), _round(mean + half, decimals)
        if not lo < hi:  # pragma: no cover - only for absurdly few decimals
            lo, hi = mean - half, mean + half
        out["ci_lower"], out["ci_upper"] = lo, hi
    return out


@dataclass
class _Arm:
    label: str
    treatment: str
    n: int
    arm_effect: float  # e_a, hairs/cm2 at the reference week
    needle_mm: float | None = None


def simulate(
    spec: SimulationSpec, seed: int, participants: list[dict[str, Any]] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate an evidence base of trials from individual participants.

    Parameters
    ----------
    spec : SimulationSpec
        The scenario (see :class:`SimulationSpec` for the model and defaults).
    seed : int
        Seed of :func:`numpy.random.default_rng`; the output is a pure
        function of ``(spec, seed)``.
    participants : list, optional
        When given, every observed participant value is appended to it as a row of the
        ``participants.csv`` contract (see :func:`simulate_participants`); the other
        outputs are the same as without it.

    Returns
    -------
    arms : pandas.DataFrame
        One row per study x arm x week x outcome with the columns of the
        ``arms.csv`` contract (:data:`ARM_OUTPUT_COLUMNS`; empty cells NaN).
        Every arm reports the baseline level at week 0 and, at each follow-up
        week, a level (``stat = value``) or a change (``stat = change``), in
        the trial's unit and dispersion format, rounded to ``spec.decimals``.
    studies : pandas.DataFrame
        One row per study (:data:`STUDY_OUTPUT_COLUMNS`), all ``primary = yes``.
    truth : pandas.DataFrame
        The true parameters (:data:`TRUTH_COLUMNS`); see the module docstring.

    Notes
    -----
    Study-level features (split-scalp, three arms, format, levels, unit,
    p-values) are allocated first, then each trial's weeks, sample sizes,
    random effects and participants are drawn in study order, all from one
    generator; changing any spec field therefore changes every draw.

    Examples
    --------
    >>> arms, studies, truth = simulate(SimulationSpec(n_trials=3), seed=7)
    >>> bool(arms.groupby("study")["arm"].nunique().between(2, 3).all())
    True
    >>> a2, _, _ = simulate(SimulationSpec(n_trials=3), seed=7)
    >>> a2.equals(arms)
    True
    """
    rng = np.random.default_rng(seed)
    n_t = spec.n_trials
    width = max(2, len(str(n_t)))
    ids = [f"sim{i + 1:0{width}d}" for i in range(n_t)]

    # --- study-level features ------------------------------------------------
    trials = list(range(n_t))
    split = {int(rng.integers(n_t))} if spec.split_scalp else set()
    parallel = [i for i in trials if i not in split]
    three = _allocate(rng, parallel, spec.three_arm_fraction)
    other_third = _allocate(rng, sorted(three), spec.third_arm_other_fraction)
    order = [int(i) for i in rng.permutation(n_t)]
    fmt = {i: "sd" for i in trials}
    start = 0
    for name, frac in (
        ("se", spec.se_fraction),
        ("ci", spec.ci_fraction),
        ("median_iqr", spec.median_iqr_fraction),
    ):
        k = int(math.floor(frac * n_t + 0.5))
        for i in order[start : start + k]:
            fmt[i] = name
        start += k
    levels = _allocate(rng, trials, spec.levels_fraction)
    inch2 = _allocate(rng, trials, spec.inch2_fraction)
    p_eligible = [i for i in trials if i not in three and i not in levels]
    with_p = _allocate(rng, p_eligible, spec.p_value_fraction)

    hazard = -math.log(1.0 - spec.dropout_by_week24) / 24.0
    grid = sorted(spec.week_grid)
    required = sorted(set(spec.required_weeks))
    rows: list[dict[str, Any]] = []
    study_rows: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []

    def t_row(scope, study, arm, treatment, week, quantity, value) -> None:
        truth.append(
            {
                "scope": scope,
                "study": study,
                "arm": arm,
                "treatment": treatment,
                "week": week,
                "quantity": quantity,
                "value": float(value),
            }
        )

    for i in trials:
        sid = ids[i]
        is_split = i in split
        # weeks
        k = int(rng.integers(spec.min_weeks, spec.max_weeks + 1))
        pool = [w for w in grid if w not in required]
        extra = rng.choice(pool, size=k - len(required), replace=False) if k > len(required) else []
        follow = sorted({*required, *(int(w) for w in extra)})
        weeks = [0, *follow]
        # arms
        mnx = 5 if rng.random() < 0.8 else 2
        needles = [float(x) for x in rng.choice(_NEEDLE_MM, size=2, replace=False)]
        n_split = int(rng.integers(spec.n_min, spec.n_max + 1))
        arm_list = [
            _Arm(f"Minoxidil {mnx}%", spec.control, 0, 0.0),
            _Arm(f"Minoxidil {mnx}% + MN {needles[0]:g} mm", spec.experimental, 0, 0.0, needles[0]),
        ]
        if i in three:
            if i in other_third:
                arm_list.append(_Arm(f"Minoxidil {mnx}% + other", spec.other, 0, 0.0))
            else:
                arm_list.append(
                    _Arm(
                        f"Minoxidil {mnx}% + MN {needles[1]:g} mm",
                        spec.experimental,
                        0,
                        0.0,
                        needles[1],
                    )
                )
        if is_split:
            arm_list[0].label = f"Minoxidil {mnx}% side"
            arm_list[1].label = f"Minoxidil {mnx}% + MN {needles[0]:g} mm side"
        for a in arm_list:
            a.n = n_split if is_split else int(rng.integers(spec.n_min, spec.n_max + 1))
            if a.treatment != spec.control:
                a.arm_effect = float(rng.normal(0.0, spec.between_arm_sd))
        # trial random effects
        b_i = float(rng.normal(spec.baseline_mean, spec.baseline_between_sd))
        v_i = float(rng.normal(0.0, spec.control_between_sd))
        u_i = float(rng.normal(0.0, spec.tau))

        def true_change(a: _Arm, w: float, v_i=v_i, u_i=u_i) -> float:
            c = (spec.control_plateau + v_i) * (1.0 - math.exp(-w / spec.control_timescale_weeks))
            if a.treatment == spec.experimental:
                return c + (spec.delta_ref + u_i + a.arm_effect) * _shape(spec, w)
            if a.treatment == spec.other:
                return c + (spec.other_delta_ref + a.arm_effect) * _shape(spec, w)
            return c

        # participants
        m = len(weeks)
        corr = _time_correlation(weeks, spec.prepost_r, spec.followup_ar)
        sds = np.array([spec.sd] + [spec.sd * spec.followup_sd_ratio] * (m - 1))
        if is_split:
            side = np.array([[1.0, spec.split_scalp_r], [spec.split_scalp_r, 1.0]])
            chol = np.linalg.cholesky(np.kron(side, corr))
            z = rng.standard_normal((n_split, 2 * m)) @ chol.T
            latents = [z[:, :m], z[:, m:]]
            gone = rng.exponential(1.0 / hazard, n_split) if hazard > 0 else None
            dropouts = [gone, gone]
            # side of the microneedling arm: its own generator, so that the arm-level
            # output does not depend on whether participants are written
            mn_left = np.random.default_rng([seed, i]).random(n_split) < 0.5
        else:
            chol = np.linalg.cholesky(corr)
            latents, dropouts = [], []
            for a in arm_list:
                latents.append(rng.standard_normal((a.n, m)) @ chol.T)
                dropouts.append(rng.exponential(1.0 / hazard, a.n) if hazard > 0 else None)

        unit = "hairs/inch2" if i in inch2 else "hairs/cm2"
        factor = units.CM2_PER_INCH2 if i in inch2 else 1.0
        stat = "value" if i in levels else "change"
        change_data: dict[tuple[int, int], np.ndarray] = {}
        n_obs: dict[tuple[int, int], int] = {}
        for ai, a in enumerate(arm_list):
            mu = np.array([b_i + true_change(a, w) for w in weeks])
            y = mu + sds * latents[ai]
            for k_w, w in enumerate(weeks):
                obs = np.ones(a.n, bool) if dropouts[ai] is None else dropouts[ai] > w
                if obs.sum() < 3:  # keep a summary computable
                    obs[:3] = True
                n_obs[(ai, w)] = int(obs.sum())
                level = y[obs, k_w]
                if participants is not None:
                    for j in np.flatnonzero(obs):
                        side = ""
                        if is_split:
                            side = "left" if mn_left[j] == (ai == 1) else "right"
                        pid = f"p{j + 1:03d}" if is_split else f"p{ai + 1}{j + 1:03d}"
                        participants.append(
                            {
                                "study": sid,
                                "participant": pid,
                                "side": side,
                                "treatment": a.treatment,
                                "week": w,
                                "outcome": spec.outcome,
                                "unit": unit,
                                "value": _round(float(y[j, k_w]) * factor, spec.decimals),
                            }
                        )
                if w == 0 or stat == "value":
                    sample, row_stat = level, "value"
                else:
                    sample, row_stat = level - y[obs, 0], "change"
                    change_data[(ai, w)] = sample
                row = {c: np.nan for c in ARM_OUTPUT_COLUMNS}
                row.update(
                    study=sid,
                    arm=a.label,
                    treatment=a.treatment,
                    week=w,
                    outcome=spec.outcome,
                    unit=unit,
                    n=n_obs[(ai, w)],
                    stat=row_stat,
                    source="simulated: Table 2" if w else "simulated: Table 1",
                    flags=np.nan,
                    note=np.nan,
                    p_relation=np.nan,
                )
                row.update(_summary(sample, fmt[i], factor, spec.decimals))
                rows.append(row)
                # truth, arm level
                t_row("arm", sid, a.label, a.treatment, w, "n", n_obs[(ai, w)])
                t_row("arm", sid, a.label, a.treatment, w, "mean_level", mu[k_w])
                t_row("arm", sid, a.label, a.treatment, w, "mean_change", mu[k_w] - mu[0])
                t_row("arm", sid, a.label, a.treatment, w, "sd_level", sds[k_w])
                if w > 0:
                    t_row("arm", sid, a.label, a.treatment, w, "sd_change", spec.sd_change(w))

        # p-values (two-arm trials reporting changes)
        if i in with_p:
            for w in follow:
                c, e = change_data[(0, w)], change_data[(1, w)]
                from scipy import stats  # imported on use (slow import)

                if is_split:
                    p = float(stats.ttest_rel(e, c).pvalue)
                else:
                    p = float(stats.ttest_ind(e, c, equal_var=True).pvalue)
                pv, rel = _p_cells(p)
                for row in rows:
                    if row["study"] == sid and row["week"] == w:
                        row["p_value"], row["p_relation"] = pv, rel

        # truth, study level
        t_row("study", sid, np.nan, np.nan, 0, "baseline_mean", b_i)
        ctrl = [ai for ai, a in enumerate(arm_list) if a.treatment == spec.control]
        expt = [ai for ai, a in enumerate(arm_list) if a.treatment == spec.experimental]
        for w in follow:
            cc = float(np.mean([true_change(arm_list[ai], w) for ai in ctrl]))
            ns = np.array([n_obs[(ai, w)] for ai in expt], float)
            ec = float(np.dot(ns, [true_change(arm_list[ai], w) for ai in expt]) / ns.sum())
            t_row("study", sid, np.nan, spec.control, w, "control_change", cc)
            t_row("study", sid, np.nan, spec.experimental, w, "experimental_change", ec)
            t_row("study", sid, np.nan, np.nan, w, "difference", ec - cc)
            t_row("study", sid, np.nan, np.nan, w, "smd", (ec - cc) / spec.sd_change(w))

        # studies.csv
        interval = int(rng.choice([1, 2, 4]))
        n_mn = [a.needle_mm for a in arm_list if a.needle_mm is not None]
        note = "simulated"
        if len(n_mn) > 1:
            note += "; needle depths " + " and ".join(f"{x:g} mm" for x in n_mn)
        study_rows.append(
            {
                "study": sid,
                "year": int(rng.integers(spec.first_year, spec.last_year + 1)),
                "design": "split_scalp" if is_split else "parallel",
                "primary": "yes",
                "status": "included",
                "category": "microneedling_roller",
                "sex": str(rng.choice(["male", "female", "mixed"], p=[0.6, 0.1, 0.3])),
                "n_randomised": n_split if is_split else sum(a.n for a in arm_list),
                "n_arms": len(arm_list),
                "minoxidil_pct": float(mnx),
                "needle_mm": n_mn[0],
                "interval_weeks": float(interval),
                "sessions": int(math.ceil(follow[-1] / interval)),
                "treatment_weeks": float(follow[-1]),
                "rob": str(rng.choice(["low", "some", "high"])),
                "source": f"hairtrial.data.simulate seed={seed}",
                "note": note,
            }
        )

    # truth, population level
    for w in [0, *grid]:
        cc, d, sh = spec.population_control_change(w), spec.population_delta(w), _shape(spec, w)
        t_row("population", np.nan, np.nan, spec.control, w, "control_change", cc)
        t_row("population", np.nan, np.nan, spec.experimental, w, "experimental_change", cc + d)
        t_row("population", np.nan, np.nan, np.nan, w, "delta", d)
        t_row("population", np.nan, np.nan, np.nan, w, "tau", spec.tau * sh)
        t_row(
            "population",
            np.nan,
            np.nan,
            np.nan,
            w,
            "tau_total",
            math.hypot(spec.tau, spec.between_arm_sd) * sh,
        )
        sd_w = spec.sd if w == 0 else spec.sd * spec.followup_sd_ratio
        t_row("population", np.nan, np.nan, np.nan, w, "sd_level", sd_w)
        if w > 0:
            t_row("population", np.nan, np.nan, np.nan, w, "sd_change", spec.sd_change(w))
            t_row("population", np.nan, np.nan, np.nan, w, "smd", d / spec.sd_change(w))
    for name in ("baseline_mean", "prepost_r", "followup_ar", "split_scalp_r"):
        t_row("population", np.nan, np.nan, np.nan, None, name, getattr(spec, name))

    arms = pd.DataFrame(rows, columns=ARM_OUTPUT_COLUMNS)
    arms["week"] = arms["week"].astype(int)
    arms["n"] = arms["n"].astype(int)
    studies = pd.DataFrame(study_rows, columns=STUDY_OUTPUT_COLUMNS)
    truth_df = pd.DataFrame(truth, columns=TRUTH_COLUMNS)
    truth_df["week"] = truth_df["week"].astype("Int64")
    return arms, studies, truth_df


PARTICIPANT_OUTPUT_COLUMNS = [
    "study",
    "participant",
    "side",
    "treatment",
    "week",
    "outcome",
    "unit",
    "value",
]
"""Columns of the participant table of :func:`simulate_participants` (``participants.csv``)."""


def simulate_participants(
    spec: SimulationSpec, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`simulate`, also returning every participant's values (synthetic IPD).

    Returns
    -------
    arms, studies, truth : pandas.DataFrame
        As :func:`simulate` (the same frames, draw for draw).
    participants : pandas.DataFrame
        :data:`PARTICIPANT_OUTPUT_COLUMNS`, one row per study x participant x side x
        observed week (dropouts have no rows after they leave), values in the trial's unit
        rounded to ``spec.decimals``; in the split-scalp trial the microneedling side of each
        participant is drawn at random (left or right, probability 1/2). Parallel participants
        are ``p<arm><number>``, split-scalp ones ``p<number>``.

    Examples
    --------
    >>> _, studies, _, part = simulate_participants(SimulationSpec(n_trials=2), seed=3)
    >>> sorted(part.groupby("study")["side"].first().tolist())
    ['', 'left']
    """
    rows: list[dict[str, Any]] = []
    arms, studies, truth = simulate(spec, seed, participants=rows)
    part = pd.DataFrame(rows, columns=PARTICIPANT_OUTPUT_COLUMNS)
    part["week"] = part["week"].astype(int)
    return arms, studies, truth, part


def write_dataset(
    arms: pd.DataFrame,
    studies: pd.DataFrame,
    folder: str | Path,
    truth: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write a simulated dataset and a config that points the pipeline at it.

    Parameters
    ----------
    arms, studies : pandas.DataFrame
        From :func:`simulate`.
    folder : str or Path
        Created if missing; existing files of the same names are replaced.
    truth : pandas.DataFrame, optional
        The truth frame from :func:`simulate`; written as ``truth.csv`` when given.

    Returns
    -------
    dict of str to Path
        ``arms``, ``studies``, ``config`` and (if written) ``truth``.

    Notes
    -----
    ``config.yaml`` holds only ``data`` (absolute paths, because the schema
    reads relative paths from the working directory, not the config file's
    folder) and ``selection.studies: all``; :func:`hairtrial.analyses.config.load_config`
    merges it onto ``config/config.yaml``.

    Examples
    --------
    >>> import tempfile
    >>> from hairtrial.analyses.config import load_config
    >>> arms, studies, truth = simulate(SimulationSpec(n_trials=3), seed=2)
    >>> paths = write_dataset(arms, studies, tempfile.mkdtemp(), truth)
    >>> load_config(paths["config"])["selection"]
    {'studies': 'all'}
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"arms": folder / "arms.csv", "studies": folder / "studies.csv"}
    arms.to_csv(paths["arms"], index=False, lineterminator="\n")
    studies.to_csv(paths["studies"], index=False, lineterminator="\n")
    if truth is not None:
        paths["truth"] = folder / "truth.csv"
        truth.to_csv(paths["truth"], index=False, lineterminator="\n")
    config = {
        "data": {
            "arms": str(paths["arms"].resolve()),
            "studies": str(paths["studies"].resolve()),
        },
        "selection": {"studies": "all"},
    }
    paths["config"] = folder / "config.yaml"
    paths["config"].write_text(
        "# Simulated data (hairtrial.data.simulate); merged onto config/config.yaml.\n"
        + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    return paths


def spec_from_dict(values: dict[str, Any]) -> SimulationSpec:
    """Build a :class:`SimulationSpec` from a mapping, rejecting unknown keys.

    Examples
    --------
    >>> spec_from_dict({"n_trials": 5, "week_grid": [4, 12], "max_weeks": 2}).week_grid
    (4, 12)
    >>> spec_from_dict({"ntrials": 5})
    Traceback (most recent call last):
    ...
    ValueError: unknown simulation field(s): ntrials
    """
    fields = {f.name for f in dataclasses.fields(SimulationSpec)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError("unknown simulation field(s): " + ", ".join(unknown))
    return SimulationSpec(**values)


def load_spec(path: str | Path, scenario: str | None = None) -> tuple[SimulationSpec, int]:
    """Read a simulation scenario from YAML.

    Two layouts are accepted. *Flat*: :class:`SimulationSpec` fields plus a
    required ``seed``. *Scenarios*: a ``scenarios`` mapping of name to such a
    flat block, with optional ``defaults`` (fields shared by every scenario,
    overridden by the scenario's own); ``scenario`` then names the one to load.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    scenario : str, optional
        Scenario name; required for the scenarios layout, unless it holds one.

    Returns
    -------
    (SimulationSpec, int)
        The spec and the seed.

    Raises
    ------
    ValueError
        For an unknown field or scenario, a missing seed or an invalid spec,
        naming the file.

    Examples
    --------
    >>> from hairtrial.analyses.config import ROOT
    >>> spec, seed = load_spec(ROOT / "config" / "simulation.yaml", "benchmark_20")
    >>> spec.n_trials
    20
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of simulation fields")
    if "scenarios" in data:
        scenarios = data["scenarios"] or {}
        if scenario is None and len(scenarios) == 1:
            scenario = next(iter(scenarios))
        if scenario not in scenarios:
            raise ValueError(
                f"{path}: scenario {scenario!r} not found (have: {', '.join(scenarios)})"
            )
        values = {**(data.get("defaults") or {}), **(scenarios[scenario] or {})}
    else:
        if scenario is not None:
            raise ValueError(f"{path}: no 'scenarios' in the file, cannot select {scenario!r}")
        values = dict(data)
    if "seed" not in values:
        raise ValueError(f"{path}: 'seed' is required")
    seed = values.pop("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{path}: seed must be a whole number >= 0, got {seed!r}")
    try:
        return spec_from_dict(values), seed
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None
