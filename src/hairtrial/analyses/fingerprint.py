"""What the results of a run depend on, as one digest: the composed config, the bytes of
every data file it names, the workflow (Snakefile, rules, scripts, schemas, notebooks), the
package's sources and the installed libraries.

Two uses, both to skip work that cannot give another answer:

- ``hairtrial run`` records it when a plain run completes; the next plain run with the same
  digest and untouched results has nothing to do and starts no Snakemake
  (:mod:`hairtrial.cli`);
- inputs that passed :func:`hairtrial.analyses.inputs.check_inputs` under a digest need no
  second check under the same digest: ``hairtrial run`` checks them once and tells the
  workflow so (:data:`CHECKED_ENV`), instead of a check in both processes; both record the
  digest of the last inputs that passed (:func:`inputs_record`), so that neither the next
  ``hairtrial run`` nor a Snakemake started without it (a dry run, a job of a cluster run,
  which parses the workflow again) checks the same inputs twice.

Content, not modification times: a file touched but unchanged changes nothing. Only
standard-library imports (and the config's own): computing it must cost far less than
what it saves.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from hairtrial.core.fingerprint import Digest, installed_distributions, package_files, tree_files

__all__ = [
    "CHECKED_ENV",
    "INPUTS_CHECKED",
    "STATE",
    "checked_before",
    "code_fingerprint",
    "inputs_record",
    "rerun_key",
    "run_fingerprint",
    "write_record",
]

STATE = Path("results", ".hairtrial")
"""Per-analysis run state beside the results (relative to the working directory): lock,
Snakemake metadata of the published results, staging folder, the last failed run, records."""
INPUTS_CHECKED = "inputs-checked"
"""In an analysis's run state: the fingerprint under which its inputs last passed the
check (:func:`hairtrial.analyses.inputs.check_inputs`); the same inputs, config, code and
libraries need no second check."""

CHECKED_ENV = "HAIRTRIAL_INPUTS_CHECKED"
"""Environment variable set by ``hairtrial run`` for Snakemake: the digest under which the
inputs were just checked; the workflow checks them again only under another digest."""


def run_fingerprint(config: dict, snakefile: str | Path) -> str:
    """The digest of everything a run's results depend on (see the module docstring).

    Parameters
    ----------
    config : dict
        The composed, validated config (``data``: the paths of the input files).
    snakefile : str or Path
        The workflow's Snakefile; the ``workflow/`` and ``notebooks/`` folders beside it
        (beside ``workflow/`` for ``workflow/Snakefile``) are part of the digest.
    """
    snakefile = Path(snakefile).absolute()
    h = Digest()
    h.add("config", json.dumps(config, sort_keys=True, default=str).encode())
    for key, value in sorted(config.get("data", {}).items()):
        if isinstance(value, str) and Path(value).is_dir():
            for path in tree_files(value):
                h.add_file(f"data {key} {path.relative_to(value).as_posix()}", path)
        elif isinstance(value, str):
            h.add_file(f"data {key}", value)
    base = snakefile.parent.parent if snakefile.parent.name == "workflow" else snakefile.parent
    h.add_file("Snakefile", snakefile)
    for folder in ("workflow", "notebooks"):
        for path in tree_files(base / folder):
            h.add_file(path.relative_to(base).as_posix(), path)
    h.add("code", code_fingerprint().encode())
    return h.hexdigest()


def code_fingerprint() -> str:
    """The digest of the code that computes a run's results: the package's sources (code,
    style, captions, schemas) and the installed distributions with Python's version."""
    h = Digest()
    package = Path(__file__).resolve().parents[1]
    for path in package_files():
        h.add_file(f"package {path.relative_to(package).as_posix()}", path)
    h.add("distributions", installed_distributions())
    return h.hexdigest()


def rerun_key(config: dict, code: str, *, without: tuple[str, ...] = ()) -> str:
    """A job's key for Snakemake's ``params`` rerun trigger: the composed config (less the
    sections in `without`, which the job does not read) and the code digest.

    Snakemake reruns a job when its input files, its script or its params change, but it
    does not see the config a script reads nor the library the script calls: without this
    key a changed CI level or an upgraded hairtrial would leave the previous tables in
    place, and `hairtrial run` would then record them as up to date.

    Examples
    --------
    >>> a = rerun_key({"level": 0.95, "figures": {"dpi": 300}}, "c0", without=("figures",))
    >>> a == rerun_key({"level": 0.95, "figures": {"dpi": 600}}, "c0", without=("figures",))
    True
    >>> a == rerun_key({"level": 0.9, "figures": {"dpi": 300}}, "c0", without=("figures",))
    False
    >>> a == rerun_key({"level": 0.95, "figures": {"dpi": 300}}, "c1", without=("figures",))
    False
    """
    kept = {k: v for k, v in config.items() if k not in without}
    h = Digest()
    h.add("config", json.dumps(kept, sort_keys=True, default=str).encode())
    h.add("code", code.encode())
    return h.hexdigest()


def inputs_record(name: str) -> Path:
    """The record of the last inputs of analysis ``name`` that passed the input check."""
    return STATE / name / INPUTS_CHECKED


def checked_before(record: Path, fingerprint: str) -> bool:
    """Whether ``record`` says that inputs with this fingerprint passed the input check (the
    check depends on nothing the fingerprint does not cover: it would pass again)."""
    try:
        return record.read_text(encoding="utf-8").strip() == fingerprint
    except (OSError, UnicodeDecodeError):
        return False


def write_record(record: Path, text: str) -> None:
    """Write ``text`` to ``record`` whole (best effort: without it, the next run checks or
    asks Snakemake again). A temporary file of its own, removed if writing fails (a full
    disk, a read-only folder), so that nothing is left behind and two runs never share one."""
    import tempfile  # here: a run with nothing to do answers without it

    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{record.name}.", suffix=".tmp", dir=record.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, record)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
