"""Executing the project's notebooks reproducibly.

Notebooks live in ``notebooks/`` as jupytext ``py:percent`` text files (the
reviewable source) paired with ``.ipynb`` files for Jupyter. The workflow
executes each one with papermill-style parameters (the cell tagged
``parameters`` is overridden by an injected cell) and writes the executed
notebook and an HTML rendering. Everything that varies between runs
(execution timestamps, kernel and papermill metadata, widget state) is
removed, so two runs on the same inputs give the same bytes.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any

# first: jsonschema (nbformat imports it) without its slow optional IRI checker (~1 s)
import hairtrial.analyses.config  # noqa: F401

# isort: split
import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from papermill.parameterize import parameterize_notebook

from hairtrial.core.io import atomic_write
from hairtrial.report.kernels import ForkingProvisioner, fork_server

VOLATILE_CELL_METADATA = ("execution", "papermill", "collapsed", "scrolled")
VOLATILE_NB_METADATA = ("papermill", "widgets")


def scrub(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove run-dependent metadata from an executed notebook (in a copy).

    Execution counts are renumbered 1, 2, ... over code cells; cell ids are
    made stable (``cell-<index>``).
    """
    nb = copy.deepcopy(nb)
    for key in VOLATILE_NB_METADATA:
        nb.metadata.pop(key, None)
    nb.metadata.pop("jupytext", None)
    count = 0
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if not cell.metadata.get("tags", True):
            cell.metadata.pop("tags")
        if cell.cell_type == "code":
            count += 1
            cell["execution_count"] = count
            for out in cell.get("outputs", []):
                if "execution_count" in out:
                    out["execution_count"] = count
                out.get("metadata", {}).pop("execution", None)
    return nb


def _prepared(source: str | Path, parameters: dict[str, Any]) -> nbformat.NotebookNode:
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["papermill"] = {}
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return parameterize_notebook(nb, parameters, kernel_name="python3", language="python")


@functools.cache
def _html_exporter() -> HTMLExporter:
    return HTMLExporter(template_name="lab")  # one per process: its templates load once


def _write(nb: nbformat.NotebookNode, ipynb_out: str | Path, html_out: str | Path) -> None:
    nb = scrub(nb)
    atomic_write(ipynb_out, lambda p: nbformat.write(nb, str(p)))
    body, _ = _html_exporter().from_notebook_node(nb)
    atomic_write(html_out, lambda p: p.write_text(body, encoding="utf-8"))


@contextlib.contextmanager
def _inline_backend():
    env_backup = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        yield
    finally:
        if env_backup is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backup


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
"""Terminal colour codes, as IPython writes tracebacks."""


class NotebookCellError(RuntimeError):
    """A notebook's cell failed: the notebook and the error in one line."""


def execute(
    source: str | Path,
    ipynb_out: str | Path,
    html_out: str | Path,
    parameters: dict[str, Any],
    *,
    cwd: str | Path,
    timeout: int = 600,
) -> None:
    """Execute a jupytext notebook with parameters; write ``.ipynb`` and HTML.

    Parameters
    ----------
    source : str or Path
        The ``py:percent`` notebook.
    ipynb_out, html_out : str or Path
        Executed notebook and its HTML rendering (written atomically).
    parameters : dict
        Values injected after the cell tagged ``parameters``.
    cwd : str or Path
        Working directory of the kernel (the project root, so relative
        paths such as ``results/tables`` resolve).
    timeout : int
        Seconds allowed per cell.

    Raises
    ------
    NotebookCellError
        When a cell fails; nothing is written then.
    """
    execute_many(
        [
            {
                "source": source,
                "ipynb_out": ipynb_out,
                "html_out": html_out,
                "parameters": parameters,
                "cwd": cwd,
            }
        ],
        timeout=timeout,
        parallel=1,
    )


#: What the kernels' parent process imports once for all notebooks (besides ipykernel): the
#: heavy libraries the notebooks use through this package, none of which looks at whether it
#: runs in a kernel when imported.
PRELOADED = (
    "numpy",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "PIL.PngImagePlugin",
)

