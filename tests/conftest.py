"""Shared fixtures: paths and the default configuration."""

from pathlib import Path

import pytest

from hairtrial.analyses.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _default_config() -> dict:
    cfg = load_config(ROOT / "config" / "config.yaml")
    cfg["data"] = {k: v if v is None else str(ROOT / v) for k, v in cfg["data"].items()}
    return cfg


@pytest.fixture
def default_config():
    """The default config, with data paths valid from any working directory."""
    return _default_config()


@pytest.fixture(scope="module")
def default_results():
    """prepare() and meta_analyses() of the default config (computed once per module)."""
    from hairtrial.analyses import primary

    cfg = _default_config()
    eff, quality, notes = primary.prepare(cfg)
    meta_table, study_effects = primary.meta_analyses(eff, cfg)
    return eff, quality, notes, meta_table, study_effects
