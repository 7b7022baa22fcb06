"""Snakemake script: the simulation study's performance table from the jobs' sums."""

from hairtrial.analyses.simulation import load_study, performance, read_sums
from hairtrial.core.io import write_csv
from hairtrial.core.runlog import logged

with logged(snakemake.log[0]) as log:
    plan = load_study(snakemake.input.plan)
    perf = performance(read_sums(list(snakemake.input.sums)), plan)
    write_csv(perf, snakemake.output.table, float_format=None)
    log.info("%d rows", len(perf))
