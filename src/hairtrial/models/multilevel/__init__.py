"""Multilevel / multivariate meta-analysis (metafor 3.8 ``rma.mv`` parity), fast.

Model (Viechtbauer 2010; Konstantopoulos 2011; Berkey et al. 1998)::

    y = X b + sum_s Z_s u_s + sum_t (inner | outer)_t + e,    e ~ N(0, V),  V known,

fitted by maximum likelihood (``"ML"``) or restricted maximum likelihood (``"REML"``,
Harville 1977). Random terms are given as :class:`RandomTerm` objects:

* ``~ 1 | g`` (``RandomTerm(None, "g")``): a variance component ``sigma2`` for the levels of
  ``g``; ``~ 1 | g1/g2`` (``RandomTerm(None, "g1/g2")``) adds one component for ``g1`` and one
  for the ``g1/g2`` combinations (as metafor).
* ``~ inner | outer`` (``RandomTerm("inner", "outer", struct=...)``): correlated effects for the
  levels of ``inner`` within each level of ``outer``, with variance-covariance matrix ``G``:
  ``CS`` (tau2, rho), ``HCS`` (tau2 per level, one rho), ``UN`` (tau2 per level, one rho per
  pair), ``ID`` (tau2), ``DIAG`` (tau2 per level), ``AR`` (tau2 rho^|i-j|, i, j = positions of
  the sorted levels of an integer-coded time), ``HAR`` (as AR with a tau2 per level) and
  ``CAR`` (tau2 rho^|t_i - t_j| for a continuous time ``inner``). The first such term has
  components ``tau2``/``rho``, the second ``gamma2``/``phi`` (metafor's naming).

Performance design
------------------
The marginal covariance ``M = V + Z G Z'`` is block-diagonal by ``cluster`` (the top-level
grouping in which ``V`` and every random term are nested). Clusters of equal size are stacked
into 3-D arrays, so every likelihood evaluation is a handful of batched numpy operations
(Cholesky, inverse, matmul, ``bincount``) whose cost is linear in the number of clusters. The
(RE)ML log-likelihood has an analytic gradient::

    d ll / d phi = -1/2 sum_ij (P_ij - u_i u_j) dM_ij / d phi,   u = M^-1 (y - X b),

(``P`` = ``M^-1 - M^-1 X (X'M^-1X)^-1 X'M^-1`` for REML, ``M^-1`` for ML; only the diagonal
blocks of ``P`` are needed because ``dM`` is block-diagonal). Variance parameters are optimised
on transformed scales (log variances; ``atanh`` of CS/HCS/AR/HAR correlations; ``logit`` of the
CAR correlation; log-Cholesky factor for an all-free ``UN`` matrix, as metafor) with
L-BFGS-B, then polished with Newton steps on a finite-difference Hessian of the analytic
gradient. Variances whose estimate runs to 0 are then fixed at exactly 0 (boundary) and the
remaining parameters re-optimised.

Conventions that follow metafor 3.8
-----------------------------------
* REML log-likelihood includes ``+ 1/2 log det(X'X)`` (metafor's ``REMLf = TRUE``).
* ``fitstats``: ``parms`` = p + number of estimated components; ML: ``dev = -2 (ll - llQE)``
  with ``llQE = -k/2 log(2 pi) - 1/2 log det V`` (all ``vi > 0``), ``BIC = -2 ll + parms log k``;
  REML: ``dev = -2 ll``, ``BIC`` uses ``log(k - p)`` and ``AICc`` uses ``k - p``.
* ``test="t"``: ``dfs="residual"`` gives ``k - p``; ``dfs="contain"`` gives, per coefficient,
  the smallest number of levels among the random-effect factors within whose levels the
  coefficient's column is constant (``k`` if none), minus ``p``; df < 1 are set to 1.
* Components that cannot be estimated are fixed as metafor does (noted): ``sigma2`` of a
  single-level factor -> 0; ``rho`` when the inner factor has one level or every outer level
  has a single row -> 0; UN correlations of level pairs that never co-occur -> 0.
* Variance components <= 10 machine epsilon are set to 0.

Deliberate differences from metafor (reported in ``MVResult.notes``): linearly dependent
columns of ``X`` are dropped (metafor too, but with a warning only); components at the
boundary are reported as exactly 0 (metafor reports e.g. 3e-8); a nearly singular Hessian of the
(RE)ML criterion is reported as possibly non-identifiable components.

Modules
-------
* :mod:`.structures`: :class:`RandomTerm`, :func:`parse_random` and the variance structures;
* :mod:`.likelihood`: the (RE)ML log-likelihood, its gradient and the optimiser;
* :mod:`.inference`: :func:`fit_mv`, :class:`MVResult`, :func:`contrast`, :func:`lrt`,
  :func:`blups`;
* :mod:`.profile`: :func:`profile_ci`;
* :mod:`.covariance`: :func:`block_covariance`;
* :mod:`.threads`: one BLAS thread during fits (threadpoolctl).

Model formulas (``mods``) are coded by :func:`hairtrial.models.formula.design_matrix`
(formulaic, with R's coefficient names), re-exported here as :func:`design_matrix`.

References
----------
.. [1] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
.. [2] Konstantopoulos S (2011). Fixed effects and variance components estimation in
   three-level meta-analysis. Research Synthesis Methods 2:61-76.
.. [3] Berkey CS, Hoaglin DC, Antczak-Bouckoms A, Mosteller F, Colditz GA (1998).
   Meta-analysis of multiple outcomes by regression with random effects. Statistics in
   Medicine 17:2537-2550.
.. [4] Ishak KJ, Platt RW, Joseph L, Hanley JA, Caro JJ (2007). Meta-analysis of longitudinal
   studies. Clinical Trials 4:525-539.
.. [5] Harville DA (1977). Maximum likelihood approaches to variance component estimation and
   to related problems. Journal of the American Statistical Association 72:320-338.
"""

from hairtrial.models.formula import design_matrix
from hairtrial.models.multilevel.covariance import block_covariance
from hairtrial.models.multilevel.inference import MVResult, blups, contrast, fit_mv, lrt
from hairtrial.models.multilevel.profile import profile_ci
from hairtrial.models.multilevel.structures import STRUCTS, RandomTerm, parse_random

__all__ = [
    "STRUCTS",
    "MVResult",
    "RandomTerm",
    "block_covariance",
    "blups",
    "contrast",
    "design_matrix",
    "fit_mv",
    "lrt",
    "parse_random",
    "profile_ci",
]
