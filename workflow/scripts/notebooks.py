"""Snakemake script: execute the notebooks against this run's results."""

import os
from pathlib import Path

from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.core.staging import PUBLISHED_ENV
from hairtrial.report.notebooks import execute_many

ROOT = Path(snakemake.scriptdir).resolve().parents[1]

inp, out = snakemake.input, snakemake.output
with logged(snakemake.log[0]) as log:
    kernel_cwd = ROOT / "notebooks"  # where Jupyter runs a notebook opened from notebooks/
    workdir = Path.cwd()
    results = Path(out.manifest).resolve().parents[1]

    def parameters_for(root):
        """The notebooks' parameters for a project folder ``root`` (paths from kernel_cwd)."""
        return {
            "project_root": os.path.relpath(root, kernel_cwd),
            "results_dir": os.path.relpath(root / results.relative_to(workdir), kernel_cwd),
            "config_path": os.path.relpath(Path(inp.config).resolve(), workdir),
        }

    parameters = parameters_for(workdir)
    # under `hairtrial run` the jobs run in a staging folder that is deleted once the results
    # are published: the saved notebooks name the published folder (the same files)
    shown = parameters_for(Path(os.environ.get(PUBLISHED_ENV, workdir)))
    log.info("parameters: %s (in the saved notebooks: %s)", parameters, shown)
    runs = [
        {
            "source": source,
            "ipynb_out": ipynb,
            "html_out": html,
            "parameters": parameters,
            "cwd": kernel_cwd,
            "shown_parameters": shown,
        }
        for source, ipynb, html in zip(inp.sources, out.ipynb, out.html, strict=True)
    ]
    execute_many(runs, parallel=snakemake.threads)
    write_manifest(out.manifest, [*out.ipynb, *out.html], results)
