rule analysis:
    """Every contrast-level table (effect sizes, meta-analyses, robustness, meta-regression,
    subgroups, leave-one-out, influence, cumulative, small-study effects), the figure
    data and the list of figures, in one process."""
    input:
        arms=config["data"]["arms"] or [],  # null: a review of binary outcomes only
        studies=config["data"]["studies"],
    output:
        tables(CONTRAST_TABLES),
        # the config snapshot: written by the binary job when there are no continuous outcomes
        **({"config": "results/config.yaml"} if HAS_ARMS else {}),
        effects="results/derived/effects.csv",
        figures="results/derived/figures.csv",
        figure_data=expand("results/derived/{name}.csv", name=FIGURE_DATA),
        manifest="results/manifests/analysis.csv",
    log:
        "results/logs/analysis.log",
    benchmark:
        "results/benchmarks/analysis.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/analysis.py"


rule arm_model:
    """Arm-based longitudinal model of mean change (all arms, all weeks) per outcome."""
    input:
        arms=config["data"]["arms"] or [],  # null: a review of binary outcomes only
        studies=config["data"]["studies"],
    output:
        tables(ARM_MODEL_TABLES),
        data="results/derived/arm_model_data.csv",
        manifest="results/manifests/arm_model.csv",
    log:
        "results/logs/arm_model.log",
    benchmark:
        "results/benchmarks/arm_model.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/arm_model.py"
