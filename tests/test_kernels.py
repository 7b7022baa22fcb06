"""Kernels forked from one parent (hairtrial.report.kernels): same notebooks, fewer imports."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import nbformat
import pytest

from hairtrial.report import kernels
from hairtrial.report.notebooks import (
    PRELOADED,
    PRELOADED_IN_KERNEL,
    NotebookCellError,
    execute_many,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kernels are forked on POSIX")

#: A notebook whose outputs depend on what a kernel imported and when: a wide table and
#: every pandas option with its default (pandas picks its column limit and encoding at import
#: by whether it runs in a kernel), a library's warning (shown once per place in a process),
#: a figure drawn by this package, and what the process has imported.
PROBE = """\
# %% tags=["parameters"]
name = "probe"

# %%
import os
import sys

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hairtrial.plots import show

pd.DataFrame(np.arange(60).reshape(2, 30), columns=[f"column_{i}" for i in range(30)])

# %%
pd.describe_option()  # every option: its default and its value

# %%
np.mean([])  # numpy warns "Mean of empty slice" once per place (its own file)
print(name, "defined before:", "leftover" in globals())
leftover = name

# %%
fig = Figure(figsize=(2, 1))
fig.add_subplot().plot([0, 1], [1, 0])
show(fig, dpi=50)

# %%
print("modules:", "hairtrial.report.kernels" in sys.modules, "pandas" in sys.modules)
"""


def _runs(tmp_path: Path, names: list[str], source: str = PROBE) -> list[dict]:
    runs = []
    for name in names:
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        runs.append(
            {
                "source": path,
                "ipynb_out": tmp_path / f"{name}.ipynb",
                "html_out": tmp_path / f"{name}.html",
                "parameters": {"name": name},
                "cwd": tmp_path,
            }
        )
    return runs


def _outputs(path: Path) -> list:
    nb = nbformat.read(str(path), as_version=4)
    return [cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"]


def test_forked_kernels_write_the_bytes_of_kernels_started_anew(tmp_path):
    """Each notebook's .ipynb and HTML are byte-identical whether its kernel was forked or
    started as its own interpreter; each forked kernel starts empty (nothing of the notebook
    before it, its warning shown again)."""
    fresh, forked = tmp_path / "fresh", tmp_path / "forked"
    fresh.mkdir()
    forked.mkdir()
    execute_many(_runs(fresh, ["a", "b"]), parallel=1, preload=None)
    execute_many(_runs(forked, ["a", "b"]), parallel=1)
    for name in ("a.ipynb", "a.html", "b.ipynb", "b.html"):
        assert (fresh / name).read_bytes() == (forked / name).read_bytes(), name
    text = (forked / "b.ipynb").read_text()
    assert "b defined before: False" in text and "Mean of empty slice" in text
    assert "modules: False True" in text  # the fork server's own module is not in a kernel


def test_pandas_imported_plainly_in_the_parent_would_change_a_notebook(tmp_path):
    """Why the kernels' parent imports pandas as a kernel would (PRELOADED_IN_KERNEL; the
    forked kernels then write the bytes of kernels started anew, above): imported plainly
    there, pandas shows a wide table and its options otherwise. When this fails, pandas no
    longer looks at where it runs and may be preloaded plainly."""
    fresh, plain = tmp_path / "fresh", tmp_path / "plain"
    fresh.mkdir()
    plain.mkdir()
    execute_many(_runs(fresh, ["a"]), parallel=1, preload=None)
    execute_many(
        _runs(plain, ["a"]), parallel=1, preload=(*PRELOADED, "pandas"), preload_in_kernel=()
    )
    assert _outputs(fresh / "a.ipynb") != _outputs(plain / "a.ipynb")
    assert "pandas" in PRELOADED_IN_KERNEL and "pandas" not in PRELOADED  # the kernel's way


def test_kernels_are_forked_from_one_parent(tmp_path):
    source = "# %%\nimport os\nprint('parent', os.getppid())\n"
    runs = _runs(tmp_path, ["a", "b", "c"], source)
    execute_many(runs, parallel=2)
    parents = {"".join(o.get("text", "") for o in _outputs(run["ipynb_out"])[0]) for run in runs}
    assert len(parents) == 1 and f"parent {os.getpid()}" not in parents


def test_a_failed_cell_in_a_forked_kernel_names_the_notebook(tmp_path):
    runs = _runs(tmp_path, ["bad"], "# %%\n1 / 0\n")
    with pytest.raises(NotebookCellError, match="bad.py: a cell failed: ZeroDivisionError"):
        execute_many(runs, parallel=1)
    assert not runs[0]["ipynb_out"].exists()


def test_a_cell_over_its_time_is_stopped_and_its_kernel_ends(tmp_path):
    """A cell that sleeps past the per-cell limit is stopped and its kernel ends (the limit is
    far above what the cell writing the process id needs, however busy the machine)."""
    pidfile = tmp_path / "pid"
    source = f"# %%\nimport os\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
    runs = _runs(tmp_path, ["slow"], source + "\n# %%\nimport time\ntime.sleep(300)\n")
    with pytest.raises(Exception, match="(?i)timed? ?out"):
        execute_many(runs, parallel=1, timeout=5)
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not runs[0]["ipynb_out"].exists()


def test_closing_the_server_ends_its_kernels(tmp_path):
    connection = tmp_path / "kernel.json"  # never written: the kernel waits for nothing
    with kernels.fork_server(()) as server:
        pid = server.fork(["-f", str(connection)], tmp_path, dict(os.environ))
        assert isinstance(pid, int) and server.poll(pid) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_kernel_whose_parent_died_ends_and_is_seen_to_end(tmp_path):
    """Its parent killed, a kernel exits (ipykernel watches its parent) and polling it keeps
    working without the parent (the bound only guards against a hang)."""
    import time

    with kernels.fork_server(()) as server:
        pid = server.fork(["-f", str(tmp_path / "kernel.json")], tmp_path, dict(os.environ))
        assert isinstance(pid, int) and server.poll(pid) is None
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while (code := server.poll(pid)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert code is not None and not server.usable
        with pytest.raises(ProcessLookupError):  # said to have ended only once it has
            os.kill(pid, 0)


def test_without_its_server_a_kernel_starts_as_usual(tmp_path, monkeypatch):
    """The zygote gone (killed, or never started): kernels start their own interpreter and
    the notebook is as it would be."""
    import contextlib

    from hairtrial.report import notebooks

    @contextlib.contextmanager
    def dead_server(modules, *, in_kernel):
        with kernels.fork_server(modules, in_kernel=in_kernel) as server:
            assert server.pid is not None
            os.kill(server.pid, signal.SIGKILL)
            yield server

    fresh, fallback = tmp_path / "fresh", tmp_path / "fallback"
    fresh.mkdir()
    fallback.mkdir()
    execute_many(_runs(fresh, ["a"]), parallel=1, preload=None)
    monkeypatch.setattr(notebooks, "fork_server", dead_server)
    execute_many(_runs(fallback, ["a"]), parallel=1)
    assert (fresh / "a.ipynb").read_bytes() == (fallback / "a.ipynb").read_bytes()


def test_a_zygote_that_does_not_answer_is_not_waited_for(tmp_path, monkeypatch):
    (tmp_path / "slow_module.py").write_text("import time\n\ntime.sleep(60)\n")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    monkeypatch.setattr(kernels, "REPLY_TIMEOUT", 0.5)
    server = kernels.KernelForkServer(["slow_module"], env={**os.environ, "PYTHONPATH": path})
    server.start()
    try:
        assert server.fork(["-f", str(tmp_path / "k.json")], tmp_path, dict(os.environ)) is None
        assert not server.usable
    finally:
        server.close()
    assert server.pid is None


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ([sys.executable, "-m", "ipykernel_launcher", "-f", "c.json"], True),
        (["/no/such/python", "-m", "ipykernel_launcher", "-f", "c.json"], False),
        ([sys.executable, "-m", "other_kernel", "-f", "c.json"], False),
        (["R", "--slave"], False),
    ],
)
def test_only_this_interpreter_s_ipykernel_is_forked(cmd, expected):
    assert kernels.forkable(cmd) is expected
