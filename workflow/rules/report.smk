rule html_report:
    """One self-contained HTML report of what this run made (its manifests)."""
    input:
        config="results/config.yaml",
        manifests=MANIFESTS,
    output:
        "results/report/report.html",
    log:
        "results/logs/html_report.log",
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/html_report.py"
