# Issue 4: how robust is the answer? Meta-regression, subgroups, influence and
# small-study effects (hairtrial.analyses.sensitivity). Tables for every outcome x week x measure
# (notes say when k is too small); figures only where computable (common.smk).


rule meta_regression:
    """Meta-regression on each configured moderator set (primary model, permutation test)."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        in_report(
            f"{RESULTS}/tables/meta_regression.csv",
            caption="../report/sensitivity_meta_regression_table.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/meta_regression.log",
    benchmark:
        f"{RESULTS}/benchmarks/meta_regression.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    params:
        table="meta_regression",
        model=config["meta_analysis"],
        meta_regression=config["meta_regression"],
    script:
        "../scripts/sensitivity_table.py"


rule subgroups:
    """Subgroup analyses by categorical study characteristics (separate and common tau2)."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        in_report(
            f"{RESULTS}/tables/subgroups.csv",
            caption="../report/sensitivity_subgroups_table.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/subgroups.log",
    benchmark:
        f"{RESULTS}/benchmarks/subgroups.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    params:
        table="subgroups",
        model=config["meta_analysis"],
        subgroups=config["subgroups"],
    script:
        "../scripts/sensitivity_table.py"


rule leave_one_out:
    """The primary model refitted without each trial in turn."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        in_report(
            f"{RESULTS}/tables/leave_one_out.csv",
            caption="../report/sensitivity_leave_one_out_table.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/leave_one_out.log",
    benchmark:
        f"{RESULTS}/benchmarks/leave_one_out.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    params:
        table="leave_one_out",
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_table.py"


rule influence:
    """Case-deletion influence diagnostics of the primary model (metafor's flag)."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        in_report(
            f"{RESULTS}/tables/influence.csv",
            caption="../report/sensitivity_influence_table.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/influence.log",
    benchmark:
        f"{RESULTS}/benchmarks/influence.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    params:
        table="influence",
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_table.py"


rule cumulative:
    """Cumulative meta-analysis by publication year."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        in_report(
            f"{RESULTS}/tables/cumulative.csv",
            caption="../report/sensitivity_cumulative_table.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/cumulative.log",
    benchmark:
        f"{RESULTS}/benchmarks/cumulative.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    params:
        table="cumulative",
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_table.py"


rule small_study:
    """Small-study effects: Egger and Begg tests, trim-and-fill (with k < 10 flagged)."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        in_report(
            f"{RESULTS}/tables/small_study.csv",
            caption="../report/sensitivity_small_study_table.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/small_study.log",
    benchmark:
        f"{RESULTS}/benchmarks/small_study.tsv"
    conda:
        "../../envs/hairtrial.yaml"
    params:
        table="small_study",
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_table.py"


rule bubble_plot:
    """Bubble plot of a fitted meta-regression on one numeric moderator."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        figure_files(
            "bubble", moderator=True, caption="../report/sensitivity_bubble.rst"
        ),
    log:
        f"{RESULTS}/logs/bubble_{{outcome}}_week{{week}}_{{measure}}_{{moderator}}.log",
    wildcard_constraints:
        outcome=r"[a-z][a-z0-9_]*",
        week=r"\d+",
        measure="MD|SMD",
        moderator=r"[a-z][a-z0-9_]*",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        kind="bubble",
        figures=config["figures"],
        model=config["meta_analysis"],
        meta_regression=config["meta_regression"],
    script:
        "../scripts/sensitivity_figure.py"


rule subgroups_plot:
    """Forest plot by subgroup of one categorical moderator."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        figure_files(
            "subgroups", moderator=True, caption="../report/sensitivity_subgroups.rst"
        ),
    log:
        f"{RESULTS}/logs/subgroups_{{outcome}}_week{{week}}_{{measure}}_{{moderator}}.log",
    wildcard_constraints:
        outcome=r"[a-z][a-z0-9_]*",
        week=r"\d+",
        measure="MD|SMD",
        moderator=r"[a-z][a-z0-9_]*",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        kind="subgroups",
        figures=config["figures"],
        model=config["meta_analysis"],
        subgroups=config["subgroups"],
    script:
        "../scripts/sensitivity_figure.py"


rule leave_one_out_plot:
    """Leave-one-out forest plot."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        figure_files(
            "leave_one_out",
            moderator=False,
            caption="../report/sensitivity_leave_one_out.rst",
        ),
    log:
        f"{RESULTS}/logs/leave_one_out_{{outcome}}_week{{week}}_{{measure}}.log",
    wildcard_constraints:
        outcome=r"[a-z][a-z0-9_]*",
        week=r"\d+",
        measure="MD|SMD",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        kind="leave_one_out",
        figures=config["figures"],
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_figure.py"


rule cumulative_plot:
    """Cumulative meta-analysis by year."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        figure_files(
            "cumulative",
            moderator=False,
            caption="../report/sensitivity_cumulative.rst",
        ),
    log:
        f"{RESULTS}/logs/cumulative_{{outcome}}_week{{week}}_{{measure}}.log",
    wildcard_constraints:
        outcome=r"[a-z][a-z0-9_]*",
        week=r"\d+",
        measure="MD|SMD",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        kind="cumulative",
        figures=config["figures"],
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_figure.py"


rule baujat_plot:
    """Baujat plot: contribution to heterogeneity against influence."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        figure_files(
            "baujat", moderator=False, caption="../report/sensitivity_baujat.rst"
        ),
    log:
        f"{RESULTS}/logs/baujat_{{outcome}}_week{{week}}_{{measure}}.log",
    wildcard_constraints:
        outcome=r"[a-z][a-z0-9_]*",
        week=r"\d+",
        measure="MD|SMD",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        kind="baujat",
        figures=config["figures"],
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_figure.py"


rule influence_plot:
    """Influence diagnostics (metafor's eight panels)."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        figure_files(
            "influence", moderator=False, caption="../report/sensitivity_influence.rst"
        ),
    log:
        f"{RESULTS}/logs/influence_{{outcome}}_week{{week}}_{{measure}}.log",
    wildcard_constraints:
        outcome=r"[a-z][a-z0-9_]*",
        week=r"\d+",
        measure="MD|SMD",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        kind="influence",
        figures=config["figures"],
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_figure.py"


rule funnel_plot:
    """Contour-enhanced funnel plot with trim-and-fill and Egger's line."""
    input:
        effects=f"{RESULTS}/tables/study_effects.csv",
        studies=config["data"]["studies"],
    output:
        figure_files(
            "funnel", moderator=False, caption="../report/sensitivity_funnel.rst"
        ),
    log:
        f"{RESULTS}/logs/funnel_{{outcome}}_week{{week}}_{{measure}}.log",
    wildcard_constraints:
        outcome=r"[a-z][a-z0-9_]*",
        week=r"\d+",
        measure="MD|SMD",
    conda:
        "../../envs/hairtrial.yaml"
    params:
        kind="funnel",
        figures=config["figures"],
        model=config["meta_analysis"],
    script:
        "../scripts/sensitivity_figure.py"
