"""Snakemake script: the participant-level tables and figure data (hairtrial.analyses.ipd)."""

from pathlib import Path

from hairtrial.analyses import ipd
from hairtrial.analyses.config import validate_config
from hairtrial.core.io import write_csv
from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.report.tables import write_tables

out = snakemake.output
with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    tables, derived = ipd.ipd_tables(config)
    results = Path(out.manifest).parents[1]
    written = write_tables(tables, results / "tables")
    for name, df in derived.items():
        write_csv(df, results / "derived" / f"{name}.csv", float_format=None)
    for note in tables["ipd_fit"]["notes"]:
        if note:
            log.info("%s", note)
    write_manifest(out.manifest, written, results)
