"""Snakemake script: validated inputs -> study-level effect sizes and data-quality table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial import pipeline  # noqa: E402
from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402
from hairtrial.tables import write_csv  # noqa: E402

with logged(snakemake.log[0]) as log:  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    effects, quality, excluded = pipeline.prepare(config)
    log.info("%d study comparisons x measures; %d derived numbers", len(effects), len(quality))
    for note in excluded["note"]:
        log.info("not used: %s", note)
    write_csv(effects, snakemake.output.effects)  # noqa: F821
    write_csv(quality, snakemake.output.quality)  # noqa: F821
    write_csv(excluded, snakemake.output.excluded)  # noqa: F821
