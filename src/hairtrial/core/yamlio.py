"""YAML read through libyaml where PyYAML was built with it.

PyYAML's pure-Python parser needs about 0.1 s for the config schema, and every process of a
run validates a config (the Snakemake process, each job, ``hairtrial``), copying it and each
default through YAML. Its C parser (``CSafeLoader``, libyaml) takes about a tenth of that and
gives the same Python values: only scanning, parsing and composing are in C; the resolver
and the safe constructor are PyYAML's own Python code in both loaders. So this is used for
the package's own files and for copies, never to write a file (the two emitters may lay out
the same data differently). A user's config file is read with the pure-Python loader, whose
error messages (problem, line, column) the config errors quote.
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, through libyaml when available.

    Examples
    --------
    >>> load_yaml("a: [1, 2.5, yes, null]")
    {'a': [1, 2.5, True, None]}
    """
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (C or Python)


def yaml_copy(value: Any) -> Any:
    """``yaml.safe_load(yaml.safe_dump(value))``: a deep copy in plain YAML types.

    Tuples become lists and mapping keys come out sorted, as with the pure-Python pair; a
    value YAML cannot represent raises :class:`yaml.representer.RepresenterError`.

    Examples
    --------
    >>> yaml_copy({"b": (1, 2), "a": {"x": None}})
    {'a': {'x': None}, 'b': [1, 2]}
    """
    return yaml.load(yaml.dump(value, Dumper=_DUMPER), Loader=_LOADER)  # noqa: S506
