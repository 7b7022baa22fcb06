rule html_report:
    """One self-contained HTML report of what this run made (its manifests)."""
    input:
        config=results_path("config.yaml"),
        manifests=MANIFESTS,
    output:
        results_path("report/report.html"),
    log:
        results_path("logs/html_report.log"),
    conda:
        "../../envs/hairtrial.yaml"
    params:
        rerun=OUTPUTS_KEY,  # see common.smk: the config and code it depends on
    script:
        "../scripts/html_report.py"
