"""Known sampling covariance of repeated measurements (a metafor ``vcalc``-like helper).

Names without a leading underscore are shared between the modules of
:mod:`hairtrial.models.multilevel`; its API is what the subpackage exports.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike

from hairtrial.models.multilevel.structures import FArr
from hairtrial.models.multilevel.threads import single_threaded

__all__ = ["block_covariance"]


@single_threaded
def block_covariance(
    data: pd.DataFrame,
    *,
    vi: str | None = None,
    arm: str | None = None,
    time: str | None = None,
    rho: float | Callable[[FArr, FArr], FArr] = 0.0,
    sd: str | None = None,
    n: str | None = None,
    contrast: tuple[str, str] | None = None,
    var: tuple[str, str] | None = None,
    V: ArrayLike | sp.spmatrix | None = None,
) -> sp.csr_matrix:
    """Known sampling covariance V for arm-week rows or for contrasts sharing a control arm.

    Three uses:

    1. **Arm-level rows** (``arm`` given, ``contrast`` None): rows are the mean change of one arm
       at one time. Diagonal: ``vi`` (or ``sd^2 / n``). Two rows of the same arm at times t and s
       have covariance ``rho_ts * sqrt(v_t v_s)``; with ``sd`` and ``n`` columns this is
       ``rho_ts * sd_t * sd_s / max(n_t, n_s)`` (the later sample is a subset of the earlier
       one; ``sd_t sd_s rho / n`` with no drop-out). ``rho`` is a number or a function of the
       two time arrays (e.g. ``lambda t, s: 0.9 ** abs(t - s)``); rows of the same arm at the
       same time are treated as the same measurement (covariance ``sqrt(v_t v_s)``).
    2. **Contrast rows** (``contrast=(exp_arm_col, control_arm_col)``, ``var=(var_exp_col,
       var_control_col)``): each row is ``mean(exp) - mean(control)`` at ``time``. The
       covariance of two rows is the sum, over the arms they share (with sign), of the
       arm-level covariances from 1.; two contrasts against the same control arm at the same
       time thus have covariance ``var(control mean)``.
    3. **User-supplied V** (``V`` given): returned as sparse CSR after checking symmetry.

    Returns
    -------
    scipy.sparse.csr_matrix
        k x k (use ``.toarray()`` for a dense matrix); block-diagonal by arm (1.) or by
        connected arms (2.).

    Examples
    --------
    >>> d = pd.DataFrame({"arm": ["a", "a", "b"], "week": [4, 8, 4], "vi": [1.0, 4.0, 2.0]})
    >>> block_covariance(d, vi="vi", arm="arm", time="week", rho=0.5).toarray()
    array([[1., 1., 0.],
           [1., 4., 0.],
           [0., 0., 2.]])
    """
    k = len(data)
    if V is not None:
        Vs = sp.csr_matrix(V, dtype=float)
        if Vs.shape != (k, k):
            raise ValueError(f"V must be {k} x {k}")
        if abs(Vs - Vs.T).max() > 1e-12 * max(abs(Vs).max(), 1e-300):
            raise ValueError("V must be symmetric")
        return Vs
    tvals = data[time].to_numpy(dtype=float) if time is not None else np.zeros(k)

    def rho_fn(t1: FArr, t2: FArr) -> FArr:
        r = rho(t1, t2) if callable(rho) else np.full(np.broadcast(t1, t2).shape, float(rho))
        return np.where(t1 == t2, 1.0, r)

    # list of (row, arm label, sign, variance, sd, n) "arm terms"
    if contrast is None:
        if arm is None:
            raise ValueError("give arm= (arm-level rows) or contrast= (contrast rows)")
        if vi is not None:
            v = data[vi].to_numpy(dtype=float)
        elif sd is not None and n is not None:
            v = data[sd].to_numpy(dtype=float) ** 2 / data[n].to_numpy(dtype=float)
        else:
            raise ValueError("give vi= or both sd= and n=")
        terms = [(np.arange(k), data[arm].astype(str).to_numpy(), np.ones(k), v)]
    else:
        if var is None:
            raise ValueError("contrast rows need var=(var_exp_col, var_control_col)")
        terms = [
            (
                np.arange(k),
                data[contrast[0]].astype(str).to_numpy(),
                np.ones(k),
                data[var[0]].to_numpy(dtype=float),
            ),
            (
                np.arange(k),
                data[contrast[1]].astype(str).to_numpy(),
                -np.ones(k),
                data[var[1]].to_numpy(dtype=float),
            ),
        ]
    use_sdn = contrast is None and sd is not None and n is not None and vi is None
    sdv = data[sd].to_numpy(dtype=float) if use_sdn else None
    nv = data[n].to_numpy(dtype=float) if use_sdn else None
    rows_ = np.concatenate([t[0] for t in terms])
    arms_ = np.concatenate([t[1] for t in terms])
    sign_ = np.concatenate([t[2] for t in terms])
    var_ = np.concatenate([t[3] for t in terms])
    if np.any(var_ < 0) or not np.all(np.isfinite(var_)):
        raise ValueError("variances must be finite and >= 0")
    codes, _ = pd.factorize(arms_)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ii, jj, vv = [], [], []
    for size in np.unique(counts):  # arms of equal size in one batch
        cid = np.flatnonzero(counts == size)
        blk = order[starts[cid][:, None] + np.arange(size)[None, :]]  # (c, size) entries
        r = rows_[blk]
        t = tvals[r]
        corr = rho_fn(t[:, :, None], t[:, None, :])
        if use_sdn:
            c = (
                corr
                * sdv[r][:, :, None]
                * sdv[r][:, None, :]
                / np.maximum(nv[r][:, :, None], nv[r][:, None, :])
            )
        else:
            sq = np.sqrt(var_[blk])
            c = corr * sq[:, :, None] * sq[:, None, :]
        c = c * sign_[blk][:, :, None] * sign_[blk][:, None, :]
        ii.append(np.broadcast_to(r[:, :, None], c.shape).ravel())
        jj.append(np.broadcast_to(r[:, None, :], c.shape).ravel())
        vv.append(c.ravel())
    out = sp.coo_matrix(
        (np.concatenate(vv), (np.concatenate(ii), np.concatenate(jj))), shape=(k, k)
    ).tocsr()
    out.sum_duplicates()
    out.eliminate_zeros()
    return out
