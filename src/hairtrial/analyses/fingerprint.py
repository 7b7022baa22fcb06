"""What the results of a run depend on, as one digest: the composed config, the bytes of
every data file it names, the workflow (Snakefile, rules, scripts, schemas, notebooks), the
package's sources and the installed libraries.

Two uses, both to skip work that cannot give another answer:

- ``hairtrial run`` records it when a plain run completes; the next plain run with the same
  digest and untouched results has nothing to do and starts no Snakemake
  (:mod:`hairtrial.cli`);
- inputs that passed :func:`hairtrial.analyses.inputs.check_inputs` under a digest need no
  second check under the same digest: ``hairtrial run`` checks them once and tells the
  workflow so (:data:`CHECKED_ENV`), instead of a check in both processes.

Content, not modification times: a file touched but unchanged changes nothing. Only
standard-library imports (and the config's own): computing it must cost far less than
what it saves.
"""

from __future__ import annotations

import json
from pathlib import Path

from hairtrial.core.fingerprint import Digest, installed_distributions, package_files, tree_files

__all__ = ["CHECKED_ENV", "code_fingerprint", "rerun_key", "run_fingerprint"]

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
