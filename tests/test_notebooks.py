"""Notebooks: text twins in sync, parameters cell present, no statistics in them."""

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def test_there_are_notebooks():
    assert len(SOURCES) >= 2


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_twin_matches_text(source):
    twin = source.with_suffix(".ipynb")
    assert twin.exists(), f"{twin.name} missing: run `jupytext --sync {source.name}`"
    a, b = jupytext.read(source), jupytext.read(twin)
    assert [c.source for c in a.cells] == [c.source for c in b.cells], (
        f"{twin.name} differs from {source.name}: run `jupytext --sync`"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_parameters_cell_and_library_imports(source):
    nb = jupytext.read(source)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "project_root" in tagged[0].source and "results_dir" in tagged[0].source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "from hairtrial" in code
    # statistics belong in the library: no model fitting or numeric libraries called here
    forbidden = r"\b(scipy|statsmodels|np\.linalg|meta\.fit|tau2\.)"
    assert not re.search(forbidden, code), "statistics inside a notebook"
