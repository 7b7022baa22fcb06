"""Tests of hairtrial.report.document: the self-contained HTML report of a run.

Most tests build the report from a small synthetic results directory made in ``tmp_path``
(a few CSV tables, tiny PNGs drawn with matplotlib, a config snapshot, a trial list and a
notebook), so they are fast and do not need ``make run``. One test builds it from the real
``results/`` of ``make run`` when that exists.
"""

from __future__ import annotations

import base64
import doctest
import html
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from hairtrial.core.manifest import write_manifest  # noqa: E402
from hairtrial.report import document  # noqa: E402
from hairtrial.report.tables import format_value  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

CONFIG = {
    "assumptions": {
        "change_sd_correlation": 0.5,
        "p_bound_factor": 1,
        "split_scalp_correlation": 0.5,
    },
    "comparison": {"control": "minoxidil", "experimental": "minoxidil_microneedling"},
    "data": {"arms": "data/arms.csv", "studies": "data/studies.csv"},
    "figures": {"dpi": 300, "formats": ["png", "svg"]},
    "measures": ["MD", "SMD"],
    "meta_analysis": {
        "ci_methods": ["adhoc", "z"],
        "level": 0.95,
        "tau2_methods": ["REML", "DL", "FE"],
    },
    "outcomes": "all",
    "selection": {"studies": "primary"},
}

META_COLUMNS = [
    "outcome", "week", "measure", "method", "ci_method", "k", "estimate", "se", "ci_lower",
    "ci_upper", "pvalue", "pi_lower", "pi_upper", "tau2", "tau2_ci_lower", "tau2_ci_upper",
    "I2", "H2", "Q", "Q_df", "Q_pvalue", "converged", "notes",
]  # fmt: skip


def _meta_rows() -> list[list[object]]:
    """Outcome 'density' at week 12 has k = 2, 'count' at week 24 has k = 3 (primary)."""
    rows = []
    for outcome, week, k, est, lo, hi in (
        ("density", 12, 2, 5.5, 1.25, 9.75),
        ("count", 24, 3, 12.3456, -3.21, 27.9),
    ):
        for measure, scale in (("MD", 1.0), ("SMD", 0.05)):
            for method in ("REML", "DL", "FE"):
                for ci in ("adhoc", "z"):
                    shift = 0.0 if (method, ci) == ("REML", "adhoc") else 0.5
                    e = (est + shift) * scale
                    rows.append(
                        [outcome, week, measure, method, ci, k, e, 1.1 * scale,
                         lo * scale, hi * scale, 0.2, (lo - 10) * scale, (hi + 10) * scale,
                         0.0 if method == "FE" else 42.42 * scale**2, 0.0, 300.0, 61.23,
                         2.57, 5.1, k - 1, 0.08, True,
                         "tau2 Q-profile CI lower bound at 0" if measure == "SMD" else ""]
                    )  # fmt: skip
    return rows


def _study_effects() -> pd.DataFrame:
    rows = []
    for outcome, week, studies in (
        ("density", 12, ["alpha2010", "beta2015"]),
        ("count", 24, ["alpha2010", "beta2015", "gamma2020"]),
    ):
        for measure in ("MD", "SMD"):
            for i, study in enumerate(studies):
                prov = {
                    "alpha2010": "n_split_equally;from_p_value",
                    "beta2015": "unit_converted;from_p_bound",
                    "gamma2020": "reported",
                }[study]
                rows.append(
                    {
                        "outcome": outcome,
                        "week": week,
                        "measure": measure,
                        "study": study,
                        "yi": 3.0 + i,
                        "vi": 1.5,
                        "ci_lower": 0.5,
                        "ci_upper": 6.5 + i,
                        "weight_pct": 100 / len(studies),
                        "n_control": 20,
                        "n_experimental": 20,
                        "provenance": prov,
                        "label": study[:-4].capitalize() + " " + study[-4:],
                        "year": int(study[-4:]),
                        "design": "parallel",
                        "unit": "hairs/cm2",
                        "mean_experimental": 10.0,
                        "sd_experimental": 4.0,
                        "mean_control": 6.0,
                        "sd_control": 4.0,
                        "flags": "p_value_secondary_source" if study == "beta2015" else "",
                    }
                )
    return pd.DataFrame(rows)


