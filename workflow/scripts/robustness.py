"""Snakemake script: the robustness table (every scenario, every outcome x week x measure)."""

from hairtrial.analyses import robustness
from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.core.io import write_csv

with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    table = robustness.robustness_table(config)
    log.info("%d scenario rows", len(table))
    write_csv(table, snakemake.output[0])
