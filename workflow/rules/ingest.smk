checkpoint effect_sizes:
    """Validate the inputs, derive n / mean change / SD per arm, build study comparisons."""
    input:
        arms=config["data"]["arms"],
        studies=config["data"]["studies"],
    output:
        effects=f"{RESULTS}/derived/effects.csv",
        quality=report(
            f"{RESULTS}/tables/data_quality.csv",
            caption="../report/data_quality.rst",
            category="Tables",
        ),
        excluded=f"{RESULTS}/tables/excluded.csv",
    log:
        f"{RESULTS}/logs/effect_sizes.log",
    benchmark:
        f"{RESULTS}/benchmarks/effect_sizes.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/effect_sizes.py"