def _data_quality() -> pd.DataFrame:
    rows = []
    for outcome, week in (("density", 12), ("count", 24)):
        for arm in ("MN", "Min"):
            rows.append(
                [
                    "alpha2010",
                    arm,
                    outcome,
                    week,
                    "n",
                    20,
                    "participants",
                    "n_split_equally",
                    "split",
                    "n_randomised=40",
                    "equal allocation",
                ]
            )
            rows.append(
                [
                    "alpha2010",
                    arm,
                    outcome,
                    week,
                    "sd",
                    4.0,
                    "hairs/cm2",
                    "from_p_value",
                    "t-test",
                    "p = 0.04",
                    "equal SDs",
                ]
            )
            rows.append(
                [
                    "beta2015",
                    arm,
                    outcome,
                    week,
                    "sd",
                    4.0,
                    "hairs/cm2",
                    "unit_converted;from_p_bound",
                    "t-test",
                    "p < 0.01",
                    "bound as value",
                ]
            )
    # fmt: skip
    cols = "study,arm,outcome,week,quantity,value,unit,provenance,method,inputs,assumption"
    return pd.DataFrame(rows, columns=cols.split(","))


def _png(path: Path, colour: str) -> None:
    fig, ax = plt.subplots(figsize=(1.2, 0.8))
    ax.plot([0, 1], [0, 1], color=colour)
    fig.savefig(path, format="png", dpi=40, metadata={"Software": None})
    plt.close(fig)


