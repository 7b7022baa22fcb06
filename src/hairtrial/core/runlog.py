"""Logging for workflow scripts: everything a script says goes to its rule's log."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def logged(path: str | Path) -> Iterator[logging.Logger]:
    """Send logging, warnings and any traceback of the block to ``path``.

    Parameters
    ----------
    path : str or Path
        The rule's ``log:`` file.

    Yields
    ------
    logging.Logger
        Logger named ``hairtrial``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            yield logging.getLogger("hairtrial")
        except BaseException:
            fh.write(traceback.format_exc())
            fh.flush()
            sys.stderr.write(traceback.format_exc())
            raise
        finally:
            root.removeHandler(handler)
            logging.captureWarnings(False)
