# hairtrial: arm-level trial data -> effect sizes -> meta-analysis -> tables, figures.
# Run with `make run` (or `snakemake --cores 2`); see README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/binary.smk"
include: "workflow/rules/ipd.smk"
include: "workflow/rules/evidence.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/notebooks.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/simulation.smk"


rule all:
    default_target: True
    input:
        MANIFESTS,
        results_path("report/report.html"),
