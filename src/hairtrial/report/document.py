"""One self-contained HTML report of a run, for a reader who will never run Python.

:func:`build_report` reads what ``make run`` wrote under ``results/`` (tables, figures,
the validated config, the executed notebooks) and the trial list of the data
(``studies.csv``), and writes one HTML file with every figure embedded as a base64 PNG and
the style sheet inline, so the file can be mailed, archived or opened offline. It contains:

* a plain-language summary **generated from the numbers** of the primary model of the
  primary outcome (the first outcome and week with the most trials): estimate, CI,
  prediction interval, tau², I², k, whether the CI includes 0, how many of the numbers it
  stands on were derived rather than reported, and what the robustness analyses say;
* methods text generated from the config and the data: the effect measures, tau²
  estimators and CI methods actually used (with references), the derivation rules
  (provenance codes) that occur in this run with the assumed values they used, and the
  versions of the software that produced the numbers;
* the evidence table (every trial of ``studies.csv``, with what was usable), every results
  table this run made (rounded by :func:`hairtrial.report.tables.format_value`; captions
  from :data:`TABLE_CAPTIONS`, a generic caption for a table not listed there), every figure
  this run made (captions from :data:`FIGURE_CAPTIONS` keyed by figure kind, a generic
  caption for an unknown kind), the provenance of every derived number, and links to the
  executed notebooks.

What "this run made" is comes from the run's manifests (``results/manifests/*.csv``, one per
job, :func:`run_outputs`) or a list given to :func:`build_report`; nothing is found by
looking in ``results/``, so a file left there by another run cannot appear. The captions come
from one file, ``hairtrial/resources/captions.yaml``, which Snakemake's report reads too. New
tables and figures written by the workflow appear in the report without any change here.
The report is deterministic: everything is sorted, nothing depends on the clock or on where
the files are, so two builds from the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml
from markupsafe import Markup

from hairtrial.analyses import ipd as analyses_ipd
from hairtrial.analyses import primary as analyses_primary
from hairtrial.core import vocab
from hairtrial.core.io import atomic_write, read_csv_output
from hairtrial.core.manifest import read_manifests
from hairtrial.core.yamlio import load_yaml, yaml_copy
from hairtrial.data.provenance import ORDER as PROVENANCE_ORDER
from hairtrial.data.provenance import PROVENANCE
from hairtrial.data.units import UNIT_LABELS
from hairtrial.report import benefit_harm, evidence_text
from hairtrial.report.tables import ROUNDING_NOTE, format_value

__all__ = [
    "FIGURE_CAPTIONS",
    "METAFOR_VERSION",
    "TABLE_CAPTIONS",
    "build_report",
    "figure_caption",
    "figure_kind",
    "primary_model",
    "provenance_codes_present",
    "render_report",
    "run_outputs",
    "software_versions",
    "table_caption",
]

METAFOR_VERSION = "metafor 3.8-1"
"""The R package version the reference values of the parity tests came from."""

SOFTWARE = ("numpy", "scipy", "pandas", "matplotlib", "snakemake", "hairtrial")
"""Python distributions whose versions the methods section reports (after Python itself)."""

SMALL_K = 5
"""Below this many trials the summary says that k is small (tau² and its CI are imprecise)."""

TEMPLATE = "report.html.j2"

# ---------------------------------------------------------------------------------------
# Caption registries
# ---------------------------------------------------------------------------------------

CAPTIONS: dict[str, dict[str, str]] = load_yaml(
    resources.files("hairtrial").joinpath("resources", "captions.yaml").read_text(encoding="utf-8")
)
"""The caption file (``hairtrial/resources/captions.yaml``), also read by Snakemake's report."""

TABLE_CAPTIONS: dict[str, str] = CAPTIONS["tables"]
"""Caption of each results table, keyed by the file stem; the order is the report's order."""

FIGURE_CAPTIONS: dict[str, str] = CAPTIONS["figures"]
"""Caption template of each figure kind (``{what}``: outcome, week and measure of the file).

The kind is the longest registry key that is the file stem or a ``_``-separated prefix of
it; a stem matching no key has the kind ``stem.split("_")[0]`` and a generic caption. The
order of this dict is the order of the figures in the report.
"""

COLUMN_LABELS: dict[str, str] = {
    "ci_method": "CI method",
    "k": "k",
    "estimate": "Estimate",
    "se": "SE",
    "ci_lower": "CI lower",
    "ci_upper": "CI upper",
    "pvalue": "p",
    "pi_lower": "PI lower",
    "pi_upper": "PI upper",
    "tau2": "tau²",
    "tau2_ci_lower": "tau² CI lower",
    "tau2_ci_upper": "tau² CI upper",
    "I2": "I² (%)",
    "H2": "H²",
    "Q_df": "Q df",
    "Q_pvalue": "Q p",
    "yi": "Effect",
    "vi": "Variance",
    "weight_pct": "Weight (%)",
    "n_control": "n control",
    "n_experimental": "n experimental",
    "mean_experimental": "Mean change exp.",
    "sd_experimental": "SD exp.",
    "mean_control": "Mean change ctrl.",
    "sd_control": "SD ctrl.",
}
"""Column headers for reading; other columns are shown with ``_`` as spaces."""

MEASURE_LABELS = vocab.MEASURE_NAMES

# ---------------------------------------------------------------------------------------
# Methods vocabulary and references
# ---------------------------------------------------------------------------------------

REFERENCES: dict[str, str] = {
    "baujat2002": (
        "Baujat B, Mahé C, Pignon J-P, Hill C (2002). A graphical method for exploring "
        "heterogeneity in meta-analyses: application to a meta-analysis of 65 trials. "
        "Statistics in Medicine 21:2641-2652."
    ),
    "cochrane2022": (
        "Higgins JPT, Thomas J, Chandler J, Cumpston M, Li T, Page MJ, Welch VA (eds.) "
        "(2022). Cochrane Handbook for Systematic Reviews of Interventions, version 6.3. "
        "Cochrane. www.training.cochrane.org/handbook."
    ),
    "dl1986": (
        "DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Controlled Clinical "
        "Trials 7:177-188."
    ),
    "hedges1981": (
        "Hedges LV (1981). Distribution theory for Glass's estimator of effect size and "
        "related estimators. Journal of Educational Statistics 6:107-128."
    ),
    "hedgesolkin1985": (
        "Hedges LV, Olkin I (1985). Statistical Methods for Meta-Analysis. Academic Press."
    ),
    "hk2001": (
        "Hartung J, Knapp G (2001). On tests of the overall treatment effect in meta-analysis "
        "with normally distributed responses. Statistics in Medicine 20:1771-1782."
    ),
    "hs2004": (
        "Hunter JE, Schmidt FL (2004). Methods of Meta-Analysis: Correcting Error and Bias in "
        "Research Findings, 2nd ed. Sage."
    ),
    "ht2002": (
        "Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. "
        "Statistics in Medicine 21:1539-1558."
    ),
    "luo2018": (
        "Luo D, Wan X, Liu J, Tong T (2018). Optimally estimating the sample mean from the "
        "sample size, median, mid-range, and/or mid-quartile range. Statistical Methods in "
        "Medical Research 27:1785-1805."
    ),
    "morris1983": (
        "Morris CN (1983). Parametric empirical Bayes inference: theory and applications. "
        "Journal of the American Statistical Association 78:47-55."
    ),
    "page2021": (
        "Page MJ, McKenzie JE, Bossuyt PM, et al. (2021). The PRISMA 2020 statement: an "
        "updated guideline for reporting systematic reviews. BMJ 372:n71."
    ),
    "peters2008": (
        "Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L (2008). Contour-enhanced "
        "meta-analysis funnel plots help distinguish publication bias from other causes of "
        "asymmetry. Journal of Clinical Epidemiology 61:991-996."
    ),
    "pm1982": (
        "Paule RC, Mandel J (1982). Consensus values and weighting factors. Journal of "
        "Research of the National Bureau of Standards 87:377-385."
    ),
    "rover2015": (
        "Röver C, Knapp G, Friede T (2015). Hartung-Knapp-Sidik-Jonkman approach and its "
        "modification for random-effects meta-analysis with few studies. BMC Medical "
        "Research Methodology 15:99."
    ),
    "shi2020": (
        "Shi J, Luo D, Weng H, et al. (2020). Optimally estimating the sample standard "
        "deviation from the five-number summary. Research Synthesis Methods 11:641-654."
    ),
    "sj2005": (
        "Sidik K, Jonkman JN (2005). Simple heterogeneity variance estimation for "
        "meta-analysis. Journal of the Royal Statistical Society, Series C 54:367-384."
    ),
    "sterne2011": (
        "Sterne JAC, Sutton AJ, Ioannidis JPA, et al. (2011). Recommendations for examining "
        "and interpreting funnel plot asymmetry in meta-analyses of randomised controlled "
        "trials. BMJ 343:d4002."
    ),
    "viechtbauer2005": (
        "Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in "
        "the random-effects model. Journal of Educational and Behavioral Statistics "
        "30:261-293."
    ),
    "viechtbauer2007": (
        "Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in "
        "meta-analysis. Statistics in Medicine 26:37-52."
    ),
    "viechtbauer2010": (
        "Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. "
        "Journal of Statistical Software 36(3):1-48."
    ),
    "vc2010": (
        "Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for "
        "meta-analysis. Research Synthesis Methods 1:112-125."
    ),
    "wan2014": (
        "Wan X, Wang W, Liu J, Tong T (2014). Estimating the sample mean and standard "
        "deviation from the sample size, median, range and/or interquartile range. BMC "
        "Medical Research Methodology 14:135."
    ),
}
"""Full citations, keyed; only those cited by the generated text are listed in a report."""

