rule meta_analysis:
    """Pool each outcome x week x measure with every tau2 estimator and CI method."""
    input:
        effects=f"{RESULTS}/derived/effects.csv",
    output:
        meta=report(
            f"{RESULTS}/tables/meta_analysis.csv",
            caption="../report/meta_analysis.rst",
            category="Tables",
        ),
        studies=f"{RESULTS}/tables/study_effects.csv",
    log:
        f"{RESULTS}/logs/meta_analysis.log",
    benchmark:
        f"{RESULTS}/benchmarks/meta_analysis.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/meta_analysis.py"
