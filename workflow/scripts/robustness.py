"""Snakemake script: the robustness table (every scenario, every outcome x week x measure)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial import robustness  # noqa: E402
from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402
from hairtrial.tables import write_csv  # noqa: E402

with logged(snakemake.log[0]) as log:  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    table = robustness.robustness_table(config)
    log.info("%d scenario rows", len(table))
    write_csv(table, snakemake.output[0])  # noqa: F821
