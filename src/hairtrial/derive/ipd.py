"""Participant-level data of one's own trial: changes, arm-level rows, correlations, effect sizes.

Input: a long table, one row per study x participant x side x week x outcome (the
``participants.csv`` contract of issue 12, columns :data:`IPD_COLUMNS`):

* ``side`` is empty in parallel trials and ``left`` / ``right`` in split-scalp trials, where
  the two sides of one participant receive different treatments;
* ``week`` 0 is the baseline; one baseline per participant and side.

A *unit* is a participant (parallel trial) or a participant's side (split-scalp trial): the
thing that has one baseline and is followed over time. Everything here is arithmetic on the
table (means, SDs, Pearson correlations, pingouin's Hedges' g); the model fits (mixed model,
ANCOVA, repeated-measures correlation, ICC, mixed ANOVA) live in :mod:`hairtrial.models.ipd`.

Arm-level rows (:func:`arm_rows`) carry the provenance code :data:`PROVENANCE_CODE`
(``from_ipd``), the number having been computed from participant data rather than read from a
paper, so that they can join ``arms.csv``'s trials.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hairtrial.core import distributions as dist

__all__ = [
    "ARM_ROW_COLUMNS",
    "CHANGE_COLUMNS",
    "CORRELATION_COLUMNS",
    "DESCRIBE_COLUMNS",
    "EFFECT_COLUMNS",
    "IPD_COLUMNS",
    "PROVENANCE_CODE",
    "PROVENANCE_TEXT",
    "arm_rows",
    "changes",
    "check_ipd",
    "correlations",
    "describe",
    "hedges_g",
    "is_split_scalp",
    "pearson_row",
    "pool_correlations",
]

IPD_COLUMNS = ["study", "participant", "side", "treatment", "week", "outcome", "unit", "value"]
"""Columns of the participant-level long table (``participants.csv``)."""

PROVENANCE_CODE = "from_ipd"
"""Provenance code of every arm-level number computed from participant-level data."""

PROVENANCE_TEXT = (
    "computed from the trial's participant-level data (n, mean and SD of the observed changes)"
)
"""Explanation of :data:`PROVENANCE_CODE` for tables and reports."""

CHANGE_COLUMNS = [
    "study",
    "outcome",
    "unit",
    "participant",
    "side",
    "unit_id",
    "treatment",
    "week",
    "baseline",
    "value",
    "change",
    "baseline_c",
]
"""Columns of :func:`changes`: one row per unit x follow-up week with a baseline."""

ARM_ROW_COLUMNS = [
    "study",
    "arm",
    "treatment",
    "week",
    "outcome",
    "unit",
    "n",
    "mean",
    "stat",
    "sd",
    "source",
    "provenance",
]
"""Columns of :func:`arm_rows` (those of ``arms.csv`` that apply, plus ``provenance``)."""

CORRELATION_COLUMNS = [
    "study",
    "outcome",
    "quantity",
    "treatment",
    "week",
    "method",
    "n",
    "r",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "notes",
]
"""Columns of :func:`correlations` (and of the model-based correlations of
:mod:`hairtrial.models.ipd`)."""

DESCRIBE_COLUMNS = [
    "study",
    "outcome",
    "unit",
    "treatment",
    "week",
    "variable",
    "n",
    "mean",
    "sd",
    "se",
    "median",
    "q1",
    "q3",
    "min",
    "max",
]
"""Columns of :func:`describe` (``unit``: the participants' unit, the scale of every
statistic but ``n``)."""

EFFECT_COLUMNS = [
    "study",
    "outcome",
    "week",
    "design",
    "n_control",
    "n_experimental",
    "g",
    "ci_lower",
    "ci_upper",
    "paired",
    "method",
]
"""Columns of :func:`hedges_g`."""

SIDES = ("left", "right")


def _side(values: pd.Series) -> pd.Series:
    """Side codes with missing values as ``""``."""
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def is_split_scalp(trial: pd.DataFrame) -> bool:
    """Whether one trial's rows are split-scalp (every ``side`` is ``left`` or ``right``).

    Parameters
    ----------
    trial : pandas.DataFrame
        Rows of one study (column ``side``).

    Returns
    -------
    bool

    Raises
    ------
    ValueError
        If some rows have a side and others do not.

    Examples
    --------
    >>> is_split_scalp(pd.DataFrame({"side": ["left", "right"]}))
    True
    >>> is_split_scalp(pd.DataFrame({"side": [None, float("nan")]}))
    False
    """
    side = _side(trial["side"])
    has = side != ""
    if has.all() and len(side):
        return True
    if not has.any():
        return False
    raise ValueError("a trial's rows must all have a side (split-scalp) or none (parallel)")


def check_ipd(data: pd.DataFrame) -> pd.DataFrame:
    """Check the participant-level table and return a normalised copy.

    Normalisation: ``side`` as a string (``""`` when empty), ``week`` as int, ``value`` as
    float; rows sorted by study, outcome, participant, side, week.

    Parameters
    ----------
    data : pandas.DataFrame
        Columns :data:`IPD_COLUMNS` (others are kept).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        Missing columns; a missing or non-finite value; a negative or non-whole week; a
        side other than ``left`` / ``right``; a trial mixing rows with and without a side;
        a repeated study x outcome x participant x side x week; in a parallel trial, a
        participant in two treatments; in a split-scalp trial, a participant's side in two
        treatments; more than one unit per study and outcome.

    Examples
    --------
    >>> d = pd.DataFrame({"study": "s", "participant": ["a", "a"], "side": "",
    ...                   "treatment": "t", "week": [0, 12], "outcome": "o",
    ...                   "unit": "hairs/cm2", "value": [100.0, 110.0]})
    >>> check_ipd(d)["week"].tolist()
    [0, 12]
    >>> check_ipd(pd.concat([d, d]))
    Traceback (most recent call last):
    ...
    ValueError: 4 repeated study x outcome x participant x side x week rows, first: s, o, a, '', 0
    """
    missing = [c for c in IPD_COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"participant-level table lacks column(s): {', '.join(missing)}")
    d = data.copy()
    for col in ("study", "participant", "treatment", "outcome", "unit"):
        if d[col].isna().any():
            raise ValueError(f"column {col!r} has empty cells")
        d[col] = d[col].astype(str)
    d["side"] = _side(d["side"])
    bad_side = sorted(set(d["side"]) - {"", *SIDES})
    if bad_side:
        raise ValueError(f"side must be empty, 'left' or 'right', got {bad_side}")
    value = pd.to_numeric(d["value"], errors="coerce").astype(float)
    if not np.isfinite(value).all():
        raise ValueError("column 'value' has missing or non-finite numbers")
    d["value"] = value
    week = pd.to_numeric(d["week"], errors="coerce").astype(float)
    if not np.isfinite(week).all() or (week < 0).any() or (week != np.round(week)).any():
        raise ValueError("column 'week' must hold whole numbers >= 0")
    d["week"] = week.astype(int)
    key = ["study", "outcome", "participant", "side", "week"]
    dup = d.duplicated(key, keep=False)
    if dup.any():
        first = d.loc[dup, key].iloc[0]
        raise ValueError(
            f"{int(dup.sum())} repeated study x outcome x participant x side x week rows, "
            f"first: {first['study']}, {first['outcome']}, {first['participant']}, "
            f"{first['side']!r}, {first['week']}"
        )
    for study, trial in d.groupby("study", sort=True):
        split = is_split_scalp(trial)
        by = ["participant", "side"] if split else ["participant"]
        n_trt = trial.groupby(by)["treatment"].nunique()
        if (n_trt > 1).any():
            who = n_trt[n_trt > 1].index[0]
            what = "participant's side" if split else "participant"
            raise ValueError(f"study {study}: a {what} in two treatments: {who}")
    units = d.groupby(["study", "outcome"])["unit"].nunique()
    if (units > 1).any():
        raise ValueError(f"more than one unit for study x outcome {units[units > 1].index[0]}")
    return d.sort_values(key, kind="mergesort").reset_index(drop=True)


def changes(data: pd.DataFrame, treatments: Sequence[str] | None = None) -> pd.DataFrame:
    """Change from baseline of every unit at every follow-up week.

    Parameters
    ----------
    data : pandas.DataFrame
        The participant-level table (:data:`IPD_COLUMNS`).
    treatments : sequence of str, optional
        Keep only these treatments (before centring the baseline).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CHANGE_COLUMNS`, one row per unit x follow-up week that has a baseline:
        ``change = value - baseline`` and ``baseline_c = baseline - mean baseline``, the mean
        being over the units of the study and outcome that have a baseline (the trial's mean
        baseline, every unit weighted once whatever its number of follow-up visits).
        ``unit_id`` is ``participant`` or ``participant|side``. Follow-up rows of units
        without a baseline are dropped (they carry no change).

    Examples
    --------
    >>> d = pd.DataFrame({"study": "s", "participant": ["a", "a", "b", "b"], "side": "",
    ...                   "treatment": ["c", "c", "e", "e"], "week": [0, 12, 0, 12],
    ...                   "outcome": "o", "unit": "hairs/cm2",
    ...                   "value": [100.0, 110.0, 120.0, 150.0]})
    >>> changes(d)[["unit_id", "change", "baseline_c"]].to_dict("list")
    {'unit_id': ['a', 'b'], 'change': [10.0, 30.0], 'baseline_c': [-10.0, 10.0]}
    """
    d = check_ipd(data)
    if treatments is not None:
        d = d[d["treatment"].isin(list(treatments))]
    d = d.assign(
        unit_id=np.where(d["side"] == "", d["participant"], d["participant"] + "|" + d["side"])
    )
    key = ["study", "outcome", "unit_id"]
    base = d.loc[d["week"] == 0, [*key, "value"]].rename(columns={"value": "baseline"})
    centre = base.groupby(["study", "outcome"])["baseline"].transform("mean")
    base = base.assign(baseline_c=base["baseline"] - centre)
    follow = d[d["week"] > 0].merge(base, on=key, how="inner", validate="many_to_one")
    follow["change"] = follow["value"] - follow["baseline"]
    out = follow[CHANGE_COLUMNS].sort_values(
        ["study", "outcome", "participant", "side", "week"], kind="mergesort"
    )
    return out.reset_index(drop=True)


def _levels(data: pd.DataFrame) -> pd.DataFrame:
    """Baseline levels of every unit (``unit_id``), checked and normalised."""
    d = check_ipd(data)
    d = d.assign(
        unit_id=np.where(d["side"] == "", d["participant"], d["participant"] + "|" + d["side"])
    )
    return d


def arm_rows(data: pd.DataFrame, source: str = "participant-level data") -> pd.DataFrame:
    """Arm-level rows (n, mean, SD) computed from participant data, provenance ``from_ipd``.

    Per study x outcome x treatment: at week 0 the baseline level (``stat = value``, n units
    with a baseline), at each follow-up week the change from baseline (``stat = change``, n
    units with both a baseline and that week). SDs with ``ddof = 1`` (NaN for n = 1). In a
    split-scalp trial an arm is a side (one per participant), as in ``arms.csv``.

    Parameters
    ----------
    data : pandas.DataFrame
        The participant-level table (:data:`IPD_COLUMNS`).
    source : str, default "participant-level data"
        Text of the ``source`` column.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ARM_ROW_COLUMNS`; ``arm`` is the treatment code.

    Examples
    --------
    >>> d = pd.DataFrame({"study": "s", "participant": ["a", "a", "b", "b"], "side": "",
    ...                   "treatment": "c", "week": [0, 12, 0, 12], "outcome": "o",
    ...                   "unit": "hairs/cm2", "value": [100.0, 110.0, 120.0, 150.0]})
    >>> arm_rows(d)[["week", "n", "mean", "stat", "provenance"]].to_dict("records")[1]
    {'week': 12, 'n': 2, 'mean': 20.0, 'stat': 'change', 'provenance': 'from_ipd'}
    """
    lv = _levels(data)
    ch = changes(data)
    groups = ["study", "outcome", "unit", "treatment"]
    base = (
        lv[lv["week"] == 0]
        .groupby(groups)["value"]
        .agg(n="count", mean="mean", sd=lambda x: x.std(ddof=1))
        .reset_index()
        .assign(week=0, stat="value")
    )
    follow = (
        ch.groupby([*groups, "week"])["change"]
        .agg(n="count", mean="mean", sd=lambda x: x.std(ddof=1))
        .reset_index()
        .assign(stat="change")
    )
    out = pd.concat([base, follow], ignore_index=True)
    out["arm"] = out["treatment"]
    out["source"] = source
    out["provenance"] = PROVENANCE_CODE
    out["n"] = out["n"].astype(int)
    out["week"] = out["week"].astype(int)
    out = out.sort_values(["study", "outcome", "treatment", "week"], kind="mergesort")
    return out[ARM_ROW_COLUMNS].reset_index(drop=True)


def pearson_row(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Pearson's r of two paired samples with its Fisher-z CI and p-value.

    Parameters
    ----------
    x, y : numpy.ndarray
        Paired samples of equal length.
    level : float, default 0.95
        Confidence level of the CI (``tanh(atanh(r) -/+ z / sqrt(n - 3))``, as R's
        ``cor.test``; NaN for n < 4).

    Returns
    -------
    dict
        ``n, r, ci_lower, ci_upper, pvalue`` (``pvalue``: t-test of r = 0, n - 2 df).

    Examples
    --------
    >>> row = pearson_row(np.array([1.0, 2.0, 3.0, 4.0, 6.0]), np.array([2.0, 1.0, 4.0, 3.0, 7.0]))
    >>> round(row["r"], 6), row["n"]
    (0.880696, 5)
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.size
    out = {"n": n, "r": math.nan, "ci_lower": math.nan, "ci_upper": math.nan, "pvalue": math.nan}
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    from scipy.stats import pearsonr  # imported on use (slow import; hairtrial.core.distributions)

    r, p = pearsonr(x, y)
    out["r"], out["pvalue"] = float(r), float(p)
    if n > 3 and abs(r) < 1:
        z = float(dist.norm_ppf(0.5 + level / 2))
        half = z / math.sqrt(n - 3)
        out["ci_lower"] = math.tanh(math.atanh(r) - half)
        out["ci_upper"] = math.tanh(math.atanh(r) + half)
    return out


def correlations(data: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Observed Pearson correlations: baseline to follow-up, and side to side.

    * ``quantity = baseline_followup``: per study x outcome x treatment x follow-up week,
      between the baseline and the follow-up *level* of the units observed at that week (the
      ``r`` of the SD-of-change formula, Cochrane Handbook 6.5.2.8);
    * split-scalp trials, ``quantity = side_to_side_change``: per follow-up week, between the
      two sides' *changes* of participants with both sides observed (the correlation of
      ``assumptions.split_scalp_correlation``); and ``side_to_side_baseline`` at week 0,
      between the two sides' baseline levels. ``treatment`` is empty on these rows.

    Parameters
    ----------
    data : pandas.DataFrame
        The participant-level table (:data:`IPD_COLUMNS`).
    level : float, default 0.95
        Confidence level (Fisher-z CIs, see :func:`pearson_row`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CORRELATION_COLUMNS`, ``method = pearson``.
    """
    ch = changes(data)
    lv = _levels(data)
    rows: list[dict] = []
    for (study, outcome, treatment, week), g in ch.groupby(
        ["study", "outcome", "treatment", "week"], sort=True
    ):
        row = pearson_row(g["baseline"].to_numpy(), g["value"].to_numpy(), level)
        rows.append(
            {
                "study": study,
                "outcome": outcome,
                "quantity": "baseline_followup",
                "treatment": treatment,
                "week": int(week),
                "method": "pearson",
                **row,
                "notes": "",
            }
        )
    for (study, outcome), trial in lv.groupby(["study", "outcome"], sort=True):
        if not is_split_scalp(trial):
            continue
        tch = ch[(ch["study"] == study) & (ch["outcome"] == outcome)]
        base = trial[trial["week"] == 0]
        pieces = [("side_to_side_baseline", 0, base, "value")]
        pieces += [
            ("side_to_side_change", int(w), g, "change") for w, g in tch.groupby("week", sort=True)
        ]
        for quantity, week, g, col in pieces:
            wide = g.pivot(index="participant", columns="side", values=col).dropna()
            if set(wide.columns) != set(SIDES):
                wide = pd.DataFrame(columns=list(SIDES))
            row = pearson_row(wide["left"].to_numpy(), wide["right"].to_numpy(), level)
            rows.append(
                {
                    "study": study,
                    "outcome": outcome,
                    "quantity": quantity,
                    "treatment": "",
                    "week": week,
                    "method": "pearson",
                    **row,
                    "notes": "",
                }
            )
    out = pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
    return out.astype({"n": int, "week": int}) if len(out) else out


