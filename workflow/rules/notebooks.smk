rule notebooks:
    """Execute the notebooks of notebooks/ with this run's results; write .ipynb and HTML."""
    input:
        sources=expand(f"{workflow.basedir}/notebooks/{{name}}.py", name=NOTEBOOKS),
        config="results/config.yaml",
        tables=expand(
            "results/tables/{name}.csv", name=CONTRAST_TABLES + ARM_MODEL_TABLES
        ),
        data="results/derived/arm_model_data.csv",
    output:
        ipynb=expand("results/notebooks/{name}.ipynb", name=NOTEBOOKS),
        html=expand("results/notebooks/{name}.html", name=NOTEBOOKS),
        manifest="results/manifests/notebooks.csv",
    log:
        "results/logs/notebooks.log",
    benchmark:
        "results/benchmarks/notebooks.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    threads: 2
    script:
        "../scripts/notebooks.py"
