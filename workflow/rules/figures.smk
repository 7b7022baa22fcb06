rule figures:
    """Every figure of the run, drawn from its tables and figure data (nothing is fitted)."""
    input:
        **(
            table_csvs(
                [
                    "meta_analysis",
                    "study_effects",
                    "robustness",
                    "meta_regression",
                    "leave_one_out",
                    "cumulative",
                    "arm_model_means",
                    "arm_model_contrasts",
                ]
            )
            if HAS_ARMS
            else {}
        ),
        **(
            {name: results_path(f"derived/{name}.csv") for name in FIGURE_DATA}
            if HAS_ARMS
            else {}
        ),
        **(
            {
                "figures": results_path("derived/figures.csv"),
                "arm_model_data": results_path("derived/arm_model_data.csv"),
            }
            if HAS_ARMS
            else {}
        ),
        **(table_csvs(BINARY_FIGURE_TABLES) if HAS_EVENTS else {}),
        **(
            {name: results_path(f"derived/{name}.csv") for name in BINARY_FIGURE_DATA}
            if HAS_EVENTS
            else {}
        ),
        **ipd_figure_data(),
        **table_csvs(EVIDENCE_TABLES),
        bayes_posterior=results_path("derived/bayes_posterior.csv"),
        evidence_figures=results_path("derived/evidence_figures.csv"),
        prisma=config["data"].get("prisma") or [],
        # its `source` says whether the figures are of synthetic data (marked so)
        studies=config["data"]["studies"],
        outcomes=config["data"].get("outcomes") or [],
    output:
        figures=in_report(
            directory(results_path("figures")),
            patterns=["{name}.png"],
            caption="../report/figure.rst",
            category="Figures",
        ),
        manifest=results_path("manifests/figures.csv"),
    log:
        results_path("logs/figures.log"),
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../envs/hairtrial.yaml"
    # one: it starts beside the notebooks job (on 2 cores) instead of after it, and draws
    # with up to two processes, sharing the second core while the notebooks run
    # (hairtrial.core.cores: bounded by the run's --cores and the CPUs the job may use)
    threads: 1
    params:
        figures=config["figures"],
        captions=CAPTIONS["figures"],
        rerun=OUTPUTS_KEY,  # see common.smk: the config and code it depends on
    script:
        "../scripts/figures.py"
