"""Arm-level derivation: from what a paper reported to n, mean change and SD of change.

One row in, at most one row out per study x arm x week (> 0) x outcome. Each
of ``n``, ``mean`` and ``sd`` carries a provenance code (see
:mod:`hairtrial.data.provenance`), and every number that is not ``reported`` is
also written, with its inputs and assumptions, to the data-quality table.

Order of preference for the SD of one arm at one week: reported SD, then SE,
then 95% CI, then quantiles (median/IQR/range). The between-arm p-value is
used later, per comparison (:mod:`hairtrial.derive.comparisons`), because it involves
both arms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from hairtrial.data import provenance, units
from hairtrial.derive import dispersion

ARM_CHANGE_COLUMNS = [
    "study",
    "arm",
    "treatment",
    "outcome",
    "unit",
    "week",
    "n",
    "mean",
    "sd",
    "n_provenance",
    "mean_provenance",
    "sd_provenance",
    "p_value",
    "p_relation",
    "t_value",
    "flags",
    "lines",
]
"""Columns of the derived arm table (means and SDs are of change from baseline)."""

QUALITY_COLUMNS = [
    "study",
    "arm",
    "outcome",
    "week",
    "quantity",
    "value",
    "unit",
    "provenance",
    "method",
    "inputs",
    "assumption",
]
"""Columns of ``data_quality.csv``: one row per derived, converted or assumed number."""


@dataclass
class _Quantity:
    value: float = math.nan
    codes: list[str] = field(default_factory=list)
    method: str = ""
    inputs: str = ""
    assumption: str = ""

    @property
    def known(self) -> bool:
        return math.isfinite(self.value)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _arm_week(
    row: pd.Series, unit: units.Unit, n_total: float, n_arms: int
) -> tuple[_Quantity, _Quantity, _Quantity, list[str]]:
    """Derive n, mean and SD for one reported row (level or change, one week)."""
    notes: list[str] = []
    conv = unit.factor
    conv_code = ["unit_converted"] if unit.converted else []
    # a row computed rather than read (e.g. from_ipd) names its origin in column provenance
    given = row.get("provenance")
    origin = given if isinstance(given, str) and given else "reported"

    def val(col: str) -> float | None:
        x = row[col]
        return None if pd.isna(x) else float(x) * conv

    # n
    if pd.notna(row["n"]):
        n = _Quantity(float(row["n"]), [origin])
    elif math.isfinite(n_total):
        value = dispersion.split_n_equally(int(n_total), n_arms)
        n = _Quantity(
            float(value),
            ["n_split_equally"],
            "total randomised split equally between arms (rounded down)",
            f"n_randomised={int(n_total)}; arms={n_arms}",
            "equal allocation",
        )
    else:
        n = _Quantity()
        notes.append("per-arm n not reported and no n_randomised in studies.csv")

    # mean
    mean = _Quantity()
    median, q1, q3, lo, hi = (val(c) for c in ("median", "q1", "q3", "min", "max"))
    if pd.notna(row["mean"]):
        mean = _Quantity(float(row["mean"]) * conv, [origin, *conv_code])
        if unit.converted:
            mean.method = f"{row['unit']} -> {unit.canonical}"
            mean.inputs = f"mean={row['mean']}"
    elif median is not None and n.known:
        code = _quantile_code(q1, lo)
        value = dispersion.mean_from_quantiles(
            n.value, median=median, q1=q1, q3=q3, minimum=lo, maximum=hi
        )
        mean = _Quantity(
            float(value),
            [code, *conv_code],
            "mean estimated from quantiles (Luo et al. 2018)",
            _quantile_inputs(n.value, median, q1, q3, lo, hi),
            "approximately normal distribution",
        )

    # SD
    sd = _Quantity()
    se, cl, cu = val("se"), val("ci_lower"), val("ci_upper")
    if pd.notna(row["sd"]):
        sd = _Quantity(float(row["sd"]) * conv, [origin, *conv_code])
        if unit.converted:
            sd.method = f"{row['unit']} -> {unit.canonical}"
            sd.inputs = f"sd={row['sd']}"
    elif se is not None and n.known:
        sd = _Quantity(
            float(dispersion.sd_from_se(se, n.value)),
            ["from_se", *conv_code],
            "SD = SE * sqrt(n)",
            f"se={_fmt(se)}; n={_fmt(n.value)}",
        )
    elif cl is not None and cu is not None and n.known:
        sd = _Quantity(
            float(dispersion.sd_from_ci(cl, cu, n.value)),
            ["from_ci", *conv_code],
            "SD = sqrt(n) * (upper - lower) / (2 * t(0.975, n - 1))",
            f"ci=[{_fmt(cl)}, {_fmt(cu)}]; n={_fmt(n.value)}",
            "CI is t-based for the arm mean",
        )
    elif (q1 is not None or lo is not None) and n.known:
        code = _quantile_code(q1, lo)
        sd = _Quantity(
            float(
                dispersion.sd_from_quantiles(
                    n.value, q1=q1, q3=q3, minimum=lo, maximum=hi, median=median
                )
            ),
            [code, *conv_code],
            "SD estimated from quantiles (Wan et al. 2014; Shi et al. 2020)",
            _quantile_inputs(n.value, median, q1, q3, lo, hi),
            "approximately normal distribution",
        )
    return n, mean, sd, notes


def _quantile_code(q1: float | None, lo: float | None) -> str:
    if q1 is not None and lo is not None:
        return "from_five_numbers"
    if q1 is not None:
        return "from_median_iqr"
    return "from_median_range"


def _quantile_inputs(n, median, q1, q3, lo, hi) -> str:
    parts = [f"n={_fmt(n)}"]
    for name, v in (("median", median), ("q1", q1), ("q3", q3), ("min", lo), ("max", hi)):
        if v is not None:
            parts.append(f"{name}={_fmt(v)}")
    return "; ".join(parts)


def _quality_rows(base: dict, quantities: dict[str, _Quantity], unit: str) -> list[dict]:
    rows = []
    for name, q in quantities.items():
        code = provenance.join(q.codes)
        if code == "reported" or not q.known:
            continue
        rows.append(
            {
                **base,
                "quantity": name,
                "value": q.value,
                "unit": "participants" if name == "n" else unit,
                "provenance": code,
                "method": q.method,
                "inputs": q.inputs,
                "assumption": q.assumption,
            }
        )
    return rows


def derive_arm_changes(
    arms: pd.DataFrame,
    studies: pd.DataFrame,
    *,
    change_sd_correlation: float,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Turn validated arm rows into n, mean change and SD of change per arm and week.

    Parameters
    ----------
    arms, studies : pandas.DataFrame
        Validated inputs (:func:`hairtrial.data.validate.read_inputs`).
    change_sd_correlation : float
        Correlation r between baseline and follow-up within an arm, used when
        a paper reports levels (``stat = value``) at baseline and follow-up:
        mean change = follow-up - baseline; SD of change =
        sqrt(sd0^2 + sd1^2 - 2 r sd0 sd1) (Cochrane Handbook 6.5.2.8).

    Returns
    -------
    arm_changes : pandas.DataFrame
        Columns :data:`ARM_CHANGE_COLUMNS`, one row per study x arm x week > 0
        x outcome; SD may be NaN (to be derived from a p-value per comparison).
    quality : pandas.DataFrame
        Columns :data:`QUALITY_COLUMNS`: every number that is not reported.
    notes : list of str
        Rows that could not be used, and why.

    Examples
    --------
    >>> import pandas as pd
    >>> studies = pd.DataFrame({"study": ["s1"], "n_randomised": [40.0], "n_arms": [2.0]})
    >>> arms = pd.DataFrame({
    ...     "study": ["s1"] * 2, "arm": ["A"] * 2, "treatment": ["minoxidil"] * 2,
    ...     "week": [0, 12], "outcome": ["hair_density"] * 2, "unit": ["hairs/cm2"] * 2,
    ...     "n": [None, None], "mean": [100.0, 110.0], "stat": ["value"] * 2,
    ...     "sd": [10.0, 10.0], "line": [2, 3]})
    >>> out, quality, notes = derive_arm_changes(arms, studies, change_sd_correlation=0.5)
    >>> out[["n", "mean", "sd"]].to_numpy().tolist()
    [[20.0, 10.0, 10.0]]
    >>> out[["n_provenance", "mean_provenance", "sd_provenance"]].iloc[0].tolist()
    ['n_split_equally', 'change_from_levels', 'change_from_levels_r']
    """
    arms = arms.copy()
    for col in (
        "se",
        "ci_lower",
        "ci_upper",
        "median",
        "q1",
        "q3",
        "min",
        "max",
        "p_value",
        "p_relation",
        "t_value",
        "flags",
    ):
        if col not in arms.columns:
            arms[col] = None
    sinfo = studies.set_index("study")
    n_listed = arms.groupby("study")["arm"].nunique()
    derived: dict[tuple, tuple] = {}
    notes: list[str] = []
    for _, row in arms.iterrows():
        study = row["study"]
        n_total = float(sinfo.at[study, "n_randomised"]) if study in sinfo.index else math.nan
        n_arms_decl = sinfo.at[study, "n_arms"] if "n_arms" in sinfo.columns else math.nan
        n_arms = int(max(n_listed[study], 0 if pd.isna(n_arms_decl) else n_arms_decl))
        unit = units.lookup(row["unit"])
        n, mean, sd, row_notes = _arm_week(row, unit, n_total, n_arms)
        key = (study, row["arm"], row["outcome"], int(row["week"]), row["stat"])
        derived[key] = (row, unit, n, mean, sd)
        notes.extend(f"{study} / {row['arm']} / week {row['week']}: {m}" for m in row_notes)

    out_rows: list[dict] = []
    quality: list[dict] = []
    for (study, arm, outcome, week, stat), (row, unit, n, mean, sd) in derived.items():
        if week == 0:
            continue
        where = f"{study} / {arm} / {outcome} / week {week}"
        if stat == "value":
            base = derived.get((study, arm, outcome, 0, "value"))
            if base is None:
                notes.append(f"{where}: level reported without a baseline level; not used")
                continue
            _, _, _n0, mean0, sd0 = base
            if mean.known and mean0.known:
                mean = _Quantity(
                    mean.value - mean0.value,
                    ["change_from_levels", *mean.codes, *mean0.codes],
                    "mean change = follow-up mean - baseline mean",
                    f"follow-up={_fmt(mean.value)}; baseline={_fmt(mean0.value)}",
                )
            else:
                mean = _Quantity()
            if sd.known and sd0.known:
                r = change_sd_correlation
                sd = _Quantity(
                    float(dispersion.sd_change_from_levels(sd0.value, sd.value, r)),
                    ["change_from_levels_r", *sd.codes, *sd0.codes],
                    "SD change = sqrt(sd0^2 + sd1^2 - 2 r sd0 sd1)",
                    f"sd0={_fmt(sd0.value)}; sd1={_fmt(sd.value)}",
                    f"r = {r:g} (assumptions.change_sd_correlation)",
                )
            else:
                sd = _Quantity()
        if not mean.known or not n.known:
            notes.append(f"{where}: no usable mean change or n; not used")
            continue
        base_info = {"study": study, "arm": arm, "outcome": outcome, "week": week}
        quality.extend(_quality_rows(base_info, {"n": n, "mean": mean, "sd": sd}, unit.canonical))
        out_rows.append(
            {
                "study": study,
                "arm": arm,
                "treatment": row["treatment"],
                "outcome": outcome,
                "unit": unit.canonical,
                "week": week,
                "n": n.value,
                "mean": mean.value,
                "sd": sd.value,
                "n_provenance": provenance.join(n.codes),
                "mean_provenance": provenance.join(mean.codes),
                "sd_provenance": provenance.join(sd.codes) if sd.known else "",
                "p_value": row["p_value"],
                "p_relation": row["p_relation"],
                "t_value": row["t_value"],
                "flags": row["flags"] if isinstance(row["flags"], str) else "",
                "lines": str(row["line"]),
            }
        )
    out = pd.DataFrame(out_rows, columns=ARM_CHANGE_COLUMNS)
    out["p_value"] = pd.to_numeric(out["p_value"]).astype(float)
    out["t_value"] = pd.to_numeric(out["t_value"]).astype(float)
    out = out.sort_values(["outcome", "week", "study", "arm"], kind="stable").reset_index(drop=True)
    q = pd.DataFrame(quality, columns=QUALITY_COLUMNS)
    return out, q, notes
