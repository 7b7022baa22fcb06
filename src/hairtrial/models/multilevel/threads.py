"""BLAS threads during fits.

The work is many tiny matrices; OpenBLAS threads only add contention (busy waiting), which on a
loaded 2-core machine made fits 5x slower. Fits run with 1 BLAS thread (threadpoolctl; the
controller is created once, at the first fit, after numpy/scipy loaded their BLAS).

Names without a leading underscore are shared between the modules of
:mod:`hairtrial.models.multilevel`; its API is what the subpackage exports.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from threadpoolctl import ThreadpoolController

__all__ = ["single_threaded"]


@cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_threaded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: run `fn` with one BLAS thread (threadpoolctl).

    Parameters
    ----------
    fn : callable

    Returns
    -------
    callable
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _blas_controller().limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper
