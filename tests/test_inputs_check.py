"""A config that selects nothing is an error naming the key, the value and what the data
holds (issue 9), checked before any job runs."""

from pathlib import Path

import pytest

from hairtrial.analyses.config import load_config
from hairtrial.analyses.inputs import SelectionError, check_inputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tmp_path):
    for f in ("arms.csv", "studies.csv"):
        (tmp_path / f).write_bytes((ROOT / "data" / f).read_bytes())
    (tmp_path / "my.yaml").write_text("data:\n  arms: arms.csv\n  studies: studies.csv\n")
    return load_config(tmp_path / "my.yaml")


def test_the_default_selection_finds_comparisons(config):
    assert len(check_inputs(config).effects) > 0


def test_outcome_typo_names_the_key_value_and_the_outcomes_held(config):
    config["outcomes"] = ["hair_densty"]
    with pytest.raises(SelectionError) as err:
        check_inputs(config)
    msg = str(err.value)
    assert "config key 'outcomes': 'hair_densty' is not an outcome of data.arms" in msg
    assert "hair_density" in msg


@pytest.mark.parametrize("role", ["control", "experimental"])
def test_absent_comparison_code_is_named(config, role):
    config["comparison"][role] = "minoxidil_rollr"
    with pytest.raises(SelectionError) as err:
        check_inputs(config)
    msg = str(err.value)
    assert f"config key 'comparison.{role}': 'minoxidil_rollr' is not a treatment" in msg
    assert "minoxidil_microneedling" in msg


def test_header_only_arms_file_is_an_error(config):
    path = Path(config["data"]["arms"])
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(SelectionError, match=r"config key 'data.arms': .*arms.csv has no data"):
        check_inputs(config)


def test_no_primary_study_is_an_error(config):
    path = Path(config["data"]["studies"])
    path.write_text(path.read_text().replace(",yes,", ",no,"))
    with pytest.raises(SelectionError, match=r"'selection.studies': 'primary' selects no study"):
        check_inputs(config)


def test_a_selection_with_no_comparison_says_why(config):
    config["comparison"] = {"control": "minoxidil", "experimental": "minoxidil"}
    with pytest.raises(SelectionError, match="the selection yields no comparison"):
        check_inputs(config)


@pytest.mark.parametrize(
    "change",
    [
        # an outcome present only in trials that cannot be used (found by a clean-clone check)
        {"outcomes": ["hair_count"]},
        # codes that exist in the data but never in one trial
        {"comparison": {"control": "minoxidil_spironolactone",
                        "experimental": "microneedling_device"}},
    ],
)  # fmt: skip
def test_nothing_selected_with_an_events_file_is_an_error_too(tmp_path, change):
    """With data.events named as well, 0 continuous and 0 binary comparisons used to pass
    ("valid: 0 comparisons") and a run published an empty analysis over the last good one."""
    for f in ("arms.csv", "studies.csv", "events.csv", "outcomes.csv"):
        (tmp_path / f).write_bytes((ROOT / "data" / f).read_bytes())
    (tmp_path / "my.yaml").write_text(
        "data:\n  arms: arms.csv\n  studies: studies.csv\n  events: events.csv\n"
        "  outcomes: outcomes.csv\n"
    )
    config = load_config(tmp_path / "my.yaml")
    assert len(check_inputs(config).effects) > 0  # the default selection is fine
    for key, value in change.items():
        config[key] = value
    with pytest.raises(SelectionError) as err:
        check_inputs(config)
    msg = str(err.value)
    assert "the selection yields no comparison" in msg
    assert "arms.csv and " in msg and "events.csv" in msg
