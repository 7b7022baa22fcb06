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

Drawing repeats the shaping: Agg lays a string out again to draw it (the same glyphs and
positions at a given font size and resolution), and the SVG writer, which draws text as
glyph outlines, measures and lays out every string again at its own fixed scale and loads
each glyph's outline. :func:`agg_layout`, :func:`svg_text_metrics` and
:func:`glyph_outlines` keep those for the process too (same keys), and
:class:`MeasuredRendererAgg` and :class:`MeasuredTextToPath` (the text-to-path converter of
the SVG canvas, :mod:`hairtrial.plots.svg`) use them: the same pixels and the same SVG
bytes, with each distinct string shaped once per font, size and resolution a process.
Before any of this, matplotlib looks up a font's files (:func:`font_files`) and, for every
text it lays out, reads the font's line height from its tables
(:func:`font_height_metrics`); both are kept for the process as well. Why by
hand: matplotlib keeps none of these beyond one renderer, and no library adds such a cache.

Only matplotlib here (the plots modules and the PNG backend import it).
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag
from matplotlib.font_manager import FontProperties, fontManager, get_font
from matplotlib.ft2font import FT2Font, LoadFlags, RenderMode
from matplotlib.textpath import TextToPath
from matplotlib.typing import RcKeyType

#: rcParams that a measurement depends on besides the font properties and resolution.
MEASURE_RCPARAMS: tuple[RcKeyType, ...] = (
    "font.serif", "font.sans-serif", "font.cursive", "font.fantasy", "font.monospace",
    "font.enable_last_resort", "text.hinting", "text.hinting_factor", "text.kerning_factor",
    "text.language",
)  # fmt: skip


def _settings() -> tuple[object, ...]:
    """The values of MEASURE_RCPARAMS (hashable) and the fonts matplotlib knows (a font
    added with ``fontManager.addfont`` may resolve a family anew): part of every key of
    this module."""
    values = (mpl.rcParams[name] for name in MEASURE_RCPARAMS)
    fonts = (id(fontManager), len(fontManager.ttflist), len(fontManager.afmlist))
    return (*(tuple(v) if isinstance(v, list) else v for v in values), fonts)


def font_files(prop: FontProperties) -> list[Any]:
    """The font files of ``prop`` and its fallbacks, as matplotlib's renderers look them up
    (``fontManager._find_fonts_by_props``; private, matplotlib 3.11) for every text they
    measure or draw (~0.1 ms each: findfont builds its cache key from a dozen rcParams).
    Looked up once a process; the list is shared: do not change it."""
    return _font_files(prop.copy(), _settings())


@functools.lru_cache(maxsize=1 << 12)
def _font_files(prop: FontProperties, settings: tuple[object, ...]) -> list[Any]:
    return fontManager._find_fonts_by_props(prop)


def text_metrics(text: str, prop: FontProperties, dpi: float) -> tuple[float, float, float]:
    """Width, height and descent in pixels of single-line text (no mathtext) drawn by Agg.

    The result of ``RendererAgg(..., dpi).get_text_width_height_descent(text, prop,
    ismath=False)``, measured once a process.
    """
    return _text_metrics(text, prop.copy(), float(dpi), _settings())


@functools.lru_cache(maxsize=1 << 16)
def _text_metrics(
    text: str, prop: FontProperties, dpi: float, settings: tuple[object, ...]
) -> tuple[float, float, float]:
    """``settings``: the values of MEASURE_RCPARAMS, part of the key only (Agg reads them)."""
    # Agg's own measurement, with the font files of font_files (the renderer's _prepare_font)
    w, h, d = RendererAgg.get_text_width_height_descent(_renderer(dpi), text, prop, ismath=False)
    return w, h, d


@functools.cache
def _renderer(dpi: float) -> MeasuredRendererAgg:
    return MeasuredRendererAgg(10, 10, dpi)


def agg_layout(
    font: FT2Font,
    text: str,
    size: float,
    dpi: float,
    features: Any = None,
    language: Any = None,
) -> tuple[tuple[FT2Font, int, float, float], ...]:
    """Agg's layout of single-line text: (font, glyph index, x, y) of each glyph.

    What ``RendererAgg.draw_text`` takes from ``font._layout`` (with Agg's hinting flag) for
    a font set to ``size`` points at ``dpi`` (as Agg's ``_prepare_font`` leaves it); the
    font of a glyph is ``font`` or one of its fallbacks. Laid out once a process.
    """
    flags = get_hinting_flag()
    return _agg_layout(font, text, float(size), float(dpi), flags, features, language, _settings())


@functools.lru_cache(maxsize=1 << 16)
def _agg_layout(
    font: FT2Font,
    text: str,
    size: float,
    dpi: float,
    flags: LoadFlags,
    features: Any,
    language: Any,
    settings: tuple[object, ...],
) -> tuple[tuple[FT2Font, int, float, float], ...]:
    font.set_size(size, dpi)  # as the caller's _prepare_font set it (size is in the key)
    items = font._layout(text, flags=flags, features=features, language=language)
    return tuple((item.ft_object, item.glyph_index, item.x, item.y) for item in items)


