rule forest_plot:
    """Forest plot of one outcome x week x measure (primary model)."""
    input:
        meta=f"{RESULTS}/tables/meta_analysis.csv",
        studies=f"{RESULTS}/tables/study_effects.csv",
    output:
        forest_files("forest"),
    log:
        f"{RESULTS}/logs/forest_{{outcome}}_week{{week}}_{{measure}}.log",
    wildcard_constraints:
        week=r"\d+",
        measure="MD|SMD",
    conda:
        "../../envs/hairtrial.yaml"
    script:
        "../scripts/forest_plot.py"
