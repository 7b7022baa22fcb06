rule html_report:
    """One self-contained HTML report of the run (methods, evidence, every table and figure)."""
    input:
        config=f"{RESULTS}/config.yaml",
        tables=expand(f"{RESULTS}/tables/{{name}}.csv", name=TABLES),
        figures=figure_outputs,
        notebooks=notebook_outputs(),
    output:
        f"{RESULTS}/report/report.html",
    log:
        f"{RESULTS}/logs/html_report.log",
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/html_report.py"
