"""PNG files of the figures: Agg's pixels, written by a lean PNG encoder.

matplotlib writes PNG through Pillow, whose encoder tries four row filters on every row of
the image (and its ``compress_level`` does not turn that off). On these figures (large
white areas, line art, text) the row filtering costs more than the compression and gains
nothing: at 300 dpi the 58 figures of a run are ~130 million pixels, and Pillow took ~7 CPU
s to encode them. This module writes the same pixels with no row filter (type 0) and
compresses them with zlib-ng (the locked ``zlib-ng`` package; Pillow's wheels bundle zlib-ng
too): ~1.3 CPU s for the same figures and files about a quarter smaller. As with Pillow, the
compressed bytes are those of the locked version on a given platform (zlib-ng does not
promise the same bytes on every CPU); the decoded pixels are the same everywhere. Pixels,
resolution (``pHYs``) and text metadata (``tEXt``, or ``iTXt`` for text beyond Latin-1, as
Pillow writes them) are those of matplotlib's own PNG.

:class:`FigureCanvas` makes this a matplotlib backend for saving only:
``fig.savefig(f, format="png", backend=BACKEND)`` draws with Agg as usual and encodes with
:func:`encode_png`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import IO, Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from zlib_ng import zlib_ng

from hairtrial.plots.metrics import MeasuredRendererAgg

#: ``savefig(..., backend=BACKEND)`` writes a PNG with :class:`FigureCanvas`.
BACKEND = "module://hairtrial.plots.png"
#: zlib-ng compression level: 6 (zlib's default) takes ~0.7 CPU s more than level 2 for a
#: default run's figures, and the files are an eighth smaller.
LEVEL = 6
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Keywords matplotlib's print_figure passes to a third-party print method after applying them.
APPLIED_BY_PRINT_FIGURE = {"dpi", "facecolor", "edgecolor", "orientation", "bbox_inches_restore"}


def _chunk(tag: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + tag
        + data
        + struct.pack(">I", zlib_ng.crc32(tag + data) & 0xFFFFFFFF)
    )


def _text_chunk(key: str, value: str) -> bytes:
    """A ``tEXt`` chunk, or an uncompressed ``iTXt`` one for text beyond Latin-1."""
    k = key.encode("latin-1")
    if not 1 <= len(k) <= 79:
        raise ValueError(f"PNG text key {key!r}: 1 to 79 Latin-1 characters")
    try:
        return _chunk(b"tEXt", k + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        # keyword, no compression (flag, method), no language tag, no translated keyword
        return _chunk(b"iTXt", k + b"\0\0\0\0\0" + value.encode("utf-8"))


def encode_png(rgba: np.ndarray, *, dpi: float, text: Mapping[str, str] | None = None) -> bytes:
    """The PNG file of an RGBA image (8 bits a channel, rows top to bottom).

    Parameters
    ----------
    rgba : numpy.ndarray
        ``(height, width, 4)`` unsigned bytes.
    dpi : float
        Resolution stored in the ``pHYs`` chunk (pixels per metre, rounded as Pillow does).
    text : mapping, optional
        Text metadata (key -> value), in this order.

    Returns
    -------
    bytes
        A PNG file (colour type 6, bit depth 8, no interlacing, filter type 0 on every row).
    """
    image = np.ascontiguousarray(rgba, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 4 or 0 in image.shape:
        raise ValueError(f"an RGBA image of shape (height, width, 4) is needed, not {rgba.shape}")
    height, width, _ = image.shape
    rows = np.zeros((height, 1 + 4 * width), dtype=np.uint8)  # each row: filter byte 0, pixels
    rows[:, 1:] = image.reshape(height, 4 * width)
    per_metre = int(dpi / 0.0254 + 0.5)
    return b"".join(
        [
            _SIGNATURE,
            _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)),
            _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
            *(_text_chunk(k, v) for k, v in (text or {}).items()),
            _chunk(b"IDAT", zlib_ng.compress(rows.data, LEVEL)),
            _chunk(b"IEND", b""),
        ]
    )


class FigureCanvas(FigureCanvasAgg):
    """Agg canvas whose PNG files are written by :func:`encode_png` (saving only); it draws
    with :class:`~hairtrial.plots.metrics.MeasuredRendererAgg` (text measured once a
    process; the same pixels)."""

    _renderer_key: tuple[int, int, float] | None = None

    def get_renderer(self) -> MeasuredRendererAgg:
        """A renderer of the figure's size, reused while the size stays (as Agg's own)."""
        w, h = self.get_width_height(physical=True)
        key = (w, h, self.figure.dpi)
        if key != self._renderer_key:
            self.renderer = MeasuredRendererAgg(w, h, self.figure.dpi)
            self._renderer_key = key
        return self.renderer

    def print_png(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        metadata: Mapping[str, str | None] | None = None,
        pil_kwargs: Any = None,
        **applied: Any,
    ) -> None:
        """Draw with Agg and write the PNG; metadata as matplotlib's (None drops a key).

        ``applied``: what ``print_figure`` passes to a third-party canvas and has already
        applied to the figure (dpi, colours, orientation; Agg's own print_png never sees
        them).
        """
        unknown = set(applied) - APPLIED_BY_PRINT_FIGURE
        if unknown:
            raise TypeError(f"print_png: unexpected arguments {sorted(unknown)}")
        if pil_kwargs is not None:
            raise ValueError("pil_kwargs: not used by this PNG writer")
        FigureCanvasAgg.draw(self)
        default = {"Software": f"Matplotlib version{mpl.__version__}, https://matplotlib.org/"}
        text = {k: v for k, v in {**default, **(metadata or {})}.items() if v is not None}
        data = encode_png(np.asarray(self.buffer_rgba()), dpi=self.figure.dpi, text=text)
        if hasattr(filename_or_obj, "write"):
            handle: IO[bytes] = filename_or_obj
            handle.write(data)
        else:
            with open(filename_or_obj, "wb") as handle:
                handle.write(data)
