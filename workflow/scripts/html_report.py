"""Snakemake script: the self-contained HTML report of this run, from its manifests."""

from pathlib import Path

from hairtrial.analyses.config import validate_config
from hairtrial.core.manifest import read_manifests
from hairtrial.core.runlog import logged
from hairtrial.report.document import build_report

with logged(snakemake.log[0]):
    config = validate_config(snakemake.config)
    out = Path(snakemake.output[0])
    build_report(
        out.parents[1],
        data_dir_or_config=config,
        out_path=out,
        outputs=read_manifests(snakemake.input.manifests),
    )
