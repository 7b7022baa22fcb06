"""The PNG writer of the figures (:mod:`hairtrial.plots.png`) against Pillow, matplotlib's own.

A figure saved by :func:`hairtrial.plots.style.save_figure` must decode to the pixels,
resolution and text metadata of the PNG matplotlib writes through Pillow; only the
compressed bytes differ (no row filters, another compression level).
"""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from matplotlib.figure import Figure
from PIL import Image, PngImagePlugin

from hairtrial.plots import png, style

#: PNG text keys: 1-79 Latin-1 characters, no NUL and no leading or trailing space
KEYS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), min_size=1, max_size=79)
#: text values: any characters but NUL (Latin-1 ones go to tEXt, the others to iTXt)
VALUES = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


def decoded(data: bytes) -> tuple[np.ndarray, dict]:
    """Pixels and info of a PNG file as Pillow reads it (checking every chunk's CRC)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image), dict(image.info)


def pillow_png(rgba: np.ndarray, dpi: float, text: dict[str, str]) -> bytes:
    """The PNG of ``rgba`` as matplotlib writes it (matplotlib.image.imsave's Pillow call)."""
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="png", pnginfo=info, dpi=(dpi, dpi))
    return out.getvalue()


@settings(max_examples=60, deadline=None)
@given(
    rgba=arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(4))),
    dpi=st.floats(1, 2400),
    text=st.dictionaries(KEYS, VALUES, max_size=4),
)
def test_decodes_as_the_pillow_png(rgba, dpi, text):
    ours, theirs = (
        decoded(png.encode_png(rgba, dpi=dpi, text=text)),
        decoded(pillow_png(rgba, dpi, text)),
    )
    assert np.array_equal(ours[0], rgba)
    assert np.array_equal(ours[0], theirs[0])
    assert ours[1] == theirs[1]  # dpi and text, Latin-1 or not


def test_structure():
    """Signature, IHDR (RGBA, 8 bits), pHYs, text, one IDAT of unfiltered rows, IEND."""
    rgba = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = png.encode_png(rgba, dpi=300, text={"Description": "SYNTHETIC DATA"})
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + size]))
        at += 12 + size
    assert [tag for tag, _ in chunks] == [b"IHDR", b"pHYs", b"tEXt", b"IDAT", b"IEND"]
    assert chunks[0][1] == (3).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    assert chunks[1][1] == (11811).to_bytes(4, "big") * 2 + b"\x01"  # 300 dpi in pixels/metre
    assert chunks[2][1] == b"Description\0SYNTHETIC DATA"
    rows = zlib.decompress(chunks[3][1])
    assert rows == b"".join(b"\0" + rgba[i].tobytes() for i in range(2))


@pytest.mark.parametrize(
    ("rgba", "text"),
    [
        (np.zeros((0, 3, 4), np.uint8), {}),
        (np.zeros((2, 3, 3), np.uint8), {}),
        (np.zeros((2, 3), np.uint8), {}),
        (np.zeros((2, 3, 4), np.uint8), {"": "empty key"}),
        (np.zeros((2, 3, 4), np.uint8), {"k" * 80: "key too long"}),
        (np.zeros((2, 3, 4), np.uint8), {"Schlüssel\u2192": "key beyond Latin-1"}),
    ],
)
def test_rejects(rgba, text):
    with pytest.raises(ValueError):
        png.encode_png(rgba, dpi=72, text=text)


def test_canvas_rejects_what_it_does_not_use():
    fig = Figure(figsize=(1, 1))
    with pytest.raises(ValueError, match="pil_kwargs"):
        fig.savefig(io.BytesIO(), format="png", backend=png.BACKEND, pil_kwargs={"optimize": 1})
    with pytest.raises(TypeError, match="unexpected"):
        png.FigureCanvas(fig).print_png(io.BytesIO(), quality=3)


def house_figure() -> Figure:
    """Text at several sizes and weights, lines, markers, a translucent band: Agg's work."""
    with style.use_style():
        fig = Figure(figsize=(3.2, 2.0), layout="none")
        ax = fig.add_axes((0.15, 0.2, 0.8, 0.7))
        ax.plot([0, 1, 2, 3], [1.0, 2.5, 1.5, 3.0], marker="s", color=style.BLUE)
        ax.axhspan(1.2, 2.2, color=style.VERMILLION, alpha=0.25)
        ax.set_xlabel("Mean difference, hairs/cm²")
        ax.set_title("Hair density, week 12", fontweight="bold")
        fig.text(0.02, 0.02, "Dhurat 2013 · Kumar 2018 · Adistri 2024", size=5, style="italic")
    return fig


@pytest.mark.parametrize("label", [None, "SYNTHETIC DATA"])
def test_saved_figure_has_the_pixels_and_metadata_of_matplotlibs_png(tmp_path, label):
    """save_figure's PNG against the same figure saved by matplotlib (through Pillow)."""
    fig = style.watermark(house_figure(), label)
    (path,) = style.save_figure(fig, tmp_path / "figure", formats=["png"], dpi=150)
    reference = io.BytesIO()
    metadata = {"Software": None, **({"Description": label} if label else {})}
    with style.use_style():
        fig.savefig(reference, format="png", dpi=150, metadata=metadata)
    ours, theirs = decoded(path.read_bytes()), decoded(reference.getvalue())
    assert ours[0].shape == theirs[0].shape == (300, 480, 4)
    assert np.array_equal(ours[0], theirs[0])
    assert ours[1] == theirs[1]
    assert ours[1].get("Description") == label
    assert "Software" not in ours[1]
    assert len(path.read_bytes()) < len(reference.getvalue())  # no filters: smaller here


@pytest.mark.parametrize("label", [None, "SYNTHETIC DATA"])
def test_saved_svg_is_matplotlibs_svg(tmp_path, label):
    """save_figure's SVG (hairtrial.plots.svg: text laid out once a process) against the same
    figure saved by matplotlib's SVG canvas, twice (the second from the caches)."""
    from hairtrial.plots import svg

    fig = style.watermark(house_figure(), label)
    for _ in range(2):
        (path,) = style.save_figure(fig, tmp_path / "figure", formats=["svg"])
        reference = io.StringIO()
        metadata = {"Date": None, **({"Description": label} if label else {})}
        with style.use_style():
            fig.savefig(reference, format="svg", metadata=metadata)
        assert path.read_text(encoding="utf-8") == reference.getvalue()
        assert "<path" in reference.getvalue() and "Hair density" in reference.getvalue()
    with pytest.raises(TypeError, match="unexpected"):
        svg.FigureCanvas(fig).print_svg(io.StringIO(), quality=3)
