"""Snakemake script: the L'Abbé-style plot of one outcome x week."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial import pipeline  # noqa: E402
from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    pipeline.labbe_figure(
        snakemake.input.meta,  # noqa: F821
        snakemake.input.studies,  # noqa: F821
        config,
        outcome=snakemake.wildcards.outcome,  # noqa: F821
        week=int(snakemake.wildcards.week),  # noqa: F821
        stem=Path(snakemake.output[0]).with_suffix(""),  # noqa: F821
    )