CITE: dict[str, str] = {
    "baujat2002": "Baujat et al. 2002",
    "cochrane2022": "Cochrane Handbook 2022",
    "dl1986": "DerSimonian & Laird 1986",
    "hedges1981": "Hedges 1981",
    "hedgesolkin1985": "Hedges & Olkin 1985",
    "hk2001": "Hartung & Knapp 2001",
    "hs2004": "Hunter & Schmidt 2004",
    "ht2002": "Higgins & Thompson 2002",
    "luo2018": "Luo et al. 2018",
    "morris1983": "Morris 1983",
    "page2021": "Page et al. 2021",
    "peters2008": "Peters et al. 2008",
    "pm1982": "Paule & Mandel 1982",
    "rover2015": "Röver et al. 2015",
    "shi2020": "Shi et al. 2020",
    "sj2005": "Sidik & Jonkman 2005",
    "sterne2011": "Sterne et al. 2011",
    "viechtbauer2005": "Viechtbauer 2005",
    "viechtbauer2007": "Viechtbauer 2007",
    "viechtbauer2010": "Viechtbauer 2010",
    "vc2010": "Viechtbauer & Cheung 2010",
    "wan2014": "Wan et al. 2014",
}
"""In-text citation of each reference."""

# Which citations the caption registries use (so their references are listed when shown).
_CAPTION_CITES = {
    "Page et al. 2021": "page2021",
    "Viechtbauer & Cheung 2010": "vc2010",
    "Sterne et al. 2011": "sterne2011",
    "Baujat et al. 2002": "baujat2002",
    "Peters et al. 2008": "peters2008",
}

TAU2_METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "FE": ("common-effect (inverse-variance) model, tau² fixed at 0", ()),
    "DL": ("DerSimonian-Laird method-of-moments estimator", ("dl1986",)),
    "REML": ("restricted maximum-likelihood estimator", ("viechtbauer2005",)),
    "ML": ("maximum-likelihood estimator", ("viechtbauer2005",)),
    "PM": ("Paule-Mandel estimator", ("pm1982",)),
    "EB": ("empirical Bayes estimator", ("morris1983",)),
    "HS": ("Hunter-Schmidt estimator", ("hs2004",)),
    "HE": ("Hedges (variance-component) estimator", ("hedgesolkin1985",)),
    "SJ": ("Sidik-Jonkman estimator", ("sj2005",)),
}
"""tau² estimator code (metafor's spelling) -> description and reference keys."""

CI_METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "z": ("Wald-type CI and z-test (normal quantiles)", ()),
    "knha": (
        "Hartung-Knapp CI and t-test (k - 1 degrees of freedom, variance scaled by the "
        "weighted residual mean square)",
        ("hk2001",),
    ),
    "adhoc": (
        "Hartung-Knapp CI with the ad hoc rule that it is never narrower than the Wald CI",
        ("hk2001", "rover2015"),
    ),
}
"""CI method code -> description and reference keys."""

CODE_CITES: dict[str, tuple[str, ...]] = {
    "from_ci": ("cochrane2022",),
    "from_median_iqr": ("luo2018", "wan2014"),
    "from_median_range": ("luo2018", "wan2014"),
    "from_five_numbers": ("luo2018", "shi2020"),
    "from_p_value": ("cochrane2022",),
    "from_p_bound": ("cochrane2022",),
    "from_t": ("cochrane2022",),
    "change_from_levels_r": ("cochrane2022",),
    "combined_arms": ("cochrane2022",),
}

SD_CODES = frozenset(
    {
        "from_se",
        "from_ci",
        "from_median_iqr",
        "from_median_range",
        "from_five_numbers",
        "from_p_value",
        "from_p_bound",
        "from_t",
        "change_from_levels_r",
    }
)
"""Provenance codes that mean an SD was derived."""

SD_SOURCES: dict[str, str] = {
    "from_se": "from a reported SE",
    "from_ci": "from a reported 95% CI",
    "from_median_iqr": "from a median and IQR",
    "from_median_range": "from a median and range",
    "from_five_numbers": "from a five-number summary",
    "from_p_value": "from an exact between-arm p-value",
    "from_p_bound": "from a between-arm p-value printed as a bound (p < x used as x, which "
    "overstates the SD and down-weights the trial)",
    "from_t": "from a between-arm t statistic",
    "change_from_levels_r": "from baseline and follow-up SDs with an assumed correlation",
}
"""How each SD-deriving code obtained the SD, for the summary."""

STATUS_LABELS = {
    "included": "included",
    "included_no_quant": "included, no usable numbers",
    "included_flagged": "included, flagged",
}

NOTE_COLUMNS = frozenset({"notes", "note"})
"""Free-text columns set as a line under their row in a wide table."""

CODE_COLUMNS = ("provenance", "flags")
"""Code-list columns also set under their row in a table of more than :data:`MANY_COLUMNS`."""

MANY_COLUMNS = 16

COLUMN_PX = 600
"""Tables estimated wider than this (px) are set wider than the text column."""

GROUP_COLUMNS = ("outcome", "week", "measure")
"""Leading key columns that become heading rows in a wide table."""

LONG_TEXT = 30
SHORT_TEXT = 18
"""Text columns with no longer cells are not wrapped."""
"""Text columns with longer cells get a minimum width, so they do not wrap word by word."""

ARM_QUANTITIES = ("n", "mean", "sd")
"""The numbers each arm contributes to an effect size."""


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------


def _cite(keys: Iterable[str], used: set[str]) -> str:
    keys = list(keys)
    used.update(keys)
    return "; ".join(CITE[k] for k in keys)


def _paren_cite(keys: Iterable[str], used: set[str]) -> str:
    text = _cite(keys, used)
    return f" ({text})" if text else ""


def _unit(unit: object) -> str:
    text = "" if unit is None or (isinstance(unit, float) and math.isnan(unit)) else str(unit)
    return UNIT_LABELS.get(text, text)


def _outcome_label(code: object) -> str:
    return str(code).replace("_", " ")


_treatment_label = (
    vocab.treatment_words
)  # ``minoxidil_microneedling`` -> ``minoxidil + microneedling``


