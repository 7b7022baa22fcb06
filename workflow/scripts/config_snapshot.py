"""Snakemake script: write the validated config of this run (defaults filled in)."""

import yaml

from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.core.io import atomic_write

with logged(snakemake.log[0]):
    config = validate_config(snakemake.config)
    text = yaml.safe_dump(config, sort_keys=True, allow_unicode=True)
    atomic_write(snakemake.output[0], lambda p: p.write_text(text, encoding="utf-8"))
