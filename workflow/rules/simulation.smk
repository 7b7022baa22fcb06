# The simulation study (issue 13): `make simulate` (target `simulation`); not part of `all`.
# One job per scenario and chunk of replicates; the plan is config["simulation_study"].
# The plan and its jobs: common.smk (SIM_PLAN_FILE, SIM_JOBS, simulation_sums).


# aggregation and report only read small files: on a cluster they run where Snakemake runs
localrules:
    simulation_performance,
    simulation_report,


rule simulation:
    """The whole study: performance table, figures and report."""
    input:
        f"{SIM}/performance.csv",
        f"{SIM}/report.md",


rule simulation_chunk:
    """Simulate and analyse one chunk of one scenario; the sums the measures need."""
    input:
        plan=SIM_PLAN_FILE,
    output:
        sums=f"{SIM}/chunks/{{scenario}}/{{chunk}}.csv",
        job=f"{SIM}/jobs/{{scenario}}/{{chunk}}.txt",
    log:
        "results/logs/simulation/{scenario}_{chunk}.log",
    wildcard_constraints:
        chunk=r"\d+",
    conda:
        "../../envs/hairtrial.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=CODE_KEY,  # see common.smk: rerun when the library changes
    script:
        "../scripts/simulation_chunk.py"


rule simulation_performance:
    """Performance measures with Monte Carlo SEs, from every job's sums."""
    input:
        plan=SIM_PLAN_FILE,
        sums=simulation_sums,
    output:
        table=f"{SIM}/performance.csv",
    log:
        "results/logs/simulation/performance.log",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        code=CODE_KEY,  # see common.smk: rerun when the library changes
    script:
        "../scripts/simulation_performance.py"


rule simulation_report:
    """Figures (coverage against k; width against coverage) and the study's report."""
    input:
        plan=SIM_PLAN_FILE,
        table=f"{SIM}/performance.csv",
    output:
        report=f"{SIM}/report.md",
        coverage=f"{SIM}/coverage_by_k.png",
        width=f"{SIM}/width_vs_coverage.png",
    log:
        "results/logs/simulation/report.log",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        code=CODE_KEY,  # see common.smk: rerun when the library changes
    script:
        "../scripts/simulation_report.py"
