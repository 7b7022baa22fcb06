if IPD:

    rule ipd:
        """Participant-level models of each trial with participant data, their correlations,
        ANOVA and the one-stage model across trials (only when data.participants is set).
        """
        input:
            participants=config["data"]["participants"],
            arms=config["data"].get("arms") or [],
            studies=config["data"]["studies"],
        output:
            tables(IPD_TABLES),
            data=expand(results_path("derived/{name}.csv"), name=IPD_DATA),
            manifest=results_path("manifests/ipd.csv"),
        log:
            results_path("logs/ipd.log"),
        conda:
            "../../envs/hairtrial.yaml"
        params:
            rerun=TABLES_KEY,  # see common.smk: the config and code it depends on
        script:
            "../scripts/ipd.py"
