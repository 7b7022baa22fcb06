"""Packaging and documentation habits: the wheel carries what it needs; config docs are current."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

from hairtrial.analyses.config import SCHEMA_PATH, schema_reference

ROOT = Path(__file__).resolve().parents[1]


def _properties(schema: dict, prefix: str = ""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{prefix}{key}", sub
        yield from _properties(sub, f"{prefix}{key}.")
        items = sub.get("items")
        if isinstance(items, dict) and items.get("type") == "object":
            yield from _properties(items, f"{prefix}{key}[].")


def test_every_config_key_is_described():
    schema = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    missing = [key for key, sub in _properties(schema) if not sub.get("description")]
    assert not missing, f"schema keys without a description: {missing}"


def test_config_readme_is_generated_from_the_schema():
    text = (ROOT / "config" / "README.md").read_text(encoding="utf-8")
    assert text.endswith(schema_reference()), "config/README.md is stale: run `make config-docs`"


def test_workflow_schema_is_the_package_schema():
    # Snakemake's convention puts the schema in workflow/schemas/; it is a link to package data
    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").resolve() == SCHEMA_PATH


@pytest.mark.e2e
def test_wheel_installs_and_validates_the_shipped_data(tmp_path):
    """Build a wheel, install it into a fresh venv and run `hairtrial validate` outside a checkout.

    The fresh venv sees the locked environment's third-party packages through a path entry
    (no network, no hairtrial): the hairtrial it imports must be the wheel's.
    """

    def checkout_state():
        paths = [ROOT / "build", *sorted((ROOT / "src").glob("*.egg-info/*"))]
        return {str(q): q.stat().st_mtime_ns for q in paths if q.exists()}

    before = checkout_state()
    wheels = tmp_path / "wheels"
    # Built from a copy: setuptools writes build/ and src/hairtrial.egg-info where it builds,
    # and rewriting the checkout's egg-info while another test's workflow run reads the
    # package's metadata (the report prints its version) could change that run's output.
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    # symlinks resolved (the shipped default config links to config/config.yaml)
    shutil.copytree(ROOT / "src", project / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(project)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert checkout_state() == before  # nothing in the checkout was written
    (wheel,) = wheels.glob("hairtrial-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # third-party packages of the locked environment; a plain path line does not run the
    # editable-install hook of that environment, so hairtrial is not importable from there
    Path(purelib, "locked_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", purelib,
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(py), "-c", "import hairtrial; print(hairtrial.__file__)"],
        cwd=work, check=True, capture_output=True, text=True, env=env,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(purelib), where
    out = subprocess.run(
        [str(py), "-m", "hairtrial.cli", "validate"],
        cwd=work, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "valid. 3 studies" in out.stdout
    assert "resources" in out.stdout  # the shipped config was used, not a checkout's
