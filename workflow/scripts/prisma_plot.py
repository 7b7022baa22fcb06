"""Snakemake script: the PRISMA 2020 flow diagram."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial import pipeline  # noqa: E402
from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    pipeline.prisma_figure(
        snakemake.input[0],  # noqa: F821
        config,
        stem=Path(snakemake.output[0]).with_suffix(""),  # noqa: F821
    )
