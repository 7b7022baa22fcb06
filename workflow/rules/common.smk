# Helpers shared by the rules: the analysis's config (composed and validated once), its
# results folder (results_path), input validation at parse time (so a malformed input stops
# the run before any output is touched), and the lists of files the jobs write.
import os
import threading
from importlib import resources
from pathlib import Path

from hairtrial.analyses import config as analysis_config
from hairtrial.analyses.fingerprint import (
    CHECKED_ENV,
    checked_before,
    code_fingerprint,
    inputs_record,
    rerun_key,
    run_fingerprint,
    write_record,
)
from hairtrial.analyses.simulation_plan import (  # light: no models
    PlanError,
    jobs,
    load_study,
    plan_error_message,
)
from hairtrial.core.cores import RUN_CORES_ENV
from hairtrial.core.runlog import skip_final_collection
from hairtrial.core.yamlio import load_yaml

# This Snakemake process (whoever started it) ends without the interpreter's last garbage
# collections (~0.3 s at the end of every run): hairtrial.core.runlog.skip_final_collection.
skip_final_collection()

# Snakemake's `priority:` of the jobs on a run's longest chain, which start first when more
# jobs are ready than there are cores: (analysis, binary) -> evidence -> figures. The figure
# job can start once the evidence job ends; the arm model and the notebooks are shorter
# chains and fill in beside it (default priority 0).
CRITICAL_PATH_PRIORITY = 1

# The run's --cores, for the jobs it starts (how many processes the figure job may draw
# with: hairtrial.core.cores); unset when the run has no core count (a cluster run).
try:
    os.environ[RUN_CORES_ENV] = str(int(workflow.cores))
except (WorkflowError, TypeError, ValueError):
    os.environ.pop(RUN_CORES_ENV, None)

# The config of this analysis: the --configfile files (or config/config.yaml) merged onto
# the default config's settings, never its `name` and `data` (Snakemake's merge of the
# Snakefile's `configfile:` under the user's config is undone here); paths relative to the
# config file that names them, made absolute; validated against the schema with defaults.
try:
    _analysis = analysis_config.compose_config(
        [str(p) for p in workflow.overwrite_configfiles],
        dict(workflow.config_settings.config),
        default_config=Path(workflow.basedir, "config", "config.yaml"),
    )
except analysis_config.ConfigError as err:
    raise WorkflowError(
        f"Config rejected; nothing was run or written.\n{err}"
    ) from None
config.clear()
config.update(_analysis)
HAS_ARMS = bool(config["data"].get("arms"))  # continuous outcomes
HAS_EVENTS = bool(config["data"].get("events"))  # binary outcomes

# Rerun keys, one `params: rerun=` of every job: Snakemake reruns a job when its inputs, its
# script or its params change, but it does not see the config a script reads nor the library
# it calls; these keys make a changed setting or an upgraded hairtrial rerun what depends on
# it (the table jobs do not read the `figures` section).
CODE_KEY = code_fingerprint()
TABLES_KEY = rerun_key(config, CODE_KEY, without=("figures",))
OUTPUTS_KEY = rerun_key(config, CODE_KEY)

RESULTS = analysis_config.results_dir(config)
"""This analysis's results folder (results/<name>), relative to the working directory."""


def results_path(path=""):
    """A path in this analysis's results folder: every rule's output and log
    goes through it (``results_path("tables/x.csv")`` -> ``results/<name>/tables/x.csv``).
    """
    return f"{RESULTS}/{path}" if path else RESULTS


# Every input read and validated, and the selection checked against the data (one place:
# hairtrial.analyses.inputs, also used by `hairtrial run` and `hairtrial validate`); not
# twice for the same run fingerprint (inputs, config, workflow, code, libraries): not when
# `hairtrial run` has just checked them, nor when they passed before (the analysis's record,
# shared with `hairtrial run`; a dry run, a rerun, each job of a cluster run parses again).
_FINGERPRINT = run_fingerprint(config, workflow.main_snakefile)
_CHECKED = inputs_record(config["name"])
if os.environ.get(CHECKED_ENV) != _FINGERPRINT and not checked_before(
    _CHECKED, _FINGERPRINT
):
    from hairtrial.analyses.inputs import check_inputs
    from hairtrial.data.validate import DataValidationError

    try:
        check_inputs(config)
    except DataValidationError as err:
        raise WorkflowError(
            f"Input data rejected; nothing was run or written.\n{err}"
        ) from None
    except (
        analysis_config.ConfigError
    ) as err:  # the selection finds nothing in the data
        files = (
            ", ".join(map(str, workflow.overwrite_configfiles)) or "config/config.yaml"
        )
        raise WorkflowError(
            f"Config rejected; nothing was run or written.\n{files}: {err}"
        ) from None
    write_record(_CHECKED, _FINGERPRINT)

