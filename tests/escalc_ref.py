"""Reader of tests/reference/escalc_reference.csv, shared by the effect and conversion tests."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

REF = Path(__file__).parent / "reference" / "escalc_reference.csv"


def _load() -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    with REF.open(newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["section"]].setdefault(row["case"], {})[row["field"]] = float(row["value"])
    return out


REFERENCE = _load()


def cases(section: str) -> list:
    """pytest params, one per reference case of ``section``."""
    found = REFERENCE[section]
    assert found, f"no reference rows for {section}"
    return [pytest.param(v, id=k) for k, v in found.items()]
