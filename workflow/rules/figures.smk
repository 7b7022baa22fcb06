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


rule labbe_plot:
    """L'Abbé-style plot: control-arm against experimental-arm change, one outcome x week."""
    input:
        meta=f"{RESULTS}/tables/meta_analysis.csv",
        studies=f"{RESULTS}/tables/study_effects.csv",
    output:
        outcome_week_figure_files("labbe"),
    log:
        f"{RESULTS}/logs/labbe_{{outcome}}_week{{week}}.log",
    wildcard_constraints:
        week=r"\d+",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        figures=config["figures"],
    script:
        "../scripts/labbe_plot.py"


rule prisma_plot:
    """PRISMA 2020 flow diagram from the counts file the user edits."""
    input:
        config["data"]["prisma"],
    output:
        [f"{RESULTS}/figures/prisma.{ext}" for ext in config["figures"]["formats"]],
    log:
        f"{RESULTS}/logs/prisma.log",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        figures=config["figures"],
    script:
        "../scripts/prisma_plot.py"
