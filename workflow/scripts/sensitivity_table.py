"""Snakemake script: one sensitivity table (hairtrial.analyses.sensitivity.TABLES),
every outcome x week x
measure."""

from hairtrial.analyses import sensitivity
from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.data.validate import read_studies
from hairtrial.core.io import write_csv

with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    name = snakemake.params.table
    effects = sensitivity.read_study_effects(snakemake.input.effects)
    studies = read_studies(snakemake.input.studies)
    table = sensitivity.table(name, effects, studies, config)
    log.info("%s: %d rows", name, len(table))
    write_csv(table, snakemake.output[0])
