"""Snakemake script: every figure of the run, drawn from its tables and figure data.

An unchanged redraw (same inputs, config, code and libraries) copies the figures kept
from the last drawing (hairtrial.report.figure_cache) instead of drawing them again.
"""

from pathlib import Path

from hairtrial.core.cores import FIGURE_PROCESSES, worker_processes
from hairtrial.core.manifest import write_manifest
from hairtrial.core.runlog import logged
from hairtrial.report.figure_cache import cached_drawing, drawing_key

inp, out = snakemake.input, snakemake.output
# beside Snakemake's own metadata; one per figure folder (analysis)
CACHE = Path(".snakemake", "hairtrial-figures", Path(out.figures).as_posix().replace("/", "_"))


def draw():
    from hairtrial.analyses.config import validate_config
    from hairtrial.analyses.ipd import synthetic_label
    from hairtrial.report.figures import FIGURE_DATA, FIGURE_TABLES, draw_figures

    config = validate_config(snakemake.config)
    names = inp.keys()  # a config without continuous or without binary outcomes has fewer
    tables = {name: inp[name] for name in FIGURE_TABLES if name in names}
    data = {name: inp[name] for name in FIGURE_DATA if name in names}
    ipd_data = ("ipd_trajectories", "ipd_arm_means")  # with participant-level data only
    data.update({name: inp[name] for name in ipd_data if name in names})
    label = synthetic_label(config)  # "SYNTHETIC DATA" across every figure; None: real data
    return draw_figures(tables, data, config, out.figures, processes=processes, label=label)


with logged(snakemake.log[0]) as log:
    processes = worker_processes(FIGURE_PROCESSES)  # see the rule's `threads`
    key = drawing_key({str(path): path for path in inp}, snakemake.config)
    written, kept = cached_drawing(key, CACHE, out.figures, draw)
    how = "unchanged: copied from the last drawing" if kept else f"{processes} processes"
    log.info("%d files (%s)", len(written), how)
    write_manifest(out.manifest, written, Path(out.manifest).parents[1])
