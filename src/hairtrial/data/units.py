"""Units of arm-level outcomes and their conversion to one unit per outcome.

Every outcome must end in a single canonical unit. Counts per square inch are
converted to counts per square centimetre (1 in^2 = 6.4516 cm^2 exactly);
lengths in mm to um. A unit not listed here is a validation error, so that a
typo never silently creates a second outcome scale.
"""

from __future__ import annotations

from dataclasses import dataclass

CM2_PER_INCH2 = 6.4516
"""Square centimetres in one square inch (exact, by definition of the inch)."""


@dataclass(frozen=True)
class Unit:
    """A unit as written in ``arms.csv`` and how to reach its canonical unit.

    Attributes
    ----------
    name : str
        The spelling accepted in the ``unit`` column.
    canonical : str
        The unit every value is converted to.
    factor : float
        Multiply a mean, SD, SE, CI bound or quantile by this to convert it.
    description : str
        Human-readable meaning, for documentation and tables.
    """

    name: str
    canonical: str
    factor: float
    description: str

    @property
    def converted(self) -> bool:
        """Whether values in this unit are converted (``factor != 1``)."""
        return self.name != self.canonical


UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        Unit("hairs/cm2", "hairs/cm2", 1.0, "hairs per square centimetre"),
        Unit(
            "hairs/inch2",
            "hairs/cm2",
            1.0 / CM2_PER_INCH2,
            "hairs per square inch (converted: divided by 6.4516)",
        ),
        Unit("hairs", "hairs", 1.0, "hairs counted in an area of unstated size"),
        Unit("um", "um", 1.0, "micrometres"),
        Unit("mm", "um", 1000.0, "millimetres (converted: multiplied by 1000)"),
        Unit("percent", "percent", 1.0, "percent"),
        Unit("score", "score", 1.0, "points on a rating scale"),
    )
}

UNIT_LABELS: dict[str, str] = {
    "hairs/cm2": "hairs/cm²",
    "hairs": "hairs",
    "um": "µm",
    "percent": "%",
    "score": "points",
}
"""Typeset spelling of canonical units for figures and tables."""


def lookup(name: str) -> Unit:
    """Return the :class:`Unit` for a spelling from ``arms.csv``.

    Parameters
    ----------
    name : str
        Unit as written in the data.

    Returns
    -------
    Unit

    Raises
    ------
    KeyError
        If the unit is unknown.

    Examples
    --------
    >>> lookup("hairs/inch2").canonical
    'hairs/cm2'
    >>> round(lookup("hairs/inch2").factor * 12.52, 4)
    1.9406
    """
    return UNITS[name]
