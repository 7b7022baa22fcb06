"""Figures and notebooks of a run on synthetic data say so (issue 12); those of real data do not.

The run's decision (:func:`hairtrial.analyses.ipd.synthetic_label`: do the studies analysed
include one made by the project's simulator?) is passed to the figure job as plain data; the
figure job marks every figure it draws (:func:`hairtrial.report.figures.draw_figures`,
:func:`hairtrial.plots.style.watermark`) in every format.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from hairtrial.analyses import ipd
from hairtrial.analyses.config import load_config
from hairtrial.core import vocab
from hairtrial.plots import style
from hairtrial.report import figures

ROOT = Path(__file__).resolve().parents[1]
LABEL = "SYNTHETIC DATA"
FORMATS = ("png", "svg", "pdf")
TWO_PROCESSES = "two processes"


def _config(path: str) -> dict:
    """A config with data paths valid from any working directory."""
    cfg = load_config(ROOT / path)
    cfg["data"] = {k: v if v is None else str(ROOT / v) for k, v in cfg["data"].items()}
    return cfg


# ---------------------------------------------------------------------------------------------
# the decision: made from the studies the run analyses
# ---------------------------------------------------------------------------------------------
def test_the_example_is_labelled_synthetic_and_the_default_analysis_is_not(default_config):
    example = _config("config/examples/ipd.yaml")
    assert ipd.synthetic_label(example) == LABEL
    notice = ipd.synthetic_notice(example)
    assert notice is not None and notice.startswith("**SYNTHETIC DATA.**")
    assert "hairtrial.data.simulate seed=20261201" in notice  # the studies' source, named
    assert ipd.synthetic_label(default_config) is None
    assert ipd.synthetic_notice(default_config) is None


def test_one_synthetic_study_analysed_labels_the_run(default_config, tmp_path):
    """The label follows the studies the selection keeps (selection.studies), not the file."""
    studies = pd.read_csv(default_config["data"]["studies"], keep_default_na=False, dtype=str)
    primary = studies.index[studies["primary"] == "yes"][0]
    secondary = studies.index[studies["primary"] != "yes"][0]

    def config_with(row: int, selection: str) -> dict:
        edited = studies.copy()
        edited.loc[row, "source"] = "hairtrial.data.simulate seed=7"
        path = tmp_path / f"studies_{row}_{selection}.csv"
        edited.to_csv(path, index=False)
        return {**default_config, "data": {**default_config["data"], "studies": str(path)},
                "selection": {"studies": selection}}  # fmt: skip

    assert ipd.synthetic_label(config_with(primary, "primary")) == LABEL
    assert ipd.synthetic_label(config_with(secondary, "all")) == LABEL
    assert ipd.synthetic_label(config_with(secondary, "primary")) is None  # not analysed
    assert ipd.synthetic_sources(config_with(secondary, "all")) == [
        "hairtrial.data.simulate seed=7"
    ]


# ---------------------------------------------------------------------------------------------
# the figures: every one marked (in every format), or none
# ---------------------------------------------------------------------------------------------
def _marks(path: Path) -> list[str]:
    """Where a saved figure file carries the label."""
    data = path.read_bytes()
    found = []
    if path.suffix == ".png":
        if Image.open(io.BytesIO(data)).info.get("Description") == LABEL:
            found.append("png Description")
    elif path.suffix == ".svg":
        if b'<g id="hairtrial-watermark">' in data:
            found.append("svg letters")
        if b"<dc:description>" + LABEL.encode() in data:
            found.append("svg description")
    elif b"/Subject (" + LABEL.encode() + b")" in data:
        found.append("pdf Subject")
    return found


@pytest.fixture(scope="module")
def drawn(tmp_path_factory, default_results):
    """The forest, L'Abbé and PRISMA figures of the default data, drawn by draw_figures without
    and with the label (one folder each)."""
    *_, meta_table, study_effects = default_results
    config = _config("config/config.yaml")
    config["figures"] = {"formats": list(FORMATS), "dpi": 60}
    work = tmp_path_factory.mktemp("label")
    meta_table.to_csv(work / "meta_analysis.csv", index=False)
    study_effects.to_csv(work / "study_effects.csv", index=False)
    rows = [
        {"stem": "forest_MD", "kind": "forest", "outcome": "hair_density", "week": 12,
         "measure": "MD", "moderator": ""},
        {"stem": "labbe", "kind": "labbe", "outcome": "hair_density", "week": 12,
         "measure": "", "moderator": ""},
        {"stem": "prisma", "kind": "prisma", "outcome": "", "week": "", "measure": "",
         "moderator": ""},
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(work / "figures.csv", index=False)
    tables = {name: work / f"{name}.csv" for name in ("meta_analysis", "study_effects")}
    out = {}
    for label in (None, LABEL):
        folder = work / ("synthetic" if label else "real")
        written = figures.draw_figures(
            tables, {"figures": work / "figures.csv"}, config, folder, label=label
        )
        out[label] = written
    # the labelled figures again with two processes: the first drawn by the job's process,
    # the others by two workers forked from it (draw_figures)
    out[TWO_PROCESSES] = figures.draw_figures(
        tables, {"figures": work / "figures.csv"}, config, work / "two", label=LABEL, processes=2
    )
    return [row["stem"] for row in rows], out


def test_every_figure_of_a_synthetic_run_is_marked_in_every_format(drawn):
    stems, out = drawn
    files = out[LABEL]
    assert sorted(p.name for p in files) == sorted(f"{s}.{f}" for s in stems for f in FORMATS)
    for path in files:
        want = {
            ".png": ["png Description"],
            ".svg": ["svg letters", "svg description"],
            ".pdf": ["pdf Subject"],
        }[path.suffix]
        assert _marks(path) == want, path.name


def test_the_figures_do_not_depend_on_the_processes_that_draw_them(drawn):
    """Drawn by one process or by two workers forked after the job's process drew the first
    figure (with its fonts and text layouts loaded): the same files, in the same order, with
    the same bytes."""
    _, out = drawn
    one, two = out[LABEL], out[TWO_PROCESSES]
    assert [p.name for p in two] == [p.name for p in one]
    assert [p.read_bytes() for p in two] == [p.read_bytes() for p in one]


def test_no_figure_of_a_real_run_is_marked(drawn):
    _, out = drawn
    assert len(out[None]) == len(out[LABEL])
    for path in out[None]:
        assert _marks(path) == [], path.name
        assert b"SYNTHETIC" not in path.read_bytes(), path.name


def test_the_mark_is_seen_and_hides_nothing(drawn):
    """The PNG of a marked figure differs from the unmarked one by a translucent darkening
    only: visible (a share of the pixels), the same size (nothing moved), and no pixel
    darker than the watermark's opacity allows, so everything under it stays readable."""
    _, out = drawn
    pairs = [(p, q) for p in out[None] for q in out[LABEL] if p.name == q.name]
    pngs = [(p, q) for p, q in pairs if p.suffix == ".png"]
    assert len(pngs) == 3
    for plain, marked in pngs:
        a = np.asarray(Image.open(plain).convert("RGB"), dtype=float)
        b = np.asarray(Image.open(marked).convert("RGB"), dtype=float)
        assert a.shape == b.shape, plain.name
        changed = np.any(a != b, axis=2)
        assert changed.mean() > 0.02, plain.name  # the letters are there
        assert np.all(b <= a + 1), plain.name  # only darker
        floor = a * (1 - style.WATERMARK_ALPHA) - 2  # by at most the opacity (8-bit rounding)
        assert np.all(b >= floor), plain.name


