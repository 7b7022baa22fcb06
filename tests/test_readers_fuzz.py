"""Property-based fuzzing of every reader of user input: bad input gives Problems, never a crash.

Random bytes, random cells in a valid header, and random edits of the published files must
either be read or be rejected with :class:`DataValidationError` whose problems name the file
(and, where the problem is in a row, a line that exists in the file). Any other exception is a
bug: a user would see a traceback.
"""

from __future__ import annotations

import csv
import functools
import io
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hairtrial.data.csvread import DataValidationError, parse_number, read_table
from hairtrial.data.prisma import read_prisma
from hairtrial.data.validate import ARM_COLUMNS, STUDY_COLUMNS, read_inputs

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "1", "-1", "0", "1e308", "1e999", "nan", "inf", "1_000", "٣",
                     "12.5", "=1+1", "yes", "change", "value", "hairs/cm2", "<", "="]),
)  # fmt: skip


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") + 1


def _check_problems(err: DataValidationError, path: Path) -> None:
    assert err.problems
    for p in err.problems:
        assert p.file.startswith(str(path)) or str(path) in p.file
        assert p.rule
        if p.line is not None:
            assert 1 <= p.line <= _lines(path)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_never_crash_read_table(tmp_path, data):
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    try:
        read_table(path)
    except DataValidationError as err:
        _check_problems(err, path)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_never_crash_the_input_readers(tmp_path, data):
    arms, studies = tmp_path / "arms.csv", tmp_path / "studies.csv"
    arms.write_bytes(data)
    studies.write_bytes((ROOT / "data" / "studies.csv").read_bytes())
    try:
        read_inputs(arms, studies)
    except DataValidationError as err:
        _check_problems(err, arms)
    prisma = tmp_path / "prisma.csv"
    prisma.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            read_prisma(prisma)
        except DataValidationError as err:
            _check_problems(err, prisma)


@SETTINGS
@given(rows=st.lists(st.lists(CELL, min_size=len(ARM_COLUMNS), max_size=len(ARM_COLUMNS)),
                     min_size=1, max_size=4))  # fmt: skip
def test_random_arm_cells_give_problems(tmp_path, rows):
    arms, studies = tmp_path / "arms.csv", tmp_path / "studies.csv"
    _write_csv(arms, [c.name for c in ARM_COLUMNS], rows)
    studies.write_bytes((ROOT / "data" / "studies.csv").read_bytes())
    try:
        read_inputs(arms, studies)
    except DataValidationError as err:
        _check_problems(err, arms)


@SETTINGS
@given(rows=st.lists(st.lists(CELL, min_size=len(STUDY_COLUMNS), max_size=len(STUDY_COLUMNS)),
                     min_size=1, max_size=4))  # fmt: skip
def test_random_study_cells_give_problems(tmp_path, rows):
    arms, studies = tmp_path / "arms.csv", tmp_path / "studies.csv"
    _write_csv(studies, [c.name for c in STUDY_COLUMNS], rows)
    arms.write_bytes((ROOT / "data" / "arms.csv").read_bytes())
    try:
        read_inputs(arms, studies)
    except DataValidationError as err:
        assert err.problems  # problems may be in either file


@SETTINGS
@given(line=st.integers(min_value=0, max_value=40), junk=st.text(max_size=20))
def test_published_file_with_a_line_replaced(tmp_path, line, junk):
    lines = (ROOT / "data" / "arms.csv").read_text(encoding="utf-8").split("\n")
    lines[line % len(lines)] = junk
    arms, studies = tmp_path / "arms.csv", tmp_path / "studies.csv"
    arms.write_text("\n".join(lines), encoding="utf-8")
    studies.write_bytes((ROOT / "data" / "studies.csv").read_bytes())
    try:
        read_inputs(arms, studies)
    except DataValidationError as err:
        _check_problems(err, arms)


@pytest.mark.parametrize("text", ["1_000", "٣", "１２", "0x10", "inf", "nan", "1e999", "1,5", " 1"])
def test_numbers_are_ascii_and_finite(text):
    assert parse_number(text) is None


@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_round_trips(x):
    assert parse_number(repr(x)) == x