@pytest.fixture
def synthetic(tmp_path: Path) -> dict[str, Path]:
    """A small results directory and data directory; returns their paths."""
    results = tmp_path / "results"
    tables = results / "tables"
    figures = results / "figures"
    notebooks = results / "notebooks"
    data = tmp_path / "data"
    for d in (tables, figures, notebooks, data):
        d.mkdir(parents=True)
    pd.DataFrame(_meta_rows(), columns=META_COLUMNS).to_csv(
        tables / "meta_analysis.csv", index=False
    )
    _study_effects().to_csv(tables / "study_effects.csv", index=False)
    _data_quality().to_csv(tables / "data_quality.csv", index=False)
    pd.DataFrame({"note": ["delta2021 / MN / count / week 24: no baseline; not used"]}).to_csv(
        tables / "excluded.csv", index=False
    )
    pd.DataFrame({"thing": ["a", "b"], "pvalue": [0.00001, 0.5]}).to_csv(
        tables / "mystery_table.csv", index=False
    )
    (tables / "mystery_table.md").write_text("not a CSV: ignored\n", encoding="utf-8")
    for stem, colour in (
        ("forest_count_week24_MD", "C0"),
        ("leave_one_out_count_week24_MD", "C1"),
        ("galaxy_count_week24_SMD", "C2"),
        ("prisma", "C3"),
    ):
        _png(figures / f"{stem}.png", colour)
    (figures / "forest_count_week24_MD.svg").write_text("<svg/>", encoding="utf-8")
    (results / "config.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    (notebooks / "01_evidence.html").write_text("<html></html>", encoding="utf-8")
    (notebooks / "01_evidence.ipynb").write_text(
        '{"cells": [{"cell_type": "markdown", "source": ["# The evidence\\n", "\\n", '
        '"What the analysis `stands` on."]}]}',
        encoding="utf-8",
    )
    pd.DataFrame(
        {
            "study": ["alpha2010", "beta2015", "gamma2020", "delta2021", "eps2022"],
            "year": [2010, 2015, 2020, 2021, 2022],
            "first_author": ["Alpha A", "Beta B", "Gamma G", "Delta D", "Eps E"],
            "design": ["parallel"] * 5,
            "primary": ["yes", "yes", "yes", "yes", "no"],
            "status": ["included"] * 3 + ["included", "included_flagged"],
            "n_randomised": [40, 40, 40, 30, 20],
            "rob": [None] * 5,
        }
    ).to_csv(data / "studies.csv", index=False)
    made = sorted(p for d in (tables, figures, notebooks) for p in d.iterdir())
    write_manifest(results / "manifests" / "analysis.csv", made, results)
    return {"results": results, "data": data, "out": results / "report" / "report.html"}


def _build(paths: dict[str, Path], out: Path | None = None) -> str:
    out = out or paths["out"]
    path = document.build_report(paths["results"], data_dir_or_config=paths["data"], out_path=out)
    assert path == out
    return out.read_text(encoding="utf-8")


def _section(text: str, section_id: str) -> str:
    start = text.index(f'<section id="{section_id}">')
    return text[start : text.index("</section>", start)]


def _plain(fragment: str) -> str:
    """Visible text of an HTML fragment, with the typographic minus as a hyphen."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("−", "-")


# ---------------------------------------------------------------------------------------


def test_self_contained_no_paths(synthetic: dict[str, Path], tmp_path: Path) -> None:
    text = _build(synthetic)
    assert 'src="http' not in text
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "<script" not in text and "@import" not in text
    srcs = re.findall(r'src="([^"]*)"', text)
    assert srcs and all(
        s.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for s in srcs
    )
    assert not re.search(r"url\(", text)
    assert str(tmp_path) not in text
    assert str(ROOT) not in text
    assert not re.search(r'(?:href|src)="/', text)
    # no clock in the output
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text)


def test_every_table_has_a_numbered_caption(synthetic: dict[str, Path]) -> None:
    text = _build(synthetic)
    stems = sorted(p.stem for p in (synthetic["results"] / "tables").glob("*.csv"))
    numbers = [int(n) for n in re.findall(r'<span class="label">Table (\d+)\.</span>', text)]
    assert numbers == list(range(1, len(numbers) + 1))  # numbered in order of appearance
    for stem in stems:
        m = re.search(
            rf'<div class="table-wrap[^"]*" id="table-{stem}">\s*<table>\s*<caption>'
            r'<span class="label">Table \d+\.</span> ([^<]+)',
            text,
        )
        assert m, stem
        assert m.group(1).strip()
    # the unregistered table gets the generic caption and format_value rounding
    assert "Mystery table (results/tables/mystery_table.csv)." in text
    assert "&lt; 0.0001" in _section(text, "tables")


def test_every_figure_embedded_with_a_numbered_caption(synthetic: dict[str, Path]) -> None:
    text = _build(synthetic)
    figures = synthetic["results"] / "figures"
    pngs = sorted(figures.glob("*.png"))
    numbers = re.findall(r'<span class="label">Figure (\d+)\.</span>', text)
    assert [int(n) for n in numbers] == list(range(1, len(pngs) + 1))
    for png in pngs:
        block = re.search(rf'<figure id="figure-{png.stem}">(.*?)</figure>', text, re.S)
        assert block, png.stem
        # the smaller of the PNG and its SVG twin
        svg = png.with_suffix(".svg")
        if svg.exists() and svg.stat().st_size < png.stat().st_size:
            embedded, mime = svg, "image/svg+xml"
        else:
            embedded, mime = png, "image/png"
        data = base64.b64encode(embedded.read_bytes()).decode("ascii")
        assert f'src="data:{mime};base64,{data}"' in block.group(1)
        assert re.search(r"Figure \d+\.</span> \S", block.group(1))
    # registry captions by kind (including a kind with underscores), generic for unknown
    forest = re.search(r'id="figure-forest_count_week24_MD">(.*?)</figure>', text, re.S)
    assert "Forest plot of count at week 24 (MD)" in forest.group(1)
    assert "Also available as SVG" in forest.group(1)
    loo = re.search(r'id="figure-leave_one_out_count_week24_MD">(.*?)</figure>', text, re.S)
    assert "Leave-one-out analysis of count at week 24 (MD)" in loo.group(1)
    assert "Galaxy plot of count at week 24 (SMD)" in text
    # the PRISMA diagram comes first (registry order)
    assert text.index('id="figure-prisma"') < text.index('id="figure-forest_count')


def test_byte_identical(synthetic: dict[str, Path], tmp_path: Path) -> None:
    first = synthetic["out"]
    _build(synthetic)
    a = first.read_bytes()
    _build(synthetic)
    assert first.read_bytes() == a
    second = synthetic["results"] / "report" / "again.html"  # same directory: same links
    _build(synthetic, second)
    assert second.read_bytes() == a


def test_summary_numbers_match_table(synthetic: dict[str, Path]) -> None:
    text = _build(synthetic)
    summary = _plain(_section(text, "summary").split("<table>")[0])
    meta = pd.read_csv(synthetic["results"] / "tables" / "meta_analysis.csv")
    primary = meta[
        (meta.outcome == "count") & (meta.measure == "MD") & (meta.method == "REML")
        & (meta.ci_method == "adhoc")
    ].iloc[0]  # fmt: skip
    assert document.primary_model(meta, CONFIG).equals(primary)
    for col in ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper", "tau2", "I2"):
        assert format_value(col, primary[col]) in summary, col
    assert "count at week 24" in summary
    assert "with 3 trials (Alpha 2010, Beta 2015 and Gamma 2020)" in summary
    assert "k = 3" in summary
    assert "The confidence interval includes 0" in summary
    # derived vs reported, from data_quality (alpha: n and SD derived; beta: SD derived)
    assert "4 of the 6 arm SDs were derived" in summary
    assert "6 of the 18 arm-level numbers" in summary  # alpha: 2 n + 2 SD; beta: 2 SD
    assert "Beta 2015 (p_value_secondary_source)" in summary
    assert "Risk of bias has not been assessed" in summary
    # the SMD of the same outcome is summarised too
    smd = meta[
        (meta.outcome == "count") & (meta.measure == "SMD") & (meta.method == "REML")
        & (meta.ci_method == "adhoc")
    ].iloc[0]  # fmt: skip
    assert format_value("estimate", smd["estimate"]) in summary


def test_every_sd_derived_is_said(synthetic: dict[str, Path]) -> None:
    dq = _data_quality()
    extra = dq[(dq.study == "alpha2010") & (dq.quantity == "sd")].copy()
    extra["study"] = "gamma2020"
    tables = synthetic["results"] / "tables"
    pd.concat([dq, extra]).to_csv(tables / "data_quality.csv", index=False)
    summary = _plain(_section(_build(synthetic), "summary"))
    assert "Every SD was derived, none reported: all 6 arm SDs" in summary


def test_methods_name_exactly_the_codes_present(synthetic: dict[str, Path]) -> None:
    text = _build(synthetic)
    methods = _section(text, "methods")
    listed = re.findall(r"<dt><code>([a-z_]+)</code></dt>", methods)
    present = {"n_split_equally", "from_p_value", "unit_converted", "from_p_bound"}
    assert set(listed) == present
    assert listed == document.provenance_codes_present(synthetic["results"] / "tables")
    absent = set(document.PROVENANCE) - present - {"reported"}
    assert not any(code in methods for code in absent)
    assert "p_bound_factor = 1" in methods  # the assumed value of a code that occurs
    assert "change_sd_correlation" not in methods  # no code uses it
    # estimators, CI methods and their references, as configured
    plain = _plain(methods)
    for cite in (
        "Viechtbauer 2005",
        "DerSimonian & Laird 1986",
        "Hartung & Knapp 2001",
        "Röver et al. 2015",
        "Viechtbauer 2007",
        "Higgins & Thompson 2002",
        "Cochrane Handbook 2022",
    ):
        assert cite in plain, cite
    assert "Paule & Mandel" not in plain  # PM is not in this config
    for name in ("Python", "numpy", "scipy", "pandas", "matplotlib", "snakemake", "hairtrial"):
        assert f"<td>{name}</td>" in methods
    assert "3.8-1" in methods and "metafor" in methods


def test_evidence_notebooks_config(synthetic: dict[str, Path]) -> None:
    text = _build(synthetic)
    evidence = _plain(_section(text, "evidence"))
    assert "Alpha 2010" in evidence and "Eps 2022" in evidence
    assert "count, week 24; density, week 12" in evidence
    assert "not in the primary selection" in evidence
    assert "numbers given but not usable" in evidence  # delta2021 is in excluded.csv
    nb = _section(text, "notebooks")
    assert 'href="../notebooks/01_evidence.html"' in nb
    assert "The evidence" in nb and "What the analysis stands on." in nb
    assert "tau2_methods:" in _section(text, "configuration")


def test_data_config_forms(
    synthetic: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data dir, a studies.csv, a config file and a config mapping give the same report."""
    expected = _build(synthetic)
    cfg_path = tmp_path / "config" / "my.yaml"
    cfg_path.parent.mkdir()
    cfg_path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")  # data/studies.csv
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not found from the working directory: the config's parent
    for source in (synthetic["data"] / "studies.csv", cfg_path):
        out = document.build_report(
            synthetic["results"], data_dir_or_config=source, out_path=synthetic["out"]
        )
        assert out.read_text(encoding="utf-8") == expected
    mapping = {**CONFIG, "data": {"studies": str(synthetic["data"] / "studies.csv")}}
    out = document.build_report(
        synthetic["results"], data_dir_or_config=mapping, out_path=synthetic["out"]
    )
    assert out.read_text(encoding="utf-8") == expected
    monkeypatch.chdir(tmp_path)  # relative data paths are taken from the working directory
    out = document.build_report(
        synthetic["results"], data_dir_or_config={"data": {}}, out_path=synthetic["out"]
    )
    assert out.read_text(encoding="utf-8") == expected


def test_notebook_links_only_inside_results(synthetic: dict[str, Path], tmp_path: Path) -> None:
    outside = tmp_path / "somewhere" / "deep" / "report.html"
    text = _build(synthetic, outside)
    nb = _section(text, "notebooks")
    assert "href=" not in nb and "notebooks/01_evidence.html" in nb


def test_only_what_this_run_made(synthetic: dict[str, Path], tmp_path: Path) -> None:
    """Files in results/ that no manifest lists (another run's) never appear."""
    expected = _build(synthetic)
    results = synthetic["results"]
    _png(results / "figures" / "forest_stale_week1_MD.png", "C4")
    pd.DataFrame({"outcome": ["stale"]}).to_csv(results / "tables" / "stale.csv", index=False)
    (results / "notebooks" / "99_stale.html").write_text("<html></html>", encoding="utf-8")
    text = _build(synthetic)
    assert text == expected
    assert "forest_stale" not in text and "table-stale" not in text and "99_stale" not in text
    # the list of outputs can also be given: then exactly those are reported
    only = ["tables/meta_analysis.csv", "figures/prisma.png"]
    out = document.build_report(
        results, data_dir_or_config=synthetic["data"], out_path=tmp_path / "r.html", outputs=only
    )
    text = out.read_text(encoding="utf-8")
    assert 'id="figure-prisma"' in text and 'id="figure-forest_count_week24_MD"' not in text
    assert 'id="table-meta_analysis"' in text and 'id="table-study_effects"' not in text


def test_empty_results_dir(tmp_path: Path) -> None:
    out = document.build_report(
        tmp_path / "nothing", data_dir_or_config=tmp_path / "nodata", out_path=tmp_path / "r.html"
    )
    text = out.read_text(encoding="utf-8")
    assert "no pooled model" in text and "This run wrote no figures." in text


def test_doctests() -> None:
    assert doctest.testmod(document, raise_on_error=False).failed == 0


def test_real_results(tmp_path: Path) -> None:
    results = ROOT / "results" / "default"
    if not (results / "manifests" / "analysis.csv").is_file():
        pytest.skip("results/ has no manifests: run `make run` first")
    out = document.build_report(
        results, data_dir_or_config=ROOT / "data", out_path=tmp_path / "report" / "report.html"
    )
    text = out.read_text(encoding="utf-8")
    made = [Path(p) for p in document.run_outputs(results)]
    for csv in (p for p in made if p.parent.name == "tables" and p.suffix == ".csv"):
        assert f'id="table-{csv.stem}"' in text
    for png in (p for p in made if p.parent.name == "figures" and p.suffix == ".png"):
        assert f'id="figure-{png.stem}"' in text
    assert str(ROOT) not in text and str(tmp_path) not in text
    meta = pd.read_csv(results / "tables" / "meta_analysis.csv")
    config = yaml.safe_load((results / "config.yaml").read_text(encoding="utf-8"))
    row = document.primary_model(meta, config)
    summary = _plain(_section(text, "summary"))
    assert format_value("estimate", row["estimate"]) in summary


def test_table_rows_are_escaped_cells_with_their_column_classes() -> None:
    """A table's rows as the report sets them: each cell escaped, a true minus in numeric
    columns, a break allowed after each ';' of a code list, the column's class on each cell
    (none for a column of middling text; written out here by hand)."""
    head = [
        {"name": "study", "label": "Study", "numeric": False},
        {"name": "yi", "label": "Estimate", "numeric": True},
        {"name": "flags", "label": "Flags", "numeric": False},
        {"name": "notes", "label": "Notes", "numeric": False},
    ]
    rows = [["A<B", "-1.5", "sd_imputed;sd_from_ci", "x" * 31], ["C & D", "2", "", "-2"]]
    table = document._table(head, rows, notes=["", "a;b"])
    assert [str(r["cells"]) for r in table["rows"]] == [
        '<td class="short">A&lt;B</td><td class="num">−1.5</td>'
        '<td>sd_imputed;<wbr>sd_from_ci</td><td class="text">' + "x" * 31 + "</td>",
        '<td class="short">C &amp; D</td><td class="num">2</td><td></td><td class="text">-2</td>',
    ]
    assert [str(r["note"]) for r in table["rows"]] == ["", "a;<wbr> b"]
