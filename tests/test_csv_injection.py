"""CSV outputs neutralise text cells that a spreadsheet would run as formulas (OWASP), in one
place (hairtrial.core.io.write_csv); numbers stay numbers; readers get the text back."""

import csv

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

from hairtrial.core.io import read_csv_output, write_csv


def test_formula_cells_are_neutralised_and_numbers_kept(tmp_path):
    df = pd.DataFrame(
        {
            "note": ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "plain", "-0.5"],
            "yi": [-0.5, 1.0, -2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    path = tmp_path / "t.csv"
    write_csv(df, path)
    rows = list(csv.reader(path.open(newline="")))[1:]
    assert [r[0] for r in rows] == [
        "'=HYPERLINK(\"http://x\")", "'+1+1", "'-2+3", "'@SUM(A1)", "'\tx", "plain", "-0.5"
    ]  # fmt: skip
    assert rows[0][1] == "-0.5"  # a number column is never touched
    back = read_csv_output(path, keep_default_na=False)
    assert back["note"].tolist()[:6] == df["note"].tolist()[:6]


@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
@example(["\r="])  # a CR inside a cell: unquoted, it broke the row before a formula
@example(["note\r\n=1+1", "x"])
def test_no_written_text_cell_starts_a_formula(tmp_path_factory, cells):
    path = tmp_path_factory.mktemp("inj") / "t.csv"
    write_csv(pd.DataFrame({"c": cells}), path)
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))[1:]
    assert len(rows) == len(cells)  # one row a cell: no line break inside a cell splits it
    for row in rows:
        cell = row[0] if row else ""
        if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and cell:
            float(cell)  # only a number may start so