# ---------------------------------------------------------------------------------------------
# the watermark itself
# ---------------------------------------------------------------------------------------------
def test_watermark_without_text_leaves_the_figure_as_it_is():
    fig = Figure(figsize=(4, 3))
    fig.add_subplot().plot([0, 1], [0, 1])
    before = style.to_png_bytes(fig, dpi=50)
    assert style.watermark(fig, None) is fig
    assert style.watermark(fig, "") is fig
    assert not fig.texts and not hasattr(fig, "hairtrial_watermark")
    assert style.to_png_bytes(fig, dpi=50) == before


@settings(max_examples=30, deadline=None)
@given(width=st.floats(3, 14), height=st.floats(1.5, 14))  # the figures: 3.5 to 9 in wide
def test_watermark_fits_any_figure_and_moves_nothing(width, height):
    """Whole letters inside the figure (nothing cropped), large enough to be read, and the
    axes where they were."""
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    before = ax.get_position().bounds
    style.watermark(fig, vocab.SYNTHETIC_LABEL)
    (text,) = fig.texts
    assert text.get_text() == vocab.SYNTHETIC_LABEL
    canvas = FigureCanvasAgg(fig)
    box = text.get_window_extent(canvas.get_renderer())
    frame = fig.bbox
    assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1
    assert frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1
    size = text.get_fontsize()
    spans = max(box.width / frame.width, box.height / frame.height)
    assert spans > 0.6 or size == style.WATERMARK_MAX_SIZE  # across the figure, or as large
    assert size >= 14
    assert ax.get_position().bounds == before
    assert tuple(fig.get_size_inches()) == pytest.approx((width, height))
