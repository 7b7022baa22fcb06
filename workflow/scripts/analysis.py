"""Snakemake script: every contrast-level table, the figure data and the config snapshot."""

from pathlib import Path

import yaml

from hairtrial.analyses import run
from hairtrial.analyses.config import validate_config
from hairtrial.core.io import atomic_write, write_csv
from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.report.tables import write_tables

out = snakemake.output
with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    text = yaml.safe_dump(config, sort_keys=True, allow_unicode=True)
    atomic_write(out.config, lambda p: p.write_text(text, encoding="utf-8"))
    result = run.contrast_analyses(config)
    for note in result.tables["excluded"]["note"]:
        log.info("not used: %s", note)
    written = write_tables(result.tables, Path(out.manifest).parents[1] / "tables")
    derived = Path(out.effects).parent
    write_csv(result.derived.pop("effects"), out.effects)
    for name, df in result.derived.items():  # figure data: every digit
        write_csv(df, derived / f"{name}.csv", float_format=None)
    log.info("%d tables, %d figures to draw", len(result.tables), len(result.derived["figures"]))
    write_manifest(out.manifest, written, Path(out.manifest).parents[1])
