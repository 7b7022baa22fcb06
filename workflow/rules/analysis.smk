rule analysis:
    """Every contrast-level table (effect sizes, meta-analyses, robustness, meta-regression,
    subgroups, leave-one-out, influence, cumulative, small-study effects), the figure
    data and the list of figures, in one process."""
    input:
        arms=config["data"]["arms"] or [],  # null: a review of binary outcomes only
        studies=config["data"]["studies"],
        participants=config["data"].get("participants") or [],
    output:
        tables(CONTRAST_TABLES),
        # the config snapshot: written by the binary job when there are no continuous outcomes
        **({"config": results_path("config.yaml")} if HAS_ARMS else {}),
        effects=results_path("derived/effects.csv"),
        figures=results_path("derived/figures.csv"),
        figure_data=expand(results_path("derived/{name}.csv"), name=FIGURE_DATA),
        manifest=results_path("manifests/analysis.csv"),
    log:
        results_path("logs/analysis.log"),
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../envs/hairtrial.yaml"
    params:
        rerun=TABLES_KEY,  # see common.smk: the config and code it depends on
    script:
        "../scripts/analysis.py"


rule arm_model:
    """Arm-based longitudinal model of mean change (all arms, all weeks) per outcome."""
    input:
        arms=config["data"]["arms"] or [],  # null: a review of binary outcomes only
        studies=config["data"]["studies"],
        participants=config["data"].get("participants") or [],
    output:
        tables(ARM_MODEL_TABLES),
        data=results_path("derived/arm_model_data.csv"),
        manifest=results_path("manifests/arm_model.csv"),
    log:
        results_path("logs/arm_model.log"),
    conda:
        "../../envs/hairtrial.yaml"
    params:
        rerun=TABLES_KEY,  # see common.smk: the config and code it depends on
    script:
        "../scripts/arm_model.py"
