# hairtrial: one command to run, one to test.
#   make run                      whole workflow on config/config.yaml
#   make run CONFIG=my.yaml       your own analysis (results/my/)
#   make figures                  redraw figures from saved tables, rebuild the report (no fit)
#   make simulate                 the simulation study (SIM_PLAN=config/simulation_study.yaml)
#   make test                     unit, property, parity and end-to-end tests
#   make test-reliability         faults during a run leave the last good results whole
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
CONFIG ?= config/config.yaml
CORES ?= 2
BIN := $(VENV)/bin
PYDIRS := $(wildcard src tests workflow benchmarks notebooks)
STAMP := $(VENV)/.hairtrial-installed

.PHONY: run figures simulate bench test test-slow test-fast test-slurm test-reliability lint format env lock clean help config-docs

help:
	@sed -n '1,8p' Makefile

# The package's bytecode, written as pip writes it for an installed package (pip does not for
# an editable install): where PYTHONDONTWRITEBYTECODE is set (as on CI machines), every
# process - each workflow job, notebook kernel and test run - would otherwise compile the
# package anew (~0.1 CPU s a process). Only changed modules are compiled again.
BYTECODE := $(BIN)/python -m compileall -q src

# The locked environment: created when missing or when the lock changes.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hairtrial needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BYTECODE)
	@touch $@

env: $(STAMP)

# A run is one transaction (hairtrial run): it works in a staging copy of
# results/<name>/ and swaps it in only when it completes; a failed or interrupted run leaves
# the previous results as they were. SMK_ARGS: extra Snakemake options (e.g. -n).
run: $(STAMP)
	$(BIN)/hairtrial run --config $(CONFIG) --cores $(CORES) -- $(SMK_ARGS)

# Redraw every figure from the saved tables and figure data: one job that fits nothing
# (the analysis jobs run only when their outputs are missing); picks up changes to the
# `figures` section of the config. The HTML report, which embeds the figures, is rebuilt
# from the new drawing (with the notebooks, when a setting they use changed), so it never
# shows the figures of an earlier drawing. SMK_ARGS: extra Snakemake options (e.g. -n).
FIGURES_ARGS := --forcerun figures --until html_report
figures: $(STAMP)
	$(BIN)/hairtrial run --config $(CONFIG) --cores $(CORES) -- $(FIGURES_ARGS) $(SMK_ARGS)

# The simulation study (issue 13): the plan in config/simulation_study.yaml, one job per
# scenario and chunk; writes results/simulation/ (performance.csv, figures, report.md).
# Not part of `make run`. On a Slurm cluster: SMK_ARGS="--profile workflow/profiles/slurm".
# SIM_PLAN: another plan. The plan is checked first: a rejected one is a message naming the
# file and each rule it breaks, and nothing runs.
SIM_PLAN ?= config/simulation_study.yaml
simulate: $(STAMP)
	$(BIN)/hairtrial validate --simulation-plan "$(SIM_PLAN)"
	$(BIN)/snakemake --cores $(CORES) --config "simulation_study=$(SIM_PLAN)" $(SMK_ARGS) simulation

# Timing benchmarks: the multilevel engine and the batched univariate engine (and metafor,
# when Rscript is installed); write benchmarks/results/. Not part of `make test`.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_multilevel.py
	$(BIN)/python benchmarks/bench_batched.py

# The test files are spread over $(CORES) worker processes (pytest-xdist), each file on one
# worker (its module fixtures, e.g. one workflow run shared by its tests, built once), the
# longest files first (tests/conftest.py: LONGEST_FIRST), so no worker ends alone on one.
test: $(STAMP)
	@$(BYTECODE)
	$(BIN)/python -m pytest -n $(CORES) --dist loadfile --no-loadscope-reorder

# Slow statistical checks (coverage of the arm model's CI over 2 x 500 simulated
# meta-analyses, several minutes); not part of `make test` or CI.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -s

# What a whole run guarantees (marker `reliability`): faults during a run
# (tests/test_reliability.py: a crash inside a job, SIGINT and SIGTERM mid-run, a concurrent
# run, a read-only results folder, a full disk - tmpfs, root only) each leave the last good
# results byte-identical, and a second cold run of the whole workflow writes the same bytes
# as the first (tests/test_workflow.py). A few minutes; .ci/run runs it after make test.
test-reliability: $(STAMP)
	$(BIN)/python -m pytest -m reliability tests/test_reliability.py tests/test_workflow.py

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e and not slow and not slurm"

# The workflow on a real one-node Slurm cluster (tests/test_slurm.py, .ci/slurm/): needs root
# and apt-get, installs Debian's Slurm packages when missing, starts the daemons and always
# stops them; 2-3 minutes. Not part of `make test`; .ci/run runs it (.ci/run-slurm).
test-slurm: $(STAMP)
	$(BIN)/python -m pytest -m slurm -s tests/test_slurm.py

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python .ci/check_private_imports.py src/hairtrial
	$(BIN)/mypy
	$(BIN)/ruff check $(PYDIRS)
	$(BIN)/ruff format --check $(PYDIRS)
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format $(PYDIRS)
	$(BIN)/ruff check --fix $(PYDIRS)
	$(BIN)/snakefmt Snakefile workflow/rules

# Regenerate the lock (needs uv and the package index); commit the result.
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		--no-header --index-url https://pypi.org/simple -o requirements.lock

# config/README.md documents every config key; its table is generated from the JSON schema.
config-docs: $(STAMP)
	@{ sed '/^| key | type |/,$$d' config/README.md; \
	   $(BIN)/python -c 'from hairtrial.analyses.config import schema_reference as s; print(s(), end="")'; \
	 } > config/README.md.tmp && mv config/README.md.tmp config/README.md

clean:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .snakemake