# Table and figure-data names: hairtrial.analyses.run.CONTRAST_TABLES, ARM_MODEL_TABLES,
# and hairtrial.report.figures.FIGURE_DATA (the rules list them so that Snakemake knows
# every file without importing the analysis code).
CONTRAST_TABLES = [
    "data_quality",
    "excluded",
    "meta_analysis",
    "study_effects",
    "robustness",
    "meta_regression",
    "subgroups",
    "leave_one_out",
    "influence",
    "cumulative",
    "small_study",
]
EVIDENCE_TABLES = [  # hairtrial.analyses.evidence.EVIDENCE_TABLES
    "summary_of_findings",
    "bayes",
    "bayes_sensitivity",
    "next_trial",
    "next_trial_sample_size",
]
ARM_MODEL_TABLES = [
    "arm_model_coefficients",
    "arm_model_contrasts",
    "arm_model_variance",
    "arm_model_fit",
    "arm_model_means",
]
FIGURE_DATA = [
    "bubble_points",
    "bubble_lines",
    "subgroup_studies",
    "subgroup_levels",
    "subgroup_tests",
    "subgroup_overall",
    "baujat",
    "influence_reference",
    "influence_panels",
    "funnel_filled",
    "funnel_lines",
]
# hairtrial.analyses.binary.TABLES and the binary figure data
BINARY_TABLES = [
    "binary_study_effects",
    "binary_meta_analysis",
    "binary_robustness",
    "binary_absolute_effects",
    "binary_data_quality",
    "binary_excluded",
]
BINARY_FIGURE_DATA = ["binary_study_info", "binary_figures"]
BINARY_FIGURE_TABLES = [
    "binary_study_effects",
    "binary_meta_analysis",
    "binary_robustness",
]
# the manifests of this config's jobs: continuous outcomes (arms), binary outcomes (events)
MANIFESTS = [
    *(
        [
            results_path("manifests/analysis.csv"),
            results_path("manifests/arm_model.csv"),
        ]
        if HAS_ARMS
        else []
    ),
    *([results_path("manifests/binary.csv")] if HAS_EVENTS else []),
    *(
        [results_path("manifests/ipd.csv")]
        if config["data"].get("participants")
        else []
    ),
    results_path("manifests/evidence.csv"),
    results_path("manifests/figures.csv"),
    *([results_path("manifests/notebooks.csv")] if HAS_ARMS else []),
]
NOTEBOOKS = sorted(
    p.stem
    for p in Path(workflow.basedir, "notebooks").glob("[0-9]*.py")
    if p.stem != "05_participants" or config["data"].get("participants")
)  # the participant-level notebook runs only when the config names participant data
in_report = report  # the bare name cannot start a line in a .smk file


# One caption file for the HTML report and Snakemake's report: the package's captions.yaml.
# Snakemake reads a caption from an .rst file per report item; the table captions are
# written from the caption file into .snakemake/ (figures: workflow/report/figure.rst
# looks its caption up by the figure's name).
CAPTIONS = load_yaml(
    resources.files("hairtrial")
    .joinpath("resources", "captions.yaml")
    .read_text(encoding="utf-8")
)


def caption_file(name):
    """An .rst holding the caption of the table ``name`` (written when it changes)."""
    path = Path(".snakemake", "hairtrial-captions", f"{name}.rst").resolve()
    text = CAPTIONS["tables"].get(name, f"Table {name}.") + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return str(path)


def tables(names):
    """The CSV of each table (in Snakemake's report) and its renderings."""
    return [
        in_report(
            results_path(f"tables/{name}.csv"),
            caption=caption_file(name),
            category="Tables",
        )
        for name in names
    ] + expand(
        results_path("tables/{name}.{ext}"), name=names, ext=["md", "html", "tex"]
    )


def optional_input(path):
    """``path`` as an input when the file exists, else no input (an optional data file)."""
    return path if path and Path(path).is_file() else []


def table_csvs(names):
    return {name: results_path(f"tables/{name}.csv") for name in names}


# Participant-level data (issue 12): the ipd job runs only when the config names them.
IPD = bool(config["data"].get("participants"))
IPD_TABLES = [
    "ipd_contrasts",
    "ipd_coefficients",
    "ipd_variance",
    "ipd_fit",
    "ipd_correlations",
    "ipd_anova",
    "ipd_one_stage",
]
IPD_DATA = ["ipd_trajectories", "ipd_arm_means"]


def ipd_targets():
    """The ipd job's manifest when the config names participant data, else nothing."""
    return [results_path("manifests/ipd.csv")] if IPD else []


def ipd_figure_data():
    """The ipd job's figure data, inputs of the figure job when there are participants."""
    return (
        {name: results_path(f"derived/{name}.csv") for name in IPD_DATA} if IPD else {}
    )


# The simulation study's plan (workflow/rules/simulation.smk): config["simulation_study"].
# a relative plan path is looked up in the working directory, then beside the Snakefile
SIM_PLAN_FILE = config.get("simulation_study", "config/simulation_study.yaml")
if not Path(SIM_PLAN_FILE).exists() and Path(workflow.basedir, SIM_PLAN_FILE).exists():
    SIM_PLAN_FILE = str(Path(workflow.basedir, SIM_PLAN_FILE))
# without a plan the other targets still run; `simulation` then names the missing file. A
# plan that cannot be read or breaks a rule stops only the simulation's targets (the other
# targets do not read it), with the file and what is wrong with it.
SIM_PLAN_ERROR = None
try:
    SIM_JOBS = jobs(load_study(SIM_PLAN_FILE)) if Path(SIM_PLAN_FILE).exists() else []
except PlanError as err:
    SIM_JOBS = []
    SIM_PLAN_ERROR = plan_error_message(SIM_PLAN_FILE, err)
SIM = "results/simulation"


def simulation_sums(wildcards):
    """Every job's sums (the plan's jobs); a rejected plan stops the simulation here."""
    if SIM_PLAN_ERROR:
        raise WorkflowError(SIM_PLAN_ERROR)
    return [f"{SIM}/chunks/{s}/{c}.csv" for s, c in SIM_JOBS]


def end_rate_limit_timers():
    """Cancel the job scheduler's pending re-evaluation timers once the jobs are done.

    Snakemake's job rate limiter (``--max-jobs-per-timespan``, default 100/1s) starts a
    ``threading.Timer`` of one timespan each time its scheduling loop launches jobs; the
    timers are not daemon threads, so the process waited for the last one (up to a second,
    0.9 s for a one-job run, measured) after the workflow had ended. When the hooks run, the
    scheduler has returned: a timer can only wake a loop that no longer waits.
    """
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


onsuccess:
    end_rate_limit_timers()


onerror:
    end_rate_limit_timers()
