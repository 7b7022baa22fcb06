"""The multilevel engine: an equivalent of metafor's ``rma.mv`` (see :mod:`.engine`)."""

from hairtrial.models.multilevel.engine import *  # noqa: F403
from hairtrial.models.multilevel.engine import __all__  # noqa: F401