def describe(data: pd.DataFrame) -> pd.DataFrame:
    """Descriptive statistics per study x outcome x treatment x week.

    ``variable = level`` at every week (all observed units) and ``variable = change`` at
    follow-up weeks (units with a baseline). Quantiles by linear interpolation (numpy's and
    R's default, type 7); SD with ``ddof = 1``; ``se = sd / sqrt(n)``.

    Parameters
    ----------
    data : pandas.DataFrame
        The participant-level table (:data:`IPD_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DESCRIBE_COLUMNS`.

    Examples
    --------
    >>> d = pd.DataFrame({"study": "s", "participant": ["a", "a", "b", "b"], "side": "",
    ...                   "treatment": "c", "week": [0, 12, 0, 12], "outcome": "o",
    ...                   "unit": "hairs/cm2", "value": [100.0, 110.0, 120.0, 150.0]})
    >>> describe(d)[["week", "variable", "n", "mean", "median"]].values.tolist()
    [[0, 'level', 2, 110.0, 110.0], [12, 'change', 2, 20.0, 20.0], [12, 'level', 2, 130.0, 130.0]]
    """
    lv = _levels(data).assign(variable="level")
    ch = (
        changes(data)
        .assign(variable="change")
        .rename(columns={"value": "level_value", "change": "value"})
    )
    cols = ["study", "outcome", "unit", "treatment", "week", "variable", "value"]
    both = pd.concat([lv[cols], ch[cols]], ignore_index=True)
    # one unit per study and outcome (check_ipd): grouping by it adds the column only
    g = both.groupby(cols[:-1], sort=True)["value"]
    out = g.agg(
        n="count",
        mean="mean",
        sd=lambda x: x.std(ddof=1),
        median="median",
        q1=lambda x: x.quantile(0.25),
        q3=lambda x: x.quantile(0.75),
        min="min",
        max="max",
    ).reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n"])
    out["n"] = out["n"].astype(int)
    out["week"] = out["week"].astype(int)
    return out[DESCRIBE_COLUMNS]


