"""Snakemake script: the self-contained HTML report of this run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial.config import validate_config  # noqa: E402
from hairtrial.report import build_report  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    out = Path(snakemake.output[0])  # noqa: F821
    build_report(out.parents[1], data_dir_or_config=config, out_path=out)
