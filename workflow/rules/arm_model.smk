rule arm_model:
    """Arm-based longitudinal model of mean change (all arms, all weeks) per outcome."""
    input:
        arms=config["data"]["arms"],
        studies=config["data"]["studies"],
    output:
        coefficients=f"{RESULTS}/tables/arm_model_coefficients.csv",
        contrasts=in_report(
            f"{RESULTS}/tables/arm_model_contrasts.csv",
            caption="../report/arm_model_contrasts.rst",
            category="Tables",
        ),
        variance=f"{RESULTS}/tables/arm_model_variance.csv",
        fit=f"{RESULTS}/tables/arm_model_fit.csv",
        means=f"{RESULTS}/tables/arm_model_means.csv",
        data=f"{RESULTS}/derived/arm_model_data.csv",
    log:
        f"{RESULTS}/logs/arm_model.log",
    benchmark:
        f"{RESULTS}/benchmarks/arm_model.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/arm_model.py"


rule trajectory_plot:
    """Model-based and observed mean change over weeks, one outcome."""
    input:
        means=f"{RESULTS}/tables/arm_model_means.csv",
        contrasts=f"{RESULTS}/tables/arm_model_contrasts.csv",
        data=f"{RESULTS}/derived/arm_model_data.csv",
    output:
        outcome_figure_files("trajectory"),
    log:
        f"{RESULTS}/logs/trajectory_{{outcome}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/trajectory_{{outcome}}.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    params:
        figures=config["figures"],
    script:
        "../scripts/trajectory_plot.py"
