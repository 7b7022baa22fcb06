rule binary:
    """Binary outcomes (responders, adverse events): 2x2 tables, trial effects, every
    pooled model, robustness, absolute effects, and the list of binary figures."""
    input:
        events=config["data"].get("events") or [],
        outcomes=config["data"].get("outcomes") or [],
        studies=config["data"]["studies"],
    output:
        tables(BINARY_TABLES),
        **({} if HAS_ARMS else {"config": results_path("config.yaml")}),
        figure_data=expand(results_path("derived/{name}.csv"), name=BINARY_FIGURE_DATA),
        manifest=results_path("manifests/binary.csv"),
    log:
        results_path("logs/binary.log"),
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../envs/hairtrial.yaml"
    params:
        rerun=TABLES_KEY,  # see common.smk: the config and code it depends on
    script:
        "../scripts/binary.py"
