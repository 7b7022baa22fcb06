"""Everything an analysis needs, checked before any job runs (one place for the workflow's
parse-time check and ``hairtrial run`` / ``hairtrial validate``).

:func:`check_inputs` reads and validates every file the config names (studies, continuous
arms, binary events, outcomes, PRISMA counts), then checks that the config's selection finds
something in them: each ``outcomes`` code and each ``comparison`` code exists in the data,
``selection.studies: primary`` selects at least one study, and the selection yields at least
one comparison. A selection that yields nothing is a :class:`SelectionError` naming the
config key, its value and what the data holds, instead of an empty analysis that would
replace the last good results.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

from hairtrial.analyses import primary
from hairtrial.analyses.config import ConfigError
from hairtrial.data import validate
from hairtrial.data.validate import DataValidationError

__all__ = ["Checked", "DataValidationError", "SelectionError", "check_inputs"]


class SelectionError(ConfigError):
    """The config selects nothing in the data (the message names the key and the value)."""


@dataclass
class Checked:
    """What :func:`check_inputs` read: the continuous effects (empty without ``data.arms``)
    and the binary events (None without ``data.events``)."""

    effects: pd.DataFrame
    quality: pd.DataFrame
    excluded: pd.DataFrame
    events: pd.DataFrame | None


def _listing(values) -> str:
    vals = sorted({str(v) for v in values})
    if not vals:
        return "none"
    shown = ", ".join(vals[:12])
    return shown + (f" and {len(vals) - 12} more" if len(vals) > 12 else "")


def _selection_problems(
    config: dict, arms: pd.DataFrame | None, events: pd.DataFrame | None, studies: pd.DataFrame
) -> list[str]:
    """Config keys whose values the data does not hold."""
    tables = {name: t for name, t in (("arms", arms), ("events", events)) if t is not None}
    files = " and ".join(f"data.{k}" for k in tables)
    problems = []
    for name, t in tables.items():
        if len(t) == 0:
            problems.append(
                f"config key 'data.{name}': {config['data'][name]} has no data rows (header only)"
            )
    if problems:
        return problems
    outcomes = config.get("outcomes", "all")
    if outcomes != "all":
        held = set().union(*(set(t["outcome"]) for t in tables.values()))
        for code in outcomes:
            if code not in held:
                problems.append(
                    f"config key 'outcomes': '{code}' is not an outcome of {files} "
                    f"(outcomes there: {_listing(held)})"
                )
    held_tr = set().union(*(set(t["treatment"]) for t in tables.values()))
    for role in ("control", "experimental"):
        code = config["comparison"][role]
        if code not in held_tr:
            problems.append(
                f"config key 'comparison.{role}': '{code}' is not a treatment of {files} "
                f"(treatments there: {_listing(held_tr)})"
            )
    primary_only = config.get("selection", {}).get("studies", "primary") == "primary"
    if primary_only and not (studies["primary"] == "yes").any():
        problems.append(
            "config key 'selection.studies': 'primary' selects no study: no row of "
            f"{config['data']['studies']} has primary = yes"
        )
    return problems


def check_inputs(config: dict) -> Checked:
    """Read and validate every input of ``config`` and check that its selection finds data.

    Raises
    ------
    hairtrial.data.validate.DataValidationError
        A file breaks the input contract (file, line, column, value, rule).
    SelectionError
        The config selects nothing in the data (key, value, what the data holds).
    """
    data = config["data"]
    studies = validate.read_studies(data["studies"])
    outcomes_table = None
    if data.get("outcomes"):
        from hairtrial.data.outcomes import read_outcomes

        outcomes_table = read_outcomes(data["outcomes"])
    arms = None
    if data.get("arms"):
        arms, _ = validate.read_inputs(data["arms"], data["studies"])
        if outcomes_table is not None:
            from hairtrial.data.outcomes import outcome_problems

            problems = outcome_problems(arms, outcomes_table, kind="continuous", fname=data["arms"])
            if problems:
                raise DataValidationError(problems)
    events = None
    if data.get("events"):
        from hairtrial.data.events import read_events

        events = read_events(data["events"], studies, outcomes_table)
    if data.get("participants"):
        from hairtrial.data.participants import read_participants

        read_participants(data["participants"], studies, arms)
    if "from_ipd" in config["assumptions"].values():  # measurable from the participants?
        from hairtrial.analyses.ipd import resolved_assumptions

        resolved_assumptions(config)
    if data.get("prisma"):
        from hairtrial.data.prisma import read_prisma

        with warnings.catch_warnings():  # arithmetic warnings go in the diagram's footer
            warnings.simplefilter("ignore")
            read_prisma(data["prisma"])
    if data.get("grade"):
        from hairtrial.data.grade import read_grade

        read_grade(data["grade"], outcomes_table)
    selection = _selection_problems(config, arms, events, studies)
    if selection:
        raise SelectionError("\n".join(selection))
    if arms is not None:
        effects, quality, excluded = primary.prepare(config)
    else:
        effects, quality, excluded = (pd.DataFrame(), pd.DataFrame(), pd.DataFrame({"note": []}))
    n_binary, binary_notes = 0, list[str]()
    if events is not None and len(effects) == 0:  # then the binary outcomes must give one
        from hairtrial.analyses.binary import prepare as prepare_binary

        tabs, _, _, binary_notes = prepare_binary(config)
        n_binary = len(tabs)
    if len(effects) == 0 and n_binary == 0:
        # a selection that analyses nothing is an error, not an empty analysis that would
        # replace the last good results
        notes = [*excluded["note"].astype(str), *binary_notes] if len(excluded) else binary_notes
        why = "; ".join(notes[:5]) or "no study has both arms"
        files = " and ".join(str(data[k]) for k in ("arms", "events") if data.get(k))
        raise SelectionError(
            "the selection yields no comparison: config keys comparison.control = "
            f"'{config['comparison']['control']}', comparison.experimental = "
            f"'{config['comparison']['experimental']}', outcomes = {config.get('outcomes')!r}, "
            f"selection.studies = '{config.get('selection', {}).get('studies', 'primary')}' "
            f"select nothing in {files} ({why})"
        )
    return Checked(effects, quality, excluded, events)
