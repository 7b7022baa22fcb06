"""Snakemake script: validated inputs -> study-level effect sizes and data-quality table."""

from hairtrial.analyses import primary
from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.core.io import write_csv

with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    effects, quality, excluded = primary.prepare(config)
    log.info("%d study comparisons x measures; %d derived numbers", len(effects), len(quality))
    for note in excluded["note"]:
        log.info("not used: %s", note)
    write_csv(effects, snakemake.output.effects)
    write_csv(quality, snakemake.output.quality)
    write_csv(excluded, snakemake.output.excluded)
