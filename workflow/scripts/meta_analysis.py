"""Snakemake script: study effects -> meta-analysis table and study table with weights."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

import pandas as pd  # noqa: E402

from hairtrial import pipeline  # noqa: E402
from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402
from hairtrial.tables import write_csv  # noqa: E402

with logged(snakemake.log[0]) as log:  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    effects = pd.read_csv(snakemake.input.effects, keep_default_na=False, na_values=[""])  # noqa: F821
    meta_table, study_effects = pipeline.meta_analyses(effects, config)
    log.info("%d model rows", len(meta_table))
    write_csv(meta_table, snakemake.output.meta)  # noqa: F821
    write_csv(study_effects, snakemake.output.studies)  # noqa: F821
