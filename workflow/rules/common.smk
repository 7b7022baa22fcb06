# Helpers shared by the rules: config validation, input validation at parse
# time (so a malformed input stops the run before any output is touched), and
# the list of final outputs.
from pathlib import Path

from snakemake.utils import validate

from hairtrial.data import validate as data_validation

validate(config, schema="../schemas/config.schema.yaml")

try:
    data_validation.read_inputs(config["data"]["arms"], config["data"]["studies"])
    if config["data"].get("prisma"):
        import warnings

        from hairtrial.data.prisma import read_prisma

        with (
            warnings.catch_warnings()
        ):  # arithmetic warnings go in the diagram's footer
            warnings.simplefilter("ignore")
            read_prisma(config["data"]["prisma"])
except data_validation.DataValidationError as err:
    raise WorkflowError(
        f"Input data rejected; nothing was run or written.\n{err}"
    ) from None

RESULTS = "results"
in_report = report  # the bare name cannot start a line in a .smk file
TABLES = [
    "meta_analysis",
    "study_effects",
    "data_quality",
    "excluded",
    "robustness",
    "meta_regression",
    "subgroups",
    "leave_one_out",
    "influence",
    "cumulative",
    "small_study",
    "arm_model_coefficients",
    "arm_model_contrasts",
    "arm_model_variance",
    "arm_model_fit",
    "arm_model_means",
]


def table_outputs():
    return expand(
        f"{RESULTS}/tables/{{name}}.{{ext}}",
        name=TABLES,
        ext=["csv", "md", "html", "tex"],
    )


def figure_files(kind, moderator=False, caption=None):
    """Output files of one figure in every configured format; the PNG goes in the report.

    ``moderator=True`` adds a ``_{moderator}`` wildcard to the name; ``caption`` defaults
    to ``workflow/report/{kind}.rst``.
    """
    stem = f"{RESULTS}/figures/{kind}_{{outcome}}_week{{week}}_{{measure}}"
    if moderator:
        stem += "_{moderator}"
    caption = caption or f"../report/{kind}.rst"
    sub = kind.replace("_", " ").capitalize()
    files = [f"{stem}.{ext}" for ext in config["figures"]["formats"]]
    return [
        (
            in_report(f, caption=caption, category="Figures", subcategory=sub)
            if f.endswith(".png")
            else f
        )
        for f in files
    ]


def outcome_figure_files(kind):
    """Output files of a per-outcome figure (``{kind}_{outcome}``) in every format."""
    stem = f"{RESULTS}/figures/{kind}_{{outcome}}"
    files = [f"{stem}.{ext}" for ext in config["figures"]["formats"]]
    sub = kind.replace("_", " ").capitalize()
    return [
        (
            in_report(
                f, caption=f"../report/{kind}.rst", category="Figures", subcategory=sub
            )
            if f.endswith(".png")
            else f
        )
        for f in files
    ]


def outcome_week_figure_files(kind):
    """Output files of a per-outcome-and-week figure (``{kind}_{outcome}_week{week}``)."""
    stem = f"{RESULTS}/figures/{kind}_{{outcome}}_week{{week}}"
    files = [f"{stem}.{ext}" for ext in config["figures"]["formats"]]
    return [
        (
            in_report(f, caption=f"../report/{kind}.rst", category="Figures")
            if f.endswith(".png")
            else f
        )
        for f in files
    ]


def figure_outputs(wildcards):
    """Figures for every outcome x week x measure with a comparison.

    Forest plots for every one; robustness figures where at least two trials
    are pooled (with one trial no scenario can change the answer); the
    sensitivity figures that are computable for the data
    (hairtrial.analyses.sensitivity.figure_targets).
    """
    import pandas as pd

    from hairtrial.analyses import sensitivity
    from hairtrial.analyses.config import validate_config

    path = checkpoints.effect_sizes.get().output.effects
    eff = pd.read_csv(path, keep_default_na=False, na_values=[""])
    k = eff.groupby(["outcome", "week", "measure"]).size().reset_index(name="k")
    wanted = {"forest": k, "robustness": k[k["k"] >= 2]}
    stems = [
        f"{kind}_{o}_week{w}_{m}"
        for kind, combos in wanted.items()
        for o, w, m in combos[["outcome", "week", "measure"]].itertuples(index=False)
    ]
    studies = data_validation.read_studies(config["data"]["studies"])
    for kind, o, w, m, mod in sensitivity.figure_targets(
        eff, studies, validate_config(config)
    ):
        stems.append(f"{kind}_{o}_week{w}_{m}" + (f"_{mod}" if mod else ""))
    # trajectory of the arm model: one per outcome with a comparison
    stems += [f"trajectory_{o}" for o in sorted(eff["outcome"].unique())]
    md = eff[eff["measure"] == "MD"][["outcome", "week"]].drop_duplicates()
    stems += [f"labbe_{o}_week{w}" for o, w in md.itertuples(index=False)]
    if config["data"].get("prisma"):
        stems.append("prisma")
    return [
        f"{RESULTS}/figures/{stem}.{ext}"
        for stem in stems
        for ext in config["figures"]["formats"]
    ]


NOTEBOOKS = sorted(
    p.stem for p in Path(workflow.basedir, "notebooks").glob("[0-9]*.py")
)


def notebook_outputs():
    return expand(
        f"{RESULTS}/notebooks/{{name}}.{{ext}}", name=NOTEBOOKS, ext=["ipynb", "html"]
    )


def final_outputs(wildcards):
    return (
        table_outputs()
        + figure_outputs(wildcards)
        + notebook_outputs()
        + [f"{RESULTS}/report/report.html"]
    )
