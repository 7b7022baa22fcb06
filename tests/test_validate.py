"""Bad input gets a message naming file, line, column, value and rule."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from hairtrial.data.validate import ARM_COLUMNS, DataValidationError, read_inputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path):
    for name in ("arms.csv", "studies.csv"):
        shutil.copy(ROOT / "data" / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, row: int, column: str, value: str) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    df.to_csv(path, index=False, lineterminator="\n")


def _problems(data_dir) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        read_inputs(data_dir / "arms.csv", data_dir / "studies.csv")
    return [str(p) for p in info.value.problems]


def test_default_data_is_valid():
    arms, studies = read_inputs(ROOT / "data" / "arms.csv", ROOT / "data" / "studies.csv")
    assert len(arms) > 0 and len(studies) > 0
    assert set(arms.study) <= set(studies.study)


@pytest.mark.parametrize(
    ("row", "column", "value", "rule"),
    [
        (1, "n", "-5", "must be > 0"),
        (1, "n", "12.5", "must be a whole number"),
        (0, "sd", "abc", "must be a finite number"),
        (0, "sd", "0", "must be > 0"),
        (0, "week", "-1", "must be >= 0"),
        (0, "stat", "level", "must be one of value, change"),
        (0, "unit", "hairs/mm2", "must be one of"),
        (0, "p_value", "1.5", "must lie strictly between 0 and 1"),
        (0, "p_relation", ">", "must be one of =, <"),
        (0, "study", "nosuch2020", "study is not listed in studies.csv"),
        (0, "mean", "", "each row needs a mean"),
        (0, "outcome", "Hair density", "must be a lower-case code"),
    ],
)
def test_cell_rule_is_named(data_dir, row, column, value, rule):
    _edit(data_dir / "arms.csv", row, column, value)
    problems = _problems(data_dir)
    line = row + 2
    expected_prefix = f"{data_dir / 'arms.csv'}, line {line}, column '{column}'"
    assert any(p.startswith(expected_prefix) and rule in p for p in problems), problems


def test_every_problem_is_reported_at_once(data_dir):
    _edit(data_dir / "arms.csv", 0, "sd", "-1")
    _edit(data_dir / "arms.csv", 2, "week", "x")
    assert len(_problems(data_dir)) == 2


def test_row_problems_are_reported_with_the_cells_problems(data_dir):
    """An empty row and a row with too few cells do not hide a bad cell further down: every
    problem of the file at once, in the order of its lines."""
    path = data_dir / "arms.csv"
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace(",change,", ",chnge,")  # a bad cell on line 7
    lines.insert(3, "")  # line 4: empty
    lines.insert(5, "dhurat2013,A")  # line 6: two cells
    path.write_text("\n".join(lines) + "\n")
    problems = _problems(data_dir)
    assert [p.split(":", 1)[0].rsplit("line ", 1)[1].split(",")[0] for p in problems] == [
        "4", "6", "9"
    ], problems  # fmt: skip
    assert "empty row" in problems[0] and "row has 2 cells" in problems[1]
    assert "column 'stat'" in problems[2] and "must be one of value, change" in problems[2]


def test_duplicate_row(data_dir):
    df = pd.read_csv(data_dir / "arms.csv", dtype=str, keep_default_na=False)
    pd.concat([df, df.iloc[[0]]]).to_csv(data_dir / "arms.csv", index=False)
    (p,) = _problems(data_dir)
    assert f"line {len(df) + 2}" in p and "duplicate" in p and "first on line 2" in p


def test_unknown_and_missing_columns(data_dir):
    df = pd.read_csv(data_dir / "arms.csv", dtype=str, keep_default_na=False)
    df.rename(columns={"sd": "SD", "stat": "statistic"}).to_csv(data_dir / "arms.csv", index=False)
    problems = _problems(data_dir)
    assert any("column 'SD'" in p and "unknown column" in p for p in problems)
    assert any("column 'stat'" in p and "required column is missing" in p for p in problems)


def test_units_of_one_outcome_must_convert(data_dir):
    _edit(data_dir / "arms.csv", 0, "unit", "um")
    problems = _problems(data_dir)
    assert any("cannot be converted" in p and "column 'unit'" in p for p in problems), problems


def test_change_at_baseline_rejected(data_dir):
    _edit(data_dir / "arms.csv", 0, "week", "0")
    assert any("cannot be at week 0" in p for p in _problems(data_dir))


def test_ci_order(data_dir):
    _edit(data_dir / "arms.csv", 0, "ci_lower", "5")
    _edit(data_dir / "arms.csv", 0, "ci_upper", "4")
    assert any("must be greater than ci_lower" in p for p in _problems(data_dir))


def test_quantile_order(data_dir):
    _edit(data_dir / "arms.csv", 0, "q1", "10")
    _edit(data_dir / "arms.csv", 0, "median", "5")
    _edit(data_dir / "arms.csv", 0, "q3", "20")
    assert any("quantiles out of order" in p for p in _problems(data_dir))


def test_arm_keeps_one_treatment(data_dir):
    # yu2018 arm "Minoxidil" appears at weeks 0 and 20; change one treatment
    df = pd.read_csv(data_dir / "arms.csv", dtype=str, keep_default_na=False)
    idx = df.index[(df.study == "yu2018") & (df.arm == "Minoxidil")][0]
    _edit(data_dir / "arms.csv", idx, "treatment", "other")
    assert any("an arm keeps one treatment" in p for p in _problems(data_dir))


def test_studies_file_rules(data_dir):
    _edit(data_dir / "studies.csv", 0, "design", "crossover")
    problems = _problems(data_dir)
    assert any("studies.csv, line 2, column 'design'" in p for p in problems), problems


def test_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match="file not found"):
        read_inputs(tmp_path / "arms.csv", tmp_path / "studies.csv")


def test_not_a_csv(data_dir):
    (data_dir / "arms.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataValidationError, match="arms.csv, line 1: byte ff is not UTF-8"):
        read_inputs(data_dir / "arms.csv", data_dir / "studies.csv")


def test_contract_is_documented():
    readme = (ROOT / "data" / "README.md").read_text()
    for col in ARM_COLUMNS:
        assert f"`{col.name}`" in readme, f"data/README.md does not document {col.name}"