#: The font tables a text's line height comes from, in matplotlib's order of preference:
#: (table, line gap, ascender, descender) keys (``Text._get_layout`` of matplotlib 3.11).
_HEIGHT_TABLES = (
    ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
    ("hhea", "lineGap", "ascent", "descent"),
)


def font_height_metrics(
    prop: FontProperties, dpi: float
) -> tuple[float, float, float] | tuple[None, None, None]:
    """Minimum ascent, minimum descent and line gap in pixels of a font at ``dpi``.

    What matplotlib 3.11's ``Text._get_layout`` computes for every text it lays out (the
    full vertical extent of the font, from its OS/2 or hhea table): finding the font file and
    reading three font tables each time (~0.1 ms). Kept for the process; ``(None, None,
    None)`` when the font has neither table (matplotlib then measures "lp").
    """
    return _font_height_metrics(prop.copy(), dpi, _settings())


@functools.lru_cache(maxsize=1 << 12)
def _font_height_metrics(
    prop: FontProperties, dpi: float, settings: tuple[object, ...]
) -> tuple[float, float, float] | tuple[None, None, None]:
    font: Any = get_font(font_files(prop))  # its tables by name: typed per literal name
    for table_name, linegap_key, ascent_key, descent_key in _HEIGHT_TABLES:
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        fontsize = prop.get_size_in_points()  # the same expressions: the same floats
        units_per_em = font.get_sfnt_table("head")["unitsPerEm"]
        scale = 1 / units_per_em * fontsize * dpi / 72
        return table[ascent_key] * scale, -table[descent_key] * scale, table[linegap_key] * scale
    return None, None, None


class MeasuredRendererAgg(RendererAgg):
    """Agg's renderer, measuring text through :func:`text_metrics` and drawing it with the
    glyphs of :func:`agg_layout` (mathtext as before); a text's line height from
    :func:`font_height_metrics`."""

    def _get_font_height_metrics(self, prop):  # type: ignore[no-untyped-def]
        """matplotlib's hook for ``Text._get_layout`` (private; matplotlib 3.11): the
        figure's resolution is this renderer's (the PNG canvas makes one per resolution)."""
        return font_height_metrics(prop, self.dpi)

    def _prepare_font(self, font_prop):  # type: ignore[no-untyped-def]
        """``RendererAgg._prepare_font`` (matplotlib 3.11) with the files of :func:`font_files`."""
        font = get_font(font_files(font_prop))
        font.clear()
        size = font_prop.get_size_in_points()
        font.set_size(size, self.dpi)
        return font

    def get_text_width_height_descent(self, s, prop, ismath):  # type: ignore[no-untyped-def]
        if ismath is False:
            return text_metrics(s, prop, self.dpi)
        return super().get_text_width_height_descent(s, prop, ismath)

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):  # type: ignore[no-untyped-def]
        """``RendererAgg.draw_text`` (matplotlib 3.11), with the layout kept a process."""
        if ismath:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        font = self._prepare_font(prop)
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        size = prop.get_size_in_points()
        glyphs = agg_layout(font, s, size, self.dpi, features, language)
        self._draw_text_glyphs_and_boxes(
            gc, x, y, angle, ((ft, size, index, 0, 1, gx, gy) for ft, index, gx, gy in glyphs), []
        )

    def _draw_text_glyphs_and_boxes(self, gc, x, y, angle, glyphs, boxes):  # type: ignore[no-untyped-def]
        """``RendererAgg._draw_text_glyphs_and_boxes`` (matplotlib 3.11: it draws every glyph
        of a text and the boxes of mathtext), with each font sized once a text instead of
        once a glyph, and each rotation matrix computed once a text.

        matplotlib sets the glyph's font to its size before every glyph; FreeType then
        resets the size's hinting state and runs the font's control-value program again
        (~26 microseconds a glyph, measured: 40 % of drawing a glyph; a run's figures draw
        ~40,000 glyphs into their PNG files). The same size is set here when the glyph's font
        or size differs from the last glyph's; the glyph's transform is set before each
        glyph as matplotlib sets it. The pixels are matplotlib's: tested against its own
        renderer, glyph by glyph and figure by figure.
        """
        cos = math.cos(math.radians(angle))
        sin = math.sin(math.radians(angle))
        load_flags = get_hinting_flag()
        mode = RenderMode.NORMAL if gc.get_antialiased() else RenderMode.MONO
        height = self.height
        matrices = {}  # (slant, extend) -> FreeType's matrix
        sized = None  # (font, size) of the last glyph
        for font, size, glyph_index, slant, extend, dx, dy in glyphs:  # dy is upwards
            if sized is None or sized[0] is not font or sized[1] != size:
                font.set_size(size, self.dpi)
                sized = (font, size)
            matrix = matrices.get((slant, extend))
            if matrix is None:
                rotation = np.array([[cos, -sin], [sin, cos]])
                matrix = (0x10000 * rotation @ [[extend, extend * slant], [0, 1]]).round()
                matrix = matrices[(slant, extend)] = matrix.astype(int)
            font._set_transform(
                matrix,
                [
                    round(0x40 * (x + dx * cos - dy * sin)),
                    round(0x40 * (height - y + dx * sin + dy * cos)),  # FreeType's y is upwards
                ],
            )
            bitmap = font._render_glyph(glyph_index, load_flags, mode)
            buffer = bitmap.buffer
            if not gc.get_antialiased():
                buffer *= 0xFF
            # draw_text_image's y is downwards & the bitmap bottom side
            self._renderer.draw_text_image(
                buffer, bitmap.left, int(height) - bitmap.top + buffer.shape[0], 0, gc
            )
        if boxes:  # mathtext's rules and boxes: matplotlib's own code
            super()._draw_text_glyphs_and_boxes(gc, x, y, angle, (), boxes)


