"""The project's vocabulary, in one place: labels and column lists.

Figures, tables, the HTML report and the notebooks name measures, moderators and columns
the same way because they all read them from here.
"""

from __future__ import annotations

import re

__all__ = [
    "BINARY_AXIS_LABELS",
    "BINARY_METHOD_NAMES",
    "BINARY_MODEL_TEXT",
    "ARM_LABELS",
    "ARM_TERM_LABELS",
    "CI_METHOD_LABELS",
    "FIXED_METHODS",
    "KEYS",
    "MEASURE_AXIS_LABELS",
    "MEASURE_NAMES",
    "MODEL_COLUMNS",
    "MODERATOR_LABELS",
    "MODERATOR_UNITS",
    "SUMMARY_COLUMNS",
    "SYNTHETIC_LABEL",
    "SYNTHETIC_NOTICE",
    "TAU2_METHOD_LABELS",
    "FAVOURS",
    "PUBLISHED_COMPARISON",
    "arm_labels",
    "arm_names",
    "arm_term_label",
    "favours",
    "treatment_words",
]

KEYS: tuple[str, ...] = ("outcome", "week", "measure")
"""Columns that identify one analysis: outcome x week x effect measure."""

MODEL_COLUMNS: tuple[str, ...] = ("method", "ci_method")
"""Columns that name a model: tau² estimator (metafor's spelling, ``FE`` = common effect)
and CI method."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    *KEYS,
    "k",
    "estimate",
    "ci_lower",
    "ci_upper",
    "pi_lower",
    "pi_upper",
    "tau2",
    "I2",
)
"""Columns of the summary of findings (the primary model of every outcome x week x measure)."""

MEASURE_NAMES: dict[str, str] = {
    "MD": "mean difference",
    "SMD": "standardised mean difference (Hedges' g)",
    "MC": "mean change difference",
    "SMCRP": "standardised mean change difference",
    "RR": "risk ratio",
    "OR": "odds ratio",
    "RD": "risk difference",
}
"""Effect measures in words (methods text, summaries)."""

MEASURE_AXIS_LABELS: dict[str, str] = {
    "MD": "Mean difference in change from baseline ({unit})",
    "SMD": "Standardised mean difference in change (Hedges' g)",
}
"""Effect axis of a figure, per measure (``{unit}``: the typeset unit)."""

MODERATOR_LABELS: dict[str, str] = {
    "year": "Publication year",
    "needle_mm": "Needle length (mm)",
    "interval_weeks": "Interval between sessions (weeks)",
    "sessions": "Number of sessions",
    "treatment_weeks": "Treatment duration (weeks)",
    "minoxidil_pct": "Minoxidil concentration (%)",
    "n_randomised": "Participants randomised",
    "n_arms": "Arms randomised",
    "sex": "sex",
    "category": "device category",
    "design": "design",
    "rob": "risk of bias",
    "country": "country",
    "status": "inclusion status",
    "confidence": "extraction confidence",
}
"""Display names of study-level moderators (axis labels, titles)."""

MODERATOR_UNITS: dict[str, str] = {
    "year": "year",
    "needle_mm": "mm",
    "interval_weeks": "week",
    "sessions": "session",
    "treatment_weeks": "week",
    "minoxidil_pct": "percentage point",
    "n_randomised": "participant",
    "n_arms": "arm",
}
"""Units of numeric moderators (for "slope per ...")."""

FIXED_METHODS: frozenset[str] = frozenset({"FE", "EE", "CE"})
"""metafor's names of the common-effect model (no tau²)."""

TAU2_METHOD_LABELS: dict[str, str] = {
    "REML": "REML",
    "ML": "ML",
    "DL": "DerSimonian\u2013Laird",
    "PM": "Paule\u2013Mandel",
    "PMM": "median-unbiased Paule\u2013Mandel",
    "HE": "Hedges",
    "HS": "Hunter\u2013Schmidt",
    "HSK": "Hunter\u2013Schmidt (small-sample corrected)",
    "SJ": "Sidik\u2013Jonkman",
    "EB": "empirical Bayes",
    "GENQ": "generalised Q-statistic",
}
"""Short names of the tau² estimators (figure footers; the report's methods text says more)."""

CI_METHOD_LABELS: dict[str, str] = {
    "z": "Wald-type (normal)",
    "t": "t distribution",
    "knha": "Hartung\u2013Knapp",
    "adhoc": "Hartung\u2013Knapp (ad hoc)",
}
"""Short names of the CI methods of the pooled estimate (figure footers)."""

BINARY_AXIS_LABELS: dict[str, str] = {
    "RR": "Risk ratio (log scale)",
    "OR": "Odds ratio (log scale)",
    "RD": "Risk difference",
}
"""Effect axis of a binary-outcome figure, per measure."""

BINARY_METHOD_NAMES: dict[str, str] = {
    "MH": "Mantel\u2013Haenszel",
    "Peto": "Peto",
    "GLMM": "binomial-normal GLMM",
}
"""Short names of the pooling methods for counts (legends, text)."""

BINARY_MODEL_TEXT: dict[str, str] = {
    "MH": "Common effect, Mantel\u2013Haenszel",
    "Peto": "Common effect, Peto one-step odds ratio",
    "GLMM": "Random effects, binomial-normal GLMM (fixed study intercepts, ML, adaptive "
    "Gauss\u2013Hermite quadrature)",
}
"""Model line of a figure footer for the pooling methods for counts."""

