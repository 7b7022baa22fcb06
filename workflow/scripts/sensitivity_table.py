"""Snakemake script: one sensitivity table (hairtrial.sensitivity.TABLES), every outcome x week x
measure."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial import sensitivity  # noqa: E402
from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402
from hairtrial.tables import write_csv  # noqa: E402
from hairtrial.validate import read_studies  # noqa: E402

with logged(snakemake.log[0]) as log:  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    name = snakemake.params.table  # noqa: F821
    effects = sensitivity.read_study_effects(snakemake.input.effects)  # noqa: F821
    studies = read_studies(snakemake.input.studies)  # noqa: F821
    table = sensitivity.table(name, effects, studies, config)
    log.info("%s: %d rows", name, len(table))
    write_csv(table, snakemake.output[0])  # noqa: F821
