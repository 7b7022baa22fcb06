"""Snakemake script: every figure of the run, drawn from its tables and figure data."""

from pathlib import Path

from hairtrial.analyses.config import validate_config
from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.report.figures import FIGURE_DATA, FIGURE_TABLES, draw_figures

inp, out = snakemake.input, snakemake.output
with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    names = inp.keys()  # a config without continuous or without binary outcomes has fewer
    tables = {name: inp[name] for name in FIGURE_TABLES if name in names}
    data = {name: inp[name] for name in FIGURE_DATA if name in names}
    written = draw_figures(tables, data, config, out.figures, processes=snakemake.threads)
    log.info("%d files", len(written))
    write_manifest(out.manifest, written, Path(out.manifest).parents[1])
