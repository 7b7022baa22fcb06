"""Text measured as Agg lays it out, once a process for each string, font and resolution.

Agg shapes a string anew each time it is measured (~20 microseconds a character), and
matplotlib keeps its measurements only for the life of one renderer, i.e. one drawing of
one figure. A figure job draws dozens of figures that share their labels, tick labels and
table cells, each at least twice (laying it out, then drawing it), so most measurements
are repeats. :func:`text_metrics` keeps them for the process, keyed by everything the
result depends on: the string, the font properties (a copy, as matplotlib's own cache keys
them), the resolution and the rcParams that resolve a generic family name (as
matplotlib's ``findfont`` cache keys them) or that Agg reads when it loads and lays out a
font. :class:`MeasuredRendererAgg` is Agg's renderer with that measurement; the PNG canvas
(:mod:`hairtrial.plots.png`) draws with it.

Only matplotlib here (the plots modules and the PNG backend import it).
"""

from __future__ import annotations

import functools

import matplotlib as mpl
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties
from matplotlib.typing import RcKeyType

#: rcParams that a measurement depends on besides the font properties and resolution.
MEASURE_RCPARAMS: tuple[RcKeyType, ...] = (
    "font.serif", "font.sans-serif", "font.cursive", "font.fantasy", "font.monospace",
    "font.enable_last_resort", "text.hinting", "text.hinting_factor", "text.kerning_factor",
    "text.language",
)  # fmt: skip


def text_metrics(text: str, prop: FontProperties, dpi: float) -> tuple[float, float, float]:
    """Width, height and descent in pixels of single-line text (no mathtext) drawn by Agg.

    The result of ``RendererAgg(..., dpi).get_text_width_height_descent(text, prop,
    ismath=False)``, measured once a process.
    """
    values = (mpl.rcParams[name] for name in MEASURE_RCPARAMS)
    settings = tuple(tuple(v) if isinstance(v, list) else v for v in values)
    return _text_metrics(text, prop.copy(), float(dpi), settings)


@functools.lru_cache(maxsize=1 << 16)
def _text_metrics(
    text: str, prop: FontProperties, dpi: float, settings: tuple[object, ...]
) -> tuple[float, float, float]:
    """``settings``: the values of MEASURE_RCPARAMS, part of the key only (Agg reads them)."""
    w, h, d = _renderer(dpi).get_text_width_height_descent(text, prop, ismath=False)
    return w, h, d


@functools.cache
def _renderer(dpi: float) -> RendererAgg:
    return RendererAgg(10, 10, dpi)


class MeasuredRendererAgg(RendererAgg):
    """Agg's renderer, measuring text through :func:`text_metrics` (mathtext as before)."""

    def get_text_width_height_descent(self, s, prop, ismath):  # type: ignore[no-untyped-def]
        if ismath is False:
            return text_metrics(s, prop, self.dpi)
        return super().get_text_width_height_descent(s, prop, ismath)
