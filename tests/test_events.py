"""Binary outcomes input: events.csv and outcomes.csv, their readers and the derivation.

The default files validate; every rule gives its message with file, line, column and value;
events are derived from percentages and per-arm n from totals, with provenance; random input
gives Problems, never a traceback.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hairtrial.data import provenance
from hairtrial.data.csvread import DataValidationError
from hairtrial.data.events import EVENT_COLUMNS, read_events, split_arms
from hairtrial.data.outcomes import OUTCOME_COLUMNS, outcome_problems, read_outcomes
from hairtrial.data.validate import read_inputs, read_studies
from hairtrial.derive import binary
from hairtrial.derive.arm_level import QUALITY_COLUMNS
from hairtrial.derive.events import (
    EVENT_ARM_COLUMNS,
    derive_events,
    event_tables,
    events_from_percent,
    percent_consistent,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "1", "-1", "0", "20", "100", "101", "1e308", "1e999", "nan", "inf",
                     "1_000", "٣", "12.5", "=1+1", "binary", "continuous", "benefit", "harm",
                     "RR", "RD", "hairs/cm2", "dhurat2013", "scalp_pruritus", "a;b", "A B"]),
)  # fmt: skip
MX, MN = "minoxidil", "minoxidil_microneedling"


# ---------------------------------------------------------------------------------- helpers
def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _edit(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell of data row ``row`` (0 = line 2) of a CSV file."""
    rows = _rows(path)
    rows[row + 1][rows[0].index(column)] = value
    _write_csv(path, rows[0], rows[1:])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for name in ("events.csv", "outcomes.csv", "studies.csv", "arms.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def _read(d: Path) -> pd.DataFrame:
    studies = read_studies(d / "studies.csv")
    return read_events(d / "events.csv", studies, read_outcomes(d / "outcomes.csv"))


def _problems(call) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        call()
    return [str(p) for p in info.value.problems]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") + 1


def _check_problems(err: DataValidationError, path: Path) -> None:
    assert err.problems
    for p in err.problems:
        assert str(path) in p.file
        assert p.rule
        if p.line is not None:
            assert 1 <= p.line <= _lines(path)


EV_HEADER = ["study", "arm", "treatment", "week", "outcome", "events", "percent", "n", "n_total"]
STUDIES = "study,year,design,n_randomised,n_arms\ns1,2020,parallel,60,2\ns2,2021,parallel,,\n"
OUTCOMES = (
    "outcome,label,kind,direction,unit,mid,mid_source\n"
    "itch,Itch,binary,harm,RR,1.25,GRADE\n"
    "resp,Responder,binary,benefit,RR,,\n"
    "hair_density,Hair density,continuous,benefit,hairs/cm2,,not established\n"
)


def _small(tmp_path: Path, rows: list[list[str]]) -> list[str]:
    """Problems of a small events file (header EV_HEADER) against STUDIES and OUTCOMES."""
    (tmp_path / "studies.csv").write_text(STUDIES, encoding="utf-8")
    (tmp_path / "outcomes.csv").write_text(OUTCOMES, encoding="utf-8")
    _write_csv(tmp_path / "events.csv", EV_HEADER, rows)
    return _problems(lambda: _read(tmp_path))


def _read_small(tmp_path: Path, rows: list[list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    (tmp_path / "studies.csv").write_text(STUDIES, encoding="utf-8")
    (tmp_path / "outcomes.csv").write_text(OUTCOMES, encoding="utf-8")
    _write_csv(tmp_path / "events.csv", EV_HEADER, rows)
    return _read(tmp_path), read_studies(tmp_path / "studies.csv")


# ------------------------------------------------------------------------------ default data
def test_default_files_validate_and_agree():
    arms, studies = read_inputs(DATA / "arms.csv", DATA / "studies.csv")
    outcomes = read_outcomes(DATA / "outcomes.csv")
    events = read_events(DATA / "events.csv", studies, outcomes)
    assert len(events) == 51 and len(outcomes) == 19
    assert set(events["study"]) <= set(studies["study"])
    kind = dict(zip(outcomes["outcome"], outcomes["kind"], strict=True))
    assert {kind[o] for o in events["outcome"]} == {"binary"}
    assert {kind[o] for o in arms["outcome"]} == {"continuous"}
    assert set(kind) == set(events["outcome"]) | set(arms["outcome"])  # nothing unused
    assert outcome_problems(arms, outcomes, kind="continuous", fname="arms.csv") == []
    wrong = [str(p) for p in outcome_problems(arms, outcomes, kind="binary", fname="arms.csv")]
    assert len(wrong) == len(arms)
    assert wrong[0] == (
        "arms.csv, line 2, column 'outcome': value 'hair_density': outcome is continuous in "
        "outcomes.csv; this file takes binary outcomes"
    )
    # the arms of a study shared with arms.csv carry the same labels and treatments
    shared = events.merge(arms, on=["study", "arm"], suffixes=("", "_arms"))
    assert (shared["treatment"] == shared["treatment_arms"]).all()
    assert {"dhurat2013", "kumar2018", "pmid36214061"} <= set(shared["study"])
    # binary MIDs are ratios > 1; continuous ones are not invented
    binary_rows = outcomes[outcomes["kind"] == "binary"]
    assert (binary_rows["unit"] == "RR").all() and (binary_rows["mid"] > 1).all()
    cont = outcomes[outcomes["kind"] == "continuous"]
    assert cont["mid"].isna().all()
    assert cont["mid_source"].str.startswith("not established").all()
    assert outcomes["mid_source"].notna().all()
    assert set(outcomes.loc[outcomes["direction"] == "harm", "outcome"]) >= {
        "shedding_worsened",
        "scalp_pruritus",
        "scurf_increased",
        "facial_hypertrichosis",
        "infection",
    }


def test_default_events_hold_only_published_numbers():
    """Counts where the paper counted, percentages where it printed them: never both."""
    studies = read_studies(DATA / "studies.csv")
    events = read_events(DATA / "events.csv", studies)
    assert (events["events"].isna() ^ events["percent"].isna()).all()
    assert events["n_total"].isna().all()  # totals come from studies.csv
    assert events["source"].notna().all()
    liang = events[events["study"] == "liang2022"]
    assert len(liang) == 36 and set(liang["n"]) == {37, 38, 40}
    assert set(liang.groupby("arm")["events"].sum()) == {27, 24, 45}  # Table 5 "Total" row


def test_default_derivation():
    studies = read_studies(DATA / "studies.csv")
    events = read_events(DATA / "events.csv", studies, read_outcomes(DATA / "outcomes.csv"))
    arms, quality, notes = derive_events(events, studies)
    assert list(arms.columns) == EVENT_ARM_COLUMNS and len(arms) == 51
    assert list(quality.columns) == QUALITY_COLUMNS
    tab = event_tables(arms, experimental=MN, control=MX).set_index(["study", "outcome"])
    row = tab.loc[("dhurat2013", "responder_investigator")]
    assert (row.ai, row.n1i, row.ci, row.n2i) == (40, 50, 0, 50)
    assert row.provenance == "n_split_equally"
    row = tab.loc[("pmid36214061", "responder_investigator")]
    assert (row.ai, row.n1i, row.ci, row.n2i) == (17, 20, 9, 20)
    assert row.provenance == "events_from_percent"
    row = tab.loc[("kumar2018", "responder_patient")]
    assert (row.ai, row.n1i, row.ci, row.n2i) == (4, 34, 0, 34)
    row = tab.loc[("liang2022", "shedding_worsened")]
    assert (row.ai, row.n1i, row.ci, row.n2i, row.provenance) == (3, 40, 4, 38, "reported")
    # 61% of 50 is 30.5: rounded up, and said so in the data-quality table (the row is
    # used: nothing in the notes, which list inputs that cannot be used)
    assert notes == []
    assert (
        arms.set_index(["study", "arm", "outcome"]).loc[
            ("dhurat2013", "Minoxidil", "improved_patient"), "events"
        ]
        == 31
    )
    q = quality.set_index(["study", "arm", "outcome", "quantity"])
    assert (
        "probably not n"
        in q.loc[("dhurat2013", "Minoxidil", "improved_patient", "events")]["assumption"]
    )
    # every derived number is in the quality table, and only those
    derived = arms[arms["provenance"] != "reported"]
    n_rows = quality[quality["quantity"] == "n"]
    assert len(n_rows) == (arms["n_provenance"] == "n_split_equally").sum()
    assert len(quality) - len(n_rows) == (arms["events_provenance"] == "events_from_percent").sum()
    assert len(derived) > 0


def test_readme_documents_both_files_and_the_new_code():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for col in (*EVENT_COLUMNS, *OUTCOME_COLUMNS):
        assert f"| `{col.name}` |" in readme, col.name
    assert "| `events_from_percent` |" in readme
    assert "events_from_percent" in provenance.PROVENANCE


# ------------------------------------------------------------------- cell rules (events.csv)
@pytest.mark.parametrize(
    ("row", "column", "value", "rule"),
    [
        (0, "events", "-1", "must be >= 0"),
        (0, "events", "2.5", "must be a whole number"),
        (0, "events", "1,000", "must be a finite number"),
        (2, "percent", "101", "must lie between 0 and 100"),
        (2, "percent", "-3", "must lie between 0 and 100"),
        (2, "percent", "nan", "must be a finite number"),
        (8, "n", "0", "must be > 0"),
        (8, "n", "-20", "must be > 0"),
        (0, "week", "-1", "must be >= 0"),
        (0, "week", "", "required value is empty"),
        (0, "treatment", " ", "required value is empty"),
        (0, "study", "no such", "must be an identifier"),
        (0, "outcome", "Scalp pruritus", "must be a lower-case code"),
        (0, "study", "nosuch2020", "study is not listed in studies.csv"),
        (0, "outcome", "itching", "outcome is not listed in outcomes.csv"),
        (0, "outcome", "hair_density", "outcome is continuous in outcomes.csv"),
        (0, "events", "", "each row needs events (or a percent)"),
        (2, "percent", "50", "give events or percent, not both"),  # row 2 has percent only
        (8, "n_total", "40", "give the arm's n or the trial's n_total, not both"),
        (0, "events", "51", "events (51) exceed the per-arm n the total gives (100 // 2 arms"),
        (19, "events", "41", "events (41) exceed n (40)"),
        (0, "flags", "secondary source", "flags are ';'-separated lower-case codes"),
    ],
)
def test_event_rule_names_line_and_column(data_dir, row, column, value, rule):
    if rule.startswith("give events or percent"):
        _edit(data_dir / "events.csv", row, "events", value)
        column, value = "percent", "100"
    else:
        _edit(data_dir / "events.csv", row, column, value)
    problems = _problems(lambda: _read(data_dir))
    prefix = f"{data_dir / 'events.csv'}, line {row + 2}, column '{column}'"
    assert any(p.startswith(prefix) and rule in p for p in problems), problems
    if value.strip():
        assert any(f"value {value!r}" in p for p in problems if p.startswith(prefix)), problems


def test_duplicate_and_treatment_change(tmp_path):
    problems = _small(
        tmp_path,
        [
            ["s1", "A", MN, "12", "itch", "1", "", "30", ""],
            ["s1", "B", MX, "12", "itch", "0", "", "30", ""],
            ["s1", "A", MN, "12", "itch", "2", "", "30", ""],
            ["s1", "B", "placebo", "24", "itch", "0", "", "30", ""],
        ],
    )
    f = tmp_path / "events.csv"
    assert problems == [
        f"{f}, line 4, column 'arm': value 'A': duplicate study x arm x week x outcome "
        "(first on line 2)",
        f"{f}, line 5, column 'treatment': value 'placebo': arm 'B' had treatment "
        f"'{MX}' on line 3; an arm keeps one treatment",
    ]


def test_totals_rules(tmp_path):
    problems = _small(
        tmp_path,
        [
            ["s2", "A", MN, "12", "itch", "1", "", "", ""],  # no n, no total, none in studies
            ["s1", "A", MN, "12", "resp", "1", "", "", "1"],  # 1 cannot be split into 2 arms
            ["s1", "A", MN, "24", "resp", "1", "", "", "40"],
            ["s1", "B", MX, "24", "resp", "1", "", "", "44"],  # a second total
        ],
    )
    f = tmp_path / "events.csv"
    assert problems == [
        f"{f}, line 2, column 'n': value '': each row needs n, n_total, or n_randomised of the "
        "study in studies.csv",
        f"{f}, line 3, column 'n_total': value '1': a total of 1 cannot be split between 2 arms",
        f"{f}, line 5, column 'n_total': value '44': the trial's total was 40 on line 4 (same "
        "study, week and outcome); give one total",
    ]


def test_header_problems(tmp_path):
    (tmp_path / "studies.csv").write_text(STUDIES, encoding="utf-8")
    _write_csv(tmp_path / "events.csv", ["study", "arm", "week", "outcome", "Events"], [])
    problems = _problems(
        lambda: read_events(tmp_path / "events.csv", read_studies(tmp_path / "studies.csv"))
    )
    f = tmp_path / "events.csv"
    assert (
        f"{f}, line 1, column 'Events': unknown column (allowed: "
        + ", ".join(c.name for c in EVENT_COLUMNS)
        + ")"
        in problems
    )
    assert f"{f}, line 1, column 'treatment': required column is missing" in problems


def test_all_problems_at_once(data_dir):
    _edit(data_dir / "events.csv", 0, "events", "-1")
    _edit(data_dir / "events.csv", 5, "percent", "200")
    _edit(data_dir / "events.csv", 30, "n", "x")
    problems = _problems(lambda: _read(data_dir))
    assert [p.split(": value")[0].split("events.csv, ")[1] for p in problems] == [
        "line 2, column 'events'",
        "line 7, column 'percent'",
        "line 32, column 'n'",
    ]


# ------------------------------------------------------------------------ outcomes.csv rules
@pytest.mark.parametrize(
    ("row", "column", "value", "rule"),
    [
        (0, "kind", "count", "must be one of continuous, binary"),
        (0, "direction", "good", "must be one of benefit, harm"),
        (0, "outcome", "Hair density", "must be a lower-case code"),
        (0, "label", "", "required value is empty"),
        (0, "unit", "RR", "a continuous outcome's unit must be one of hairs/cm2, hairs, um"),
        (0, "unit", "hairs/inch2", "a continuous outcome's unit must be one of"),
        (3, "unit", "hairs", "a binary outcome's unit must be one of RR, OR, RD"),
        (3, "mid", "0", "must be > 0"),
        (3, "mid", "-1.25", "must be > 0"),
        (3, "mid", "abc", "must be a finite number"),
        (3, "mid", "0.8", "a ratio MID must be > 1"),
        (3, "mid", "1", "a ratio MID must be > 1"),
        (3, "mid_source", "", "a mid needs its source"),
        (4, "outcome", "responder_investigator", "duplicate outcome (first on line 5)"),
    ],
)
def test_outcome_rule_names_line_and_column(data_dir, row, column, value, rule):
    _edit(data_dir / "outcomes.csv", row, column, value)
    problems = _problems(lambda: read_outcomes(data_dir / "outcomes.csv"))
    prefix = f"{data_dir / 'outcomes.csv'}, line {row + 2}, column '{column}'"
    assert any(p.startswith(prefix) and rule in p for p in problems), problems


def test_risk_difference_mid(data_dir):
    _edit(data_dir / "outcomes.csv", 3, "unit", "RD")
    _edit(data_dir / "outcomes.csv", 3, "mid", "1.25")
    problems = _problems(lambda: read_outcomes(data_dir / "outcomes.csv"))
    assert problems == [
        f"{data_dir / 'outcomes.csv'}, line 5, column 'mid': value '1.25': a risk-difference MID "
        "is a proportion: must be < 1"
    ]
    _edit(data_dir / "outcomes.csv", 3, "mid", "0.05")
    out = read_outcomes(data_dir / "outcomes.csv")
    assert out.loc[3, "mid"] == 0.05 and out.loc[3, "line"] == 5


# --------------------------------------------------------------------------------- derivation
@pytest.mark.parametrize(
    ("percent", "n", "events"),
    [(85, 20, 17), (45, 20, 9), (61, 50, 31), (64, 50, 32), (0, 7, 0), (100, 7, 7),
     (14.5, 10, 1), (12.5, 4, 1), (37.5, 8, 3), (2.5, 20, 1), (0.1, 3, 0), (33.3, 3, 1),
     (66.7, 3, 2), (16.7, 6, 1)],
)  # fmt: skip
def test_events_from_percent(percent, n, events):
    assert events_from_percent(percent, n) == events


def test_events_from_percent_rejects_nonsense():
    for p, n in ((101, 10), (-1, 10), (float("nan"), 10), (50, 0), (50, 2.5)):
        with pytest.raises(ValueError):
            events_from_percent(p, n)


@given(n=st.integers(1, 500), data=st.data())
def test_a_percentage_of_a_whole_count_round_trips(n, data):
    k = data.draw(st.integers(0, n))
    for places in (0, 1, 2):
        p = round(100 * k / n, places)
        assert percent_consistent(p, n)
        assert events_from_percent(p, n) == k or places == 0


def test_percent_consistency():
    assert percent_consistent(33.3, 3) and percent_consistent(33, 3)
    assert not percent_consistent(61, 50) and not percent_consistent(50, 3)
    assert percent_consistent(0, 1) and percent_consistent(100, 1)


def test_totals_are_split_and_flagged(tmp_path):
    events, studies = _read_small(
        tmp_path,
        [
            ["s1", "A", MN, "12", "itch", "3", "", "", "41"],  # total of the row: 41 // 2
            ["s1", "B", MX, "12", "itch", "", "25", "", "41"],  # 25% of 20 = 5
            ["s1", "A", MN, "24", "resp", "", "50", "", ""],  # n_randomised 60 // 2 = 30
            ["s1", "B", MX, "24", "resp", "7", "", "29", ""],
        ],
    )
    arms, quality, notes = derive_events(events, studies)
    got = arms.set_index(["outcome", "arm"])
    assert got.loc[("itch", "A"), ["events", "n", "provenance"]].tolist() == [
        3,
        20,
        "n_split_equally",
    ]
    assert got.loc[
        ("itch", "B"), ["events", "n", "events_provenance", "n_provenance"]
    ].tolist() == [
        5,
        20,
        "events_from_percent",
        "n_split_equally",
    ]
    assert got.loc[("resp", "A"), ["events", "n", "provenance"]].tolist() == [
        15,
        30,
        "n_split_equally;events_from_percent",
    ]
    assert got.loc[("resp", "B"), ["events", "n", "provenance"]].tolist() == [7, 29, "reported"]
    assert notes == []
    cols = ["arm", "outcome", "quantity", "value", "provenance", "inputs"]
    assert quality[cols].values.tolist() == [
        ["A", "itch", "n", 20.0, "n_split_equally", "n_total=41; arms=2"],
        ["B", "itch", "n", 20.0, "n_split_equally", "n_total=41; arms=2"],
        ["B", "itch", "events", 5.0, "n_split_equally;events_from_percent",
         "percent=25; n=20 (n_split_equally)"],
        ["A", "resp", "n", 30.0, "n_split_equally", "n_randomised=60; arms=2"],
        ["A", "resp", "events", 15.0, "n_split_equally;events_from_percent",
         "percent=50; n=30 (n_split_equally)"],
    ]  # fmt: skip
    assert set(quality["unit"]) == {"participants"}
    tab = event_tables(arms, experimental=MN, control=MX)
    assert tab[["outcome", "ai", "n1i", "ci", "n2i"]].values.tolist() == [
        ["itch", 3, 20, 5, 20],
        ["resp", 15, 30, 7, 29],
    ]


def test_split_counts_declared_arms():
    ev = pd.DataFrame({"study": ["a", "a", "b"], "arm": ["x", "y", "x"]})
    st_ = pd.DataFrame({"study": ["a", "b"], "n_arms": [1, None], "n_randomised": [10, 9]})
    assert split_arms(ev, st_) == {"a": 2, "b": 1}


def test_three_arm_trial_combines_and_says_so():
    arms = pd.DataFrame(
        {
            "study": ["t"] * 3,
            "arm": ["deep", "shallow", "control"],
            "treatment": [MN, MN, MX],
            "outcome": ["itch"] * 3,
            "week": [12] * 3,
            "events": [2, 1, 0],
            "n": [20, 20, 20],
            "provenance": ["reported", "n_split_equally", "reported"],
            "flags": ["", "", "secondary_source"],
        }
    )
    tab = event_tables(arms, experimental=MN, control=MX)
    assert tab[["ai", "n1i", "ci", "n2i", "arms1", "arms2"]].values.tolist() == [
        [3, 40, 0, 20, 2, 1]
    ]
    assert tab["provenance"].iloc[0] == "n_split_equally;combined_arms"
    assert tab["flags"].iloc[0] == "secondary_source"
    # ready for escalc-style effects: zero cell corrected
    eff = binary.binary_effects(tab["ai"], tab["n1i"], tab["ci"], tab["n2i"], measure="RR")
    assert eff["correction"].tolist() == ["0.5 added to each cell"]


def test_rows_that_cannot_be_used_are_named():
    ev = pd.DataFrame(
        {
            "study": ["s", "s"],
            "arm": ["A", "B"],
            "treatment": [MN, MX],
            "week": [12, 12],
            "outcome": ["itch", "itch"],
            "events": [3, 30],
            "percent": [None, None],
            "n": [None, None],
            "n_total": [None, 40],
            "flags": [None, None],
            "line": [2, 3],
        }
    )
    st_ = pd.DataFrame({"study": ["s"], "n_randomised": [None], "n_arms": [None]})
    arms, _, notes = derive_events(ev, st_)
    assert arms.empty
    assert notes == [
        "s / A / itch / week 12: no n, n_total or n_randomised; not used",
        "s / B / itch / week 12: events (30) exceed the arm's n (20); not used",
    ]


# ------------------------------------------------------------------------------------ fuzzing
@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_never_crash_the_readers(tmp_path, data):
    studies = read_studies(DATA / "studies.csv")
    outcomes = read_outcomes(DATA / "outcomes.csv")
    path = tmp_path / "events.csv"
    path.write_bytes(data)
    try:
        read_events(path, studies, outcomes)
    except DataValidationError as err:
        _check_problems(err, path)
    path = tmp_path / "outcomes.csv"
    path.write_bytes(data)
    try:
        read_outcomes(path)
    except DataValidationError as err:
        _check_problems(err, path)


@SETTINGS
@given(rows=st.lists(st.lists(CELL, min_size=len(EVENT_COLUMNS), max_size=len(EVENT_COLUMNS)),
                     min_size=1, max_size=5))  # fmt: skip
def test_random_event_cells_give_problems(tmp_path, rows):
    studies = read_studies(DATA / "studies.csv")
    outcomes = read_outcomes(DATA / "outcomes.csv")
    path = tmp_path / "events.csv"
    _write_csv(path, [c.name for c in EVENT_COLUMNS], rows)
    try:
        events = read_events(path, studies, outcomes)
    except DataValidationError as err:
        _check_problems(err, path)
        return
    arms, quality, _ = derive_events(events, studies)  # what validates can be derived
    assert (arms["events"] <= arms["n"]).all() and (arms["n"] > 0).all()
    assert set(quality.columns) == set(QUALITY_COLUMNS)


@SETTINGS
@given(rows=st.lists(st.lists(CELL, min_size=len(OUTCOME_COLUMNS),
                              max_size=len(OUTCOME_COLUMNS)), min_size=1, max_size=5))  # fmt: skip
def test_random_outcome_cells_give_problems(tmp_path, rows):
    path = tmp_path / "outcomes.csv"
    _write_csv(path, [c.name for c in OUTCOME_COLUMNS], rows)
    try:
        read_outcomes(path)
    except DataValidationError as err:
        _check_problems(err, path)


@SETTINGS
@given(
    name=st.sampled_from(["events.csv", "outcomes.csv"]),
    line=st.integers(min_value=0, max_value=60),
    junk=st.text(max_size=30),
)
def test_published_file_with_a_line_replaced(tmp_path, name, line, junk):
    lines = (DATA / name).read_text(encoding="utf-8").split("\n")
    lines[line % len(lines)] = junk
    path = tmp_path / name
    path.write_text("\n".join(lines), encoding="utf-8")
    studies = read_studies(DATA / "studies.csv")
    try:
        if name == "events.csv":
            read_events(path, studies, read_outcomes(DATA / "outcomes.csv"))
        else:
            read_outcomes(path)
    except DataValidationError as err:
        _check_problems(err, path)
