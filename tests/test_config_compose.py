"""One analysis, one config: paths relative to the config file, nothing inherited of the
default data, errors that name the file, the key and where a file was looked for."""

from pathlib import Path

import pytest

from hairtrial.analyses.config import (
    DEFAULT_CONFIG,
    ConfigError,
    compose_config,
    load_config,
    results_dir,
)

ROOT = Path(__file__).resolve().parents[1]


def _user(tmp_path: Path, text: str, name: str = "my_trials.yaml") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    for f in ("arms.csv", "studies.csv"):
        (tmp_path / "data" / f).write_bytes((ROOT / "data" / f).read_bytes())
    path = tmp_path / "cfg" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_default_config_is_the_default_analysis():
    cfg = compose_config([DEFAULT_CONFIG])
    assert cfg["name"] == "default" and results_dir(cfg) == "results/default"
    assert Path(cfg["data"]["prisma"]).name == "prisma.csv"
    assert all(Path(p).is_absolute() and Path(p).exists() for p in cfg["data"].values())


def test_user_config_inherits_settings_but_not_data_or_name(tmp_path):
    path = _user(tmp_path, "data:\n  arms: ../data/arms.csv\n  studies: ../data/studies.csv\n")
    cfg = load_config(path)
    assert cfg["name"] == "my_trials"  # the file's stem
    assert results_dir(cfg) == "results/my_trials"
    assert "prisma" not in cfg["data"]  # the published PRISMA counts are not inherited
    assert cfg["data"]["arms"] == str(tmp_path / "data" / "arms.csv")  # from the file's folder
    default = load_config(DEFAULT_CONFIG)
    assert cfg["meta_analysis"] == default["meta_analysis"]  # settings are inherited


def test_missing_data_file_says_where_it_looked(tmp_path):
    path = _user(tmp_path, "data:\n  arms: data/arms.csv\n  studies: ../data/studies.csv\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "data.arms" in msg
    assert str(tmp_path / "cfg" / "data" / "arms.csv") in msg


def test_config_without_data_names_the_key(tmp_path):
    path = _user(tmp_path, "measures: [MD]\n")
    with pytest.raises(ConfigError, match=r"my_trials.yaml: config key 'data'"):
        load_config(path)


def test_yaml_error_gives_line_and_column(tmp_path):
    path = _user(tmp_path, "data:\n  arms: [../data/arms.csv\n  studies: x\n")
    with pytest.raises(ConfigError, match=r"my_trials.yaml, line \d+, column \d+: not valid YAML"):
        load_config(path)


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", "", "README.md"])
def test_unsafe_names_are_rejected(tmp_path, name):
    path = _user(
        tmp_path,
        f"name: '{name}'\ndata:\n  arms: ../data/arms.csv\n  studies: ../data/studies.csv\n",
    )
    with pytest.raises(ConfigError, match="name"):
        load_config(path)


def test_prisma_counts_that_disagree_with_the_data_are_reported(tmp_path):
    from hairtrial.analyses import primary, run
    from hairtrial.data.validate import read_studies

    path = _user(
        tmp_path,
        "data:\n  arms: ../data/arms.csv\n  studies: ../data/studies.csv\n"
        "  prisma: ../data/prisma.csv\n",
    )
    (tmp_path / "data" / "prisma.csv").write_text(
        "box,label,count,note\nstudies_included,,5,\nstudies_meta_analysis,,3,\n"
    )
    cfg = load_config(path)
    effects, _, _ = primary.prepare(cfg)
    notes = run.prisma_disagreements(cfg, read_studies(cfg["data"]["studies"]), effects)
    n_studies = len(read_studies(cfg["data"]["studies"]))
    assert notes == [
        "PRISMA counts disagree with the data: prisma.csv gives studies_included = 5, "
        f"but studies.csv lists {n_studies} studies"
    ]  # studies_meta_analysis = 3 agrees with the default selection


def test_treatment_labels_never_reach_a_file_name(tmp_path, default_config):
    """Treatment codes may be any label (extraction sheets write `../MN+MX/roller`); the files a
    run writes are named from validated codes only (outcome codes [a-z][a-z0-9_]*, measures,
    weeks, moderators from an enum), so a label cannot make a path unsafe."""
    import re

    import pandas as pd

    from hairtrial.analyses import binary, primary, run

    labels = {"minoxidil_microneedling": "../MN+MX/roller *", "minoxidil": "topical-5pct:ctl"}
    cfg = dict(default_config)
    data = dict(cfg["data"])
    for key in ("arms", "events"):
        df = pd.read_csv(data[key], dtype=str, keep_default_na=False)
        df["treatment"] = df["treatment"].map(lambda t: labels.get(t, t))
        df.to_csv(tmp_path / f"{key}.csv", index=False)
        data[key] = str(tmp_path / f"{key}.csv")
    cfg["data"] = data
    cfg["comparison"] = {
        **cfg["comparison"],
        "control": labels["minoxidil"],
        "experimental": labels["minoxidil_microneedling"],
    }
    eff, _, _ = primary.prepare(cfg)
    assert len(eff) > 0  # the labels select the same comparisons
    _, study_effects = primary.meta_analyses(eff, cfg)
    _, studies = primary.load_inputs(cfg)
    stems = list(run.figure_list(study_effects, studies, cfg)["stem"])
    out = binary.binary_analyses(cfg)
    stems += list(out.derived["binary_figures"]["stem"])
    assert len(stems) > 20
    safe = re.compile(r"^[A-Za-z0-9_.-]+$")
    for stem in stems:
        assert safe.match(stem) and ".." not in stem, stem
        assert not any(part in stem for part in ("MN", "roller", "topical", "ctl")), stem


def test_a_value_outside_every_alternative_says_what_would_do(tmp_path):
    """A key with alternatives (a number in [-1, 1] or 'from_ipd') named jsonschema's
    "is not valid under any of the given schemas"; the message now lists what is allowed."""
    from hairtrial.analyses.config import ConfigError, validate_config

    cfg = load_config(ROOT / "config" / "config.yaml")
    cfg["assumptions"]["change_sd_correlation"] = "high"
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert str(err.value) == (
        "config key 'assumptions.change_sd_correlation': 'high' is not allowed: give a number "
        "from -1 to 1; or 'from_ipd'"
    )


def test_every_bad_data_path_is_named_with_its_key(tmp_path):
    """A missing file and a folder where a file belongs: both at once, each with its key."""
    (tmp_path / "armsdir").mkdir()
    (tmp_path / "my.yaml").write_text(
        "data:\n  arms: armsdir\n  studies: nothere.csv\n  prisma: gone.csv\n"
    )
    with pytest.raises(ConfigError) as err:
        compose_config([tmp_path / "my.yaml"])
    lines = str(err.value).splitlines()
    assert len(lines) == 3, lines
    by_key = {line.split("config key ", 1)[1].split(":", 1)[0]: line for line in lines}
    assert by_key["'data.arms'"].endswith(f"{tmp_path / 'armsdir'} is a folder, not a file")
    assert "file not found (looked for" in by_key["'data.studies'"]
    assert "file not found (looked for" in by_key["'data.prisma'"]
