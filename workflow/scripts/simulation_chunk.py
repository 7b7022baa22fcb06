"""Snakemake script: one job of the simulation study (one scenario, one chunk of replicates)."""

import os
from pathlib import Path

from threadpoolctl import threadpool_limits

from hairtrial.analyses.simulation import load_study, run_job, write_sums
from hairtrial.core.runlog import logged

out, wc = snakemake.output, snakemake.wildcards
with logged(snakemake.log[0]) as log, threadpool_limits(1):
    plan = load_study(snakemake.input.plan)
    sums = run_job(plan, wc.scenario, int(wc.chunk))
    Path(out.sums).parent.mkdir(parents=True, exist_ok=True)
    write_sums(sums, out.sums)
    # where the job ran: the Slurm job id, or "none" outside Slurm (not part of the results)
    job = os.environ.get("SLURM_JOB_ID", "none")
    Path(out.job).parent.mkdir(parents=True, exist_ok=True)
    Path(out.job).write_text(job + "\n", encoding="utf-8")
    log.info(
        "scenario %s chunk %s: %d methods; SLURM_JOB_ID=%s", wc.scenario, wc.chunk, len(sums), job
    )