def svg_text_metrics(text: str, prop: FontProperties) -> tuple[float, float, float]:
    """Width, height and descent in points of single-line text (no mathtext) in an SVG file.

    The result of ``TextToPath().get_text_width_height_descent(text, prop, ismath=False)``
    (how the SVG writer measures text it draws as outlines), measured once a process.
    """
    return _svg_text_metrics(text, prop.copy(), _settings())


@functools.lru_cache(maxsize=1 << 16)
def _svg_text_metrics(
    text: str, prop: FontProperties, settings: tuple[object, ...]
) -> tuple[float, float, float]:
    w, h, d = TextToPath.get_text_width_height_descent(_TEXT2PATH, text, prop, False)
    return w, h, d


# what the caches above measure and lay out with: matplotlib's own methods (called as
# TextToPath's), finding fonts through font_files (MeasuredTextToPath._get_font)
_TEXT2PATH: TextToPath

#: One glyph of :func:`glyph_outlines`: its id in the SVG file, position, and outline
#: (vertices and path codes at TextToPath's scale; read-only arrays).
GlyphOutline = tuple[str, float, float, tuple[np.ndarray, np.ndarray]]


def glyph_outlines(
    font: FT2Font,
    text: str,
    features: Any = None,
    language: Any = None,
) -> tuple[GlyphOutline, ...]:
    """The glyphs of ``TextToPath.get_glyphs_with_font(font, text)`` with their outlines.

    For a font at TextToPath's scale (``FONT_SCALE`` points at ``DPI``, as its ``_get_font``
    leaves every font it gives; the SVG writer's only kind). Laid out once a process; the
    outline arrays are shared, so they are made read-only.
    """
    return _glyph_outlines(font, text, features, language, _settings())


@functools.lru_cache(maxsize=1 << 16)
def _glyph_outlines(
    font: FT2Font,
    text: str,
    features: Any,
    language: Any,
    settings: tuple[object, ...],
) -> tuple[GlyphOutline, ...]:
    font.set_size(TextToPath.FONT_SCALE, TextToPath.DPI)  # as _get_font leaves it
    info, outlines, _ = TextToPath.get_glyphs_with_font(
        _TEXT2PATH, font, text, features=features, language=language
    )
    glyphs = []
    for glyph_id, x, y, _scale in info:
        verts, codes = outlines[glyph_id]
        for array in (verts, codes):
            array.setflags(write=False)
        glyphs.append((glyph_id, x, y, (verts, codes)))
    return tuple(glyphs)


class MeasuredTextToPath(TextToPath):
    """matplotlib's text-to-path converter, measuring through :func:`svg_text_metrics` and
    laying out through :func:`glyph_outlines` (mathtext and TeX as before)."""

    def _get_font(self, prop):  # type: ignore[no-untyped-def]
        """``TextToPath._get_font`` (matplotlib 3.11) with the files of :func:`font_files`."""
        font = get_font(font_files(prop))
        font.set_size(self.FONT_SCALE, self.DPI)
        return font

    def get_text_width_height_descent(self, s, prop, ismath):  # type: ignore[no-untyped-def]
        if ismath is False:
            return svg_text_metrics(s, prop)
        return super().get_text_width_height_descent(s, prop, ismath)

    def get_glyphs_with_font(  # type: ignore[no-untyped-def]
        self, font, s, glyph_map=None, return_new_glyphs_only=False, *, features=None,
        language=None,
    ):  # fmt: skip
        """``TextToPath.get_glyphs_with_font`` (matplotlib 3.11), laid out once a process."""
        glyphs = glyph_outlines(font, s, features, language)
        if glyph_map is None:
            glyph_map = OrderedDict()
        new = OrderedDict() if return_new_glyphs_only else glyph_map
        for glyph_id, _x, _y, outline in glyphs:
            if glyph_id not in glyph_map:
                new[glyph_id] = outline
        info = [(glyph_id, x, y, 1.0) for glyph_id, x, y, _ in glyphs]
        return info, new, []


_TEXT2PATH = MeasuredTextToPath()
