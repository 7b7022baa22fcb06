# Helpers shared by the rules: config validation, input validation at parse
# time (so a malformed input stops the run before any output is touched), and
# the list of final outputs.
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from hairtrial import validate as data_validation  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml")

try:
    data_validation.read_inputs(config["data"]["arms"], config["data"]["studies"])
except data_validation.DataValidationError as err:
    raise WorkflowError(
        f"Input data rejected; nothing was run or written.\n{err}"
    ) from None

RESULTS = "results"
in_report = report  # the bare name cannot start a line in a .smk file
TABLES = ["meta_analysis", "study_effects", "data_quality", "excluded", "robustness"]


def table_outputs():
    return expand(
        f"{RESULTS}/tables/{{name}}.{{ext}}",
        name=TABLES,
        ext=["csv", "md", "html", "tex"],
    )


def figure_files(kind):
    """Output files of one figure in every configured format; the PNG goes in the report."""
    stem = f"{RESULTS}/figures/{kind}_{{outcome}}_week{{week}}_{{measure}}"
    caption = f"../report/{kind}.rst"
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


def figure_outputs(wildcards):
    """Figures for every outcome x week x measure with a comparison.

    Forest plots for every one; robustness figures where at least two trials
    are pooled (with one trial no scenario can change the answer).
    """
    import pandas as pd

    path = checkpoints.effect_sizes.get().output.effects
    eff = pd.read_csv(path)
    k = eff.groupby(["outcome", "week", "measure"]).size().reset_index(name="k")
    wanted = {"forest": k, "robustness": k[k["k"] >= 2]}
    return [
        f"{RESULTS}/figures/{kind}_{o}_week{w}_{m}.{ext}"
        for kind, combos in wanted.items()
        for o, w, m in combos[["outcome", "week", "measure"]].itertuples(index=False)
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
    return table_outputs() + figure_outputs(wildcards) + notebook_outputs()
