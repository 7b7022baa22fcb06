"""How sure can we be: the Bayesian tables, the next trial and the GRADE summary of findings.

:func:`evidence_analyses` reads what the analysis job wrote (study effects, the meta-analyses,
the small-study tests; binary tables too when the run has binary outcomes) with the outcome
list (``data.outcomes``), the trial list (``data.studies``) and the GRADE overrides
(``data.grade``), and returns the tables of :data:`EVIDENCE_TABLES` and the figure data.
Figures are drawn from these by :mod:`hairtrial.report.evidence`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from hairtrial.analyses import bayes, grade
from hairtrial.analyses.run import FIGURE_LIST_COLUMNS, Outputs, as_written, read_written
from hairtrial.core import vocab
from hairtrial.data.grade import read_grade
from hairtrial.data.outcomes import read_outcomes
from hairtrial.data.validate import read_studies

__all__ = [
    "EVIDENCE_DATA",
    "EVIDENCE_KINDS",
    "EVIDENCE_TABLES",
    "evidence_analyses",
    "evidence_figure_list",
    "read_evidence_inputs",
]

#: Tables of :func:`evidence_analyses`, in the order they are written.
EVIDENCE_TABLES = (
    "summary_of_findings",
    "bayes",
    "bayes_sensitivity",
    "next_trial",
    "next_trial_sample_size",
)
#: Figure data (``results/derived/{name}.csv``).
EVIDENCE_DATA = ("bayes_posterior", "evidence_figures")


def read_evidence_inputs(
    config: Mapping, tables: Mapping[str, str | Path]
) -> dict[str, pd.DataFrame | None]:
    """The run's tables named in ``tables`` (as written) and the config's data files.

    ``tables`` maps ``study_effects``, ``meta_analysis``, ``small_study`` (and, when the run
    has them, ``binary_study_effects``, ``binary_meta_analysis``) to their CSV files.
    """
    out: dict[str, pd.DataFrame | None] = {
        name: read_written(path) for name, path in tables.items() if path
    }
    data = config["data"]
    path = data.get("outcomes")
    outcomes = read_outcomes(path) if path and Path(path).is_file() else None
    out["outcomes"] = outcomes
    out["studies"] = read_studies(data["studies"])
    out["grade"] = read_grade(data["grade"], outcomes) if data.get("grade") else None
    return out


def _stack(inputs: Mapping[str, pd.DataFrame | None], name: str) -> pd.DataFrame:
    frames = [f for f in (inputs.get(name), inputs.get(f"binary_{name}")) if f is not None]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def evidence_analyses(config: Mapping, inputs: Mapping[str, pd.DataFrame | None]) -> Outputs:
    """The tables of :data:`EVIDENCE_TABLES` and the figure data of :data:`EVIDENCE_DATA`.

    Parameters
    ----------
    config : mapping
        The validated config.
    inputs : mapping
        :func:`read_evidence_inputs`.
    """
    effects = _stack(inputs, "study_effects")
    meta = _stack(inputs, "meta_analysis")
    outcomes = inputs.get("outcomes")
    b = bayes.bayes_tables(effects, outcomes, config)
    out = Outputs()
    studies = inputs["studies"]
    assert studies is not None
    out.tables["summary_of_findings"] = grade.summary_of_findings(
        meta, effects, studies, outcomes, inputs.get("grade"), config,
        bayes_table=as_written(b["bayes"]), small_study=inputs.get("small_study"),
    )  # fmt: skip
    for name in EVIDENCE_TABLES[1:]:
        out.tables[name] = b[name]
    out.derived["bayes_posterior"] = b["bayes_posterior"]
    out.derived["evidence_figures"] = evidence_figure_list(out.tables)
    return out


KEYS = list(vocab.KEYS)

#: Figure kinds of the evidence job (the figure list's ``kind``).
EVIDENCE_KINDS = ("summary_of_findings", "bayes_posterior", "bayes_priors", "next_trial")


def evidence_figure_list(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The evidence figures to draw, in the figure list's layout (``stem, kind, outcome, week,
    measure, moderator``): the summary of findings, and per row of ``bayes``: the posterior,
    the prior sensitivity and (when simulated) the next trial."""
    rows: list[tuple[str, str, str | None, int | None, str | None]] = []
    if len(tables["summary_of_findings"]):
        rows.append(("summary_of_findings", "summary_of_findings", None, None, None))
    simulated = {
        (o, int(w), m)
        for o, w, m in tables["next_trial"][KEYS].drop_duplicates().itertuples(index=False)
    }
    for o, w, m in tables["bayes"][KEYS].itertuples(index=False):
        for kind in EVIDENCE_KINDS[1:]:
            if kind == "next_trial" and (o, int(w), m) not in simulated:
                continue
            rows.append((f"{kind}_{o}_week{int(w)}_{m}", kind, o, int(w), m))
    out = pd.DataFrame(rows, columns=FIGURE_LIST_COLUMNS[:5])
    out["moderator"] = None
    out["week"] = out["week"].astype("Int64")
    return out
