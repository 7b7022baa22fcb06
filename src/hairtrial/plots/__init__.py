"""Figures: one house style (:mod:`.style`) and one module per kind of figure.

Plot functions draw what they are given; no statistics are computed here. The figure
modules share, as public names: the house style, colours and number formatting
(:mod:`.style`); text measurement, ticks, provenance codes and fixed-geometry figures
(:mod:`.layout`); the table-plus-interval engine of the forest, leave-one-out, cumulative
and subgroup forest plots (:mod:`.intervals`); the label placer (:mod:`.labels`) and the
legend builder (:mod:`.legends`). Single-axes plots (funnel, bubble, Baujat, L'Abbé,
robustness) take ``ax=`` to draw into a given Axes.
"""

from hairtrial.plots.forest import forest_plot
from hairtrial.plots.style import (
    apply_style,
    format_decimals,
    save_figure,
    show,
    style_params,
    use_style,
    watermark,
)

__all__ = [
    "apply_style",
    "forest_plot",
    "format_decimals",
    "save_figure",
    "show",
    "style_params",
    "use_style",
    "watermark",
]
