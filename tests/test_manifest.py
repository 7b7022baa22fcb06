"""Manifests (hairtrial.core.manifest): written as core.io.write_csv writes a table."""

import subprocess
import sys

import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hairtrial.core.io import write_csv
from hairtrial.core.manifest import read_manifests, write_manifest

# path components: any text but the separator and NUL, never "." or ".."
names = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in {".", ".."} and len(s.encode()) < 200)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(names, min_size=1, max_size=3), max_size=6))
@example([["=cmd()"], ["-1"], ["-x"], ["@a"], ["\tb"], ["\rc"], ["+0.5"]])  # formulas, numbers
@example([['a"b'], ["a,b"], ["x\ny"], ["'q"], [" sp "], ["é"]])  # quoting, quotes, text
@example([["a", "b"], ["a", "b"], ["c"]])  # a repeat, listed once
def test_bytes_are_those_of_write_csv(tmp_path_factory, parts):
    root = tmp_path_factory.mktemp("results")
    files = [root.joinpath(*p) for p in parts]
    rel = ["/".join(p) for p in parts]
    write_manifest(root / "m.csv", files, root)
    write_csv(pd.DataFrame({"path": list(dict.fromkeys(rel))}), root / "expected.csv")
    assert (root / "m.csv").read_bytes() == (root / "expected.csv").read_bytes()


def test_paths_read_back_in_order_without_repeats(tmp_path):
    files = [tmp_path / "figures" / "b.png", tmp_path / "tables" / "a, b.csv", tmp_path / "-x"]
    write_manifest(tmp_path / "one.csv", [*files, files[0]], tmp_path)
    write_manifest(tmp_path / "two.csv", [tmp_path / "report" / "r.html", files[1]], tmp_path)
    assert "'-x" in (tmp_path / "one.csv").read_text()  # neutralised in the file
    got = read_manifests([tmp_path / "one.csv", tmp_path / "two.csv"])
    assert got == ["figures/b.png", "tables/a, b.csv", "-x", "report/r.html"]


def test_writing_a_manifest_does_not_import_pandas(tmp_path):
    code = (
        "import sys; from hairtrial.core.manifest import write_manifest; "
        f"write_manifest({str(tmp_path / 'm.csv')!r}, [{str(tmp_path / 'x.png')!r}], "
        f"{str(tmp_path)!r}); print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert (tmp_path / "m.csv").read_text() == "path\nx.png\n"
