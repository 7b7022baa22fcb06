rule notebooks:
    """Execute the notebooks of notebooks/ with this run's results; write .ipynb and HTML."""
    input:
        sources=expand(f"{workflow.basedir}/notebooks/{{name}}.py", name=NOTEBOOKS),
        config=results_path("config.yaml"),
        tables=expand(
            results_path("tables/{name}.csv"), name=CONTRAST_TABLES + ARM_MODEL_TABLES
        ),
        data=results_path("derived/arm_model_data.csv"),
        ipd=ipd_targets(),
    output:
        ipynb=expand(results_path("notebooks/{name}.ipynb"), name=NOTEBOOKS),
        html=expand(results_path("notebooks/{name}.html"), name=NOTEBOOKS),
        manifest=results_path("manifests/notebooks.csv"),
    log:
        results_path("logs/notebooks.log"),
    conda:
        "../../envs/hairtrial.yaml"
    # one: the kernels run one after the other beside the table jobs (on 2 cores, with two
    # threads the job held both and ran alone); not a share of --cores, which a cluster run
    # (the Slurm profile) does not set
    threads: 1
    params:
        rerun=OUTPUTS_KEY,  # see common.smk: the config and code it depends on
    script:
        "../scripts/notebooks.py"
