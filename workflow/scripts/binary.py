"""Snakemake script: every binary-outcome table and the binary figure data."""

from pathlib import Path

import yaml

from hairtrial.analyses.binary import binary_analyses
from hairtrial.analyses.config import validate_config
from hairtrial.core.io import atomic_write, write_csv
from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.report.tables import write_tables

out = snakemake.output
with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    if hasattr(out, "config"):  # no continuous outcomes: this job keeps the config snapshot
        text = yaml.safe_dump(config, sort_keys=True, allow_unicode=True)
        atomic_write(out.config, lambda p: p.write_text(text, encoding="utf-8"))
    result = binary_analyses(config)
    for note in result.tables["binary_excluded"]["note"]:
        log.info("note: %s", note)
    results = Path(out.manifest).parents[1]
    written = write_tables(result.tables, results / "tables")
    for name, df in result.derived.items():  # figure data: every digit
        write_csv(df, results / "derived" / f"{name}.csv", float_format=None)
    log.info(
        "%d tables, %d figures to draw", len(result.tables), len(result.derived["binary_figures"])
    )
    write_manifest(out.manifest, written, results)
