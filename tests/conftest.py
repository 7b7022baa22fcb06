"""Shared fixtures: paths and the default configuration; the hypothesis profiles."""

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from hairtrial.analyses.config import load_config

ROOT = Path(__file__).resolve().parents[1]

# pytest rewrites each test module's asserts when it imports it, and caches the result beside
# the module as Python caches bytecode - unless PYTHONDONTWRITEBYTECODE is set (as on CI
# machines and in many containers), when it rewrites every module in every worker on every run
# (about half of a worker's collection time, 5-6 s). The test modules are imported after this
# file: their rewritten code is cached (tests/__pycache__, not in git). The setting is this
# process's only; the processes the tests start (Snakemake, its jobs, kernels) keep theirs.
sys.dont_write_bytecode = False

# Property tests draw their examples at random, so a run can meet a new edge case (a real
# one, worth a fixed @example). CI runs the "ci" profile: the examples are derived from each
# test's code (the same on every run of the same code), so CI is never red by chance;
# `HYPOTHESIS_PROFILE=explore make test` searches ten times as many random examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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


#: The test files that take longest (each runs the workflow end to end, some several times),
#: longest first: measured with ``--junitxml`` on a 2-core machine (test_workflow ~250 s of
#: test time, test_workflow_ipd ~90, test_up_to_date ~65, test_ipd ~60, test_simulation ~60,
#: then 30 s and less). ``make test`` hands out whole files to its workers (``--dist
#: loadfile``) in collection order (``--no-loadscope-reorder``; xdist's own reordering puts
#: the files with most tests first, and these have few): with the longest files first, the
#: short ones fill in beside them, and no worker is left running a long file alone at the end
#: (that tail was about a minute of `make test`'s wall time).
LONGEST_FIRST = (
    "test_workflow.py",
    "test_workflow_ipd.py",
    "test_up_to_date.py",
    "test_ipd.py",
    "test_simulation.py",
    "test_plots.py",
    "test_binary.py",
)


def pytest_collection_modifyitems(session, config, items):
    """Run the files of :data:`LONGEST_FIRST` first, in that order (the rest as collected)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable
