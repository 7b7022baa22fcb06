"""SVG files of the figures: matplotlib's SVG writer, its text measured and laid out once.

The SVG writer draws text as glyph outlines (``svg.fonttype: path`` in the house style): for
every string it measures it, lays it out and loads each glyph's outline, at one fixed scale
whatever the string's size. A figure job writes dozens of SVG files that share their
labels, tick labels and table cells, so most of that work is a repeat.
:class:`FigureCanvas` makes this a matplotlib backend for saving only:
``fig.savefig(f, format="svg", backend=BACKEND)`` writes what matplotlib's SVG canvas writes,
byte for byte, with the text measured and laid out through the process-wide caches of
:mod:`hairtrial.plots.metrics`.
"""

from __future__ import annotations

import codecs
from typing import Any

from matplotlib import cbook
from matplotlib.backends.backend_mixed import MixedModeRenderer
from matplotlib.backends.backend_svg import FigureCanvasSVG, RendererSVG

from hairtrial.plots.metrics import MeasuredTextToPath, font_height_metrics
from hairtrial.plots.png import APPLIED_BY_PRINT_FIGURE

#: ``savefig(..., backend=BACKEND)`` writes an SVG with :class:`FigureCanvas`.
BACKEND = "module://hairtrial.plots.svg"

_TEXT2PATH = MeasuredTextToPath()  # shared by every renderer: it keeps no state of a file


#: The figure's resolution while :meth:`FigureCanvas.print_svg` draws (SVG units are points).
SVG_DPI = 72


class MeasuredRendererSVG(RendererSVG):
    """matplotlib's SVG renderer with :class:`~hairtrial.plots.metrics.MeasuredTextToPath`
    as its text-to-path converter (what it measures and draws text with); a text's line
    height from :func:`~hairtrial.plots.metrics.font_height_metrics`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._text2path = _TEXT2PATH

    def _get_font_height_metrics(self, prop):  # type: ignore[no-untyped-def]
        """matplotlib's hook for ``Text._get_layout`` (private; matplotlib 3.11), at the
        figure's resolution while print_svg draws vectors (rasterised parts are drawn by
        Agg's own renderer, without this hook)."""
        return font_height_metrics(prop, SVG_DPI)


class FigureCanvas(FigureCanvasSVG):
    """matplotlib's SVG canvas drawing with :class:`MeasuredRendererSVG` (saving only)."""

    def print_svg(  # type: ignore[override]
        self,
        filename: Any,
        *,
        bbox_inches_restore: Any = None,
        metadata: Any = None,
        **applied: Any,
    ) -> None:
        """``FigureCanvasSVG.print_svg`` of matplotlib 3.11 with the measuring renderer.

        ``applied``: what ``print_figure`` passes to a third-party canvas and has already
        applied to the figure (matplotlib's own print_svg never sees them).
        """
        unknown = set(applied) - APPLIED_BY_PRINT_FIGURE
        if unknown:
            raise TypeError(f"print_svg: unexpected arguments {sorted(unknown)}")
        with cbook.open_file_cm(filename, "w", encoding="utf-8") as opened:
            fh: Any = opened
            if not cbook.file_requires_unicode(fh):
                fh = codecs.getwriter("utf-8")(fh)
            dpi = self.figure.dpi
            self.figure.dpi = SVG_DPI
            width, height = self.figure.get_size_inches()
            w, h = width * 72, height * 72
            renderer: Any = MixedModeRenderer(
                self.figure, width, height, dpi,
                MeasuredRendererSVG(w, h, fh, image_dpi=dpi, metadata=metadata),
                bbox_inches_restore=bbox_inches_restore,
            )  # fmt: skip
            self.figure.draw(renderer)
            renderer.finalize()
