"""Snakemake script: the arm-based longitudinal model and its tables."""

from hairtrial.analyses import arm_model
from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.core.io import write_csv

with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    tables = arm_model.arm_model_tables(config)
    for _, row in tables["arm_model_fit"].iterrows():
        log.info("%s: converged=%s %s", row["outcome"], row["converged"], row["notes"])
    out = snakemake.output
    write_csv(tables["arm_model_coefficients"], out.coefficients)
    write_csv(tables["arm_model_contrasts"], out.contrasts)
    write_csv(tables["arm_model_variance"], out.variance)
    write_csv(tables["arm_model_fit"], out.fit)
    write_csv(tables["arm_model_means"], out.means)
    write_csv(tables["arm_model_data"], out.data)
