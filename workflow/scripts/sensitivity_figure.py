"""Snakemake script: one sensitivity figure (bubble, subgroups, leave-one-out, cumulative,
Baujat, influence or funnel) in every configured format."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial import sensitivity  # noqa: E402
from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    w = snakemake.wildcards  # noqa: F821
    sensitivity.figure(
        snakemake.params.kind,  # noqa: F821
        snakemake.input.effects,  # noqa: F821
        config,
        outcome=w.outcome,
        week=int(w.week),
        measure=w.measure,
        moderator=w.get("moderator"),
        stem=Path(snakemake.output[0]).with_suffix(""),  # noqa: F821
    )
