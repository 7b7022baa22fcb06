"""Snakemake script: study effects -> meta-analysis table and study table with weights."""

import pandas as pd

from hairtrial.analyses import primary
from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.core.io import write_csv

with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    effects = pd.read_csv(snakemake.input.effects, keep_default_na=False, na_values=[""])
    meta_table, study_effects = primary.meta_analyses(effects, config)
    log.info("%d model rows", len(meta_table))
    write_csv(meta_table, snakemake.output.meta)
    write_csv(study_effects, snakemake.output.studies)