#: Imported once for all notebooks too, as a kernel imports it (:class:`KernelForkServer`'s
#: ``in_kernel``): pandas sets ``display.max_columns`` and ``display.encoding`` at import by
#: whether it runs in a kernel (imported plainly it would show a wide table otherwise: a
#: test shows both). Not this package (about 0.15 s a kernel): what its modules read when
#: imported has not been checked as pandas's has.
PRELOADED_IN_KERNEL = ("pandas",)


def execute_many(
    runs: list[dict[str, Any]],
    *,
    timeout: int = 600,
    parallel: int = 2,
    preload: tuple[str, ...] | None = PRELOADED,
    preload_in_kernel: tuple[str, ...] = PRELOADED_IN_KERNEL,
) -> None:
    """Execute several notebooks, each in its own kernel, ``parallel`` at a time.

    Each kernel is a fresh process forked from one that has imported ipykernel and
    :data:`PRELOADED` (:mod:`hairtrial.report.kernels`), so those imports are paid once, not
    once a notebook.

    Parameters
    ----------
    runs : list of dict
        Keyword arguments of :func:`execute` per notebook (``source``, ``ipynb_out``,
        ``html_out``, ``parameters``, ``cwd``), and optionally ``shown_parameters``: the
        parameters written into the saved notebook's injected cell instead of those it ran
        with (a run in a staging folder executes there but is read where it is published).
    timeout : int
        Seconds allowed per cell.
    parallel : int
        Kernels running at once (the cores the job may use).
    preload : tuple of str or None
        What the kernels' parent imports (see above); ``None``: no parent, each kernel starts
        its own interpreter as jupyter_client does.
    preload_in_kernel : tuple of str
        What the kernels' parent then imports as a kernel would (see above).

    Raises
    ------
    NotebookCellError
        When a cell fails, naming the notebook and the error in one line (the cell's full
        traceback goes to the ``hairtrial`` logger, i.e. the job's log); the notebooks that
        finished are written, the failed one is not.
    """
    import asyncio

    from jupyter_client.manager import AsyncKernelManager

    prepared = [_prepared(run["source"], run["parameters"]) for run in runs]

    async def run_one(sem: asyncio.Semaphore, run: dict[str, Any], nb: Any) -> None:
        async with sem:
            km = None  # nbclient's own: the kernel starts its own interpreter
            if server is not None:
                km = AsyncKernelManager(kernel_name="python3", kernel_id=str(uuid.uuid4()))
                provisioner = ForkingProvisioner(
                    kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km
                )
                provisioner.server = server
                km.provisioner = provisioner
            client = NotebookClient(
                nb,
                km=km,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(run["cwd"])}},
            )
            try:
                await client.async_execute()
            except CellExecutionError as err:
                name = Path(run["source"]).name
                logging.getLogger("hairtrial").error(
                    "%s: a cell failed:\n%s", name, _ANSI.sub("", str(err))
                )
                raise NotebookCellError(
                    f"{name}: a cell failed: {err.ename}: {_ANSI.sub('', str(err.evalue))} "
                    "(the cell and its traceback are in the job's log)"
                ) from None
            if run.get("shown_parameters"):  # what a reader re-running the notebook needs
                nb = parameterize_notebook(
                    nb, run["shown_parameters"], kernel_name="python3", language="python"
                )
            _write(nb, run["ipynb_out"], run["html_out"])

    async def run_all() -> None:
        sem = asyncio.Semaphore(max(1, int(parallel)))
        await asyncio.gather(*(run_one(sem, r, nb) for r, nb in zip(runs, prepared, strict=True)))

    with _inline_backend():  # before the fork server starts: the kernels' environment
        forks = (
            fork_server(preload, in_kernel=preload_in_kernel)
            if preload is not None
            else contextlib.nullcontext()
        )
        with forks as server:
            asyncio.run(run_all())
