rule robustness:
    """Primary analysis re-run under every scenario (estimators, assumptions, trial sets)."""
    input:
        arms=config["data"]["arms"],
        studies=config["data"]["studies"],
    output:
        in_report(
            f"{RESULTS}/tables/robustness.csv",
            caption="../report/robustness_table.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/robustness.log",
    benchmark:
        f"{RESULTS}/benchmarks/robustness.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/robustness.py"
