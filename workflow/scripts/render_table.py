"""Snakemake script: CSV table -> Markdown, HTML and LaTeX renderings."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))  # noqa: F821

from hairtrial.runlog import logged  # noqa: E402
from hairtrial.tables import write_renderings  # noqa: E402

with logged(snakemake.log[0]):  # noqa: F821
    write_renderings(
        snakemake.input[0],  # noqa: F821
        snakemake.output.md,  # noqa: F821
        snakemake.output.html,  # noqa: F821
        snakemake.output.tex,  # noqa: F821
    )
