rule evidence:
    """How sure can we be: Bayesian random effects (every outcome x week x measure with two
    or more trials), the prior sensitivity, the next trial and the GRADE summary of findings,
    from the analysis job's tables."""
    input:
        **(
            table_csvs(["study_effects", "meta_analysis", "small_study"])
            if HAS_ARMS
            else {}
        ),
        **(
            table_csvs(["binary_study_effects", "binary_meta_analysis"])
            if HAS_EVENTS
            else {}
        ),
        studies=config["data"]["studies"],
        outcomes=config["data"].get("outcomes") or [],
        grade=optional_input(config["data"].get("grade")),
    output:
        tables(EVIDENCE_TABLES),
        bayes_posterior=results_path("derived/bayes_posterior.csv"),
        evidence_figures=results_path("derived/evidence_figures.csv"),
        manifest=results_path("manifests/evidence.csv"),
    log:
        results_path("logs/evidence.log"),
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../envs/hairtrial.yaml"
    params:
        rerun=TABLES_KEY,  # see common.smk: the config and code it depends on
    script:
        "../scripts/evidence.py"
