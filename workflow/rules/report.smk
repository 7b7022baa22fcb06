rule html_report:
    """One self-contained HTML report of what this run made (its manifests)."""
    input:
        config=results_path("config.yaml"),
        manifests=MANIFESTS,
    output:
        results_path("report/report.html"),
    log:
        results_path("logs/html_report.log"),
    benchmark:
        results_path("benchmarks/html_report.tsv")
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/html_report.py"
