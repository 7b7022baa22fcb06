"""Snakemake script: execute one notebook against this run's results."""

import os
from pathlib import Path

from hairtrial.core.runlog import logged
from hairtrial.report.notebooks import execute

ROOT = Path(snakemake.scriptdir).resolve().parents[1]

with logged(snakemake.log[0]) as log:
    kernel_cwd = ROOT / "notebooks"  # where Jupyter runs a notebook opened from notebooks/
    workdir = Path.cwd()
    results = Path(snakemake.output.ipynb).resolve().parents[1]
    snapshot = Path(snakemake.input.config).resolve()
    parameters = {
        "project_root": os.path.relpath(workdir, kernel_cwd),
        "results_dir": os.path.relpath(results, kernel_cwd),
        "config_path": os.path.relpath(snapshot, workdir),
    }
    log.info("parameters: %s", parameters)
    execute(
        snakemake.input.source,
        snakemake.output.ipynb,
        snakemake.output.html,
        parameters,
        cwd=kernel_cwd,
    )
