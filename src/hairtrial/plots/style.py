"""House style of every figure, deterministic atomic saving and number formatting.

One matplotlib style file (``hairtrial.mplstyle`` beside this module:
Okabe-Ito colour-blind-safe palette, DejaVu Sans at journal sizes), one
saver whose output bytes depend only on the figure, and the watermark of
figures of synthetic data (:func:`watermark`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine

from hairtrial.plots import png, svg

# --------------------------------------------------------------------------
# House style
# --------------------------------------------------------------------------

STYLE_FILE = "hairtrial.mplstyle"

#: Okabe-Ito blue: study markers (same order as the style cycle).
BLUE = "#0072B2"
#: Okabe-Ito vermillion: pooled estimates and model lines.
VERMILLION = "#D55E00"
#: Dark grey: secondary text, reference lines and leader lines.
GREY = "#595959"
#: Okabe-Ito bluish green, orange and reddish purple (categories beyond the two above).
GREEN = "#009E73"
ORANGE = "#E69F00"
PURPLE = "#CC79A7"


@functools.cache
def _style_params_cached() -> dict[str, Any]:
    ref = resources.files("hairtrial.plots").joinpath(STYLE_FILE)
    with resources.as_file(ref) as path:
        rc = mpl.rc_params_from_file(str(path), fail_on_error=True, use_default_template=False)
    return dict(rc)


def style_params() -> dict[str, Any]:
    """Return the house style as a dict of rcParams.

    Returns
    -------
    dict
        A fresh copy of the settings in ``styles/hairtrial.mplstyle``.
    """
    return dict(_style_params_cached())


def use_style() -> contextlib.AbstractContextManager[Any]:
    """Context manager applying the house style, restoring rcParams on exit.

    Returns
    -------
    contextlib.AbstractContextManager
        Use as ``with use_style(): ...``.
    """
    return mpl.rc_context(style_params())


def apply_style() -> None:
    """Apply the house style globally (for notebooks and scripts)."""
    mpl.rcParams.update(style_params())


# --------------------------------------------------------------------------
# Watermark (figures of synthetic data)
# --------------------------------------------------------------------------

#: Colour and opacity of the watermark's letters: black at 11%, light grey over white, over
#: everything else a shade darker (content stays readable through it).
WATERMARK_COLOUR = "#000000"
WATERMARK_ALPHA = 0.11
#: Share of the figure's width and height the rotated watermark spans at most.
_WATERMARK_SPAN = 0.8
#: Steepest and flattest angle of the watermark (degrees); between them, the diagonal's.
_WATERMARK_ANGLES = (15.0, 40.0)
#: Largest size of its letters (points).
WATERMARK_MAX_SIZE = 72.0
#: The canvases of hairtrial.plots that write a format (the same bytes as matplotlib's).
_BACKENDS = {"png": png.BACKEND, "svg": svg.BACKEND}
#: Where :func:`save_figure` writes the watermark's text in each format's metadata.
_WATERMARK_METADATA = {"png": "Description", "svg": "Description", "pdf": "Subject"}


def watermark(fig: Figure, text: str | None) -> Figure:
    """Mark ``fig`` with ``text`` across it (figures of synthetic data).

    The text is drawn once, centred, along the figure's diagonal (between 15 and 40 degrees),
    in large bold translucent letters (:data:`WATERMARK_COLOUR` at :data:`WATERMARK_ALPHA`)
    sized to span at most 80% of the figure's width and height. It is drawn over the content,
    not behind it, so that shaded panels (a contour-enhanced funnel) cannot hide it; at 11%
    opacity everything under it stays readable, one shade darker. Nothing moves: the
    figure's size and layout are those it had. :func:`save_figure` also
    writes ``text`` into each file's metadata (PNG and SVG ``Description``, PDF
    ``Subject``), so a saved file says it even where the letters are cropped away.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A finished figure (its size is final).
    text : str or None
        E.g. :data:`hairtrial.core.vocab.SYNTHETIC_LABEL`. None or empty: ``fig`` is left
        untouched (figures of real data are byte-identical to unmarked ones).

    Returns
    -------
    matplotlib.figure.Figure
        ``fig`` (marked in place); ``fig.hairtrial_watermark`` is the text drawn.
    """
    if not text:
        return fig
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    font = FontProperties(family="DejaVu Sans", weight="bold")
    ext = TextPath((0, 0), text, size=1, prop=font).get_extents()  # points per point of size
    width, height = (float(v) * 72 for v in fig.get_size_inches())
    lo, hi = _WATERMARK_ANGLES
    angle = min(hi, max(lo, math.degrees(math.atan2(height, width))))
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    size = _WATERMARK_SPAN * min(
        width / (ext.width * c + ext.height * s), height / (ext.width * s + ext.height * c)
    )
    fig.text(
        0.5, 0.5, text, fontproperties=font, fontsize=min(size, WATERMARK_MAX_SIZE),
        color=WATERMARK_COLOUR, alpha=WATERMARK_ALPHA, ha="center", va="center",
        rotation=angle, rotation_mode="anchor", zorder=100, gid="hairtrial-watermark",
    )  # fmt: skip
    fig.hairtrial_watermark = text  # type: ignore[attr-defined]
    return fig


# --------------------------------------------------------------------------
# Deterministic, atomic saving
# --------------------------------------------------------------------------

#: Metadata that would otherwise embed timestamps or volatile strings.
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "ModDate": None},
}


#: OpenType layout tables left out of the font subsets embedded in a PDF (see _lean_pdf_fonts).
_PDF_DROPPED_FONT_TABLES = ("GSUB", "GPOS", "GDEF", "MATH")


@contextlib.contextmanager
def _lean_pdf_fonts() -> Any:
    """Embed PDF font subsets without their OpenType layout tables (GSUB, GPOS, GDEF, MATH).

    matplotlib lays text out itself and writes every glyph with its position, and a PDF
    viewer draws a Type 42 (CIDFontType2) font by glyph id; the layout tables (ligature
    substitution, kerning pairs, math layout) are never read from a PDF. Subsetting them
    is what costs: fontTools decompiles and prunes DejaVu's GSUB/GPOS for every font of
    every PDF (about 0.1-0.2 s each, most of the figure job's time). The glyph outlines,
    widths and positions are unchanged, so the page looks the same (rendered pixels are
    compared in tests/test_plots.py); the PDF is smaller. matplotlib builds the options of
    its subset from ``fontTools.subset.load_font``, wrapped here while a PDF is written.
    """
    from fontTools import subset

    load_font = subset.load_font

    def load_lean_font(*args: Any, **kwargs: Any) -> Any:
        font = load_font(*args, **kwargs)  # lazy: tables are decompiled when first read
        for tag in _PDF_DROPPED_FONT_TABLES:
            if tag in font:
                del font[tag]
        return font

    subset.load_font = load_lean_font
    try:
        yield
    finally:
        subset.load_font = load_font


def _no_layout_to_solve(fig: Figure, engine: Any, *, first: bool) -> None:
    """No layout engine while saving where there is no layout to solve (inside
    ``no_autolayout``, None means none): with an engine, savefig draws the figure once more
    before drawing it, to solve the layout. A figure whose layout is already fixed (a
    placeholder engine, as the plots leave it) has nothing to solve; a constrained layout
    solved for the first format holds for the others (unhinted text has the same extents at
    every dpi and in every format). The files are the same bytes. :func:`_layout_once` gives
    the engine back."""
    if engine is not None and (not first or isinstance(engine, PlaceHolderLayoutEngine)):
        fig.set_layout_engine(None)


@contextlib.contextmanager
def _layout_once(fig: Figure, engine: Any) -> Any:
    """Give ``fig`` its layout engine back when saving ends (see save_figure)."""
    try:
        yield
    finally:
        if engine is not None and fig.get_layout_engine() is not engine:
            fig.set_layout_engine(engine)


def save_figure(
    fig: Figure,
    stem: Path,
    formats: Sequence[str] = ("png", "svg", "pdf"),
    dpi: int = 300,
) -> list[Path]:
    """Save a figure in several formats with deterministic bytes, atomically.

    Two calls with the same figure content give byte-identical files: no
    timestamps are written (PDF ``CreationDate``/``ModDate``, SVG ``Date``),
    the PNG ``Software`` chunk is dropped and the SVG ids come from the fixed
    ``svg.hashsalt`` of the house style, which is active while saving. A
    figure marked by :func:`watermark` says so in each file's metadata. Each
    file is first written to a temporary file in the target directory and
    then moved into place with :func:`os.replace`, so a failure never leaves
    a half-written figure behind.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    stem : pathlib.Path
        Output path without extension; ``stem.parent`` is created if needed.
        The extension is appended (``forest.v1`` gives ``forest.v1.png``).
    formats : sequence of str, default ("png", "svg", "pdf")
        Any of ``"png"``, ``"svg"``, ``"pdf"``.
    dpi : int, default 300
        Resolution of the PNG (vector formats ignore it for their geometry).

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of `formats`.

    Raises
    ------
    ValueError
        For an unsupported or repeated format.
    """
    stem = Path(stem)
    fmts = [str(f).lower().lstrip(".") for f in formats]
    unknown = [f for f in fmts if f not in _METADATA]
    if unknown:
        raise ValueError(f"unsupported figure format(s) {unknown}; use png, svg or pdf")
    if len(set(fmts)) != len(fmts):
        raise ValueError(f"repeated figure format in {list(formats)}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    # The house style, minus automatic layout: savefig briefly removes a
    # figure's layout engine and then restores "None" as "what rcParams say".
    no_autolayout = {"figure.constrained_layout.use": False, "figure.autolayout": False}
    engine = fig.get_layout_engine()
    with use_style(), mpl.rc_context(no_autolayout), _layout_once(fig, engine):
        for i, fmt in enumerate(fmts):
            _no_layout_to_solve(fig, engine, first=i == 0)
            target = stem.parent / f"{stem.name}.{fmt}"
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{stem.name}.", suffix=f".{fmt}.tmp", dir=stem.parent
            )
            try:
                fonts = _lean_pdf_fonts() if fmt == "pdf" else contextlib.nullcontext()
                with os.fdopen(fd, "wb") as handle, fonts:
                    # PNG: Agg's pixels through hairtrial.plots.png (no row filters); SVG:
                    # through hairtrial.plots.svg (text laid out once a process), written as
                    # text and encoded once (to a binary file matplotlib encodes each of its
                    # ~5,000 writes a figure); the same bytes
                    target_io = io.StringIO() if fmt == "svg" else handle
                    fig.savefig(
                        target_io, format=fmt, dpi=dpi, metadata=_metadata(fig, fmt),
                        **({"backend": _BACKENDS[fmt]} if fmt in _BACKENDS else {}),
                    )  # fmt: skip
                    if isinstance(target_io, io.StringIO):
                        handle.write(target_io.getvalue().encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp_name, 0o644)
                os.replace(tmp_name, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
                raise
            written.append(target)
    return written


def _metadata(fig: Figure, fmt: str) -> dict[str, Any]:
    """The metadata of a saved file: no volatile fields, and a figure's watermark (if any)."""
    text = getattr(fig, "hairtrial_watermark", None)
    return {**_METADATA[fmt], **({_WATERMARK_METADATA[fmt]: text} if text else {})}


def to_png_bytes(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG bytes, deterministic as :func:`save_figure`."""
    buf = io.BytesIO()
    no_autolayout = {"figure.constrained_layout.use": False, "figure.autolayout": False}
    engine = fig.get_layout_engine()
    with use_style(), mpl.rc_context(no_autolayout), _layout_once(fig, engine):
        _no_layout_to_solve(fig, engine, first=True)
        fig.savefig(buf, format="png", dpi=dpi, metadata=_metadata(fig, "png"))
    return buf.getvalue()


def show(fig: Figure, dpi: int = 150) -> Any:
    """Display a figure in a notebook (an ``IPython.display.Image``).

    Figures built by this package are not attached to pyplot, so notebooks show
    them through this function.
    """
    from IPython.display import Image

    return Image(data=to_png_bytes(fig, dpi=dpi), format="png")


# --------------------------------------------------------------------------
# Number formatting
# --------------------------------------------------------------------------

#: Typographic minus sign.
MINUS = "\u2212"
#: En dash, printed for a missing number.
DASH = "\u2013"


def format_decimals(values: Sequence[float] | np.ndarray) -> int:
    """Number of decimals for a set of numbers shown together.

    The rule, by the largest finite absolute value ``m``: 2 decimals if
    ``m < 10`` (standardised mean differences, small mean differences),
    1 decimal if ``m < 1000`` (mean differences of hair counts per cm²),
    0 decimals otherwise.

    Parameters
    ----------
    values : sequence of float
        The numbers; NaN and infinite values are ignored.

    Returns
    -------
    int
        2, 1 or 0 (2 when no value is finite).
    """
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return 2
    m = float(np.max(np.abs(arr)))
    if m < 10:
        return 2
    if m < 1000:
        return 1
    return 0


def fmt(x: Any, decimals: int) -> str:
    """Format a number with a typographic minus; en dash for missing.

    Parameters
    ----------
    x : object
        A number (anything :func:`as_float` reads).
    decimals : int
        Decimals after the point.

    Returns
    -------
    str
        E.g. ``"\u22121.50"``; ``"\u221e"`` for infinity, :data:`DASH` for NaN, never ``-0``.
    """
    x = as_float(x)
    if not math.isfinite(x):
        if math.isinf(x):
            return "\u221e" if x > 0 else f"{MINUS}\u221e"
        return DASH
    s = f"{x:.{decimals}f}"
    if float(s) == 0:  # no "-0.0"
        s = s.lstrip("-")
    return s.replace("-", MINUS)


def fmt_count(x: Any) -> str:
    """A count: an integer as such, another number with one decimal, :data:`DASH` for NaN."""
    x = as_float(x)
    if not math.isfinite(x):
        return DASH
    return str(int(round(x))) if float(x).is_integer() else f"{x:.1f}"


def sig_decimals(x: Any) -> int:
    """Decimals for a statistic: 1 from 100, 2 from 1, else 3 significant digits."""
    a = abs(as_float(x))
    if not math.isfinite(a) or a >= 100:
        return 1
    if a >= 1:
        return 2
    if a == 0:
        return 2
    return max(2, 2 - math.floor(math.log10(a)))


def fmt_sig(x: Any) -> str:
    """Format a heterogeneity statistic with :func:`sig_decimals`."""
    return fmt(x, sig_decimals(x))


def fmt_p(p: Any) -> str:
    """Two significant digits, ``p < 0.001`` and ``p > 0.99`` at the ends (0.048, 0.12)."""
    p = as_float(p)
    if not math.isfinite(p):
        return f"p = {DASH}"
    if p < 0.001:
        return "p < 0.001"
    if p > 0.99:
        return "p > 0.99"
    decimals = 1 - math.floor(math.log10(p))
    return f"p = {p:.{decimals}f}"


def as_float(x: Any) -> float:
    """``float(x)``, or NaN where that fails (None, text)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan
