"""Tests of hairtrial.plots: house style, deterministic saving, forest plot.

The pooled numbers used here are illustrative only (DerSimonian-Laird computed
below); the real engine lives elsewhere. plots.py itself computes nothing.
"""

from __future__ import annotations

import io
import math
import os
import shutil
from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from scipy import optimize, stats  # noqa: E402

from hairtrial import plots  # noqa: E402
from hairtrial.data import provenance  # noqa: E402
from hairtrial.plots import layout as layout_mod  # noqa: E402
from hairtrial.plots import style as style_mod  # noqa: E402

# --------------------------------------------------------------------------
# Illustrative data
# --------------------------------------------------------------------------


def _md_from_p(n_e: int, n_c: int, m_e: float, m_c: float, p: float) -> dict[str, float]:
    """MD, its variance and the common SD implied by a two-sided t-test p-value."""
    md = m_e - m_c
    t = stats.t.isf(p / 2, n_e + n_c - 2)
    se = abs(md) / t
    sd = se / math.sqrt(1 / n_e + 1 / n_c)
    return {"yi": md, "vi": se**2, "sd": sd}


def pool_dl(yi: np.ndarray, vi: np.ndarray) -> dict[str, object]:
    """DerSimonian-Laird random effects, Wald CI, t(k-2) PI, Q-profile tau2 CI."""
    yi, vi = np.asarray(yi, float), np.asarray(vi, float)
    k = len(yi)
    if k < 2:  # nothing to pool: what the engine reports for a single study
        return {
            "method": "DL",
            "ci_method": "z",
            "k": k,
            "estimate": math.nan,
            "_weights": np.full(k, 100.0),
        }
    w = 1 / vi
    mu_fe = np.sum(w * yi) / np.sum(w)
    q = float(np.sum(w * (yi - mu_fe) ** 2))
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = max(0.0, (q - (k - 1)) / c)
    ws = 1 / (vi + tau2)
    mu = float(np.sum(ws * yi) / np.sum(ws))
    se = float(math.sqrt(1 / np.sum(ws)))

    def qgen(t2: float) -> float:
        wt = 1 / (vi + t2)
        m = np.sum(wt * yi) / np.sum(wt)
        return float(np.sum(wt * (yi - m) ** 2))

    def root(target: float) -> float:
        if qgen(0.0) < target:
            return 0.0
        return float(optimize.brentq(lambda t2: qgen(t2) - target, 0.0, 1e9))

    tau2_lo = root(stats.chi2.ppf(0.975, k - 1))
    tau2_hi = root(stats.chi2.ppf(0.025, k - 1))
    if k >= 3:
        tcrit = stats.t.ppf(0.975, k - 2)
        half = tcrit * math.sqrt(tau2 + se**2)
        pi = (mu - half, mu + half)
    else:
        pi = (math.nan, math.nan)
    i2 = max(0.0, (q - (k - 1)) / q) * 100 if q > 0 else 0.0
    return {
        "method": "DL",
        "ci_method": "z",
        "k": k,
        "estimate": mu,
        "se": se,
        "ci_lower": mu - 1.959964 * se,
        "ci_upper": mu + 1.959964 * se,
        "pvalue": float(2 * stats.norm.sf(abs(mu / se))),
        "pi_lower": pi[0],
        "pi_upper": pi[1],
        "tau2": tau2,
        "tau2_ci_lower": tau2_lo,
        "tau2_ci_upper": tau2_hi,
        "I2": i2,
        "H2": q / (k - 1) if k > 1 else math.nan,
        "Q": q,
        "Q_df": k - 1,
        "Q_pvalue": float(stats.chi2.sf(q, k - 1)) if k > 1 else math.nan,
        "notes": "",
        "_weights": ws / np.sum(ws) * 100,
    }


def _finish(studies: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, object]]:
    se = np.sqrt(studies["vi"].to_numpy())
    studies["ci_lower"] = studies["yi"] - 1.959964 * se
    studies["ci_upper"] = studies["yi"] + 1.959964 * se
    pooled = pool_dl(studies["yi"].to_numpy(), studies["vi"].to_numpy())
    studies["weight_pct"] = pooled.pop("_weights")
    return studies, pooled


def hair_density_example() -> tuple[pd.DataFrame, dict[str, object]]:
    """Hair density change at week 12, MD in hairs/cm² (three trials)."""
    spec = [
        ("dhurat2013", "Dhurat 2013", 50, 50, 91.4, 22.2, 0.039, "from_p_value"),
        ("kumar2018", "Kumar 2018", 34, 34, 1.94, 0.29, 0.0001, "unit_converted;from_p_bound"),
        ("adistri2024", "Adistri 2024", 18, 18, 95.6, 52.4, 0.001, "from_p_bound"),
    ]
    rows = []
    for study, label, ne, nc, me, mc, p, prov in spec:
        d = _md_from_p(ne, nc, me, mc, p)
        rows.append(
            {
                "study": study,
                "label": label,
                "yi": d["yi"],
                "vi": d["vi"],
                "n_experimental": ne,
                "n_control": nc,
                "mean_experimental": me,
                "mean_control": mc,
                "sd_experimental": d["sd"],
                "sd_control": d["sd"],
                "provenance": prov,
                "design": "parallel",
            }
        )
    return _finish(pd.DataFrame(rows))


_CODES = [
    "reported",
    "n_split_equally",
    "from_p_value",
    "from_p_bound",
    "unit_converted",
    "from_se",
    "from_ci",
    "from_median_iqr",
    "change_from_levels_r",
    "combined_arms",
    "split_scalp_r",
]


def synthetic_studies(k: int, seed: int = 1, smd: bool = False) -> tuple[pd.DataFrame, dict]:
    """k made-up trials with a spread of sizes, designs and provenance codes."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(k):
        n = int(rng.integers(10, 120))
        scale = 1.0 if smd else 40.0
        me = float(rng.normal(1.0, 0.6) * scale)
        mc = float(rng.normal(0.4, 0.4) * scale)
        sd = float(abs(rng.normal(1.0, 0.3)) * scale)
        vi = sd**2 * 2 / n
        codes = list(rng.choice(_CODES, size=int(rng.integers(1, 3)), replace=False))
        split = bool(rng.random() < 0.2)
        if split and "split_scalp_r" not in codes:
            codes.append("split_scalp_r")
        rows.append(
            {
                "study": f"trial{i:02d}",
                "label": f"Author{i:02d} {2005 + i % 20}",
                "yi": me - mc,
                "vi": vi,
                "n_experimental": n,
                "n_control": n,
                "mean_experimental": me,
                "mean_control": mc,
                "sd_experimental": sd,
                "sd_control": sd,
                "provenance": ";".join(codes),
                "design": "split_scalp" if split else "parallel",
            }
        )
    return _finish(pd.DataFrame(rows))


# --------------------------------------------------------------------------
# Helpers for checking a figure
# --------------------------------------------------------------------------


def _texts(fig: Figure) -> list[Text]:
    """Every visible, non-empty text of the figure (incl. tick labels)."""
    fig.canvas.draw()
    out = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return out


def _assert_layout_clean(fig: Figure) -> None:
    """No two texts overlap; nothing leaves the figure."""
    renderer = fig.canvas.get_renderer()
    fig_box = fig.bbox
    boxes = [(t, t.get_window_extent(renderer)) for t in _texts(fig)]
    tol = 0.5  # pixels
    for t, b in boxes:
        assert b.x0 >= fig_box.x0 - tol and b.x1 <= fig_box.x1 + tol, f"clipped: {t.get_text()!r}"
        assert b.y0 >= fig_box.y0 - tol and b.y1 <= fig_box.y1 + tol, f"clipped: {t.get_text()!r}"
    for (t1, b1), (t2, b2) in combinations(boxes, 2):
        w = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
        h = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
        assert not (w > tol and h > tol), f"overlap: {t1.get_text()!r} / {t2.get_text()!r}"


def _footnote_codes(fig: Figure) -> set[str]:
    gids = [t.get_gid() for t in fig.texts if t.get_gid()]
    return {g.split(":", 1)[1] for g in gids if g.startswith("provenance:")}


def _used_codes(studies: pd.DataFrame) -> set[str]:
    out: set[str] = set()
    for v in studies["provenance"].dropna():
        out |= {c.strip() for c in str(v).split(";") if c.strip()}
    return out - {"reported"}


# --------------------------------------------------------------------------
# Style
# --------------------------------------------------------------------------


def test_style_file_loads_and_is_reproducible():
    rc = plots.style_params()
    assert rc["svg.fonttype"] == "path"
    assert rc["svg.hashsalt"]
    assert rc["pdf.fonttype"] == 42
    assert rc["font.sans-serif"][0] == "DejaVu Sans"
    assert 7 <= rc["font.size"] <= 9
    assert not rc["axes.spines.top"] and not rc["axes.spines.right"]
    colors = [c["color"].upper().lstrip("#") for c in rc["axes.prop_cycle"]]
    assert colors[:3] == ["0072B2", "D55E00", "009E73"]


def test_use_style_restores_rcparams():
    before = matplotlib.rcParams["font.size"]
    with plots.use_style():
        assert matplotlib.rcParams["font.size"] == 7
    assert matplotlib.rcParams["font.size"] == before


# --------------------------------------------------------------------------
# Number formatting
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.35, -1.2], 2), ([69.2, 1.6], 1), ([1500.0], 0), ([math.nan], 2), ([9.99], 2), ([10], 1)],
)
def test_format_decimals(values, expected):
    assert plots.format_decimals(values) == expected


# --------------------------------------------------------------------------
# Forest plot
# --------------------------------------------------------------------------


def test_hair_density_example_figure():
    studies, pooled = hair_density_example()
    fig = plots.forest_plot(studies, pooled, xlabel="Mean difference, hairs/cm²")
    _assert_layout_clean(fig)
    texts = [t.get_text() for t in _texts(fig)]
    assert "Dhurat 2013" in texts
    assert any(t.startswith("Pooled estimate (k = 3)") for t in texts)
    assert any("DerSimonian" in t for t in texts)
    assert 6.5 <= fig.get_figwidth() <= 7.5
    # the diamond exists
    ax = fig.axes[0]
    assert len(ax.patches) == 1


@pytest.mark.parametrize("k", [0, 1, 2, 3, 30])
def test_builds_for_any_number_of_studies(k):
    if k == 0:
        studies = hair_density_example()[0].iloc[0:0]
        pooled = None
    else:
        studies, pooled = synthetic_studies(k, seed=k)
        if k == 1:
            pooled = {**pooled, "k": 1}
    fig = plots.forest_plot(studies, pooled, xlabel="Mean difference", title=f"k = {k}")
    _assert_layout_clean(fig)
    ax = fig.axes[0]
    n_diamonds = len(ax.patches)
    assert n_diamonds == (1 if k >= 2 else 0)
    texts = " | ".join(t.get_text() for t in _texts(fig))
    if k == 1:
        assert "Single study: no pooled estimate" in texts
    if k == 0:
        assert "No studies" in texts


def test_height_grows_with_study_count():
    h = [
        plots.forest_plot(*synthetic_studies(k, seed=3), xlabel="MD").get_figheight()
        for k in (2, 10, 30)
    ]
    assert h[0] < h[1] < h[2]


def test_pooled_none_with_studies():
    studies, _ = hair_density_example()
    fig = plots.forest_plot(studies, None, xlabel="MD")
    _assert_layout_clean(fig)
    assert "No pooled estimate" in " ".join(t.get_text() for t in fig.texts)
    assert not fig.axes[0].patches


def test_nan_prediction_interval_not_drawn():
    studies, pooled = hair_density_example()
    with_pi = plots.forest_plot(studies, pooled, xlabel="MD")
    pooled_nan = {**pooled, "pi_lower": math.nan, "pi_upper": math.nan}
    fig = plots.forest_plot(studies, pooled_nan, xlabel="MD")
    _assert_layout_clean(fig)
    texts = [t.get_text() for t in fig.texts]
    assert "95% prediction interval" in [t.get_text() for t in with_pi.texts]
    assert "95% prediction interval" not in texts
    assert any("prediction interval not estimable" in t for t in texts)


def test_huge_ci_is_cut_with_arrow():
    studies, pooled = hair_density_example()
    studies.loc[0, ["ci_lower", "ci_upper"]] = [-2000.0, 2200.0]
    fig = plots.forest_plot(studies, pooled, xlabel="MD")
    _assert_layout_clean(fig)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert hi - lo < 1000  # the other studies are not squeezed
    markers = {line.get_marker() for line in ax.lines}
    assert {"<", ">"} <= markers
    # the printed CI is the real one, not the cut one
    texts = [t.get_text() for t in fig.texts]
    assert "[\u22122000.0," in texts and "2200.0]" in texts


def test_footnotes_list_exactly_the_codes_used():
    studies, pooled = synthetic_studies(12, seed=7)
    fig = plots.forest_plot(studies, pooled, xlabel="MD")
    assert _footnote_codes(fig) == _used_codes(studies)
    studies2, pooled2 = hair_density_example()
    fig2 = plots.forest_plot(studies2, pooled2, xlabel="MD")
    assert _footnote_codes(fig2) == {"from_p_value", "from_p_bound", "unit_converted"}
    # marks appear in order of first use: a, b, c
    notes = fig2.hairtrial_footnotes
    assert [n[0] for n in notes] == ["a", "b", "c"]
    assert "p-value" in notes[0][1]


@given(
    flags=st.lists(
        st.lists(
            st.sampled_from([*provenance.FLAGS, "dose_unclear", "split_scalp_within_patient"]),
            max_size=3,
        ),  # fmt: skip
        min_size=3,
        max_size=3,
    )
)
@settings(max_examples=25, deadline=None)
def test_extraction_flags_are_marked_and_explained(flags: list[list[str]]):
    """Each flagged study (flags shown in figures) gets a section sign after its label, and
    one footnote names every flagged study with each of its caveats in words; no flag, no
    footnote."""
    studies, pooled = hair_density_example()
    studies["flags"] = [";".join(f) for f in flags]
    fig = plots.forest_plot(studies, pooled, xlabel="MD")
    shown = [[f for f in fl if f not in provenance.FLAGS_NOT_SHOWN] for fl in flags]
    notes = {gid: text for _, text, gid in fig.hairtrial_footnotes}
    texts = [t.get_text() for t in fig.texts]
    if not any(shown):
        assert "flags" not in notes and "\u00a7" not in texts
        return
    note = notes["flags"]
    assert texts.count("\u00a7") == sum(bool(s) for s in shown) + 1  # marks + footnote's
    for label, fl in zip(studies["label"], shown, strict=True):
        assert (f"{label}:" in note) == bool(fl)
        for f in fl:
            assert provenance.flag_text(f) in note
    # the provenance marks are unchanged by the flags
    assert _footnote_codes(fig) == {"from_p_value", "from_p_bound", "unit_converted"}


def test_weights_only_beside_a_pooled_estimate():
    """A single trial (or no pooled estimate) shows no weight column: its weight would be 100%
    or, for Mantel-Haenszel with a zero cell, 0/0 - both say nothing."""
    studies, pooled = hair_density_example()
    texts = [t.get_text() for t in plots.forest_plot(studies, pooled, xlabel="MD").texts]
    assert "Weight" in texts and "100.0%" in texts
    one = studies.iloc[[0]].copy()
    for w in (100.0, math.nan):
        one["weight_pct"] = w
        fig = plots.forest_plot(one, {**pooled, "k": 1}, xlabel="MD")
        _assert_layout_clean(fig)
        texts = [t.get_text() for t in fig.texts]
        assert "Weight" not in texts and not any(t.endswith("%") for t in texts), texts
        assert "Single study: no pooled estimate" in texts
    texts = [t.get_text() for t in plots.forest_plot(studies, None, xlabel="MD").texts]
    assert "Weight" not in texts and not any(t.endswith("%") for t in texts)


def test_all_reported_means_no_footnotes():
    studies, pooled = hair_density_example()
    studies["provenance"] = "reported"
    fig = plots.forest_plot(studies, pooled, xlabel="MD")
    assert _footnote_codes(fig) == set()
    assert fig.hairtrial_footnotes == []


def test_provenance_labels_override_and_unknown_codes():
    studies, pooled = hair_density_example()
    studies.loc[1, "provenance"] = "from_p_bound;imputed_from_figure"
    fig = plots.forest_plot(
        studies,
        pooled,
        xlabel="MD",
        provenance_labels={"from_p_value": "Custom explanation of p"},
    )
    notes = dict((gid, text) for _, text, gid in fig.hairtrial_footnotes)
    assert notes["provenance:from_p_value"] == "Custom explanation of p"
    assert "imputed_from_figure" in notes["provenance:imputed_from_figure"]
    assert _footnote_codes(fig) == {"from_p_value", "from_p_bound", "imputed_from_figure"}


def test_weird_labels_do_not_raise():
    studies, pooled = synthetic_studies(6, seed=11)
    studies["label"] = [
        "$x^2$ \\it{b} 5% _u_",
        "A" * 300,
        "",
        None,
        "Line\nbreak\tand tab",
        "Ødegaard–Müller 2019 (µ-needling) ±",
    ]
    studies.loc[2, "study"] = ""
    fig = plots.forest_plot(
        studies,
        pooled,
        xlabel="Δ density $ (hairs/cm²)",
        title="A very long title " * 12,
        favours=("Favours control " * 3, "Favours treatment " * 3),
    )
    _assert_layout_clean(fig)
    texts = [t.get_text() for t in fig.texts]
    assert any(t.startswith("$x^2$ \\it{b}") for t in texts)  # literal, not mathtext
    assert any(t.endswith("\u2026") for t in texts)  # long label shortened
    assert "Study 3" in texts  # empty label and empty id fall back to the row number
    assert fig.get_figwidth() <= 7.5


def test_missing_optional_columns_and_nan_effects():
    studies = pd.DataFrame(
        {
            "study": ["a", "b", "c"],
            "yi": [0.3, math.nan, -0.2],
            "ci_lower": [0.1, math.nan, math.nan],
            "ci_upper": [0.5, math.nan, math.nan],
        }
    )
    fig = plots.forest_plot(studies, None, xlabel="SMD", effect_label="SMD [95% CI]")
    _assert_layout_clean(fig)
    assert "not estimable" in [t.get_text() for t in fig.texts]


def test_missing_required_column_raises():
    with pytest.raises(ValueError, match="ci_lower"):
        plots.forest_plot(pd.DataFrame({"study": ["a"], "yi": [1.0]}), None, xlabel="MD")


def test_smd_uses_two_decimals():
    studies, pooled = synthetic_studies(4, seed=5, smd=True)
    fig = plots.forest_plot(studies, pooled, xlabel="SMD", effect_label="SMD [95% CI]")
    _assert_layout_clean(fig)
    est = f"{studies['yi'].iloc[0]:.2f}".replace("-", "\u2212")
    assert est in [t.get_text() for t in fig.texts]


def test_method_line():
    line = layout_mod.method_text(
        {
            "method": "REML",
            "ci_method": "adhoc",
            "tau2": 123.4,
            "tau2_ci_lower": 12.3,
            "tau2_ci_upper": 4567.8,
            "I2": 88.2,
            "Q": 16.7,
            "Q_df": 2,
            "Q_pvalue": 0.0002,
            "pi_lower": -10,
        }
    )
    assert line == [
        "Random effects, REML; 95% CI: Hartung\u2013Knapp (ad hoc)",
        "Heterogeneity: \u03c4\u00b2 = 123.4 [Q-profile 95% CI 12.3, 4567.8]; I\u00b2 = 88%; "
        "Q = 16.70 (df = 2), p < 0.001",
    ]
    fe = layout_mod.method_text({"method": "FE", "ci_method": "z", "tau2": 0.0, "I2": 0})
    assert fe[0].startswith("Common effect") and "\u03c4" not in " ".join(fe)
    assert style_mod.fmt_p(0.0475) == "p = 0.048" and style_mod.fmt_p(0.12) == "p = 0.12"


# --------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------


def test_save_figure_is_byte_identical(tmp_path: Path):
    studies, pooled = hair_density_example()
    fig = plots.forest_plot(studies, pooled, xlabel="Mean difference, hairs/cm²")
    first = plots.save_figure(fig, tmp_path / "a" / "forest")
    first_bytes = {p.suffix: p.read_bytes() for p in first}
    second = plots.save_figure(fig, tmp_path / "a" / "forest")
    assert [p.name for p in first] == ["forest.png", "forest.svg", "forest.pdf"]
    for p in second:
        assert p.read_bytes() == first_bytes[p.suffix], p.suffix
    # a freshly built figure of the same content gives the same bytes too
    fig2 = plots.forest_plot(studies, pooled, xlabel="Mean difference, hairs/cm²")
    third = plots.save_figure(fig2, tmp_path / "b" / "forest")
    for p in third:
        assert p.read_bytes() == first_bytes[p.suffix], p.suffix
    # no timestamps or temp files left
    pdf = first_bytes[".pdf"]
    assert b"CreationDate" not in pdf and b"ModDate" not in pdf
    assert b"<dc:date>" not in first_bytes[".svg"]
    assert b"Software" not in first_bytes[".png"]
    assert sorted(os.listdir(tmp_path / "a")) == ["forest.pdf", "forest.png", "forest.svg"]


def test_a_notebooks_png_is_drawn_once_and_is_matplotlibs(monkeypatch):
    """show / to_png_bytes (the notebooks' figures) draw a figure of fixed layout once: the
    bytes matplotlib's own savefig writes, which draws it twice (once to solve a layout that
    a fixed figure does not have); the figure keeps its layout engine."""
    import matplotlib as mpl

    studies, pooled = hair_density_example()
    fig = plots.forest_plot(studies, pooled, xlabel="Mean difference, hairs/cm²")
    engine = fig.get_layout_engine()
    draws = []
    real_draw = Figure.draw

    def counted(self, renderer):
        draws.append(renderer)
        return real_draw(self, renderer)

    monkeypatch.setattr(Figure, "draw", counted)
    png = style_mod.to_png_bytes(fig, dpi=60)
    assert len(draws) == 1 and fig.get_layout_engine() is engine
    draws.clear()
    reference = io.BytesIO()
    with style_mod.use_style(), mpl.rc_context({"figure.constrained_layout.use": False}):
        fig.savefig(reference, format="png", dpi=60, metadata=style_mod._METADATA["png"])
    assert len(draws) == 2  # matplotlib's own: the layout draw, then the drawing
    assert png == reference.getvalue()


def _embedded_fonts(pdf: bytes) -> list:
    """The TrueType fonts embedded in a PDF written by matplotlib (its FontFile2 streams)."""
    import io
    import re
    import zlib

    from fontTools.ttLib import TTFont

    fonts = []
    for m in re.finditer(rb"<< /Length1 \d+ /Length (\d+) /Filter /FlateDecode >>\nstream\n", pdf):
        data = pdf[m.end() : m.end() + int(m.group(1))]
        fonts.append(TTFont(io.BytesIO(zlib.decompress(data))))
    return fonts


def test_pdf_fonts_embed_outlines_without_layout_tables(tmp_path: Path):
    """The PDF's font subsets keep every drawn glyph's outline and width, not GSUB/GPOS."""
    from fontTools.pens.recordingPen import RecordingPen
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    studies, pooled = hair_density_example()
    fig = plots.forest_plot(studies, pooled, xlabel="Mean difference, hairs/cm² (τ² office)")
    (pdf,) = plots.save_figure(fig, tmp_path / "forest", formats=("pdf",))
    fonts = _embedded_fonts(pdf.read_bytes())
    assert len(fonts) >= 2  # regular and bold
    for font in fonts:
        tags = set(font.keys())
        assert not tags & {"GSUB", "GPOS", "GDEF"}, tags
        assert {"glyf", "hmtx", "cmap"} <= tags
    # every glyph of the subset is the original font's glyph: same outline, same advance
    regular = TTFont(font_manager.findfont("DejaVu Sans"))
    sub = next(f for f in fonts if "Bold" not in f["name"].getDebugName(4))
    names = [g for g in sub.getGlyphOrder() if g != ".notdef"]
    assert {"tau", "f", "i"} <= set(names)  # drawn characters (no ligature glyphs needed)
    for name in names:
        a, b = RecordingPen(), RecordingPen()
        sub.getGlyphSet()[name].draw(a)
        regular.getGlyphSet()[name].draw(b)
        assert a.value == b.value, name
        assert sub["hmtx"][name] == regular["hmtx"][name], name
    # the layout tables are dropped only while a PDF is written
    from fontTools import subset

    assert subset.load_font.__module__ == "fontTools.subset"


@pytest.mark.skipif(not shutil.which("gs"), reason="Ghostscript (gs) is not installed")
def test_pdf_without_layout_tables_renders_the_same_pixels(tmp_path: Path):
    """Ghostscript draws the PDF with the lean font subsets exactly as with matplotlib's own."""
    import subprocess

    studies, pooled = hair_density_example()
    fig = plots.forest_plot(studies, pooled, xlabel="Mean difference, hairs/cm² (office)")
    (lean,) = plots.save_figure(fig, tmp_path / "lean", formats=("pdf",))
    with style_mod.use_style():  # matplotlib's subsetting: layout tables kept
        fig.savefig(tmp_path / "full.pdf", format="pdf")
    assert len(_embedded_fonts(lean.read_bytes())) == len(
        _embedded_fonts((tmp_path / "full.pdf").read_bytes())
    )
    pngs = []
    for pdf in (lean, tmp_path / "full.pdf"):
        png = pdf.with_suffix(".png")
        cmd = ["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=png16m", "-r200"]
        subprocess.run([*cmd, f"-sOutputFile={png}", str(pdf)], check=True)
        pngs.append(png.read_bytes())
    assert pngs[0] == pngs[1]


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_save_figure_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str):
    studies, pooled = hair_density_example()
    fig = plots.forest_plot(studies, pooled, xlabel="MD")
    target = tmp_path / "forest"
    plots.save_figure(fig, target, formats=(fmt,))
    good = (tmp_path / f"forest.{fmt}").read_bytes()

    def boom(*args, **kwargs):
        handle = args[0]  # a text buffer for SVG (encoded once it is complete), else the file
        handle.write("<half-written" if isinstance(handle, io.TextIOBase) else b"<half-written")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.save_figure(fig, target, formats=(fmt,))
    assert (tmp_path / f"forest.{fmt}").read_bytes() == good
    assert os.listdir(tmp_path) == [f"forest.{fmt}"]


def test_save_figure_rejects_bad_formats(tmp_path: Path):
    fig = Figure()
    with pytest.raises(ValueError, match="unsupported"):
        plots.save_figure(fig, tmp_path / "x", formats=("jpg",))
    with pytest.raises(ValueError, match="repeated"):
        plots.save_figure(fig, tmp_path / "x", formats=("png", ".PNG"))


# --------------------------------------------------------------------------
# Shared engine: table plus intervals, label placer, legend builder
# --------------------------------------------------------------------------

from hairtrial.plots import intervals as intervals_mod  # noqa: E402
from hairtrial.plots import labels as labels_mod  # noqa: E402
from hairtrial.plots import legends as legends_mod  # noqa: E402


def _interval_axes():
    table = intervals_mod.Table(4.0, 2.0)
    iv = table.interval_axes(1.0, 0.2, 2.0, 1.8, (1.8, 0.2))
    iv.scale(-1.0, 1.0, [-1.0, 0.0, 1.0])
    return table, iv


def test_interval_axes_frame_and_scale():
    table, iv = _interval_axes()
    ax = iv.ax
    assert table.fig.get_size_inches().tolist() == [4.0, 2.0]
    assert ax.get_position().bounds == pytest.approx((0.25, 0.1, 0.5, 0.8))
    assert ax.get_ylim() == (1.8, 0.2)  # rows counted from the top
    assert not ax.spines["left"].get_visible() and not ax.get_yticks().size
    assert ax.get_xlim() == (-1.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["\u22121", "0", "1"]
    assert [ln.get_xdata()[0] for ln in ax.lines] == [0.0]  # the line of no effect


def test_interval_axes_cut_whiskers_end_in_arrows():
    _, iv = _interval_axes()
    n = len(iv.ax.lines)
    iv.whisker(-0.5, 0.5, 1.0)  # inside: one line, no arrows
    assert len(iv.ax.lines) == n + 1
    iv.whisker(-3.0, 0.5, 1.2)  # cut on the left: line plus a left arrowhead
    new = iv.ax.lines[n + 1 :]
    assert [ln.get_marker() for ln in new] == ["None", "<"]
    assert new[0].get_xdata().tolist() == [-1.0, 0.5]
    iv.whisker(2.0, 3.0, 1.4)  # entirely outside: nothing
    iv.whisker(math.nan, 0.5, 1.4)  # not estimable: nothing
    assert len(iv.ax.lines) == n + 3
    iv.whisker(-0.2, 0.2, 1.6, caps=0.05)  # caps: two short vertical lines
    assert len(iv.ax.lines) == n + 6


def test_interval_axes_square_and_diamond():
    _, iv = _interval_axes()
    n = len(iv.ax.lines)
    iv.square(0.5, 1.0, 4.0)
    iv.square(5.0, 1.0, 4.0)  # off the axis: not drawn
    assert len(iv.ax.lines) == n + 1 and iv.ax.lines[-1].get_marker() == "s"
    iv.diamond(-0.2, 0.1, 0.4, 1.5, 0.06, "black", gid="pooled")
    (patch,) = iv.ax.patches
    assert patch.get_gid() == "pooled"
    assert patch.get_xy()[:4].tolist() == [[-0.2, 1.5], [0.1, 1.44], [0.4, 1.5], [0.1, 1.56]]


def test_square_side_is_area_proportional():
    big = intervals_mod.square_side(100.0, 100.0)
    assert intervals_mod.square_side(25.0, 100.0) == pytest.approx(big / 2)
    assert intervals_mod.square_side(0.01, 100.0) == 2.5  # never smaller
    assert intervals_mod.square_side(math.nan, 100.0) == pytest.approx(0.45 * big)


def test_table_text_marks_and_footnotes():
    table = intervals_mod.Table(4.0, 2.0)
    m = layout_mod.Measurer(layout_mod.family())
    table.text(0.1, 0.5, "")  # empty text: nothing
    table.text(0.1, 0.5, "Study A", gid="a")
    table.marks(0.5, 0.5, ["a", "b"])
    (centres, rule_y, y) = intervals_mod.header_lines(0.2, 2, 0.05)
    assert centres == pytest.approx(
        [0.2 + intervals_mod.LINE_H / 2, 0.2 + 1.5 * intervals_mod.LINE_H]
    )
    assert rule_y == pytest.approx(0.2 + 2 * intervals_mod.LINE_H + 0.02)
    notes = [("", "Model line", "method0"), ("a", "A long footnote " * 8, "provenance:x")]
    lines, y_end = intervals_mod.footnote_lines(notes, 3.8, y, m)
    assert len(lines) > 2 and y_end == pytest.approx(y + len(lines) * intervals_mod.LINE_H)
    assert lines[0][1:4] == ("", "Model line", "method0") and lines[0][4] == 0.0
    assert lines[1][1] == "a" and lines[1][4] > 0  # the marked note hangs indented
    assert all(ln[1] == "" and ln[3] is None for ln in lines[2:])  # continuation lines
    table.write_footnotes(lines)
    texts = [t.get_text() for t in table.fig.texts]
    assert texts[:2] == ["Study A", "a,b"] and "Model line" in texts
    assert [t.get_gid() for t in table.fig.texts][0] == "a"


#: Single-line label text: Latin letters with diacritics, digits, punctuation, symbols, spaces.
LABEL_TEXT = st.text(
    st.characters(max_codepoint=0x17F, categories=("L", "N", "P", "S", "Zs")),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(
    text=LABEL_TEXT,
    size=st.sampled_from([5.0, 6.5, 7.0, 9.0]),
    weight=st.sampled_from(["normal", "bold"]),
    style=st.sampled_from(["normal", "italic"]),
)
def test_measured_width_is_agg_width(text, size, weight, style):
    """The shared width cache gives what Agg measures, under each rcParams setting it reads."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    family = layout_mod.family()
    prop = FontProperties(family=family, size=size, weight=weight, style=style)
    for hinting in ("no_hinting", "force_autohint"):
        with matplotlib.rc_context({"text.hinting": hinting}):
            fresh = RendererAgg(10, 10, 300.0).get_text_width_height_descent(text, prop, False)
            measured = layout_mod.Measurer(family).width(text, size, weight, style)
            assert measured == fresh[0] / 300.0, hinting


@settings(max_examples=30, deadline=None)
@given(
    text=LABEL_TEXT,
    size=st.sampled_from([5.0, 7.0, 9.0]),
    weight=st.sampled_from(["normal", "bold"]),
    dpi=st.sampled_from([72.0, 150.0, 300.0]),
)
def test_text_metrics_are_agg_metrics(text, size, weight, dpi):
    """The process-wide text measurement gives Agg's width, height and descent, also when a
    setting it reads changes between two measurements of the same text: hinting, and the
    font a generic family name resolves to."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    from hairtrial.plots.metrics import text_metrics

    prop = FontProperties(family="sans-serif", size=size, weight=weight)
    settings = [
        {"text.hinting": "no_hinting", "font.sans-serif": ["DejaVu Sans"]},
        {"text.hinting": "force_autohint", "font.sans-serif": ["DejaVu Sans"]},
        {"text.hinting": "no_hinting", "font.sans-serif": ["DejaVu Sans Mono"]},
    ]
    for rc in settings:
        with matplotlib.rc_context(rc):
            fresh = RendererAgg(10, 10, dpi).get_text_width_height_descent(text, prop, False)
            assert text_metrics(text, prop, dpi) == fresh, rc


def test_png_canvas_measures_with_the_shared_cache():
    """The PNG canvas draws with the measuring renderer (one per size, as Agg's own), and
    mathtext is measured by Agg's parser as before."""
    from matplotlib.font_manager import FontProperties

    from hairtrial.plots import png
    from hairtrial.plots.metrics import MeasuredRendererAgg, text_metrics

    fig = Figure(figsize=(2, 1), dpi=100)
    canvas = png.FigureCanvas(fig)
    renderer = canvas.get_renderer()
    assert isinstance(renderer, MeasuredRendererAgg) and canvas.get_renderer() is renderer
    fig.set_dpi(200)
    assert canvas.get_renderer() is not renderer
    prop = FontProperties(size=8)
    plain = canvas.get_renderer().get_text_width_height_descent("x2", prop, False)
    assert plain == text_metrics("x2", prop, 200.0)
    math = canvas.get_renderer().get_text_width_height_descent("$x^2$", prop, True)
    assert math != plain


def _text_figure(texts: list[str], angles: list[float], sizes: list[float]) -> Figure:
    """A figure of labels at several sizes and rotations, one in a fallback-prone family,
    and mathtext (glyphs of several fonts and sizes, and boxes: a fraction's bar)."""
    fig = Figure(figsize=(3, 2), dpi=100)
    ax = fig.add_subplot()
    ax.set_title(texts[0])
    ax.text(0.6, 0.8, r"$\frac{\tau^2}{k} \leq \sqrt{I^2_{\mathrm{max}}}$", rotation=angles[0])
    ax.set_xlabel(f"{texts[0]}\n{texts[-1]}")  # two lines: the font's line height and gap
    for i, (text, angle, size) in enumerate(zip(texts, angles, sizes, strict=True)):
        ax.text(0.1 + 0.05 * i, 0.1 + 0.15 * i, text, rotation=angle, fontsize=size,
                fontweight="bold" if i % 2 else "normal")  # fmt: skip
    return fig


@settings(max_examples=25, deadline=None)
@given(
    # labels as the plots write them: a literal dollar escaped (two would start mathtext)
    texts=st.lists(LABEL_TEXT.map(lambda t: t.replace("$", r"\$")), min_size=1, max_size=4),
    angles=st.lists(st.sampled_from([0.0, 90.0, 33.0, -12.5]), min_size=4, max_size=4),
    sizes=st.lists(st.sampled_from([5.0, 7.0, 9.5]), min_size=4, max_size=4),
    family=st.sampled_from(["DejaVu Sans", "DejaVu Sans Mono"]),
)
def test_png_and_svg_canvases_write_matplotlibs_bytes(texts, angles, sizes, family):
    """The canvases that keep text layouts for the process draw what matplotlib's own
    canvases draw (PNG pixels, SVG bytes), figure after figure: labels repeated across
    figures (cache hits), rotated text drawn by Agg before the SVG is written (Agg leaves a
    transform on the shared font objects), and a changed font family between figures."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    from hairtrial.plots import png, svg

    texts = (texts * 4)[:4]
    rc = {"font.family": "sans-serif", "font.sans-serif": [family], "svg.hashsalt": "t",
          "svg.fonttype": "path"}  # fmt: skip
    with matplotlib.rc_context(rc):
        for dpi in (100.0, 150.0):  # the second figure repeats every label of the first
            fig = _text_figure(texts, angles, sizes)
            fig.set_dpi(dpi)
            ours, theirs = png.FigureCanvas(fig), FigureCanvasAgg(fig)
            FigureCanvasAgg.draw(ours)
            ours_rgba = np.asarray(ours.buffer_rgba()).copy()
            theirs.draw()
            assert np.array_equal(ours_rgba, np.asarray(theirs.buffer_rgba()))
            written = []
            for canvas in (svg.FigureCanvas(fig), FigureCanvasSVG(fig)):
                out = io.StringIO()
                canvas.print_svg(out, metadata={"Date": None})
                written.append(out.getvalue())
            assert written[0] == written[1]


def test_a_font_added_later_is_found(tmp_path):
    """The font files and line heights kept for the process follow the fonts matplotlib
    knows: a family that resolved to the fallback resolves to its font once that is added
    (``fontManager.addfont``), as matplotlib's own lookup does."""
    import warnings

    from fontTools.ttLib import TTFont
    from matplotlib import font_manager
    from matplotlib.font_manager import FontProperties, fontManager

    from hairtrial.plots.metrics import font_files, font_height_metrics

    family = "Hairtrial Test Sans"
    prop = FontProperties(family=family, size=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "findfont: Font family ... not found"
        before = font_files(prop)
    assert before == fontManager._find_fonts_by_props(prop)
    source = font_manager.findfont(FontProperties(family="DejaVu Serif"))
    font = TTFont(source)  # DejaVu Serif renamed: other metrics than the fallback's
    for record in font["name"].names:
        if record.nameID in (1, 16):
            record.string = family
    path = tmp_path / "hairtrial_test_sans.ttf"
    font.save(str(path))
    ttflist = list(fontManager.ttflist)
    try:
        fontManager.addfont(str(path))
        after = font_files(prop)
        assert after != before and [str(p) for p in after][0] == str(path)
        assert font_height_metrics(prop, 100.0) == font_height_metrics(
            FontProperties(family="DejaVu Serif", size=9), 100.0
        )
    finally:
        fontManager.ttflist[:] = ttflist
        fontManager._findfont_cached.cache_clear()


@settings(max_examples=30, deadline=None)
@given(text=LABEL_TEXT, size=st.sampled_from([5.0, 7.0, 9.0]))
def test_svg_text_metrics_and_glyphs_are_matplotlibs(text, size):
    """The process-wide SVG measurement and glyph layout give TextToPath's, also when a
    setting they read changes between two calls with the same text (the font a generic
    family resolves to); the shared outlines cannot be changed in place."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    from hairtrial.plots.metrics import MeasuredTextToPath

    prop = FontProperties(family="sans-serif", size=size)
    for family in ("DejaVu Sans", "DejaVu Sans Mono", "DejaVu Sans"):
        with matplotlib.rc_context({"font.sans-serif": [family]}):
            fresh, ours = TextToPath(), MeasuredTextToPath()
            for string, ismath in ((text, False), (r"$\tau^2_{i}$", True)):  # mathtext too
                expected = fresh.get_text_width_height_descent(string, prop, ismath)
                assert ours.get_text_width_height_descent(string, prop, ismath) == expected
            seen = {"absent": (np.zeros((1, 2)), np.zeros(1))}
            want = fresh.get_glyphs_with_font(fresh._get_font(prop), text, glyph_map=dict(seen),
                                              return_new_glyphs_only=True)  # fmt: skip
            got = ours.get_glyphs_with_font(ours._get_font(prop), text, glyph_map=dict(seen),
                                            return_new_glyphs_only=True)  # fmt: skip
            assert got[0] == want[0] and got[2] == want[2] == []
            assert list(got[1]) == list(want[1])
            for key, (verts, codes) in got[1].items():
                assert np.array_equal(verts, want[1][key][0])
                assert np.array_equal(codes, want[1][key][1])
                with pytest.raises(ValueError):
                    verts[...] = 0


def test_layout_ticks_and_limits():
    m = layout_mod.Measurer(layout_mod.family())
    wide = layout_mod.fit_ticks(-12.0, 95.0, 3.0, m, 7.0)
    narrow = layout_mod.fit_ticks(-12.0, 95.0, 0.6, m, 7.0)
    assert len(narrow) < len(wide) and len(narrow) >= 2
    assert layout_mod.tick_decimals([0.25, 0.5]) == 2
    lo, hi = layout_mod.axis_limits([1.0, 2.0], [(0.5, 50.0)])
    assert lo < 0 < 2.0 < hi <= 4.0  # the wide CI is cut, 0 is shown


def test_best_position_stops_at_a_free_place():
    tried = []

    def cost(ring, k, cand):
        tried.append(cand)
        return cand, None

    choice = labels_mod.best_position([[5.0, 3.0], [0.0, 1.0], [2.0]], cost)
    assert (choice.cost, choice.ring, choice.index) == (0.0, 1, 0)
    assert tried == [5.0, 3.0, 0.0]  # nothing after the free place
    first = labels_mod.best_position([[2.0, 2.0]], lambda r, k, c: (c, k))
    assert first.info == 0  # ties: the first candidate
    done = labels_mod.best_position(
        [[5.0, 3.0], [1.0]], lambda r, k, c: (c, None), lambda b, ring: b.cost < 4
    )
    assert done.candidate == 3.0  # good enough after the first ring
    with pytest.raises(ValueError):
        labels_mod.best_position([[]], lambda r, k, c: (0.0, None))


def test_crowded_first():
    pts = [(0.0, 0.0), (10.0, 0.0), (10.2, 0.0), (10.4, 0.0), (0.3, 0.0)]
    assert labels_mod.crowded_first(pts, 1.0) == [1, 2, 3, 0, 4]
    assert labels_mod.crowded_first(pts, 1.0, lambda i: (-i,)) == [3, 2, 1, 4, 0]


def test_legend_blocks_flow_into_rows():
    from matplotlib.lines import Line2D

    fig = layout_mod.fixed_figure(3.0, 3.0)
    blocks = legends_mod.LegendBlocks(fig, layout_mod.family(), gap=0.2)
    dot = Line2D([], [], ls="none", marker="o", ms=5)
    for title in ("First block", "Second block", "Third block"):
        blocks.add([dot, dot], ["an entry", "another entry"], title)
    h_wide = blocks.flow(20.0, 0.05)
    assert blocks.rows == [[0, 1, 2]]
    h_narrow = blocks.flow(1.5, 0.05)
    assert blocks.rows == [[0], [1], [2]]
    assert h_narrow == pytest.approx(3 * h_wide + 2 * 0.05)
    y = blocks.place(0.1, 3.0, 0.05, lambda v: (3.0 - v) / 3.0)
    assert y == pytest.approx(0.1 + h_narrow + 0.05)
    assert blocks.labels() == ["an entry", "another entry"] * 3
    handles, names = legends_mod.size_handles([36.0, 68.0, 100.0], lambda n: 2.0 * n, 0.8)
    assert names == ["20", "50", "100"]
    assert handles[-1].get_markersize() == pytest.approx(math.sqrt(200.0))


# --------------------------------------------------------------------------
# ax=: single-axes plots draw into a given Axes
# --------------------------------------------------------------------------


def _host() -> tuple[Figure, object]:
    host = Figure(figsize=(5.0, 4.0))
    return host, host.add_subplot()


_AX_STUDIES = pd.DataFrame(
    {
        "study": list("ABCD"),
        "label": ["A 2013", "B 2018", "C 2020", "D 2021"],
        "yi": [0.1, 0.4, 0.9, 0.3],
        "vi": [0.02, 0.05, 0.04, 0.1],
        "weight_pct": [30.0, 30.0, 25.0, 15.0],
        "provenance": ["reported", "from_se", "reported", "reported"],
        "mean_experimental": [91.4, 40.0, 30.0, 60.0],
        "mean_control": [22.2, 25.0, 10.0, 30.0],
        "n_experimental": [50, 18, 30, 40],
        "n_control": [50, 18, 30, 40],
    }
)


def _draw_single(kind: str, ax=None) -> Figure:
    from hairtrial.plots.bubble import bubble_plot
    from hairtrial.plots.influence import baujat_plot
    from hairtrial.plots.labbe import labbe_plot
    from hairtrial.plots.robustness import robustness_plot

    st = _AX_STUDIES
    if kind == "bubble":
        grid = pd.DataFrame({"dose": [0.0, 10.0], "pred": [0.0, 1.0], "ci_lower": [-0.2, 0.8],
                             "ci_upper": [0.2, 1.2], "pi_lower": [-0.5, 0.5],
                             "pi_upper": [0.5, 1.5]})  # fmt: skip
        return bubble_plot(st, [1, 4, 9, 5], grid, xlabel="Dose", ylabel="MD", title="T",
                           annotation="Slope 0.1", ax=ax)  # fmt: skip
    if kind == "baujat":
        bj = pd.DataFrame({"study": list("ABCD"), "x": [1.0, 2.0, 0.5, 3.0],
                           "y": [0.2, 1.0, 0.1, 2.0]})  # fmt: skip
        return baujat_plot(bj, provenance=list(st["provenance"]), title="T", ax=ax)
    if kind == "labbe":
        return labbe_plot(st, 30.0, unit_label="hairs/cm\u00b2", title="T", ax=ax)
    rows = pd.DataFrame({"group": ["Primary", "Imputation", "Imputation"],
                         "scenario": ["primary", "r = 0.2", "r = 0.8"], "k": [3, 3, 3],
                         "estimate": [30.0, 28.0, 33.0], "ci_lower": [10.0, 9.0, 12.0],
                         "ci_upper": [50.0, 47.0, 55.0], "primary": [True, False, False],
                         "notes": ["", "", ""]})  # fmt: skip
    return robustness_plot(rows, xlabel="MD", title="T", ax=ax)


@pytest.mark.parametrize("kind", ["bubble", "baujat", "labbe", "robustness"])
def test_single_axes_plots_draw_into_given_axes(kind: str, tmp_path: Path):
    own = _draw_single(kind)
    assert len(own.axes) == 1 and own.get_figwidth() != 5.0
    host, ax = _host()
    fig = _draw_single(kind, ax=ax)
    assert fig is host and host.axes == [ax]
    assert host.get_size_inches().tolist() == [5.0, 4.0]  # the caller's figure is kept
    assert not host.texts and not host.legends  # nothing outside the given axes
    assert ax.get_title(loc="left") == "T"
    assert ax.lines or ax.collections
    plots.save_figure(host, tmp_path / kind, formats=("png",), dpi=60)  # it renders


@pytest.mark.parametrize("kind", ["bubble", "baujat", "labbe", "robustness"])
def test_single_axes_plots_in_one_figure(kind: str):
    """Two plots side by side in one figure: each draws only into its own axes."""
    host = Figure(figsize=(8.0, 4.0))
    left, right = host.subplots(1, 2)
    _draw_single(kind, ax=right)
    assert not left.lines and not left.collections and not left.texts


def test_shared_module_doctests():
    import doctest

    for mod in (layout_mod, intervals_mod, labels_mod, legends_mod):
        result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, mod.__name__


# words as the figures' notes and labels have them: short and long, punctuation, a dash, a
# word wider than a narrow line
WRAP_WORDS = st.sampled_from(
    ["a", "of", "the", "trial", "minoxidil", "microneedling", "(week", "24)", "tau²", "I²,",
     "−0.35", "95%", "Hartung–Knapp", "heterogeneity;", "Supercalifragilisticexpialidocious",
     "W", "i", "—"]
)  # fmt: skip


def _greedy_wrap(m, text, max_w, size, style="normal", weight="normal"):
    """The word-by-word greedy wrap (the line measured after every word): the reference."""
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if m.width(trial, size, weight, style) <= max_w:
            current = trial
            continue
        if current:
            lines.append(current)
        current = word
        if m.width(current, size, weight, style) > max_w:
            current = m.ellipsize(current, max_w, size, weight)
    return [*lines, current] if current or not lines else lines


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(WRAP_WORDS, max_size=40),
    max_w=st.floats(0.1, 5.0),
    size=st.sampled_from([6.0, 7.5, 9.0]),
    weight=st.sampled_from(["normal", "bold"]),
    style=st.sampled_from(["normal", "italic"]),
)
def test_wrap_gives_the_lines_of_the_word_by_word_greedy_wrap(words, max_w, size, weight, style):
    """The wrap that estimates each line from its words' widths breaks lines where the
    greedy wrap that measures the line after every word breaks them."""
    m = layout_mod.Measurer(layout_mod.family())
    text = " ".join(words)
    assert m.wrap(text, max_w, size, style=style, weight=weight) == _greedy_wrap(
        m, text, max_w, size, style=style, weight=weight
    )


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(WRAP_WORDS, min_size=2, max_size=30),
    cut=st.integers(1, 30),
    nudge=st.sampled_from([-1e-6, 0.0, 1e-6]),
    size=st.sampled_from([6.0, 7.5, 9.0]),
)
def test_wrap_breaks_as_the_greedy_wrap_at_a_lines_exact_width(words, cut, nudge, size):
    """Lines exactly as wide as (or a hair narrower or wider than) the first words: where
    an estimate from the words' widths is least sure, the measured line decides."""
    m = layout_mod.Measurer(layout_mod.family())
    text = " ".join(words)
    max_w = m.width(" ".join(words[: min(cut, len(words))]), size) + nudge
    assert m.wrap(text, max_w, size) == _greedy_wrap(m, text, max_w, size)