def test_blank_lines_keep_physical_line_numbers(tmp_path):
    """A blank line inside the file is reported, and later lines keep their real numbers."""
    src = (ROOT / "data" / "arms.csv").read_text(encoding="utf-8").splitlines()
    src.insert(2, "")
    path = tmp_path / "arms.csv"
    path.write_text("\n".join(src) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as exc:
        read_table(path)
    assert [(p.line, p.rule) for p in exc.value.problems] == [
        (3, "empty row (delete it, or fill it in)")
    ]


def test_a_directory_and_a_repeated_header(tmp_path):
    with pytest.raises(DataValidationError, match="is a directory"):
        read_table(tmp_path)
    path = tmp_path / "x.csv"
    path.write_text("study,sd,sd\nx,1,2\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="line 1, column 'sd'.*more than once"):
        read_table(path)


def test_latin1_bytes_are_named_with_their_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("study,note\nx,ok\ny,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"line 3: byte e9 is not UTF-8"):
        read_table(path)


def test_windows_line_ends_and_a_byte_order_mark_read_the_same(tmp_path):
    src = ROOT / "data" / "arms.csv"
    path = tmp_path / "arms.csv"
    path.write_bytes(b"\xef\xbb\xbf" + src.read_bytes().replace(b"\n", b"\r\n"))
    a, b = read_table(src), read_table(path)
    assert a.equals(b) and list(a.index) == list(b.index)


# ---------------------------------------------------------------------------------------------
# participants.csv (issue 12)
# ---------------------------------------------------------------------------------------------
EXAMPLE = ROOT / "data" / "examples" / "ipd"
PARTICIPANT_CELL = st.one_of(
    CELL,
    st.sampled_from(["sim01", "sim04", "p1001", "p001", "left", "right", "minoxidil",
                     "minoxidil_microneedling", "hair_density", "0", "12", "150.5", "-3"]),
)  # fmt: skip


@functools.cache
def _example_inputs():
    return read_inputs(EXAMPLE / "arms.csv", EXAMPLE / "studies.csv")


def _read_participants(path: Path) -> None:
    from hairtrial.data.participants import read_participants

    arms, studies = _example_inputs()
    read_participants(path, studies, arms)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_never_crash_the_participants_reader(tmp_path, data):
    path = tmp_path / "participants.csv"
    path.write_bytes(data)
    try:
        _read_participants(path)
    except DataValidationError as err:
        _check_problems(err, path)


@SETTINGS
@given(rows=st.lists(st.lists(PARTICIPANT_CELL, min_size=8, max_size=8), min_size=1, max_size=6))
def test_random_participant_cells_give_problems(tmp_path, rows):
    from hairtrial.data.participants import PARTICIPANT_COLUMNS

    path = tmp_path / "participants.csv"
    _write_csv(path, [c.name for c in PARTICIPANT_COLUMNS], rows)
    try:
        _read_participants(path)
    except DataValidationError as err:
        _check_problems(err, path)


@SETTINGS
@given(line=st.integers(min_value=0, max_value=200), junk=st.text(max_size=20))
def test_example_participants_with_a_line_replaced(tmp_path, line, junk):
    lines = (EXAMPLE / "participants.csv").read_text(encoding="utf-8").split("\n")
    lines[line % len(lines)] = junk
    path = tmp_path / "participants.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        _read_participants(path)
    except DataValidationError as err:
        _check_problems(err, path)


# ---------------------------------------------------------------- the config and the selection
FEW = settings(SETTINGS, max_examples=20)  # each example reads the schema or the data


@FEW
@given(data=st.binary(max_size=300))
def test_random_bytes_as_a_config_file_give_a_config_error(tmp_path, data):
    from hairtrial.analyses.config import ConfigError, load_config

    path = tmp_path / "my.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as err:  # never a valid config: `data` is required
        load_config(path)
    assert str(path) in str(err.value)


YAML_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@FEW
@given(key=st.sampled_from(["name", "data", "outcomes", "measures", "comparison", "assumptions",
                            "meta_analysis", "figures", "selection", "unknown"]),
       value=YAML_VALUE)  # fmt: skip
def test_random_config_values_give_a_config_error_naming_the_file(tmp_path, key, value):
    import yaml

    from hairtrial.analyses.config import ConfigError, load_config

    for f in ("arms.csv", "studies.csv"):
        (tmp_path / f).write_bytes((ROOT / "data" / f).read_bytes())
    cfg = {"data": {"arms": "arms.csv", "studies": "studies.csv"}, key: value}
    path = tmp_path / "my.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as err:
        assert str(path) in str(err)


@settings(SETTINGS, max_examples=10)
@given(outcome=CELL, control=CELL, experimental=CELL)
def test_random_selections_give_a_selection_error_or_comparisons(tmp_path, outcome, control,
                                                                   experimental):  # fmt: skip
    from hairtrial.analyses.config import DEFAULT_CONFIG, load_config
    from hairtrial.analyses.inputs import SelectionError, check_inputs

    cfg = load_config(DEFAULT_CONFIG)
    cfg["data"] = {"arms": cfg["data"]["arms"], "studies": cfg["data"]["studies"]}
    cfg["outcomes"] = [outcome]
    cfg["comparison"] = {"control": control, "experimental": experimental}
    try:
        checked = check_inputs(cfg)
    except SelectionError as err:
        assert "config key" in str(err) or "yields no comparison" in str(err)
    else:
        assert len(checked.effects) > 0
