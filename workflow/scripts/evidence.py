"""Snakemake script: the Bayesian tables, the next trial and the GRADE summary of findings."""

from pathlib import Path

from hairtrial.analyses.config import validate_config
from hairtrial.analyses.evidence import EVIDENCE_DATA, evidence_analyses, read_evidence_inputs
from hairtrial.core.io import write_csv
from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.report.tables import write_tables

inp, out = snakemake.input, snakemake.output
with logged(snakemake.log[0]) as log:
    config = validate_config(snakemake.config)
    names = ("study_effects", "meta_analysis", "small_study", "binary_study_effects",
             "binary_meta_analysis")  # fmt: skip
    given = set(inp.keys())  # a Namedlist: `in` would test its values
    inputs = read_evidence_inputs(config, {n: inp[n] for n in names if n in given})
    result = evidence_analyses(config, inputs)
    root = Path(out.manifest).parents[1]
    written = write_tables(result.tables, root / "tables")
    for name in EVIDENCE_DATA:
        write_csv(result.derived[name], out[name], float_format=None)
    log.info("%d tables; %d figures to draw", len(result.tables),
             len(result.derived["evidence_figures"]))  # fmt: skip
    write_manifest(out.manifest, written, root)
