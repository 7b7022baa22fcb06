rule forest_plot:
    """Forest plot of one outcome x week x measure (primary model)."""
    input:
        meta=f"{RESULTS}/tables/meta_analysis.csv",
        studies=f"{RESULTS}/tables/study_effects.csv",
    output:
        figure_files("forest"),
    log:
        f"{RESULTS}/logs/forest_{{outcome}}_week{{week}}_{{measure}}.log",
    wildcard_constraints:
        week=r"\d+",
        measure="MD|SMD",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        figures=config["figures"],
    script:
        "../scripts/forest_plot.py"


rule robustness_plot:
    """Pooled estimate under every robustness scenario, one outcome x week x measure."""
    input:
        f"{RESULTS}/tables/robustness.csv",
    output:
        figure_files("robustness"),
    log:
        f"{RESULTS}/logs/robustness_{{outcome}}_week{{week}}_{{measure}}.log",
    wildcard_constraints:
        week=r"\d+",
        measure="MD|SMD",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        figures=config["figures"],
    script:
        "../scripts/robustness_plot.py"
