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
    benchmark:
        results_path("benchmarks/notebooks.tsv")
    conda:
        "../../envs/hairtrial.yaml"
    # half the cores, at least one: on 2 cores the four kernels run one after the other
    # beside the table jobs (the figure job waits for both cores); on more, two or more at once
    threads: max(1, workflow.cores // 2)
    params:
        rerun=OUTPUTS_KEY,  # see common.smk: the config and code it depends on
    script:
        "../scripts/notebooks.py"
