"""Provenance codes: how each number used in the analysis was obtained.

Every derived, converted or assumed number carries one or more of these codes
(joined with ``;``) from the arm table into every table and figure that uses
it. ``reported`` means the number stands in the paper as used.
"""

from __future__ import annotations

from collections.abc import Iterable

PROVENANCE: dict[str, str] = {
    "reported": "as reported in the paper",
    "unit_converted": "converted from hairs/inch² to hairs/cm² (divided by 6.4516)",
    "n_split_equally": "per-arm n not reported: total randomised split equally between arms",
    "events_from_percent": "events not reported: percent x n / 100, rounded to the nearest "
    "whole number (halves up)",
    "from_se": "SD from the reported SE (SD = SE·√n)",
    "from_ci": "SD from the reported 95% CI of the mean (t-based; Cochrane Handbook 6.5.2.2)",
    "from_median_iqr": "mean/SD estimated from median and IQR (Luo 2018; Wan 2014)",
    "from_median_range": "mean/SD estimated from median and range (Luo 2018; Wan 2014)",
    "from_five_numbers": "mean/SD estimated from the five-number summary (Luo 2018; Shi 2020)",
    "from_p_value": "SD from the between-arm p-value, assumed equal in both arms "
    "(Cochrane Handbook 6.5.2.3)",
    "from_p_bound": "SD from a between-arm p-value reported as a bound (p < x used as p = x: "
    "the SD is overestimated, so the study is down-weighted — conservative)",
    "from_t": "SD from the between-arm t statistic, assumed equal in both arms "
    "(Cochrane Handbook 6.5.2.3)",
    "change_from_levels": "change from baseline computed from baseline and follow-up means",
    "change_from_levels_r": "SD of change from baseline and follow-up SDs with an assumed "
    "correlation r (Cochrane Handbook 6.5.2.8)",
    "combined_arms": "arms of the same treatment combined (Cochrane Handbook 6.5.2.10)",
    "split_scalp_r": "split-scalp contrast from the sides' SDs and a within-patient "
    "correlation between the sides (assumed, unless marked as measured)",
    "from_ipd": "computed from the trial's participant-level data (n, mean and SD of the "
    "observed changes from baseline)",
    "r_from_ipd": "the correlation used (baseline to follow-up, or side to side) was measured "
    "in the participant-level data of this analysis (pooled Fisher z), not assumed",
}
"""Code -> explanation, used by tables, figure footnotes and the data README."""

ORDER = {code: i for i, code in enumerate(PROVENANCE)}

FLAGS: dict[str, str] = {
    "secondary_source": "numbers from a secondary source (a later review's table), not the "
    "trial report",
    "p_value_secondary_source": "p-value from a secondary source (a later review's table)",
    "secondary_news_summary": "numbers from a news summary of the trial",
    "value_conflict_with_secondary": "a secondary source gives a different value (the "
    "trial report's is used)",
    "change_vs_level_ambiguous": "unclear whether the values are changes from baseline or levels",
    "mean_or_median_unspecified": "unclear whether the values are means or medians",
    "week_approximated": "follow-up week approximated from the report's months or sessions",
    "definition_not_stated": "the outcome's definition is not stated",
    "threshold_wording_unconfirmed": "the responder threshold's wording is unconfirmed",
    "rater_not_stated": "who rated the outcome is not stated",
    "co_intervention": "the experimental arm also received another treatment",
    "site_not_stated": "the site of the event is not stated",
    "other_arms_not_stated": "counts of the other arms are not stated",
    "counts_may_be_events": "counts may be events, not participants with an event",
}
"""Extraction caveats (the ``flags`` column of the input files) -> a reader's words.

Flags are free codes: a review may use its own; :func:`flag_text` explains an unknown code by
its words. Unlike provenance codes they do not change a number, they qualify it.
"""

FLAGS_NOT_SHOWN = frozenset({"split_scalp_within_patient"})
"""Flags that figures show by other means (the split-scalp design has its own mark)."""


def flag_text(code: str) -> str:
    """A reader's words for an extraction flag; an unknown code by its words.

    Examples
    --------
    >>> flag_text("rater_not_stated")
    'who rated the outcome is not stated'
    >>> flag_text("dose_unclear")
    'dose unclear'
    """
    return FLAGS.get(code, code.replace("_", " ").strip())


def join(codes: Iterable[str]) -> str:
    """Join codes into the canonical ``;``-separated form.

    ``reported`` is dropped when any other code is present; duplicates are
    removed; the order is that of :data:`PROVENANCE`.

    Parameters
    ----------
    codes : iterable of str
        Codes, possibly already ``;``-joined strings.

    Returns
    -------
    str

    Examples
    --------
    >>> join(["reported", "from_p_bound;unit_converted", "unit_converted"])
    'unit_converted;from_p_bound'
    >>> join([])
    'reported'
    """
    found: set[str] = set()
    for c in codes:
        found.update(x for x in str(c).split(";") if x)
    unknown = found - PROVENANCE.keys()
    if unknown:
        raise ValueError(f"unknown provenance code(s): {sorted(unknown)}")
    if len(found) > 1:
        found.discard("reported")
    if not found:
        return "reported"
    return ";".join(sorted(found, key=ORDER.__getitem__))
