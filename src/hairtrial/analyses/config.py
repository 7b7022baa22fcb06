"""Loading and validating the workflow configuration.

The JSON schema is package data (``hairtrial/resources/config.schema.yaml``, linked from
``workflow/schemas/`` as Snakemake's convention expects); the same schema is used by
``snakemake`` and by ``hairtrial validate``, and fills in defaults. The default config and the
published data are package data too (``hairtrial/resources/``, links to ``config/`` and
``data/`` in a checkout), so an installed wheel can validate them.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from hairtrial.core.yamlio import load_yaml, yaml_copy

#: jsonschema's optional format libraries (its ``_format`` module imports each that is installed).
_FORMAT_LIBRARIES = (
    "fqdn", "idna", "isoduration", "jsonpointer", "rfc3339_validator", "rfc3986_validator",
    "rfc3987", "rfc3987_syntax", "uri_template", "webcolors",
)  # fmt: skip


def _import_jsonschema():
    """jsonschema, imported without its optional format checkers.

    When installed (the Jupyter stack installs them), jsonschema imports a library per string
    format it can check (hostnames, IRIs, durations, colours, ...): ``rfc3987_syntax`` alone
    compiles about 40 grammars (about 1 s), the others together take 0.1-0.2 s, in every
    process that validates a config (each job, each notebook kernel, the Snakemake process).
    They serve only format checking, which the config validation does not ask for (no
    format checker is passed; the schema has no ``format`` keyword), so validation is the
    same. A library already imported by the process is used as it is; the blocked ones are
    importable again afterwards.
    """
    blocked = [name for name in _FORMAT_LIBRARIES if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # ImportError
    try:
        import jsonschema
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return jsonschema


jsonschema = _import_jsonschema()

ROOT = Path(__file__).resolve().parents[3]
"""The project root of a source checkout (not meaningful in an installed wheel)."""
RESOURCES = Path(__file__).resolve().parents[1] / "resources"
"""Package data: the schema, the default config and the published data, in the layout of a
checkout (``config/config.yaml``, ``data/*.csv``), so the default config's relative data paths
hold from :data:`RESOURCES`."""
SCHEMA_PATH = RESOURCES / "config.schema.yaml"
DEFAULT_CONFIG = RESOURCES / "config" / "config.yaml"


class ConfigError(ValueError):
    """Raised for a configuration that breaks the schema."""


def _fill_defaults(instance: Any, schema: dict) -> None:
    """Set schema defaults for missing keys, recursively (objects only)."""
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = yaml_copy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Validate ``config`` against the schema and fill in defaults.

    Parameters
    ----------
    config : dict
        Parsed configuration.
    schema_path : str or Path
        The JSON schema (YAML).

    Returns
    -------
    dict
        A copy of ``config`` with defaults filled in.

    Raises
    ------
    ConfigError
        Naming the key path, the value and the rule broken.

    Examples
    --------
    >>> cfg = yaml.safe_load(open(DEFAULT_CONFIG))
    >>> cfg["measures"] = ["MD", "RR"]
    >>> try:
    ...     validate_config(cfg)
    ... except ConfigError as e:
    ...     print(e)
    config key 'measures.1': 'RR' is not one of ['MD', 'SMD']
    """
    config = validate_schema(config, schema_path)
    problem = data_problem(config)
    if problem:
        raise ConfigError(problem)
    return config


def validate_schema(config: dict, schema_path: str | Path) -> dict:
    """Validate ``config`` against a JSON schema only (no cross-key rules); fill in defaults.

    :func:`validate_config` adds the workflow config's own rules; other plans (e.g. the
    simulation study's) use this directly.

    Raises
    ------
    ConfigError
        Naming the key path, the value and the rule broken.
    """
    schema = load_yaml(Path(schema_path).read_text(encoding="utf-8"))
    config = yaml_copy(config)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path)))
    if errors:
        lines = []
        for e in errors:
            path = [str(p) for p in e.path]
            if e.validator == "required" and isinstance(e.instance, dict):
                for missing in [k for k in e.validator_value if k not in e.instance]:
                    lines.append(f"config key '{'.'.join([*path, missing])}': missing (required)")
                continue
            key = ".".join(path) or "(top level)"
            message = e.message
            if e.validator in ("oneOf", "anyOf"):  # say what would do, not "no schema matched"
                options = "; or ".join(_describe(sub) for sub in e.validator_value)
                message = f"{e.instance!r} is not allowed: give {options}"
            lines.append(f"config key '{key}': {message}")
        raise ConfigError("\n".join(dict.fromkeys(lines)))  # a rule broken twice: once
    _fill_defaults(config, schema)
    return config


def _describe(schema: dict) -> str:
    """A schema alternative in words (for oneOf / anyOf errors).

    Examples
    --------
    >>> _describe({"type": "number", "minimum": -1, "maximum": 1})
    'a number from -1 to 1'
    >>> _describe({"type": "number", "minimum": -1, "exclusiveMaximum": 1})
    'a number from -1 to below 1'
    >>> _describe({"const": "from_ipd"})
    "'from_ipd'"
    """
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(map(repr, schema["enum"]))
    kind = schema.get("type")
    if kind in ("number", "integer"):
        word = "a whole number" if kind == "integer" else "a number"
        low = (
            f"from {schema['minimum']:g}" if "minimum" in schema
            else f"above {schema['exclusiveMinimum']:g}" if "exclusiveMinimum" in schema
            else ""
        )  # fmt: skip
        high = (
            f"to {schema['maximum']:g}" if "maximum" in schema
            else f"to below {schema['exclusiveMaximum']:g}" if "exclusiveMaximum" in schema
            else ""
        )  # fmt: skip
        if low and not high:
            return f"{word} {low}"
        if high and not low:
            return f"{word} up {high}"
        return " ".join(x for x in (word, low, high) if x)
    if kind == "null":
        return "null"
    if kind == "string":
        return "a text"
    if kind == "array":
        return "a list"
    if kind == "object":
        return "a mapping"
    return json.dumps(schema, sort_keys=True)


def data_problem(config: dict) -> str:
    """Why the ``data`` section cannot run (``""`` when it can).

    A review may have only continuous outcomes (``data.arms``) or only binary ones
    (``data.events``), but not neither.

    Examples
    --------
    >>> print(data_problem({"data": {"arms": None, "events": None, "studies": "s.csv"}}))
    ... # doctest: +NORMALIZE_WHITESPACE
    config key 'data': at least one of 'data.arms' (continuous outcomes) and 'data.events'
    (binary outcomes) must name a file; both are null
    >>> data_problem({"data": {"events": "events.csv", "studies": "s.csv"}})
    ''
    """
    data = config.get("data") or {}
    if not data.get("arms") and not data.get("events"):
        return (
            "config key 'data': at least one of 'data.arms' (continuous outcomes) and "
            "'data.events' (binary outcomes) must name a file; both are null"
        )
    return ""


def _read_yaml(path: Path) -> dict:
    """A config file as a mapping; errors name the file (and the line and column of a YAML
    error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (looked for {path.absolute()})") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror})") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    return config


def merge(base: dict, update: dict) -> dict:
    """Recursively update ``base`` with ``update`` as Snakemake merges config files.

    Mappings are merged key by key; any other value (lists included) replaces.

    Examples
    --------
    >>> merge({"a": {"x": 1, "y": 2}, "b": [1]}, {"a": {"y": 3}, "b": [2]})
    {'a': {'x': 1, 'y': 3}, 'b': [2]}
    """
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


OWN_KEYS = ("name", "data")
"""Keys an analysis never inherits from the default config: its name and its data files
(a user's analysis shows nothing of the published data, PRISMA counts included, unless its
config names it)."""

RESERVED_NAMES = frozenset({"README.md"})
"""Analysis names that cannot be results folders."""


def _resolve_paths(config: dict, folder: Path) -> dict:
    """``config`` with its relative ``data`` paths taken from ``folder`` (absolute)."""
    data = config.get("data")
    if not isinstance(data, dict):
        return config
    out = dict(config)
    out["data"] = {
        k: (os.path.abspath(folder / v) if isinstance(v, str) and v else v) for k, v in data.items()
    }
    return out


def compose_config(
    config_files: list[str | Path] | tuple[str | Path, ...],
    overrides: dict | None = None,
    default_config: str | Path = DEFAULT_CONFIG,
) -> dict:
    """The config of one analysis: its files merged onto the default config's settings.

    Every analysis takes the default config's settings (methods, assumptions, figures...)
    unless it changes them, but never its :data:`OWN_KEYS`: ``data`` and ``name`` come from
    the analysis's own config files only. Relative paths in a config file are relative to
    that file's folder; they are returned absolute. ``name`` defaults to the stem of the
    last config file. ``overrides`` (Snakemake's ``--config``) are merged last. Without
    config files the default config is the analysis.

    Raises
    ------
    ConfigError
        Naming the config file and the key: a missing or malformed file (YAML errors with
        line and column), a schema violation, a data file that does not exist (with the
        path looked for).

    Examples
    --------
    >>> cfg = compose_config([DEFAULT_CONFIG])
    >>> cfg["name"], Path(cfg["data"]["arms"]).name
    ('default', 'arms.csv')
    """
    files = [Path(f) for f in config_files] or [Path(default_config)]
    base = {k: v for k, v in _read_yaml(Path(default_config)).items() if k not in OWN_KEYS}
    config = base
    for path in files:
        config = merge(config, _resolve_paths(_read_yaml(path), path.parent.absolute()))
    if overrides:
        config = merge(config, _resolve_paths(dict(overrides), Path.cwd()))
    last = files[-1]
    config.setdefault("name", last.stem)
    where = ", ".join(str(f) for f in files)
    try:
        config = validate_config(config)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    if config["name"] in RESERVED_NAMES:
        raise ConfigError(f"{where}: config key 'name': {config['name']!r} is reserved")
    problems = []  # every data path at once
    for key, value in config["data"].items():
        if value is None:
            continue
        path = Path(value)
        if not path.exists():
            problems.append(
                f"{where}: config key 'data.{key}': file not found (looked for {path}; "
                "relative paths are taken from the config file's folder)"
            )
        elif path.is_dir():
            problems.append(f"{where}: config key 'data.{key}': {path} is a folder, not a file")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def results_dir(config: dict) -> str:
    """The results folder of an analysis, relative to the working directory:
    ``results/<name>``.

    Examples
    --------
    >>> results_dir({"name": "my_trials"})
    'results/my_trials'
    """
    return f"results/{config['name']}"


def load_config(path: str | Path) -> dict:
    """Read a YAML config file as the workflow does (:func:`compose_config`).

    The merge is the one ``make run CONFIG=...`` performs, so a user's config needs only
    the keys it changes (and its own ``data``); data paths are returned absolute.

    Raises
    ------
    ConfigError
        For a missing or unreadable file, a schema violation or a missing data file.
    """
    return compose_config([path])


def resolve_data_paths(config: dict, root: str | Path) -> dict:
    """A copy of ``config`` whose relative ``data`` paths are taken from ``root``.

    Configs from :func:`load_config` have absolute paths already (unchanged here).

    Examples
    --------
    >>> resolve_data_paths({"data": {"arms": "data/arms.csv"}}, "/p")["data"]["arms"]
    '/p/data/arms.csv'
    """
    out = dict(config)
    out["data"] = {
        k: v if v is None else str(v if Path(v).is_absolute() else Path(root) / v)
        for k, v in config["data"].items()
    }
    return out


@functools.cache
def _schema() -> dict:
    return load_yaml(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_default(*keys: str) -> Any:
    """The schema's default of a config key (``schema_default("subgroups", "moderators")``).

    The defaults live in the schema only; code that needs one reads it from there.

    Examples
    --------
    >>> schema_default("subgroups", "moderators")
    ['sex', 'category', 'design']
    """
    node = _schema()
    for key in keys:
        node = node["properties"][key]
    return copy.deepcopy(node["default"])


def _describe_type(schema: dict) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if "oneOf" in schema:
        return " or ".join(_describe_type(s) for s in schema["oneOf"])
    kind = schema.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " or ".join(k for k in kinds if k)
    if kind == "array" and "items" in schema:
        text = f"list of ({_describe_type(schema['items'])})"
    bounds = []
    for key, sym in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            bounds.append(f"{sym} {schema[key]}")
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _walk(schema: dict, prefix: str, required: bool, rows: list[tuple[str, ...]]) -> None:
    default = schema.get("default")
    if schema.get("type") == "object":  # defaults are shown key by key
        default = None
    shown = "" if default is None else f"`{json.dumps(default, ensure_ascii=False)}`"
    shown = shown.replace("|", "\\|")
    desc = " ".join(str(schema.get("description", "")).split()).replace("|", "\\|")
    need = "required" if required else ("optional" if default is None else "")
    rows.append((f"`{prefix}`", _describe_type(schema).replace("|", "\\|"), shown, need, desc))
    target = schema
    items = schema.get("items")
    if schema.get("type") == "array" and isinstance(items, dict) and items.get("type") == "object":
        target, prefix = items, prefix + "[]"
    for key, sub in target.get("properties", {}).items():
        _walk(sub, f"{prefix}.{key}", key in target.get("required", []), rows)


def schema_reference(schema_path: str | Path = SCHEMA_PATH) -> str:
    """Every config key of the schema as a Markdown table (``config/README.md`` is made of it).

    Examples
    --------
    >>> "`meta_analysis.tau2_methods`" in schema_reference()
    True
    """
    schema = load_yaml(Path(schema_path).read_text(encoding="utf-8"))
    rows: list[tuple[str, ...]] = []
    for key, sub in schema["properties"].items():
        _walk(sub, key, key in schema.get("required", []), rows)
    lines = ["| key | type | default | | meaning |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
