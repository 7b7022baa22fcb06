"""One heterogeneity block shared by the result types of the models.

:class:`Heterogeneity` holds what every table reports about between-study heterogeneity:
tau^2 with its Q-profile CI, I^2, H^2 and Cochran's Q test. The univariate model
(:class:`hairtrial.models.univariate.MetaResult`), the meta-regression
(:class:`hairtrial.models.metareg.MetaRegResult`, residual heterogeneity) and the subgroup rows
(:mod:`hairtrial.models.subgroups`) carry one, and :class:`HeterogeneityFields` gives those
result types the fields as attributes (``result.tau2``, ``result.I2``, ...), so every result
type spells them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HETEROGENEITY_COLUMNS", "Heterogeneity", "HeterogeneityFields"]

#: Fields of :class:`Heterogeneity`, in table order.
HETEROGENEITY_COLUMNS: tuple[str, ...] = (
    "tau2",
    "tau2_ci_lower",
    "tau2_ci_upper",
    "I2",
    "H2",
    "Q",
    "Q_df",
    "Q_pvalue",
)


@dataclass(frozen=True)
class Heterogeneity:
    """Between-study heterogeneity of one model.

    Attributes
    ----------
    tau2 : float
        Between-study variance (0 for a common-effect model; residual for a meta-regression).
    tau2_ci_lower, tau2_ci_upper : float
        Its Q-profile confidence interval (NaN where not defined: FE, k = 1, k = p).
    I2 : float
        I^2 in percent (residual I^2 for a meta-regression).
    H2 : float
        H^2.
    Q : float
        Cochran's Q (metafor's ``QE``: the test for (residual) heterogeneity).
    Q_df : int
        Its degrees of freedom, k - p.
    Q_pvalue : float
        Its chi-square p-value.

    Examples
    --------
    >>> h = Heterogeneity(0.5, 0.1, 2.0, 60.0, 2.5, 10.0, 4, 0.04)
    >>> list(h.as_dict())[:3]
    ['tau2', 'tau2_ci_lower', 'tau2_ci_upper']
    """

    tau2: float
    tau2_ci_lower: float
    tau2_ci_upper: float
    I2: float
    H2: float
    Q: float
    Q_df: int
    Q_pvalue: float

    def as_dict(self) -> dict[str, float | int]:
        """The fields in table order (:data:`HETEROGENEITY_COLUMNS`).

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in HETEROGENEITY_COLUMNS}


class HeterogeneityFields:
    """Mixin: the fields of the result's ``heterogeneity`` block as read-only attributes."""

    heterogeneity: Heterogeneity

    @property
    def tau2(self) -> float:
        """Between-study variance (see :class:`Heterogeneity`)."""
        return self.heterogeneity.tau2

    @property
    def tau2_ci_lower(self) -> float:
        """Lower Q-profile CI bound of tau^2."""
        return self.heterogeneity.tau2_ci_lower

    @property
    def tau2_ci_upper(self) -> float:
        """Upper Q-profile CI bound of tau^2."""
        return self.heterogeneity.tau2_ci_upper

    @property
    def I2(self) -> float:
        """I^2 in percent."""
        return self.heterogeneity.I2

    @property
    def H2(self) -> float:
        """H^2."""
        return self.heterogeneity.H2

    @property
    def Q(self) -> float:
        """Cochran's Q (test for (residual) heterogeneity)."""
        return self.heterogeneity.Q

    @property
    def Q_df(self) -> int:
        """Degrees of freedom of Q."""
        return self.heterogeneity.Q_df

    @property
    def Q_pvalue(self) -> float:
        """p-value of Q."""
        return self.heterogeneity.Q_pvalue