def _codes(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [c for c in str(value).split(";") if c]


def _read_csv(path: Path) -> pd.DataFrame:
    return read_csv_output(path, keep_default_na=True)


def _num(column: str, value: object) -> str:
    """A number as the tables show it; ``-`` becomes a true minus sign for reading."""
    return format_value(column, value).replace("-", "−") if value is not None else ""


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


_SMALL_NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _count_word(n: int) -> str:
    return _SMALL_NUMBERS[n] if 0 <= n < len(_SMALL_NUMBERS) else str(n)


def _lower_first(text: str) -> str:
    """Lower-case the first letter unless the word is an acronym ("SD imputation")."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def _list_and(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _safe_cell(text: str) -> Markup:
    """Escape a cell and allow line breaks after ``;`` in long code lists."""
    if ";" not in text:  # most cells (a report has ~80,000): the same, without the split
        return Markup(html.escape(text))
    return Markup(";<wbr>".join(html.escape(part) for part in text.split(";")))


# ---------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------


def table_caption(stem: str) -> str:
    """Caption of the results table ``{stem}.csv`` (generic when the stem is not registered).

    Examples
    --------
    >>> table_caption("excluded")
    'Input rows and comparisons that could not be used, and why.'
    >>> table_caption("new_table")
    'New table (results/tables/new_table.csv).'
    """
    if stem in TABLE_CAPTIONS:
        return TABLE_CAPTIONS[stem]
    return f"{stem.replace('_', ' ').capitalize()} (results/tables/{stem}.csv)."


def figure_kind(stem: str) -> str:
    """Kind of a figure from its file stem: the longest registered ``_``-prefix.

    Examples
    --------
    >>> figure_kind("forest_hair_density_week12_MD")
    'forest'
    >>> figure_kind("leave_one_out_hair_density_week12_SMD")
    'leave_one_out'
    >>> figure_kind("prisma")
    'prisma'
    >>> figure_kind("galaxy_hair_density_week12_MD")
    'galaxy'
    """
    matches = [k for k in FIGURE_CAPTIONS if stem == k or stem.startswith(k + "_")]
    if matches:
        return max(matches, key=len)
    return stem.split("_")[0]


_TARGET = re.compile(
    r"^(?P<outcome>.+?)_week(?P<week>\d+)(?:_(?P<measure>[A-Za-z0-9]+))?(?:_(?P<extra>.+))?$"
)


def _figure_subject(rest: str) -> str:
    """``hair_density_week12_MD`` -> ``hair density at week 12 (MD)``."""
    if not rest:
        return ""
    m = _TARGET.match(rest)
    if not m:
        return rest.replace("_", " ")
    text = f"{_outcome_label(m['outcome'])} at week {int(m['week'])}"
    extras = [x for x in (m["measure"], m["extra"] and m["extra"].replace("_", " ")) if x]
    if extras:
        text += f" ({', '.join(extras)})"
    return text


def figure_caption(stem: str) -> str:
    """Caption of the figure ``{stem}.png`` from :data:`FIGURE_CAPTIONS`.

    Examples
    --------
    >>> figure_caption("trajectory_hair_density_week12_MD")
    'Mean change from baseline over the weeks of follow-up, by trial and arm, for hair \
density at week 12 (MD).'
    >>> figure_caption("galaxy_hair_density_week12_MD")
    'Galaxy plot of hair density at week 12 (MD) (results/figures/galaxy_hair_density_week12_MD).'
    """
    kind = figure_kind(stem)
    rest = stem[len(kind) :].lstrip("_")
    subject = _figure_subject(rest)
    if kind in FIGURE_CAPTIONS:
        return FIGURE_CAPTIONS[kind].format(what=subject or "the data")
    title = kind.replace("_", " ").capitalize()
    text = f"{title} plot of {subject}" if subject else f"{title} plot"
    return f"{text} (results/figures/{stem})."


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------


def _load_config(results_dir: Path, data_dir_or_config: object) -> dict[str, Any]:
    """The config of the run: ``results/config.yaml``, else the one given, else empty."""
    snapshot = results_dir / "config.yaml"
    if snapshot.is_file():
        return load_yaml(snapshot.read_text(encoding="utf-8")) or {}
    if isinstance(data_dir_or_config, Mapping):
        return dict(data_dir_or_config)
    path = Path(str(data_dir_or_config))
    if path.is_file() and path.suffix in {".yaml", ".yml"}:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {}


def _studies_path(data_dir_or_config: object) -> Path | None:
    """``studies.csv`` from a data directory, a config file or a config mapping."""
    if isinstance(data_dir_or_config, Mapping):
        rel = (data_dir_or_config.get("data") or {}).get("studies", "data/studies.csv")
        candidates = [Path(rel)]
    else:
        path = Path(str(data_dir_or_config))
        if path.is_dir():
            candidates = [path / "studies.csv"]
        elif path.suffix == ".csv":
            candidates = [path]
        else:
            cfg: dict[str, Any] = {}
            if path.is_file():
                cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            rel = Path((cfg.get("data") or {}).get("studies", "data/studies.csv"))
            candidates = (
                [rel]
                if rel.is_absolute()
                else [
                    rel,
                    path.parent / rel,
                    path.parent.parent / rel,
                ]
            )
    return next((c for c in candidates if c.is_file()), None)


def _notebook_intro(ipynb: Path) -> tuple[str, str]:
    """Title (first ``#`` heading) and first paragraph of a notebook's first markdown cell."""
    if not ipynb.is_file():
        return "", ""
    try:
        nb = json.loads(ipynb.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", ""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        title, paragraph, lines = "", [], text.splitlines()
        for line in lines:
            stripped = line.strip()
            if not title and stripped.startswith("#"):
                title = stripped.lstrip("#").strip()
            elif stripped:
                paragraph.append(stripped)
            elif paragraph:
                break
        return title, " ".join(paragraph).replace("`", "")
    return "", ""


def software_versions() -> list[tuple[str, str]]:
    """Versions of Python, the packages in :data:`SOFTWARE` and the R reference.

    Returns
    -------
    list of (str, str)
        ``(name, version)`` pairs; a package that is not installed is ``"not installed"``.
    """
    rows = [("Python", platform.python_version())]
    for name in SOFTWARE:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    name, _, version = METAFOR_VERSION.partition(" ")
    rows.append((f"{name} (R; reference values of the parity tests)", version))
    return rows


def provenance_codes_present(
    tables_dir: str | Path, tables: Mapping[str, pd.DataFrame] | None = None
) -> list[str]:
    """Provenance codes other than ``reported`` that occur in this run, in canonical order.

    Read from the ``provenance`` columns of ``data_quality.csv`` and ``study_effects.csv``.

    Parameters
    ----------
    tables_dir : str or Path
        ``results/tables``.
    tables : mapping, optional
        The run's tables by name; when given, only these are read.

    Returns
    -------
    list of str
    """
    found: set[str] = set()
    for name in ("data_quality", "study_effects"):
        path = Path(tables_dir) / f"{name}.csv"
        df = (
            tables.get(name)
            if tables is not None
            else (_read_csv(path) if path.is_file() else None)
        )
        if df is not None and "provenance" in df.columns:
            for value in df["provenance"]:
                found.update(_codes(value))
    found.discard("reported")
    return sorted(found, key=lambda c: (PROVENANCE_ORDER.get(c, len(PROVENANCE_ORDER)), c))


def primary_model(meta: pd.DataFrame, config: Mapping[str, Any]) -> pd.Series | None:
    """The primary model of the primary outcome: a row of ``meta_analysis.csv``.

    The primary model is the first measure, tau² estimator and CI method of the config
    (falling back to the first ones in the table); the primary outcome is the first outcome
    and week (in table order) with the most trials.

    Parameters
    ----------
    meta : DataFrame
        ``meta_analysis.csv``.
    config : mapping
        The config of the run.

    Returns
    -------
    Series or None
        None when the table has no row of the primary model.
    """
    if meta.empty:
        return None
    method: str | None
    ci_method: str | None
    try:  # the one rule for the primary model
        method, ci_method, _ = analyses_primary.primary_model(dict(config))
    except (KeyError, IndexError, TypeError):
        method = ci_method = None
    wanted = {
        "measure": (config.get("measures") or [None])[0],
        "method": method,
        "ci_method": ci_method,
    }
    rows = meta
    for col, value in wanted.items():
        if col not in rows.columns:
            continue
        if value is None or not (rows[col] == value).any():
            value = rows[col].iloc[0]
        rows = rows[rows[col] == value]
    if rows.empty:
        return None
    k = pd.to_numeric(rows["k"], errors="coerce").fillna(-1)
    return rows.loc[k.idxmax()]


# ---------------------------------------------------------------------------------------
# The generated text
# ---------------------------------------------------------------------------------------


@dataclass
class _Context:
    """Everything read from the results, plus the citations collected while writing."""

    results_dir: Path
    out_path: Path
    config: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    studies: pd.DataFrame | None
    outputs: list[str] = field(default_factory=list)
    cited: set[str] = field(default_factory=set)

    def table(self, stem: str) -> pd.DataFrame:
        return self.tables.get(stem, pd.DataFrame())


def _participants(ctx: _Context) -> list[str]:
    """Paragraphs on the run's participant-level data (the ipd job's tables), or none."""
    fit = ctx.table("ipd_fit")
    if fit.empty:
        return []
    paras = []
    sources = sorted({str(x) for x in ctx.table("ipd_contrasts").get("data_source", []) if x})
    synthetic = [x.removeprefix("synthetic (").rstrip(")") for x in sources if "synthetic" in x]
    if synthetic:
        paras.append(
            "SYNTHETIC DATA: the participant-level data of this run were generated by the "
            f"project's simulator ({'; '.join(synthetic)}); they describe no real patient and "
            "show the method only."
        )
    studies = sorted(fit["study"].unique())
    n = int(fit.drop_duplicates("study")["n_participants"].sum())
    methods = ", ".join(
        f"{k} {m}" for m, k in fit["method"].value_counts(sort=True).sort_index().items()
    )
    paras.append(
        f"{_count_word(len(studies)).capitalize()} trial{'s' if len(studies) > 1 else ''} "
        f"({_list_and(studies)}) gave participant-level data, {n} participants in all. Each was "
        "analysed with a model of change from baseline adjusted for baseline (mixed model with a "
        "random participant effect, REML; least-squares ANCOVA where a trial has one "
        f"observation per participant; {methods}). The arms' n, mean change and SD of change "
        "computed from these data entered every arm-level analysis (provenance from_ipd)."
    )
    flagged = [
        f"{s}: {note}"
        for s, note, ok in zip(fit["study"], fit["notes"], fit["converged"], strict=True)
        if (isinstance(note, str) and ("boundary" in note or "non-convergence" in note)) or not ok
    ]
    if flagged:
        paras.append("Fits to read with care: " + "; ".join(flagged) + ".")
    one = ctx.table("ipd_one_stage")
    if not one.empty:
        parts = []
        for (outcome, week), g in one.groupby(["outcome", "week"], sort=True):
            bits = []
            for _, r in g.iterrows():
                kind = str(r["approach"]).split(" ")[0]
                bits.append(
                    f"{kind} {_num('estimate', r['estimate'])} "
                    f"[{_num('estimate', r['ci_lower'])}, {_num('estimate', r['ci_upper'])}]"
                )
            parts.append(f"{_outcome_label(outcome)} week {int(week)}: {', '.join(bits)}")
        paras.append(
            "One-stage model of all participants (random treatment effect across trials) "
            "beside the two-stage result (per-trial contrasts, then meta-analysis): "
            + "; ".join(parts)
            + ". With this few trials the between-trial variance is poorly determined by "
            "either approach."
        )
    return paras


def _study_labels(ctx: _Context) -> dict[str, str]:
    labels: dict[str, str] = {}
    se = ctx.table("study_effects")
    if {"study", "label"} <= set(se.columns):
        for study, label in zip(se["study"], se["label"], strict=True):
            if isinstance(label, str) and label:
                labels.setdefault(str(study), label)
    if ctx.studies is not None and "study" in ctx.studies.columns:
        for row in ctx.studies.to_dict("records"):
            study = str(row["study"])
            if study in labels:
                continue
            author = row.get("first_author")
            year = row.get("year")
            if isinstance(author, str) and author and pd.notna(year):
                labels[study] = f"{author.split()[0]} {int(year)}"
    return labels


def _target_rows(df: pd.DataFrame, model: pd.Series, measure: bool = True) -> pd.DataFrame:
    cols = ["outcome", "week"] + (["measure"] if measure else [])
    mask = pd.Series(True, index=df.index)
    for col in cols:
        if col not in df.columns or col not in model.index:
            return df.iloc[0:0]
        mask &= df[col].astype(str) == str(model[col])
    return df[mask]


def _summary(ctx: _Context) -> tuple[list[str], list[str], dict[str, str]]:
    """Plain-language summary: paragraphs, 'how sure' bullets, and the numbers used."""
    meta = ctx.table("meta_analysis")
    model = primary_model(meta, ctx.config)
    comparison = ctx.config.get("comparison") or {}
    exp = _treatment_label(comparison.get("experimental", "experimental"))
    ctl = _treatment_label(comparison.get("control", "control"))
    if model is None:
        return (
            ["This run produced no pooled model (meta_analysis.csv is missing or empty)."],
            [],
            {},
        )
    labels = _study_labels(ctx)
    se_all = ctx.table("study_effects")
    se = _target_rows(se_all, model)
    studies = sorted(str(s) for s in se.get("study", pd.Series(dtype=str)))
    names = [labels.get(s, s) for s in studies]
    k = int(model["k"])
    unit = _unit(se["unit"].iloc[0]) if "unit" in se.columns and len(se) else ""
    measure = str(model.get("measure", ""))
    unit_text = f" {unit}" if measure == "MD" and unit else ""
    outcome = f"{_outcome_label(model['outcome'])} at week {int(model['week'])}"
    numbers = {
        "k": _num("k", model["k"]),
        "estimate": _num("estimate", model["estimate"]),
        "ci_lower": _num("ci_lower", model.get("ci_lower")),
        "ci_upper": _num("ci_upper", model.get("ci_upper")),
        "pi_lower": _num("pi_lower", model.get("pi_lower")),
        "pi_upper": _num("pi_upper", model.get("pi_upper")),
        "tau2": _num("tau2", model.get("tau2")),
        "I2": _num("I2", model.get("I2")),
    }
    level = (ctx.config.get("meta_analysis") or {}).get("level", 0.95)
    pct = f"{100 * float(level):g}%"
    method = str(model.get("method", ""))
    ci_method = str(model.get("ci_method", ""))
    model_text = (
        "the common-effect model"
        if method == "FE"
        else f"a random-effects model ({method} estimate of the between-trial variance tau², "
        f"{CI_METHODS.get(ci_method, (ci_method,))[0].split(' CI')[0]} CI)"
    )

    paragraphs: list[str] = []
    n_listed = 0 if ctx.studies is None else len(ctx.studies)
    n_usable = se_all["study"].nunique() if "study" in se_all.columns else 0
    intro = (
        f"This report pools randomised trials comparing {exp} with {ctl} alone. "
        if n_listed == 0
        else f"This report pools randomised trials comparing {exp} with {ctl} alone: "
        f"{_plural(n_listed, 'trial')} are listed, {n_usable} of them gave numbers usable "
        "for at least one outcome. "
    )
    intro += f"The outcome with the most trials is {outcome}, with {_plural(k, 'trial')}" + (
        f" ({_list_and(names)})." if names else "."
    )
    paragraphs.append(intro)

    est = float(model["estimate"])
    lo, hi = model.get("ci_lower"), model.get("ci_upper")
    ci_defined = lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi)
    direction = "more" if est >= 0 else "less"
    measure_name = MEASURE_LABELS.get(measure, measure)
    what = (
        f"With {model_text}, {outcome} changed by {_num('estimate', abs(est))}{unit_text} "
        f"{direction} with {exp} than with {ctl} alone ({measure_name} "
        f"{numbers['estimate']}{unit_text}"
    )
    if ci_defined:
        what += f"; {pct} CI {numbers['ci_lower']} to {numbers['ci_upper']})."
        if float(lo) <= 0 <= float(hi):
            what += (
                " The confidence interval includes 0: these data are compatible with no "
                "added benefit as well as with a large one, so they neither show that adding "
                "the intervention helps nor that it does not."
            )
        else:
            side = "benefit" if float(lo) > 0 else "harm"
            what += (
                f" The confidence interval excludes 0, which points to a {side} on average "
                "across trials like these."
            )
    else:
        what += "). With a single trial there is nothing to pool and no CI of a pooled model."
    # the same outcome on the other measures
    others = []
    for other in (ctx.config.get("measures") or [])[1:]:
        rows = _target_rows(meta, model, measure=False)
        rows = rows[
            (rows.get("measure") == other)
            & (rows.get("method") == method)
            & (rows.get("ci_method") == ci_method)
        ]
        if len(rows):
            r = rows.iloc[0]
            name = MEASURE_LABELS.get(other, other)
            txt = f"As a {name} the estimate is {_num('estimate', r['estimate'])}"
            if pd.notna(r.get("ci_lower")) and pd.notna(r.get("ci_upper")):
                lo_o, hi_o = _num("ci_lower", r["ci_lower"]), _num("ci_upper", r["ci_upper"])
                txt += f" ({pct} CI {lo_o} to {hi_o})"
            others.append(txt + ".")
    if others:
        what += " " + " ".join(others)
    paragraphs.append(what)

    if k >= 2 and pd.notna(model.get("tau2")):
        het = (
            f"The trials disagree with each other: tau² = {numbers['tau2']}"
            + (f", I² = {numbers['I2']}%" if numbers["I2"] else "")
            + " (I² is the share of the variation between trial results that is not due to "
            "chance)."
        )
        if float(model["tau2"]) == 0:
            het = (
                "The trials' results vary no more than chance would explain (tau² = 0"
                + (f", I² = {numbers['I2']}%" if numbers["I2"] else "")
                + "), although with few trials such a test has little power."
            )
        if numbers["pi_lower"] and numbers["pi_upper"]:
            het += (
                f" The {pct} prediction interval, where the effect in a new trial like these "
                f"would be expected to lie, runs from {numbers['pi_lower']} to "
                f"{numbers['pi_upper']}{unit_text}."
            )
        if "yi" in se.columns and len(se):
            pos = int((se["yi"] > 0).sum())
            if pos == len(se):
                het += f" The effect points the same way (favouring {exp}) in every trial."
            elif pos == 0:
                het += f" The effect favours {ctl} alone in every trial."
            else:
                het += f" The effect favours {exp} in {pos} of {len(se)} trials."
        paragraphs.append(het)

    sure = _how_sure(ctx, model, se, labels, k, unit_text, pct)
    return paragraphs, sure, numbers


def _how_sure(
    ctx: _Context,
    model: pd.Series,
    se: pd.DataFrame,
    labels: dict[str, str],
    k: int,
    unit_text: str,
    pct: str,
) -> list[str]:
    bullets: list[str] = []
    if k < SMALL_K:
        bullets.append(
            f"Few trials: k = {k}. With fewer than {SMALL_K} trials the between-trial variance "
            "is estimated very imprecisely, the interval estimates depend on the choice of "
            "estimator and CI method, and small-study effects cannot be examined."
        )
    # derived numbers of the primary analysis
    dq = _target_rows(ctx.table("data_quality"), model, measure=False)
    studies = set(se["study"].astype(str)) if "study" in se.columns else set()
    if len(dq) and studies:
        dq = dq[dq["study"].astype(str).isin(studies)]
    arm_dq = dq[dq["quantity"].isin(ARM_QUANTITIES)] if "quantity" in dq.columns else dq.iloc[0:0]
    n_arms = 0
    for study in studies:
        arms = (
            arm_dq.loc[arm_dq["study"].astype(str) == study, "arm"].nunique() if len(arm_dq) else 0
        )
        n_arms += max(2, int(arms))
    if n_arms:
        derived = arm_dq.drop_duplicates(["study", "arm", "quantity"]) if len(arm_dq) else arm_dq
        n_total = n_arms * len(ARM_QUANTITIES)
        n_derived = min(len(derived), n_total)
        sd_rows = derived[derived["quantity"] == "sd"] if len(derived) else derived
        n_sd = min(len(sd_rows), n_arms)
        by_code: dict[str, int] = {}
        for value in sd_rows.get("provenance", []):
            for code in _codes(value):
                if code in SD_CODES:
                    by_code[code] = by_code.get(code, 0) + 1
        how = [
            f"{by_code[c]} {SD_SOURCES.get(c, 'by rule ' + c)}"
            for c in sorted(by_code, key=lambda c: PROVENANCE_ORDER.get(c, 99))
        ]
        if n_sd == n_arms:
            sd_text = f"Every SD was derived, none reported: all {n_sd} arm SDs"
        elif n_sd:
            sd_text = f"{n_sd} of the {n_arms} arm SDs were derived"
        else:
            sd_text = f"All {n_arms} arm SDs were reported"
        if n_sd and how:
            sd_text += " (" + "; ".join(how) + ")"
        sd_text += ". "
        bullets.append(
            sd_text
            + f"In all, {n_derived} of the {n_total} arm-level numbers (n, mean, SD) that the "
            f"primary analysis stands on were derived, converted or assumed rather than "
            f"reported ({n_total - n_derived} reported); the provenance table lists each."
        )
    if "flags" in se.columns:
        flagged = []
        for study, flags in sorted(zip(se["study"].astype(str), se["flags"], strict=True)):
            codes = _codes(flags)
            if codes:
                flagged.append(f"{labels.get(study, study)} ({', '.join(codes)})")
        if flagged:
            bullets.append(
                f"Extraction caveats are flagged for {len(flagged)} of {len(se)} trials: "
                + "; ".join(flagged)
                + "."
            )
    rob = ctx.table("robustness")
    if len(rob) and {"estimate", "ci_lower", "ci_upper"} <= set(rob.columns):
        rows = _target_rows(rob, model)
        if "primary" in rows.columns:
            rows = rows[~rows["primary"].astype(str).isin(["True", "true", "1"])]
        empty = rows[rows["estimate"].isna()]
        rows = rows[rows["estimate"].notna()]
        if len(rows):
            ci = rows[rows["ci_lower"].notna() & rows["ci_upper"].notna()]
            excl = int(((ci["ci_lower"] > 0) | (ci["ci_upper"] < 0)).sum())
            low, high = rows.loc[rows["estimate"].idxmin()], rows.loc[rows["estimate"].idxmax()]

            def named(r: pd.Series) -> str:
                name = str(r.get("scenario", "")) if pd.notna(r.get("scenario")) else ""
                return f" ({name})" if name else ""

            text = (
                f"Across {_plural(len(rows), 'robustness scenario')} the pooled estimate "
                f"ranged from {_num('estimate', low['estimate'])}{named(low)} to "
                f"{_num('estimate', high['estimate'])}{named(high)}{unit_text}; the {pct} CI "
                f"excluded 0 in {excl} of the {len(ci)} scenarios with a CI."
            )
            if len(empty) and "scenario" in empty.columns:
                text += (
                    " No estimate was possible in: "
                    + "; ".join(
                        str(r["scenario"])
                        + (f" ({r['notes']})" if pd.notna(r.get("notes")) else "")
                        for r in empty.to_dict("records")
                    )
                    + "."
                )
            bullets.append(text)
    if ctx.studies is not None and "rob" in ctx.studies.columns and studies:
        rob_values = ctx.studies.loc[ctx.studies["study"].astype(str).isin(studies), "rob"]
        if rob_values.isna().all():
            bullets.append("Risk of bias has not been assessed for any of these trials.")
    return bullets


def _described(
    code: str, vocabulary: Mapping[str, tuple[str, tuple[str, ...]]], cited: set[str]
) -> str:
    """``"DerSimonian-Laird ... estimator (DL) (DerSimonian & Laird 1986)"``."""
    desc, refs = vocabulary.get(code, (code, ()))
    return f"{desc} ({code}){_paren_cite(refs, cited)}"


def _methods(ctx: _Context, codes: list[str]) -> dict[str, Any]:
    """Methods paragraphs and the rows of the imputation-rule table."""
    cfg = ctx.config
    cited = ctx.cited
    ma = cfg.get("meta_analysis") or {}
    tau2 = list(ma.get("tau2_methods") or [])
    cis = list(ma.get("ci_methods") or [])
    level = float(ma.get("level", 0.95))
    pct = f"{100 * level:g}%"
    comparison = cfg.get("comparison") or {}
    selection = (cfg.get("selection") or {}).get("studies", "primary")
    outcomes = cfg.get("outcomes", "all")
    paras: dict[str, list[str]] = {}

    given = cfg.get("data") or {}
    kinds = []
    if given.get("arms"):
        kinds.append(
            "arm-level data (per trial, arm, week and outcome: n, mean, and an SD or whatever "
            "the paper gave instead)"
        )
    if given.get("events"):
        kinds.append(
            "event counts (per trial, arm, week and outcome: participants with the event and "
            "participants analysed)"
        )
    if given.get("participants"):
        kinds.append("participant-level measurements (one row per participant and visit)")
    kinds = kinds or ["the input data"]  # a validated config names arms or events
    listed = ", ".join(kinds[:-1]) + (" and " if len(kinds) > 1 else "") + kinds[-1]
    data = [
        f"{listed[:1].upper()}{listed[1:]}, and a list of trials, were validated against the "
        "input contract before anything was computed."
    ]
    sel = (
        "Trials marked as primary (a clean contrast of the two treatments) were analysed"
        if selection == "primary"
        else "All listed trials, including those flagged for other device categories or "
        "co-interventions, were analysed"
    )
    data.append(
        f"{sel}; arms coded {comparison.get('experimental', '?')} were compared with arms "
        f"coded {comparison.get('control', '?')}; outcomes: "
        + (
            "every outcome in the data"
            if outcomes == "all"
            else ", ".join(_outcome_label(o) for o in outcomes)
        )
        + "."
    )
    paras["data"] = [" ".join(data)]

    measures = list(cfg.get("measures") or [])
    meas = []
    if "MD" in measures:
        meas.append(
            "the mean difference (MD) of change from baseline, experimental minus control, in "
            "the outcome's unit"
        )
    if "SMD" in measures:
        meas.append(
            "the standardised mean difference of change from baseline (Hedges' g, with the "
            "exact small-sample correction and the large-sample variance of metafor's "
            f'escalc(measure = "SMD"){_paren_cite(["hedges1981", "viechtbauer2010"], cited)})'
        )
    for m in measures:
        if m not in {"MD", "SMD"}:
            meas.append(f"{m}")
    eff = f"Effect measures: {'; '.join(meas)}." if meas else ""
    se = ctx.table("study_effects")
    if "design" in se.columns and (se["design"] == "split_scalp").any():
        r = (cfg.get("assumptions") or {}).get("split_scalp_correlation")
        eff += (
            " Split-scalp trials (both treatments in the same patients) entered as metafor's "
            "MC and SMCRP (standardised by the pooled SD of the two sides, on the scale of a "
            f"parallel-group g), with a within-patient correlation of r = {r} between sides."
        )
    if "combined_arms" in codes:
        eff += (
            " Arms of one treatment in multi-arm trials were combined, so that a shared "
            f"control is never counted twice{_paren_cite(['cochrane2022'], cited)}."
        )
    paras["effects"] = [eff] if eff else []

    models = []
    if tau2:
        primary = tau2[0]
        desc, refs = TAU2_METHODS.get(primary, (primary, ()))
        first = (
            f"Effects were pooled per outcome, week and measure. The primary model is the "
            f"{desc} ({primary}){_paren_cite(refs, cited)}"
        )
        if cis:
            cdesc, crefs = CI_METHODS.get(cis[0], (cis[0], ()))
            first += f" with the {cdesc} ({cis[0]}){_paren_cite(crefs, cited)}"
        first += f"; {pct} intervals throughout."
        if primary == "REML" and cis and cis[0] == "adhoc":
            first += (
                " This is the choice the Cochrane Handbook recommends for few trials "
                f"({_cite(['cochrane2022'], cited)}, section 10.10.4)."
            )
        models.append(first)
        rest = [_described(m, TAU2_METHODS, cited) for m in tau2[1:]]
        rest_ci = [_described(c, CI_METHODS, cited) for c in cis[1:]]
        if rest or rest_ci:
            models.append(
                "Sensitivity analyses repeated every model with "
                + "; ".join(
                    x
                    for x in (
                        ("the other tau² estimators: " + "; ".join(rest)) if rest else "",
                        ("the other CI methods: " + "; ".join(rest_ci)) if rest_ci else "",
                    )
                    if x
                )
                + "."
            )
    models.append(
        "The CI of tau² is the Q-profile interval"
        f"{_paren_cite(['viechtbauer2007'], cited)}; I² and H² are computed from tau²"
        f"{_paren_cite(['ht2002'], cited)}; the prediction interval is that of metafor's "
        "predict(). With a single trial, Q, I², H² and the tau² CI are reported as undefined."
    )
    models.append(
        "Every estimator, CI and test agrees with R's metafor to a relative 1e-6 on reference "
        f"data sets and on this analysis end to end{_paren_cite(['viechtbauer2010'], cited)}."
    )
    paras["models"] = models

    assumptions = cfg.get("assumptions") or {}
    counts: dict[str, int] = {}
    dq = ctx.table("data_quality")
    for value in dq.get("provenance", []):
        for code in _codes(value):
            counts[code] = counts.get(code, 0) + 1
    rules = []
    for code in codes:
        text = PROVENANCE.get(code, "(no explanation registered)")
        assumption = ""
        if code == "change_from_levels_r":
            assumption = f"r = {assumptions.get('change_sd_correlation', '?')}"
        elif code == "split_scalp_r":
            assumption = f"r = {assumptions.get('split_scalp_correlation', '?')}"
        if assumption == "r = from_ipd":
            assumption = "r measured in the participant-level data (value in section 6)"
        elif code == "from_p_bound":
            f = assumptions.get("p_bound_factor", 1)
            assumption = f"p_bound_factor = {f} (p < x used as p = {f}·x)"
        refs = CODE_CITES.get(code, ())
        _cite(refs, cited)
        rules.append(
            {"code": code, "rule": text, "assumption": assumption, "count": counts.get(code, 0)}
        )
    derivation = []
    if codes:
        derivation.append(
            "Numbers a paper did not report were derived by fixed rules, and every derived, "
            "converted or assumed number carries a provenance code into every table and "
            "figure. An arm's SD is taken, in order of preference, from a reported SD, SE, CI "
            "or quantiles; a between-arm t statistic or p-value is used only when an arm of a "
            "two-arm comparison has none of these. The rules that were used in this run are:"
        )
    else:
        derivation.append(
            "Every number used was reported as such; no derivation rule was needed in this run."
        )
    paras["derivations"] = derivation

    robustness = []
    rob = ctx.table("robustness")
    if "group" in rob.columns:
        groups = [g for g in dict.fromkeys(rob["group"].astype(str)) if g != "Primary"]
        if groups:
            robustness.append(
                "Robustness: the primary analysis was repeated with one choice changed at a "
                "time ("
                + "; ".join(_lower_first(g) for g in groups)
                + "); see the robustness table "
                "and figures."
            )
    paras["robustness"] = robustness
    extra = evidence_text.methods_paragraphs(cfg, ctx.tables)
    for key in ("arm_model", "bayes", "next_trial"):
        paras[key] = extra[key]
    return {"paras": paras, "rules": rules, "grade": extra["grade"] if ctx.tables else []}


# ---------------------------------------------------------------------------------------
# Tables and figures
# ---------------------------------------------------------------------------------------


def _estimated_width(head: list[dict[str, Any]], rows: list[list[str]]) -> float:
    """Rough rendered width of a table in pixels (12.5 px sans, 7 px padding a side)."""
    total = 0.0
    for i, h in enumerate(head):
        longest = max((len(r[i]) for r in rows), default=0)
        label = max((len(w) for w in str(h["label"]).split()), default=0)
        total += 6.8 * max(label, min(longest, LONG_TEXT)) + 14
    return total


def _table(
    head: list[dict[str, Any]],
    rows: list[list[str]],
    notes: list[str] | None = None,
    groups: list[str] | None = None,
) -> dict[str, Any]:
    """Table for the template: header cells, rows (their escaped cells as markup), notes and
    group rows.

    ``notes[i]`` is set in a line under row ``i``; ``groups[i]``, when not empty, is a
    heading row set above row ``i``. Negative numbers get a true minus sign.
    """
    notes = notes or [""] * len(rows)
    groups = groups or [""] * len(rows)
    lengths = [max((len(r[i]) for r in rows), default=0) for i in range(len(head))]
    for h, n in zip(head, lengths, strict=True):
        if h["numeric"]:
            h["class"] = "num"
        else:
            h["class"] = "text" if n > LONG_TEXT else ("short" if n <= SHORT_TEXT else "")
    numeric = [h["numeric"] for h in head]
    # each row's cells as one piece of markup (the template sets it in its <tr>): a report has
    # ~80,000 cells, and a template loop over them took a third of the report job
    opening = [f'<td class="{h["class"]}">' if h["class"] else "<td>" for h in head]
    out = []
    for row, note, group in zip(rows, notes, groups, strict=True):
        cells = "".join(
            f"{td}{_safe_cell(_minus(c) if is_num else c)}</td>"
            for c, is_num, td in zip(row, numeric, opening, strict=True)
        )
        note = re.sub(r";(?=\S)", "; ", note)
        out.append({"cells": Markup(cells), "note": _safe_cell(note), "group": group})
    return {
        "head": head,
        "rows": out,
        "has_notes": any(notes),
        "wide": _estimated_width(head, rows) > COLUMN_PX,
    }


def _minus(text: str) -> str:
    """``-1.5`` -> ``−1.5`` (typographic minus) for a number; other text unchanged."""
    return "−" + text[1:] if text.startswith("-") and text[1:2].isdigit() else text


def _render_table(df: pd.DataFrame) -> dict[str, Any]:
    """A results table, every cell rounded by :func:`hairtrial.report.tables.format_value`.

    When the table is too wide for the text column, a free-text ``notes`` column (and, in a
    table of many columns, the ``provenance`` and ``flags`` code lists) is set as a line
    under its row (rather than as a very tall, narrow column), and the columns
    ``outcome``, ``week``, ``measure`` become heading rows over the rows that share them
    (rows are brought together by group, in order of first appearance; the order within a
    group is the table's).
    """
    columns = [str(c) for c in df.columns]
    numeric = {
        c: pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        for c in columns
    }
    records = df.astype(object).to_dict("records")

    def label(c: str) -> str:
        if c == "method" and "ci_method" in columns:  # a model table: the tau² estimator
            return "tau² method"
        return COLUMN_LABELS.get(c, c.replace("_", " "))

    def build(shown: list[str], note_cols: list[str], group_cols: list[str]) -> dict[str, Any]:
        rows, notes, groups, last = [], [], [], None
        ordered = records
        if group_cols:  # bring the rows of one group together (stable: order kept within)
            first: dict[tuple[str, ...], int] = {}
            for r in records:
                first.setdefault(tuple(format_value(c, r[c]) for c in group_cols), len(first))
            ordered = sorted(
                records, key=lambda r: first[tuple(format_value(c, r[c]) for c in group_cols)]
            )
        for record in ordered:
            rows.append([format_value(c, record[c]) for c in shown])
            notes.append(
                " · ".join(
                    (t if c in NOTE_COLUMNS else f"{label(c)}: {t}")
                    for c in note_cols
                    if (t := format_value(c, record[c]))
                )
            )
            key = tuple(format_value(c, record[c]) for c in group_cols)
            groups.append(_group_label(group_cols, key) if group_cols and key != last else "")
            last = key
        head = [{"label": label(c), "name": c, "numeric": numeric[c]} for c in shown]
        return _table(head, rows, notes, groups)

    table = build(columns, [], [])
    if not table["wide"]:
        return table
    note_cols = [c for c in columns if c in NOTE_COLUMNS]
    if len(columns) > MANY_COLUMNS:
        note_cols = [c for c in columns if c in CODE_COLUMNS] + note_cols
    group_cols = [c for c in GROUP_COLUMNS if c in columns]
    if "outcome" not in group_cols:
        group_cols = []
    shown = [c for c in columns if c not in note_cols and c not in group_cols]
    return build(shown, note_cols, group_cols)


def _group_label(columns: list[str], key: tuple[str, ...]) -> str:
    """``('hair_density', '12', 'MD')`` -> ``hair density · week 12 · MD``."""
    parts = []
    for c, v in zip(columns, key, strict=True):
        if c == "outcome":
            parts.append(_outcome_label(v))
        elif c == "week":
            parts.append(f"week {v}")
        elif v:
            parts.append(v)
    return " · ".join(parts)


def _evidence_table(ctx: _Context, labels: dict[str, str]) -> dict[str, Any] | None:
    studies = ctx.studies
    if studies is None or "study" not in studies.columns:
        return None
    se = ctx.table("study_effects")
    excluded = ctx.table("excluded")
    notes = [str(x) for x in excluded.iloc[:, 0]] if len(excluded.columns) else []
    selection = (ctx.config.get("selection") or {}).get("studies", "primary")
    records = studies.to_dict("records")
    records.sort(key=lambda r: (int(r["year"]) if pd.notna(r.get("year")) else 0, str(r["study"])))
    out = []
    for r in records:
        study = str(r["study"])
        usable: list[str] = []
        if "study" in se.columns:
            rows = se[se["study"].astype(str) == study]
            targets = sorted(
                {(str(o), int(w)) for o, w in zip(rows["outcome"], rows["week"], strict=True)}
            )
            usable = [f"{_outcome_label(o)}, week {w}" for o, w in targets]
        if usable:
            text = "; ".join(usable)
        elif any(n.startswith(study + " ") or n.startswith(study + "/") for n in notes):
            text = "numbers given but not usable (see the table of unused inputs)"
        elif str(r.get("primary", "yes")) == "no" and selection == "primary":
            text = "not in the primary selection"
        elif str(r.get("status", "")) == "included_no_quant":
            text = "outcome measured, no usable numbers available"
        else:
            text = "none"
        n = r.get("n_randomised")
        out.append(
            [
                labels.get(study, study),
                format_value("year", r.get("year")),
                str(r.get("design", "")).replace("_", "-"),
                _cell(r.get("category")).replace("_", " "),
                _cell(r.get("primary")),
                STATUS_LABELS.get(_cell(r.get("status")), _cell(r.get("status")).replace("_", " ")),
                format_value("n", n),
                text,
            ]
        )
    head = [
        {"label": h, "name": h, "numeric": h in {"Year", "n randomised"}}
        for h in (
            "Trial",
            "Year",
            "Design",
            "Intervention",
            "Primary",
            "Status",
            "n randomised",
            "Usable data",
        )
    ]
    return _table(head, out)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _summary_table(ctx: _Context) -> dict[str, Any] | None:
    """Primary model of every outcome x week x measure (Summary of findings)."""
    meta = ctx.table("meta_analysis")
    model = primary_model(meta, ctx.config)
    if model is None:
        return None
    rows = meta[(meta["method"] == model["method"]) & (meta["ci_method"] == model["ci_method"])]
    se = ctx.table("study_effects")
    units = {}
    if {"outcome", "unit"} <= set(se.columns):
        units = {str(o): _unit(u) for o, u in zip(se["outcome"], se["unit"], strict=True)}
    cols = list(vocab.SUMMARY_COLUMNS)
    numeric = set(cols) - {"outcome", "measure"}
    head = [
        {"label": COLUMN_LABELS.get(c, c.capitalize()), "name": c, "numeric": c in numeric}
        for c in cols
    ]
    head.insert(3, {"label": "Unit", "name": "unit", "numeric": False})
    out, notes = [], []
    for r in rows.to_dict("records"):
        cells = [format_value(c, r.get(c)) for c in cols]
        cells[0] = _outcome_label(cells[0])
        unit = units.get(str(r["outcome"]), "") if r.get("measure") in {"MD", "MC"} else "SD units"
        cells.insert(3, unit)
        out.append(cells)
        single = pd.notna(r.get("k")) and int(r["k"]) == 1
        notes.append(
            "a single trial: nothing to pool; its own CI is in the study-effects table"
            if single
            else ""
        )
    return {**_table(head, out, notes), "method": f"{model['method']}, {model['ci_method']}"}


def _figures(results_dir: Path, outputs: list[str]) -> list[dict[str, str]]:
    """The figures of this run (PNG files among ``outputs``, each embedded as the smaller of
    the PNG and its SVG twin), in the report's order."""
    order = {k: i for i, k in enumerate(FIGURE_CAPTIONS)}
    files = [Path(p) for p in outputs if Path(p).parent.name == "figures"]
    pngs = sorted(
        (p for p in files if p.suffix.lower() == ".png"),
        key=lambda p: (order.get(figure_kind(p.stem), len(order)), figure_kind(p.stem), p.stem),
    )
    out = []
    for png in pngs:
        twins = {
            p.suffix.lower(): p
            for p in files
            if p.stem == png.stem
            and p.parent == png.parent
            and p.suffix.lower() in {".svg", ".pdf"}
        }
        # the smaller of the PNG and its SVG twin is embedded: the SVG is sharp at any zoom
        # and, for most figures, less than half the bytes (the report of the default data
        # half the size); a figure of many marks can be smaller as pixels
        embedded, mime = png, "image/png"
        svg = twins.get(".svg")
        if (
            svg is not None
            and (results_dir / svg).stat().st_size < (results_dir / png).stat().st_size
        ):
            embedded, mime = svg, "image/svg+xml"
        out.append(
            {
                "stem": png.stem,
                "kind": figure_kind(png.stem),
                "caption": figure_caption(png.stem),
                "mime": mime,
                "data": base64.b64encode((results_dir / embedded).read_bytes()).decode("ascii"),
                "formats": " and ".join(sorted(p.suffix[1:].upper() for p in twins.values())),
            }
        )
    return out


def _notebooks(ctx: _Context) -> list[dict[str, str]]:
    """The executed notebooks: title and introduction, and a relative link.

    The link is given only when the report is written inside the results directory (then
    it is a short relative path such as ``../notebooks/01_evidence.html``); a report written
    elsewhere names the file instead, so that no path outside the results leaks into it.
    """
    pages = sorted(
        ctx.results_dir / p
        for p in ctx.outputs
        if Path(p).parent.name == "notebooks" and Path(p).suffix == ".html"
    )
    results = ctx.results_dir.resolve()
    report_dir = ctx.out_path.parent.resolve()
    inside = report_dir == results or results in report_dir.parents
    out = []
    for page in pages:
        title, intro = _notebook_intro(page.with_suffix(".ipynb"))
        href = os.path.relpath(page.resolve(), report_dir) if inside else ""
        out.append(
            {
                "href": Path(href).as_posix() if href else "",
                "name": f"notebooks/{page.name}",
                "title": title or page.stem.replace("_", " "),
                "intro": intro,
            }
        )
    return out


def _config_text(config: Mapping[str, Any]) -> str:
    cfg = yaml_copy(dict(config))
    data = cfg.get("data")
    if isinstance(data, dict):  # never print absolute paths
        cfg["data"] = {
            k: (Path(v).name if isinstance(v, str) and Path(v).is_absolute() else v)
            for k, v in data.items()
        }
    return yaml.safe_dump(cfg, sort_keys=True, allow_unicode=True, default_flow_style=False)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


MANIFESTS = ("analysis", "arm_model", "binary", "ipd", "evidence", "figures", "notebooks")
"""The jobs whose manifests (``results/manifests/{job}.csv``) list what a run made."""


def run_outputs(results_dir: str | Path) -> list[str]:
    """The files a run made: the paths of its manifests (:data:`MANIFESTS`) that exist."""
    paths = [Path(results_dir) / "manifests" / f"{m}.csv" for m in MANIFESTS]
    return read_manifests(p for p in paths if p.is_file())


def render_report(
    results_dir: str | Path,
    *,
    data_dir_or_config: str | Path | Mapping[str, Any],
    out_path: str | Path,
    outputs: Iterable[str | Path] | None = None,
) -> str:
    """The report as an HTML string (see :func:`build_report`; nothing is written)."""
    results_dir = Path(results_dir)
    out_path = Path(out_path)
    tables_dir = results_dir / "tables"
    made = run_outputs(results_dir) if outputs is None else [Path(p).as_posix() for p in outputs]
    tables = {
        Path(p).stem: _read_csv(results_dir / p)
        for p in sorted(made, key=lambda p: Path(p).stem)
        if Path(p).parent.name == "tables" and Path(p).suffix == ".csv"
    }
    config = _load_config(results_dir, data_dir_or_config)
    studies_path = _studies_path(data_dir_or_config)
    studies = _read_csv(studies_path) if studies_path is not None else None
    ctx = _Context(results_dir, out_path, config, tables, studies, made)

    labels = _study_labels(ctx)
    if "meta_analysis" in tables or "binary_meta_analysis" not in tables:
        summary, sure, numbers = _summary(ctx)
    else:  # a review of binary outcomes only
        summary, sure, numbers = [], [], {}
    bh_table, bh_sentences = benefit_harm.overview(tables, config)
    summary = [*summary, *bh_sentences]
    codes = provenance_codes_present(tables_dir, tables)
    methods = _methods(ctx, codes)

    # table numbering follows the order of appearance
    counter = {"table": 0}

    def numbered(stem: str, caption: str, table: dict[str, Any]) -> dict[str, Any]:
        counter["table"] += 1
        return {"number": counter["table"], "stem": stem, "caption": caption, **table}

    grade_sof = (
        numbered(
            "grade_summary_of_findings",
            table_caption("summary_of_findings")
            + " Probabilities: Bayesian model with the primary priors.",
            _render_table(evidence_text.sof_view(tables["summary_of_findings"])),
        )
        if "summary_of_findings" in tables and len(tables["summary_of_findings"])
        else None
    )
    model = primary_model(ctx.table("meta_analysis"), config)
    answer = evidence_text.intervals_paragraphs(tables, config, model)
    probabilities = evidence_text.probability_paragraphs(tables, config)
    if "arm_model_coefficients" in tables and "term" in tables["arm_model_coefficients"]:
        arm = tables["arm_model_coefficients"].copy()
        comp = config.get("comparison") or {}
        arm["term"] = evidence_text.arm_term_labels(
            arm["term"],
            _treatment_label(comp.get("control", "control")),
            _treatment_label(comp.get("experimental", "experimental")),
        )
        tables["arm_model_coefficients"] = arm
    summary_table = _summary_table(ctx)
    sof = (
        numbered(
            "summary_of_findings",
            "The primary model "
            f"({summary_table['method']}) for every outcome, week and effect measure. "
            + ROUNDING_NOTE,
            summary_table,
        )
        if summary_table
        else None
    )
    benefit_harm_t = (
        numbered(
            "benefit_harm",
            "Benefit and harm side by side: the primary model of every outcome and week "
            "(continuous outcomes: first measure; binary outcomes: first binary measure, ratios "
            f"on their natural scale), with its {100 * float(level_of(config)):g}% CI, what "
            "it says in the outcome's direction (from outcomes.csv) and how much data it rests "
            "on. 'Inconclusive' means the interval includes both benefit and harm.",
            _render_table(bh_table),
        )
        if len(bh_table)
        else None
    )
    evidence = _evidence_table(ctx, labels)
    evidence_t = (
        numbered(
            "studies",
            "The trials: every trial listed in the data, its design, randomised total, status "
            "and what it contributed to this analysis.",
            evidence,
        )
        if evidence
        else None
    )
    placed = {"data_quality", "excluded"}
    excluded_t = (
        numbered(
            "excluded",
            table_caption("excluded") + " " + ROUNDING_NOTE,
            _render_table(tables["excluded"]),
        )
        if "excluded" in tables
        else None
    )
    order = {k: i for i, k in enumerate(TABLE_CAPTIONS)}
    results_tables = [
        numbered(stem, table_caption(stem) + " " + ROUNDING_NOTE, _render_table(tables[stem]))
        for stem in sorted(tables, key=lambda s: (order.get(s, len(order)), s))
        if stem not in placed
    ]
    dq_t = (
        numbered(
            "data_quality",
            table_caption("data_quality") + " " + ROUNDING_NOTE,
            _render_table(tables["data_quality"]),
        )
        if "data_quality" in tables
        else None
    )
    figures = _figures(results_dir, made)
    for i, fig in enumerate(figures, start=1):
        fig["number"] = str(i)
        for cite, key in _CAPTION_CITES.items():
            if cite in fig["caption"]:
                ctx.cited.add(key)
    for t in results_tables:
        for cite, key in _CAPTION_CITES.items():
            if cite in t["caption"]:
                ctx.cited.add(key)

    comparison = config.get("comparison") or {}
    title = (
        f"{_treatment_label(comparison.get('experimental', 'experimental')).capitalize()} "
        f"versus {_treatment_label(comparison.get('control', 'control'))} alone"
    )
    participants = _participants(ctx)
    synthetic = analyses_ipd.synthetic_in(studies, config) if studies is not None else []
    if synthetic or any(p.startswith("SYNTHETIC") for p in participants):
        title = f"SYNTHETIC DATA (example): {title}"
    if synthetic:  # the report opens with it, whatever kind of data was simulated
        summary = [
            f"SYNTHETIC DATA: the trials of this run were generated by the project's simulator "
            f"({'; '.join(synthetic)}); they describe no real patient and show the method only.",
            *summary,
        ]
    references = sorted(REFERENCES[k] for k in ctx.cited if k in REFERENCES)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hairtrial", "report/templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    text = env.get_template(TEMPLATE).render(
        title=title,
        summary=summary,
        sure=sure,
        numbers=numbers,
        methods=methods,
        codes=codes,
        software=software_versions(),
        sof=sof,
        benefit_harm=benefit_harm_t,
        continuous="meta_analysis" in tables or "binary_meta_analysis" not in tables,
        binary_methods=_binary_methods(config) if "binary_meta_analysis" in tables else [],
        grade_sof=grade_sof,
        answer=answer,
        probabilities=probabilities,
        evidence=evidence_t,
        excluded=excluded_t,
        participants=participants,
        results_tables=results_tables,
        data_quality=dq_t,
        figures=figures,
        notebooks=_notebooks(ctx),
        references=references,
        config_text=_config_text(config) if config else "",
        rounding_note=ROUNDING_NOTE,
    )
    return text


def level_of(config: Mapping[str, Any]) -> float:
    """The confidence level of the run (``meta_analysis.level``, default 0.95)."""
    return float((config.get("meta_analysis") or {}).get("level", 0.95))


def _binary_methods(config: Mapping[str, Any]) -> list[str]:
    """Methods text for binary outcomes, generated from the config."""
    from hairtrial.analyses.binary import models, primary_measure

    b = config.get("binary") or {}
    zc = b.get("zero_cells") or {}
    measure = primary_measure(dict(config))
    fitted = models(dict(config), measure)
    method, ci = fitted[0] if fitted else ("", "")
    names = {
        "MH": "Mantel-Haenszel",
        "Peto": "Peto's one-step odds ratio",
        "GLMM": "the binomial-normal GLMM with fixed study intercepts (rma.glmm UM.FS)",
    }
    primary = names.get(method, f"the inverse-variance model ({method}, {ci} CI)")
    others = ", ".join(names.get(m, m) for m in b.get("methods", []) if m != method)
    return [
        "Binary outcomes (responders, adverse events) were analysed as one 2x2 table per trial "
        "(microneedling arm against control arm; arms of one treatment in a trial combined by "
        "summing events and participants, so a shared control arm is counted once). Events "
        "given only as a percentage were converted (percent x n / 100, rounded) and a trial "
        "total split equally between arms; both are flagged in the tables and figures.",
        f"Effect measures: {', '.join(b.get('measures', []))} (the first is primary). The "
        f"primary model is {primary}; {others} are reported beside it "
        "(binary_meta_analysis.csv, binary_robustness.csv). Trial effects and the "
        f"inverse-variance models add {zc.get('add', 0.5)} to every cell of "
        f"{'trials with a zero cell' if zc.get('to', 'only0') == 'only0' else zc.get('to')} "
        f"({zc.get('correction', 'constant')} correction); the Mantel-Haenszel, Peto and GLMM "
        "estimates use the counts as they are. Trials without events (or with only events) in "
        "both arms are left out of risk and odds ratios and kept for the risk difference. "
        "Absolute effects are given per 1,000 participants at the median of the trials' "
        "control-arm risks (GRADE's assumed risk, as in the summary of findings), and the "
        "number needed to treat from the risk difference (Altman 1998).",
    ]


def build_report(
    results_dir: str | Path,
    *,
    data_dir_or_config: str | Path | Mapping[str, Any],
    out_path: str | Path,
    outputs: Iterable[str | Path] | None = None,
) -> Path:
    """Write the self-contained HTML report of a run.

    Parameters
    ----------
    results_dir : str or Path
        The ``results/`` directory of a run: ``config.yaml`` (the validated config of the
        run; preferred to the config given here) and the files of `outputs`.
    data_dir_or_config : str, Path or mapping
        Where the trial list comes from: a data directory holding ``studies.csv``, the
        ``studies.csv`` file itself, a config file (its ``data.studies`` is taken relative
        to the working directory, else to the config's directory or its parent) or a config
        mapping. The config also stands in for ``results/config.yaml`` when that is
        missing.
    out_path : str or Path
        The HTML file to write (usually ``results/report/report.html``); its directory is
        created. Links to the notebooks are relative to it.
    outputs : iterable of str or Path, optional
        The files this run made, relative to `results_dir` (``tables/*.csv``,
        ``figures/*.png`` with their SVG/PDF twins, ``notebooks/*.html``): exactly these are
        reported, whatever else lies in `results_dir`. Default: the run's manifests
        (:func:`run_outputs`).

    Returns
    -------
    Path
        ``out_path``.

    Notes
    -----
    The file embeds every figure as a base64 PNG and its style sheet, makes no external
    request, holds no timestamp and no absolute path, and is written atomically. Two
    builds from the same inputs (and software versions) give the same bytes.
    """
    out_path = Path(out_path)
    text = render_report(
        results_dir, data_dir_or_config=data_dir_or_config, out_path=out_path, outputs=outputs
    )
    atomic_write(out_path, lambda p: p.write_text(text, encoding="utf-8", newline="\n"))
    return out_path
