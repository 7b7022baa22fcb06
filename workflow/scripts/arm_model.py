"""Snakemake script: the arm-based longitudinal model and its tables."""

from pathlib import Path

from hairtrial.analyses import run
from hairtrial.analyses.config import validate_config
from hairtrial.core.io import write_csv
from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.report.tables import write_tables

out = snakemake.output
with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    result = run.arm_analyses(config)
    for _, row in result.tables["arm_model_fit"].iterrows():
        log.info("%s: converged=%s %s", row["outcome"], row["converged"], row["notes"])
    results = Path(out.manifest).parents[1]
    written = write_tables(result.tables, results / "tables")
    write_csv(result.derived["arm_model_data"], out.data)
    write_manifest(out.manifest, written, results)
