"""Snakemake script: the arm-based longitudinal model and its tables."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial import arm_model  # noqa: E402
from hairtrial.config import validate_config  # noqa: E402
from hairtrial.runlog import logged  # noqa: E402
from hairtrial.tables import write_csv  # noqa: E402

with logged(snakemake.log[0]) as log:  # noqa: F821
    config = validate_config(snakemake.config)  # noqa: F821
    tables = arm_model.arm_model_tables(config)
    for _, row in tables["arm_model_fit"].iterrows():
        log.info("%s: converged=%s %s", row["outcome"], row["converged"], row["notes"])
    out = snakemake.output  # noqa: F821
    write_csv(tables["arm_model_coefficients"], out.coefficients)
    write_csv(tables["arm_model_contrasts"], out.contrasts)
    write_csv(tables["arm_model_variance"], out.variance)
    write_csv(tables["arm_model_fit"], out.fit)
    write_csv(tables["arm_model_means"], out.means)
    write_csv(tables["arm_model_data"], out.data)
