"""hairtrial.report.figure_cache: an unchanged redraw copies, any change draws again."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from hairtrial.report import figure_cache
from hairtrial.report.figure_cache import cached_drawing, drawing_key


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "in").mkdir()
    files = {"meta_analysis": tmp_path / "in" / "a.csv", "figures": tmp_path / "in" / "b.csv"}
    files["meta_analysis"].write_text("x,y\n1,2\n")
    files["figures"].write_text("stem\nforest\n")
    return files


CONFIG = {"figures": {"formats": ["png", "svg", "pdf"], "dpi": 300}, "measures": ["MD"]}


def test_key_changes_with_every_input(inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    key = drawing_key(inputs, CONFIG)
    assert drawing_key(dict(reversed(list(inputs.items()))), copy.deepcopy(CONFIG)) == key
    for section, value in (("dpi", 600), ("formats", ["png"])):
        changed = copy.deepcopy(CONFIG)
        changed["figures"][section] = value
        assert drawing_key(inputs, changed) != key, section
    assert drawing_key(inputs, {**CONFIG, "measures": ["SMD"]}) != key
    inputs["meta_analysis"].write_text("x,y\n1,3\n")  # one digit of one table
    assert drawing_key(inputs, CONFIG) != key
    inputs["meta_analysis"].write_text("x,y\n1,2\n")
    assert drawing_key(inputs, CONFIG) == key
    # plotting code, matplotlib settings and library versions are part of the key
    source = inputs["figures"].parent / "forest.py"
    source.write_text("LINE_WIDTH = 1.0\n")
    monkeypatch.setattr(figure_cache, "package_files", lambda: [source])
    monkeypatch.setattr(figure_cache, "__file__", str(source.parent / "report" / "x.py"))
    code_key = drawing_key(inputs, CONFIG)
    source.write_text("LINE_WIDTH = 1.5\n")
    assert drawing_key(inputs, CONFIG) != code_key
    import matplotlib as mpl

    with mpl.rc_context({"lines.linewidth": 3.0}):
        rc_key = drawing_key(inputs, CONFIG)
    assert rc_key != drawing_key(inputs, CONFIG)
    monkeypatch.setattr(figure_cache.metadata, "version", lambda dist: "0.0")
    assert drawing_key(inputs, CONFIG) != rc_key


def test_the_key_of_an_unchanged_redraw_imports_no_pyplot(inputs: dict[str, Path]):
    """An unchanged redraw (`make figures` with nothing changed) computes the key and copies:
    reading matplotlib's settings for the key must not resolve the backend, which imports
    pyplot (about half of such a job); the key is that of the settings read with the
    backend resolved."""
    paths = {k: str(v) for k, v in inputs.items()}
    code = f"""
import sys
from pathlib import Path
from hairtrial.report.figure_cache import drawing_key
inputs = {{k: Path(v) for k, v in {paths!r}.items()}}
key = drawing_key(inputs, {CONFIG!r})
print("matplotlib.pyplot" in sys.modules)
import matplotlib.pyplot
print(drawing_key(inputs, {CONFIG!r}) == key)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]


def _drawer(out: Path, calls: list[int], content: bytes = b"png"):
    def draw() -> list[Path]:
        calls.append(1)
        out.mkdir(parents=True, exist_ok=True)
        files = [out / "forest.png", out / "forest.svg", out / "prisma.png"]
        for i, f in enumerate(files):
            f.write_bytes(content + bytes([i]))
        return files

    return draw


def test_unchanged_key_copies_and_a_new_key_draws(tmp_path: Path):
    cache, out = tmp_path / "cache", tmp_path / "figures"
    calls: list[int] = []
    first, kept = cached_drawing("k1", cache, out, _drawer(out, calls))
    assert not kept and len(calls) == 1
    expected = {p.name: p.read_bytes() for p in first}
    for p in first:
        p.unlink()  # as Snakemake removes the outputs of a forced job
    out.rmdir()
    second, kept = cached_drawing("k1", cache, out, _drawer(out, calls))
    assert kept and len(calls) == 1
    assert [p.name for p in second] == [p.name for p in first]  # same order: same manifest
    assert {p.name: p.read_bytes() for p in second} == expected
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in second)
    third, kept = cached_drawing("k2", cache, out, _drawer(out, calls, b"new"))
    assert not kept and len(calls) == 2
    assert third[0].read_bytes() == b"new\x00"
    assert (cache / "key").read_text() == "k2"


def test_incomplete_cache_is_not_used(tmp_path: Path):
    cache, out = tmp_path / "cache", tmp_path / "figures"
    calls: list[int] = []
    cached_drawing("k", cache, out, _drawer(out, calls))
    (cache / "files" / "prisma.png").unlink()
    written, kept = cached_drawing("k", cache, out, _drawer(out, calls))
    assert not kept and len(calls) == 2 and len(written) == 3
    (cache / "key").unlink()
    _, kept = cached_drawing("k", cache, out, _drawer(out, calls))
    assert not kept and len(calls) == 3


def test_failed_drawing_keeps_the_previous_cache(tmp_path: Path):
    cache, out = tmp_path / "cache", tmp_path / "figures"
    calls: list[int] = []
    cached_drawing("k", cache, out, _drawer(out, calls))

    def boom() -> list[Path]:
        raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError):
        cached_drawing("k2", cache, out, boom)
    assert (cache / "key").read_text() == "k"
