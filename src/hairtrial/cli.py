"""Command line: ``hairtrial validate [--config FILE]`` checks a config and its data.

The whole analysis runs through Snakemake (``make run``); this command lets a
user check their own ``arms.csv`` / ``studies.csv`` against the input contract
without running anything.
"""

from __future__ import annotations

import argparse
import sys

from hairtrial import pipeline
from hairtrial.config import ConfigError, load_config
from hairtrial.validate import DataValidationError


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status (0 valid, 1 invalid)."""
    parser = argparse.ArgumentParser(prog="hairtrial", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    val = sub.add_parser("validate", help="check a config file and the data it names")
    val.add_argument("--config", default="config/config.yaml", help="config file (YAML)")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
        effects, quality, excluded = pipeline.prepare(config)
        if config["data"].get("prisma"):
            from hairtrial.prisma import read_prisma

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
