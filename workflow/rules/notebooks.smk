rule config_snapshot:
    """The validated config of this run, with defaults filled in (read by the notebooks)."""
    output:
        f"{RESULTS}/config.yaml",
    log:
        f"{RESULTS}/logs/config_snapshot.log",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        config=config,
    script:
        "../scripts/config_snapshot.py"


rule notebook:
    """Execute one notebook of notebooks/ with this run's results; write .ipynb and HTML."""
    input:
        source=f"{workflow.basedir}/notebooks/{{name}}.py",
        config=f"{RESULTS}/config.yaml",
        tables=expand(f"{RESULTS}/tables/{{table}}.csv", table=TABLES),
    output:
        ipynb=f"{RESULTS}/notebooks/{{name}}.ipynb",
        html=f"{RESULTS}/notebooks/{{name}}.html",
    log:
        f"{RESULTS}/logs/notebook_{{name}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/notebook_{{name}}.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/execute_notebook.py"
