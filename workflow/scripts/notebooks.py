"""Snakemake script: execute the notebooks against this run's results."""

import os
from pathlib import Path

from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.report.notebooks import execute_many

ROOT = Path(snakemake.scriptdir).resolve().parents[1]

inp, out = snakemake.input, snakemake.output
with logged(snakemake.log[0]) as log:
    kernel_cwd = ROOT / "notebooks"  # where Jupyter runs a notebook opened from notebooks/
    workdir = Path.cwd()
    results = Path(out.manifest).resolve().parents[1]
    parameters = {
        "project_root": os.path.relpath(workdir, kernel_cwd),
        "results_dir": os.path.relpath(results, kernel_cwd),
        "config_path": os.path.relpath(Path(inp.config).resolve(), workdir),
    }
    log.info("parameters: %s", parameters)
    runs = [
        {
            "source": source,
            "ipynb_out": ipynb,
            "html_out": html,
            "parameters": parameters,
            "cwd": kernel_cwd,
        }
        for source, ipynb, html in zip(inp.sources, out.ipynb, out.html, strict=True)
    ]
    execute_many(runs, parallel=snakemake.threads)
    write_manifest(out.manifest, [*out.ipynb, *out.html], results)
