"""Snakemake script: execute one notebook against this run's results."""

import os
import sys
from pathlib import Path

ROOT = Path(snakemake.scriptdir).resolve().parents[1]  # noqa: F821
sys.path.insert(0, str(ROOT / "src"))

from hairtrial.notebooks import execute  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402

with logged(snakemake.log[0]) as log:  # noqa: F821
    kernel_cwd = ROOT / "notebooks"  # where Jupyter runs a notebook opened from notebooks/
    workdir = Path.cwd()
    results = Path(snakemake.output.ipynb).resolve().parents[1]  # noqa: F821
    snapshot = Path(snakemake.input.config).resolve()  # noqa: F821
    parameters = {
        "project_root": os.path.relpath(workdir, kernel_cwd),
        "results_dir": os.path.relpath(results, kernel_cwd),
        "config_path": os.path.relpath(snapshot, workdir),
    }
    log.info("parameters: %s", parameters)
    execute(
        snakemake.input.source,  # noqa: F821
        snakemake.output.ipynb,  # noqa: F821
        snakemake.output.html,  # noqa: F821
        parameters,
        cwd=kernel_cwd,
    )
