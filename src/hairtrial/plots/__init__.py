"""Figures: one house style (:mod:`.style`) and one module per kind of figure.

Plot functions draw what they are given; no statistics are computed here.
"""

from hairtrial.plots.forest import forest_plot
from hairtrial.plots.style import (
    apply_style,
    format_decimals,
    save_figure,
    show,
    style_params,
    use_style,
)

__all__ = [
    "apply_style",
    "forest_plot",
    "format_decimals",
    "save_figure",
    "show",
    "style_params",
    "use_style",
]
