"""Command line: ``hairtrial validate [--config FILE]`` checks a config and its data.

The whole analysis runs through Snakemake (``make run``); this command lets a
user check their own ``arms.csv`` / ``studies.csv`` against the input contract
without running anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hairtrial.analyses import primary
from hairtrial.analyses.config import (
    DEFAULT_CONFIG,
    RESOURCES,
    ConfigError,
    load_config,
    resolve_data_paths,
)
from hairtrial.data.validate import DataValidationError


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (0 valid, 1 invalid)."""
    parser = argparse.ArgumentParser(prog="hairtrial", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    val = sub.add_parser("validate", help="check a config file and the data it names")
    val.add_argument(
        "--config",
        default=None,
        help="config file (YAML); default: config/config.yaml of the working directory if it "
        "exists, otherwise the default config and published data shipped with the package",
    )
    args = parser.parse_args(argv)

    try:
        if args.config is None and not Path("config/config.yaml").is_file():
            # an installed package outside a checkout: the shipped config and data
            args.config = str(DEFAULT_CONFIG)
            config = resolve_data_paths(load_config(DEFAULT_CONFIG), RESOURCES)
        else:
            args.config = args.config or "config/config.yaml"
            config = load_config(args.config)
        effects, quality, excluded = primary.prepare(config)
        if config["data"].get("prisma"):
            from hairtrial.data.prisma import read_prisma

            read_prisma(config["data"]["prisma"])
    except (ConfigError, DataValidationError) as err:
        print(f"hairtrial: {err}", file=sys.stderr)
        return 1
    n_studies = effects["study"].nunique() if len(effects) else 0
    print(
        f"{args.config}: valid. {n_studies} studies give {len(effects)} comparisons x measures; "
        f"{len(quality)} numbers are derived or assumed; {len(excluded)} inputs cannot be used."
    )
    for note in excluded["note"]:
        print(f"  not used: {note}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