ARM_TERM_LABELS: dict[str, str] = {
    "week": "{ctl}: mean change from baseline, week {week}",
    "week:experimental": "{exp} minus {ctl}: difference in mean change, week {week}",
    "experimental": "{exp} minus {ctl}: difference in mean change",
    "intercept": "{ctl}: mean change from baseline",
}
"""The arm model's coefficients in words (``C(week)12`` and ``C(week)12:experimental``, the
terms of the default formula); see :func:`arm_term_label`."""


SYNTHETIC_LABEL = "SYNTHETIC DATA"
"""Drawn across every figure of a run whose analysed studies include synthetic ones (made by
the project's simulator; :func:`hairtrial.analyses.ipd.synthetic_sources`), so that a figure
taken out of the run never passes for evidence."""

SYNTHETIC_NOTICE = (
    "**SYNTHETIC DATA.** The studies of this run include data generated by the project's "
    "simulator ({sources}): they describe no real patient, and no number, table or figure of "
    "this run is evidence about any treatment. Every figure is marked SYNTHETIC DATA."
)
"""Said near the top of every executed notebook of such a run (``{sources}``: the studies'
``source`` in ``studies.csv``)."""


def arm_term_label(term: str, control: str = "control", experimental: str = "experimental") -> str:
    """An arm-model coefficient name in words.

    Examples
    --------
    >>> arm_term_label("C(week)12:experimental", "minoxidil", "minoxidil + microneedling")
    'minoxidil + microneedling minus minoxidil: difference in mean change, week 12'
    >>> arm_term_label("C(week)24", "minoxidil")
    'minoxidil: mean change from baseline, week 24'
    >>> arm_term_label("sd")  # a term without a registered label stays as it is
    'sd'
    """
    t = term.replace(" ", "")
    m = re.fullmatch(r"C\(week\)(?:\[T\.)?(\d+)\]?(:experimental)?", t) or re.fullmatch(
        r"(?:experimental:)C\(week\)(?:\[T\.)?(\d+)\]?()", t
    )
    if m:
        key = "week:experimental" if (m.group(2) or t.startswith("experimental:")) else "week"
        return ARM_TERM_LABELS[key].format(ctl=control, exp=experimental, week=m.group(1))
    if t == "experimental":
        return ARM_TERM_LABELS["experimental"].format(ctl=control, exp=experimental)
    if t in ("Intercept", "intrcpt", "1"):
        return ARM_TERM_LABELS["intercept"].format(ctl=control, exp=experimental)
    return term


PUBLISHED_COMPARISON: dict[str, str] = {
    "control": "minoxidil",
    "experimental": "minoxidil_microneedling",
}
"""Treatment codes of the published question's comparison (``comparison`` of the default
config, checked by a test): what the plots name when no labels are passed."""


def treatment_words(code: object) -> str:
    """A treatment code in words: its parts joined by " + ".

    >>> treatment_words("minoxidil_microneedling")
    'minoxidil + microneedling'
    """
    return " + ".join(p for p in str(code).split("_") if p)


def arm_names(control: str, experimental: str) -> tuple[str, str]:
    """The two arms of a comparison in running text, from their treatment codes:
    (experimental, control). An add-on comparison's control is "... alone".

    Examples
    --------
    >>> arm_names("minoxidil", "minoxidil_microneedling")
    ('minoxidil + microneedling', 'minoxidil alone')
    >>> arm_names("placebo", "minoxidil")
    ('minoxidil', 'placebo')
    """
    exp, ctl = treatment_words(experimental), treatment_words(control)
    parts = set(ctl.split(" + "))
    if ctl and parts < set(exp.split(" + ")):  # an add-on trial: the control is "... alone"
        ctl += " alone"
    return exp, ctl


def arm_labels(control: str, experimental: str) -> tuple[str, str]:
    """The two arms as every figure heads them (:func:`arm_names`, first letter capital).

    >>> arm_labels("minoxidil", "minoxidil_microneedling")
    ('Minoxidil + microneedling', 'Minoxidil alone')
    """
    exp, ctl = arm_names(control, experimental)
    return exp[:1].upper() + exp[1:], ctl[:1].upper() + ctl[1:]


def favours(control: str, experimental: str, *, harm: bool = False) -> tuple[str, str]:
    """'Favours' texts left and right of no effect. A larger value is better (hair counts)
    unless `harm` (events are adverse): then more with the experimental arm favours the
    control.

    >>> favours("minoxidil", "minoxidil_microneedling")
    ('Favours minoxidil alone', 'Favours minoxidil + microneedling')
    """
    exp, ctl = arm_names(control, experimental)
    return (f"Favours {exp}", f"Favours {ctl}") if harm else (f"Favours {ctl}", f"Favours {exp}")


ARM_LABELS: tuple[str, str] = arm_labels(**PUBLISHED_COMPARISON)
"""(experimental, control) heads of the published comparison: the plots' default."""

FAVOURS: tuple[str, str] = favours(
    PUBLISHED_COMPARISON["control"], PUBLISHED_COMPARISON["experimental"]
)
"""'Favours' texts of the published comparison (larger is better): the plots' default."""
