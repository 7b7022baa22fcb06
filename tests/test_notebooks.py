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


def test_saved_notebook_shows_the_published_parameters(tmp_path):
    """A run in a staging folder executes there; the saved notebook names where its results
    are published (the staging folder is gone when a reader opens it)."""
    import nbformat

    from hairtrial.report.notebooks import execute_many

    (tmp_path / "staged.txt").write_text("numbers of this run\n")
    source = tmp_path / "nb.py"
    source.write_text(
        '# %% tags=["parameters"]\nresults_dir = "default"\n\n'
        "# %%\nprint(open(results_dir).read())\n"
    )
    run = {
        "source": source,
        "ipynb_out": tmp_path / "nb.ipynb",
        "html_out": tmp_path / "nb.html",
        "parameters": {"results_dir": str(tmp_path / "staged.txt")},
        "shown_parameters": {"results_dir": "../results/mine"},
        "cwd": tmp_path,
    }
    execute_many([run], parallel=1)
    nb = nbformat.read(str(tmp_path / "nb.ipynb"), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "../results/mine" in injected[0].source
    assert "staged.txt" not in injected[0].source
    outputs = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert "numbers of this run" in "".join(outputs)  # it ran with the staging paths
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2, 3]


def test_a_failed_cell_is_one_line_for_the_user_and_whole_in_the_log(tmp_path, caplog):
    """A cell that fails: the error names the notebook and the exception in one line without
    colour codes (it reaches the terminal); the cell's traceback goes to the job's log."""
    from hairtrial.report.notebooks import NotebookCellError, execute_many

    source = tmp_path / "nb.py"
    source.write_text(
        '# %% tags=["parameters"]\nx = 1\n\n# %%\ndef f():\n    return x / 0\n\nf()\n'
    )
    run = {
        "source": source, "ipynb_out": tmp_path / "nb.ipynb", "html_out": tmp_path / "nb.html",
        "parameters": {"x": 2}, "cwd": tmp_path,
    }  # fmt: skip
    with caplog.at_level("ERROR", logger="hairtrial"), pytest.raises(NotebookCellError) as err:
        execute_many([run], parallel=1)
    msg = str(err.value)
    assert msg.startswith("nb.py: a cell failed: ZeroDivisionError: division by zero")
    assert "\n" not in msg and "\x1b" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__
    logged = caplog.text
    assert "return x / 0" in logged and "\x1b" not in logged
    assert not (tmp_path / "nb.ipynb").exists()
