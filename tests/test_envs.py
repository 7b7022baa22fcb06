"""The conda environment in envs/ pins the same versions as requirements.lock."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {
    "matplotlib-base": "matplotlib",
    "snakemake-minimal": "snakemake",
    "python-zlib-ng": "zlib-ng",
}


def _lock_versions() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    return {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", text, flags=re.M)
    }


def _runtime_dependencies() -> set[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]}


def _conda_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dep in env["dependencies"]:
        if not isinstance(dep, str):
            continue
        name, _, version = dep.partition("=")
        pins[CONDA_TO_PYPI.get(name, name).lower()] = version
    return pins


def test_every_conda_pin_matches_the_lock():
    lock = _lock_versions()
    for env_file in sorted((ROOT / "envs").glob("*.yaml")):
        for name, version in _conda_pins(env_file).items():
            if name == "python" or not version:  # unpinned pip, for the local install
                continue
            assert name in lock, f"{env_file.name}: {name} is not in requirements.lock"
            assert version == lock[name], (
                f"{env_file.name}: {name}={version} but requirements.lock has {lock[name]}"
            )


def test_every_runtime_dependency_is_in_the_conda_env():
    pins = _conda_pins(ROOT / "envs" / "hairtrial.yaml")
    missing = _runtime_dependencies() - set(pins)
    assert not missing, f"envs/hairtrial.yaml lacks {sorted(missing)}"


def test_every_runtime_dependency_is_locked():
    missing = _runtime_dependencies() - set(_lock_versions())
    assert not missing, f"requirements.lock lacks {sorted(missing)}"
