"""Tests of the L'Abbé plot, the PRISMA counts file and the PRISMA flow diagram."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from hairtrial.analyses import primary  # noqa: E402
from hairtrial.data.prisma import (  # noqa: E402
    BOXES,
    PrismaConsistencyWarning,
    PrismaCounts,
    PrismaValidationError,
    read_prisma,
)
from hairtrial.plots import save_figure  # noqa: E402
from hairtrial.plots.labbe import labbe_plot  # noqa: E402
from hairtrial.plots.layout import nice_sizes  # noqa: E402
from hairtrial.plots.prisma import prisma_diagram  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRISMA_CSV = ROOT / "data" / "prisma.csv"

# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def _rows(specs: list[tuple], outcome: str = "hair_density") -> pd.DataFrame:
    """(study, label, week, mean_c, mean_e, n per arm, provenance) -> study_effects rows."""
    out = []
    for study, label, week, mc, me, n, prov in specs:
        for measure in ("MD", "SMD"):  # SMD rows repeat the points and must be ignored
            out.append(
                {
                    "outcome": outcome,
                    "week": week,
                    "measure": measure,
                    "study": study,
                    "label": label,
                    "mean_control": mc,
                    "mean_experimental": me,
                    "n_control": n,
                    "n_experimental": n,
                    "provenance": prov,
                }
            )
    return pd.DataFrame(out)


ONE = _rows([("adistri2024", "Adistri 2024", 12, 6.0, 18.0, 18, "n_split_equally")])
THREE = _rows(
    [
        ("dhurat2013", "Dhurat 2013", 12, 22.2, 91.4, 50, "n_split_equally;from_p_value"),
        ("kumar2018", "Kumar 2018", 12, 0.29, 1.94, 34, "reported"),
        ("adistri2024", "Adistri 2024", 12, 52.4, 95.6, 18, "n_split_equally;from_p_bound"),
    ]
)
WEEKS = _rows(
    [
        (s, s.capitalize(), w, base * f, (base + 12) * f, n, prov)
        for s, base, n, prov in [
            ("alpha", 10, 20, "reported"),
            ("beta", 20, 60, "from_se"),
            ("gamma", 5, 15, "reported"),
            ("delta", 15, 30, "n_split_equally"),
        ]
        for w, f in [(12, 1.0), (24, 1.6)]
    ]
)


def _texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _assert_inside_figure(fig: Figure) -> None:
    """No text is clipped by the figure edge."""
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    fb = fig.bbox
    for t in _texts(fig):
        bb = t.get_window_extent(renderer)
        assert fb.x0 - 0.5 <= bb.x0 and bb.x1 <= fb.x1 + 0.5, t.get_text()
        assert fb.y0 - 0.5 <= bb.y0 and bb.y1 <= fb.y1 + 0.5, t.get_text()


def _digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


# --------------------------------------------------------------------------
# L'Abbé plot
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "pooled", "n_points"),
    [(ONE, None, 1), (THREE, 30.0, 3), (WEEKS, 14.0, 8), (THREE, None, 3), (WEEKS, None, 8)],
    ids=["one", "three", "weeks", "three-no-pooled", "weeks-no-pooled"],
)
def test_labbe_builds(rows: pd.DataFrame, pooled: float | None, n_points: int) -> None:
    fig = labbe_plot(rows, pooled, unit_label="hairs/cm²", title="Hair density")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == n_points  # one point per trial x week, SMD rows ignored
    # equal limits (aspect 1) covering every point and 0
    lo, hi = ax.get_xlim()
    assert ax.get_ylim() == (lo, hi)
    md = rows[rows["measure"] == "MD"]
    for col in ("mean_control", "mean_experimental"):
        assert lo < md[col].min() and md[col].max() < hi
    assert lo < 0 < hi
    # one label per trial; the pooled line only with a pooled MD
    assert sorted(fig.hairtrial_labels) == sorted(md["label"].unique())
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() not in ("-", "None")]
    assert len(dashed) == (1 if pooled is not None else 0)
    texts = " ".join(t.get_text() for t in _texts(fig))
    assert ("Pooled MD" in texts) == (pooled is not None)
    assert "No effect" in texts
    _assert_inside_figure(fig)


def test_labbe_area_and_hollow_markers() -> None:
    fig = labbe_plot(THREE, 30.0, unit_label="hairs/cm²")
    ax = fig.axes[0]
    pts = [c for c in ax.collections if isinstance(c, PathCollection)]
    by_x = {round(float(c.get_offsets()[0][0]), 2): c for c in pts}
    areas = {x: float(c.get_sizes()[0]) for x, c in by_x.items()}
    # area proportional to the total n (100, 68, 36)
    assert areas[22.2] / areas[52.4] == pytest.approx(100 / 36)
    assert areas[0.29] / areas[52.4] == pytest.approx(68 / 36)
    # derived numbers: hollow; 'reported' only: filled
    assert by_x[22.2].get_facecolors().size == 0 or by_x[22.2].get_facecolors()[0][3] == 0
    assert by_x[0.29].get_facecolors()[0][3] > 0
    texts = " ".join(t.get_text() for t in _texts(fig))
    assert "Some numbers derived" in texts and "All numbers as reported" in texts
    assert "Total n (area)" in texts


def test_labbe_labels_do_not_overlap() -> None:
    fig = labbe_plot(WEEKS, 14.0, unit_label="hairs/cm²")
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in fig.hairtrial_labels.values()]
    ax_bb = fig.axes[0].get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert ax_bb.contains(a.x0, a.y0) and ax_bb.contains(a.x1, a.y1)
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_labbe_input_errors() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        labbe_plot(THREE.drop(columns="n_control"), None, unit_label="u")
    mixed = pd.concat([THREE, _rows([("x", "X", 12, 1.0, 2.0, 5, "")], "hair_diameter")])
    with pytest.raises(ValueError, match="one outcome"):
        labbe_plot(mixed, None, unit_label="u")
    bad = THREE.copy()
    bad.loc[bad["study"] == "kumar2018", "mean_control"] = np.nan
    fig = labbe_plot(bad, None, unit_label="u")
    assert "Not drawn (arm means or n missing): Kumar 2018." in [t.get_text() for t in _texts(fig)]


def testnice_sizes() -> None:
    assert nice_sizes(np.array([36.0, 68.0, 100.0])) == [20, 50, 100]
    assert nice_sizes(np.array([36.0])) == [20, 50]
    assert nice_sizes(np.array([400.0, 1200.0])) == [200, 500, 1000]


def test_labbe_default_results(default_results) -> None:
    """The default analysis draws, one point per trial with an MD comparison."""
    *_, study_effects = default_results
    rows = study_effects[study_effects["outcome"] == "hair_density"]
    fig = labbe_plot(rows, 30.0, unit_label="hairs/cm²")
    assert len(fig.hairtrial_labels) == rows.loc[rows["measure"] == "MD", "study"].nunique()


# --------------------------------------------------------------------------
# Deterministic saving
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["labbe", "prisma", "prisma-other"])
def test_saves_are_byte_identical(kind: str, tmp_path: Path) -> None:
    def build() -> Figure:
        if kind == "labbe":
            return labbe_plot(WEEKS, 14.0, unit_label="hairs/cm²", title="Two weeks")
        if kind == "prisma":
            return prisma_diagram(PRISMA_CSV)
        return prisma_diagram(PrismaCounts.from_mapping(FULL), title="Flow")

    fig = build()
    a = save_figure(fig, tmp_path / "a" / "fig", dpi=150)
    b = save_figure(fig, tmp_path / "b" / "fig", dpi=150)  # the same figure again
    c = save_figure(build(), tmp_path / "c" / "fig", dpi=150)  # a fresh figure
    assert _digest(a) == _digest(b) == _digest(c)


# --------------------------------------------------------------------------
# PRISMA counts file
# --------------------------------------------------------------------------

FULL: dict = {
    "identified_databases": 412,
    "identified_registers": 38,
    "removed_duplicates": 120,
    "removed_automation": 0,
    "removed_other": 10,
    "records_screened": 320,
    "records_excluded": 270,
    "reports_sought": 50,
    "reports_not_retrieved": 4,
    "reports_assessed": 46,
    "reports_excluded": [("Not randomised", 12), ("Wrong comparator", 9), ("No hair outcome", 6)],
    "studies_included": 10,
    "reports_included": 21,
    "studies_meta_analysis": 6,
    "other_identified": [("Websites", 5), ("Citation searching", 9)],
    "other_reports_sought": 14,
    "other_reports_not_retrieved": 2,
    "other_reports_assessed": 12,
    "other_reports_excluded": [("Not randomised", 10)],
}


def _csv(counts: dict) -> str:
    lines = ["box,label,count,note"]
    for box, value in counts.items():
        if isinstance(value, list):
            lines += [f"{box},{lab},{'' if n is None else n}," for lab, n in value]
        else:
            lines.append(f"{box},,{'' if value is None else value},")
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "prisma.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_full_counts_are_consistent(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = read_prisma(_write(tmp_path, _csv(FULL)), strict=True)
    assert c.problems == []
    assert c["reports_excluded"] == 27
    assert c.items["other_identified"] == [("Websites", 5), ("Citation searching", 9)]
    assert c.has_other_methods


@pytest.mark.parametrize(
    ("text", "line", "column", "value", "rule"),
    [
        ("box,count\nreports_sougth,12\n", 2, "box", "reports_sougth", "did you mean"),
        ("box,count\nreports_sought,twelve\n", 2, "count", "twelve", "whole number"),
        ("box,count\nreports_sought,12.5\n", 2, "count", "12.5", "whole number"),
        ("box,count\nreports_sought,12.0\n", 2, "count", "12.0", "without decimals"),
        ("box,count\nreports_sought,-3\n", 2, "count", "-3", ">= 0"),
        ("box,count\nreports_sought,1\nreports_sought,2\n", 3, "box", "reports_sought", "twice"),
        ("box,label,count\nreports_excluded,,3\n", 2, "label", "", "needs a reason"),
        ("box,label,count\nother_identified,,3\n", 2, "label", "", "needs a source"),
        (
            "box,label,count\nreports_excluded,Not RCT,3\nreports_excluded,not rct,1\n",
            3,
            "label",
            "not rct",
            "repeated label",
        ),
        ("box,label,count\nreports_sought,x,3\n", 2, "label", "x", "takes no label"),
        ("box,count,extra\nreports_sought,3,\n", 1, "extra", "extra", "unknown column"),
        ("box\nreports_sought\n", 1, "count", None, "required column missing"),
        ("box,count\n,3\n", 2, "box", "", "box name required"),
    ],
    ids=[
        "unknown-box",
        "not-a-number",
        "fraction",
        "decimal-point",
        "negative",
        "duplicate-box",
        "missing-reason",
        "missing-source",
        "repeated-reason",
        "label-on-single-box",
        "unknown-column",
        "missing-column",
        "empty-box",
    ],
)
def test_format_errors(
    tmp_path: Path, text: str, line: int, column: str, value: str | None, rule: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PrismaValidationError) as info:
        read_prisma(path)
    assert isinstance(info.value, ValueError)
    [p] = [p for p in info.value.problems if p.column == column]
    assert (p.file, p.line, p.value) == (str(path), line, value)
    assert rule in p.rule
    message = str(info.value)
    assert str(path) in message and f"line {line}" in message and f"column '{column}'" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PrismaValidationError, match="file not found"):
        read_prisma(tmp_path / "nope.csv")


def test_all_format_errors_listed_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "box,count\nfoo,1\nreports_sought,-1\nbar,x\n")
    with pytest.raises(PrismaValidationError) as info:
        read_prisma(path)
    assert len(info.value.problems) == 4  # foo, -1, bar, x


def _broken(**changes) -> dict:
    counts = dict(FULL)
    counts.update(changes)
    return counts


@pytest.mark.parametrize(
    ("changes", "box", "rule"),
    [
        ({"records_screened": 300}, "records_screened", "must equal identified_databases"),
        ({"records_excluded": 260}, "reports_sought", "records_screened - records_excluded"),
        ({"reports_not_retrieved": 3}, "reports_assessed", "reports_sought - reports_not"),
        ({"other_reports_not_retrieved": 1}, "other_reports_assessed", "other_reports_sought"),
        ({"reports_included": 20}, "reports_included", "reports_assessed - reports_excluded"),
        ({"studies_included": 40}, "studies_included", "must not exceed reports_included"),
        ({"studies_meta_analysis": 11}, "studies_meta_analysis", "studies_included"),
        (
            {"records_screened": None, "removed_duplicates": 500},
            "removed_duplicates",
            "must not exceed records identified",
        ),
        (
            {"reports_sought": None, "records_excluded": 400},
            "records_excluded",
            "must not exceed records_screened",
        ),
        (
            {"reports_assessed": None, "reports_not_retrieved": 60},
            "reports_not_retrieved",
            "must not exceed reports_sought",
        ),
        (
            {"reports_assessed": 20, "reports_sought": None, "reports_included": None},
            "reports_excluded",
            "must not exceed reports_assessed",
        ),
        ({"other_reports_sought": 20}, "other_reports_sought", "identified by other methods"),
    ],
    ids=[
        "screened",
        "sought",
        "assessed",
        "other-assessed",
        "reports-included",
        "studies-vs-reports",
        "meta-vs-included",
        "removed-vs-identified",
        "excluded-vs-screened",
        "not-retrieved-vs-sought",
        "excluded-vs-assessed",
        "other-sought-vs-identified",
    ],
)
def test_consistency_rules(tmp_path: Path, changes: dict, box: str, rule: str) -> None:
    path = _write(tmp_path, _csv(_broken(**changes)))
    # default: a warning, the counts are returned with the problem recorded
    with pytest.warns(PrismaConsistencyWarning, match=box):
        c = read_prisma(path)
    hits = [p for p in c.problems if rule in p.rule and p.rule.startswith(box)]
    assert hits, [str(p) for p in c.problems]
    p = hits[0]
    assert p.file == str(path) and p.column == "count"
    if box in c.lines:
        assert p.line == c.lines[box]
    # strict: an error
    with pytest.raises(PrismaValidationError, match=box):
        read_prisma(path, strict=True)
    # the diagram lists it in its footer
    fig = prisma_diagram(c)
    assert any("do not add up" in t.get_text() for t in _texts(fig))


def test_unknown_counts_are_not_checked(tmp_path: Path) -> None:
    """An empty count is 'not reported', never 0: rules with it are skipped."""
    counts = {k: None for k, v in FULL.items() if not isinstance(v, list)}
    counts["reports_sought"] = 12
    counts["reports_not_retrieved"] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = read_prisma(_write(tmp_path, _csv(counts)), strict=True)
    assert c["records_screened"] is None and c.problems == []


# --------------------------------------------------------------------------
# The project's counts file
# --------------------------------------------------------------------------


def test_default_prisma_file_validates() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = read_prisma(PRISMA_CSV, strict=True)
    assert set(c.present) <= set(BOXES)
    # unknown counts stay unknown (not invented)
    for box in ("identified_databases", "records_screened", "records_excluded"):
        assert c[box] is None
    assert c["reports_not_retrieved"] == 1  # Bao et al.
    assert "studies_meta_analysis" in c.present


def test_default_prisma_matches_studies_csv() -> None:
    studies = pd.read_csv(ROOT / "data" / "studies.csv")
    c = read_prisma(PRISMA_CSV, strict=True)
    included = studies["status"].fillna("").str.startswith("included")
    assert c["studies_included"] == int(included.sum())
    assert c["reports_assessed"] == len(studies)


def test_default_prisma_meta_analysis_count_matches_pipeline(default_config) -> None:
    """'Included in meta-analysis' = trials with an MD comparison in the default analysis."""
    eff, _, _ = primary.prepare(default_config)
    n_md = eff.loc[eff["measure"] == "MD", "study"].nunique()
    assert read_prisma(PRISMA_CSV, strict=True)["studies_meta_analysis"] == n_md


# --------------------------------------------------------------------------
# PRISMA diagram
# --------------------------------------------------------------------------


def test_prisma_default_diagram() -> None:
    fig = prisma_diagram(PRISMA_CSV)
    boxes = fig.hairtrial_boxes
    assert set(boxes) == {"A0", "A1", "B0", "B1", "C0", "C1", "D0", "D1", "E0", "F0"}
    assert boxes["B0"] == "Records screened\n(n = not reported)"
    assert "(n = 12)" in boxes["C0"] and "(n = 1)" in boxes["C1"]
    assert "(n = 3)" in boxes["F0"]
    texts = [t.get_text() for t in _texts(fig)]
    for phase in ("Identification", "Screening", "Included"):
        assert phase in texts
    assert any(t.startswith("n = not reported:") for t in texts)
    assert not any("do not add up" in t for t in texts)
    assert fig.get_figwidth() == pytest.approx(7.0)
    _assert_inside_figure(fig)


def test_prisma_other_methods_and_reasons() -> None:
    fig = prisma_diagram(PrismaCounts.from_mapping(FULL), title="PRISMA 2020")
    boxes = fig.hairtrial_boxes
    assert {"A2", "C2", "C3", "D2", "D3"} <= set(boxes)
    assert "Reports excluded (n = 27):" in boxes["D1"]
    assert "Wrong comparator (n = 9)" in boxes["D1"].replace("\n", " ")
    assert "Citation searching" in boxes["A2"]
    texts = [t.get_text() for t in _texts(fig)]
    assert "Identification of studies via other methods" in " ".join(texts)
    assert not any(t.startswith("n = not reported") for t in texts)
    _assert_inside_figure(fig)


def test_prisma_optional_box_and_column_absent() -> None:
    c = PrismaCounts.from_mapping({"reports_sought": 3})
    boxes = prisma_diagram(c).hairtrial_boxes
    assert "F0" not in boxes and "A2" not in boxes
    assert boxes["D1"] == "Reports excluded\n(n = not reported)"


def test_prisma_boxes_do_not_overlap() -> None:
    from matplotlib.patches import FancyBboxPatch

    fig = prisma_diagram(PrismaCounts.from_mapping(FULL))
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    patches = [p for p in fig.findobj(FancyBboxPatch) if p.get_edgecolor()[3] > 0]
    boxes = [p.get_window_extent(renderer) for p in patches]
    assert len(boxes) == 15  # 10 + 5 other-methods boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    # every text line of a box sits inside a box
    inside = 0
    for t in _texts(fig):
        bb = t.get_window_extent(renderer)
        if any(b.contains(bb.x0 + 0.01, bb.y0 + 0.01) for b in boxes):
            assert any(b.contains(bb.x1 - 0.01, bb.y1 - 0.01) for b in boxes), t.get_text()
            inside += 1
    assert inside > 30