def hedges_g(
    data: pd.DataFrame,
    control: str,
    experimental: str,
    level: float = 0.95,
) -> pd.DataFrame:
    """Hedges' g of change from baseline (experimental vs control) per week, with pingouin.

    Parallel trials: ``pingouin.compute_effsize(paired=False, eftype="hedges")`` (pooled SD,
    small-sample correction) and ``pingouin.compute_esci`` (t-quantile on n1 + n2 - 2 df,
    ``se = sqrt((n1 + n2)/(n1 n2) + g^2 / (2 (n1 + n2)))``). Split-scalp trials, participants
    with both sides observed: ``paired=True`` (pingouin's d-avg, standardised by the mean of
    the two sides' variances, i.e. the scale of metafor's ``SMCRP`` rather than of the SD of the
    differences) and pingouin's paired CI (``se = sqrt(1/n + g^2/(2n))``, n - 1 df). These CIs
    are pingouin's approximations, reported as trial-level descriptions; the meta-analysis uses
    its own escalc-equivalent variances (:mod:`hairtrial.derive.effects`).

    Parameters
    ----------
    data : pandas.DataFrame
        The participant-level table (:data:`IPD_COLUMNS`).
    control, experimental : str
        Treatment codes.
    level : float, default 0.95
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EFFECT_COLUMNS`; weeks where an arm has fewer than 2 units are left
        out.
    """
    import pingouin as pg  # imported on first use (slow import)

    ch = changes(data, treatments=[control, experimental])
    rows: list[dict] = []
    for (study, outcome), trial in ch.groupby(["study", "outcome"], sort=True):
        split = bool((trial["side"] != "").all())
        for week, g in trial.groupby("week", sort=True):
            if split:
                wide = g.pivot(index="participant", columns="treatment", values="change").dropna()
                if control not in wide or experimental not in wide:
                    continue
                x, y = wide[experimental].to_numpy(), wide[control].to_numpy()
            else:
                x = g.loc[g["treatment"] == experimental, "change"].to_numpy()
                y = g.loc[g["treatment"] == control, "change"].to_numpy()
            if x.size < 2 or y.size < 2:
                continue
            es = float(pg.compute_effsize(x, y, paired=split, eftype="hedges"))
            ci = pg.compute_esci(
                stat=es,
                nx=x.size,
                ny=y.size,
                paired=split,
                eftype="hedges",
                confidence=level,
                decimals=15,
            )
            rows.append(
                {
                    "study": study,
                    "outcome": outcome,
                    "week": int(week),
                    "design": "split_scalp" if split else "parallel",
                    "n_control": int(y.size),
                    "n_experimental": int(x.size),
                    "g": es,
                    "ci_lower": float(ci[0]),
                    "ci_upper": float(ci[1]),
                    "paired": split,
                    "method": "pingouin hedges" + (" (d-avg, paired)" if split else ""),
                }
            )
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def pool_correlations(rows: pd.DataFrame) -> dict[str, float]:
    """Pool Pearson correlations by Fisher z, weighted by ``n - 3`` (Hedges & Olkin 1985).

    ``r = tanh(sum((n_i - 3) atanh(r_i)) / sum(n_i - 3))`` over the rows with a finite ``r``
    (``|r| < 1``) and ``n > 3``; the CI is ``tanh(z -/+ 1.96 / sqrt(sum(n_i - 3)))``, which
    treats the rows as independent samples (rows of the same participants at several weeks
    are not, so it is too narrow; it describes, it is not used in any model).

    Parameters
    ----------
    rows : pandas.DataFrame
        Columns ``n`` and ``r`` (rows of :func:`correlations`).

    Returns
    -------
    dict
        ``r, ci_lower, ci_upper, n_rows, n`` (``n`` = sum of the rows' n); NaN if no row
        qualifies.

    Examples
    --------
    >>> out = pool_correlations(pd.DataFrame({"n": [23, 13], "r": [0.5, 0.7]}))
    >>> round(out["r"], 6), out["n_rows"]
    (0.57523, 2)
    """
    r = pd.to_numeric(rows["r"], errors="coerce").to_numpy(float)
    n = pd.to_numeric(rows["n"], errors="coerce").to_numpy(float)
    ok = np.isfinite(r) & (np.abs(r) < 1) & (n > 3)
    out = {"r": math.nan, "ci_lower": math.nan, "ci_upper": math.nan, "n_rows": int(ok.sum())}
    out["n"] = int(n[ok].sum()) if ok.any() else 0
    if not ok.any():
        return out
    w = n[ok] - 3
    z = float(np.sum(w * np.arctanh(r[ok])) / np.sum(w))
    half = float(dist.norm_ppf(0.975)) / math.sqrt(float(np.sum(w)))
    out.update(r=math.tanh(z), ci_lower=math.tanh(z - half), ci_upper=math.tanh(z + half))
    return out
