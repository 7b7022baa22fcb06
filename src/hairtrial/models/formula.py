"""R-style model formulas with metafor's coefficient names, on formulaic.

:func:`design_matrix` lets formulaic parse the formula and build the model matrix (terms,
``*`` / ``:`` expansion, intercept handling, term order, the choice between contrasts and full
dummies, ``I()``, ...). What is left here is the part where formulaic and R differ, because
tables print R's (metafor's) coefficient names and the multilevel engine and meta-regression
must agree with metafor:

* column names as R's ``model.matrix`` with metafor's intercept name: ``intrcpt``, ``x``,
  ``treatmentlow``, ``C(week)8``, ``treatmentlow:C(week)8`` (formulaic would write
  ``Intercept``, ``treatment[T.low]``, ``C(week)[T.8]``). A treatment-coding subclass with
  R's name format does this inside formulaic;
* factor levels as R prints them (``TRUE``/``FALSE``, ``8`` for 8.0) and in R's order (sorted;
  a pandas ``Categorical`` keeps its category order, unused categories dropped);
* boolean columns are factors, as R's logical vectors (formulaic treats them as numbers);
* a missing value is an error (formulaic would drop the row), and only ``- 1`` may be
  subtracted (formulaic silently ignores ``- x`` for a term ``x`` not in the model).

One documented difference from R remains: for an interaction of factors whose margins are
absent (``~ a:b`` with an intercept), R codes the interaction by full dummies, which is rank
deficient (metafor then drops the redundant columns); formulaic adds reduced-rank margins
instead (patsy's rule). The column space, and hence every fitted value, is the same; the
coefficients are parameterised differently. Hierarchical formulas (every interaction with its
margins, and the models this project uses) are coded exactly as R codes them (tested against
the former hand-written coder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["INTERCEPT", "design_matrix", "is_categorical", "level_label"]

#: metafor's name of the intercept column.
INTERCEPT = "intrcpt"


@cache
def _r_treatment() -> Any:
    """Treatment coding named as R's ``model.matrix`` (``{factor}{level}``), as a formulaic
    contrast (formulaic is imported on first use: it costs ~0.1 s of start-up)."""
    from formulaic.transforms.contrasts import TreatmentContrasts

    class RTreatment(TreatmentContrasts):  # type: ignore[misc]
        FACTOR_FORMAT = "{name}{field}"
        FACTOR_FORMAT_REDUCED = "{name}{field}"

    return RTreatment()


def level_label(value: Any) -> str:
    """A factor level as R prints it in a coefficient name.

    Parameters
    ----------
    value : object
        The level.

    Returns
    -------
    str

    Examples
    --------
    >>> [level_label(v) for v in (True, 8, 8.0, 8.5, "pen")]
    ['TRUE', '8', '8', '8.5', 'pen']
    """
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def is_categorical(column: pd.Series) -> bool:
    """Whether R would treat the column as a factor (not numeric, or logical).

    Parameters
    ----------
    column : pandas.Series

    Returns
    -------
    bool
    """
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _levels(values: pd.Series) -> list[Any]:
    """R's factor levels: category order for a Categorical (unused dropped), else sorted."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values)
        return [c for c in values.cat.categories if c in present]
    return sorted(pd.unique(values.to_numpy()))


def _factor(values: Any, what: str, levels: Sequence[Any] | None = None) -> Any:
    """Values as a formulaic factor with R's level labels, order and coefficient names."""
    s = pd.Series(getattr(values, "__wrapped__", values))
    if s.isna().any():
        raise ValueError(f"missing values in {what!r}")
    levs = list(levels) if levels is not None else _levels(s)
    labels = [level_label(v) for v in levs]
    codes = pd.Index(levs).get_indexer(s.to_numpy())
    if (codes < 0).any():
        unknown = sorted({level_label(v) for v in s[codes < 0]})
        raise ValueError(f"unknown level(s) {unknown} of {what!r}; known: {labels}")
    coded = pd.Categorical.from_codes(codes, categories=labels)
    from formulaic.transforms.contrasts import C

    return C(pd.Series(coded, index=s.index), contrasts=_r_treatment(), levels=labels)


def _check_subtractions(text: str, formula: str) -> None:
    """Only ``- 1`` may be subtracted (formulaic ignores ``- x`` for a term not in the model)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "-" and depth == 0:
            rest = text[i + 1 :].lstrip()
            if not (rest.startswith("1") and rest[1:].lstrip()[:1] in ("", "+", "-")):
                raise ValueError(f"only '- 1' may be subtracted in a formula: {formula!r}")


def design_matrix(
    formula: str,
    data: pd.DataFrame,
    *,
    levels: Mapping[str, Sequence[Any]] | None = None,
) -> tuple[NDArray[np.float64], list[str]]:
    """Model matrix of an R-style formula, with R's coding and metafor's column names.

    Supported is what formulaic supports (``+``, ``a * b`` = ``a + b + a:b``, ``a:b``,
    ``- 1`` / ``+ 0`` / ``0 +`` to drop the intercept, ``I(...)``, ``C(x)`` to treat a
    column as a factor, ...). Numeric columns enter as they are; string, boolean and
    categorical columns are factors with treatment coding, levels sorted (a ``Categorical``:
    category order), the first level the reference. As in R, a factor in a term is coded by
    contrasts when the term without that factor is in the model (the intercept counting as the
    empty term), otherwise by a full set of dummies (see the module docstring for the one
    exception); terms are ordered by their order (main effects, then two-way, ...), and within
    an interaction the first factor varies fastest.

    Parameters
    ----------
    formula : str
        For example ``"~ treatment * C(week)"`` or ``"~ outcome - 1"``; ``~`` is optional.
    data : pandas.DataFrame
        Columns referenced by the formula.
    levels : mapping of str to sequence, optional
        Levels (first = reference) of categorical columns, e.g. those of the data a model was
        fitted on, to code new data the same way; values outside them are an error.

    Returns
    -------
    X : ndarray, shape (n, p)
    names : list of str
        Column names as R's ``model.matrix``, the intercept as metafor's ``intrcpt``.

    Raises
    ------
    KeyError
        A column of the formula is not in `data`.
    ValueError
        Missing or non-finite values, a subtracted term other than the intercept, unknown
        levels, or a model without columns.

    Examples
    --------
    >>> d = pd.DataFrame({"trt": ["c", "e", "c", "e"], "week": [4, 4, 8, 8]})
    >>> design_matrix("~ trt * C(week)", d)[1]
    ['intrcpt', 'trte', 'C(week)8', 'trte:C(week)8']
    """
    from formulaic import Formula, model_matrix

    text = formula.strip()
    text = text[1:] if text.startswith("~") else text
    _check_subtractions(text, formula)
    needed = Formula(text).required_variables
    missing = sorted(str(v) for v in needed if v not in data.columns)
    if missing:
        raise KeyError(f"column(s) {missing} (formula {formula!r}) not in data")
    used = data[[c for c in data.columns if c in needed]].reset_index(drop=True)
    levels = levels or {}
    factors = {c: _factor(used[c], c, levels.get(c)) for c in used if is_categorical(used[c])}
    context = {**factors, "C": lambda values: _factor(values, "C(...)")}
    mm = model_matrix(text, used.drop(columns=list(factors)), context=context, na_action="ignore")
    names = [INTERCEPT if c == "Intercept" else str(c) for c in mm.columns]
    if not names:
        raise ValueError("model has no columns")
    X = np.asarray(mm, dtype=float).reshape(len(used), len(names))
    if not np.all(np.isfinite(X)):
        raise ValueError("non-finite values in the design matrix")
    return X, names
