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
TABLES = ["meta_analysis", "study_effects", "data_quality", "excluded"]


def table_outputs():
    return expand(
        f"{RESULTS}/tables/{{name}}.{{ext}}", name=TABLES, ext=["csv", "md", "html"]
    )


def forest_files(kind):
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


def forest_outputs(wildcards):
    """Forest plots for every outcome x week x measure with a comparison."""
    import pandas as pd

    path = checkpoints.effect_sizes.get().output.effects
    eff = pd.read_csv(path)
    combos = eff[["outcome", "week", "measure"]].drop_duplicates()
    return [
        f"{RESULTS}/figures/forest_{o}_week{w}_{m}.{ext}"
        for o, w, m in combos.itertuples(index=False)
        for ext in config["figures"]["formats"]
    ]


def final_outputs(wildcards):
    return table_outputs() + forest_outputs(wildcards)
