"""Snakemake script: write the validated config of this run (defaults filled in)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

import yaml  # noqa: E402

from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402
from hairtrial.tables import atomic_write  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    text = yaml.safe_dump(config, sort_keys=True, allow_unicode=True)
    atomic_write(snakemake.output[0], lambda p: p.write_text(text, encoding="utf-8"))  # noqa: F821
