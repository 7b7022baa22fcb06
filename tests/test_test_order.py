"""The order `make test` hands test files to its workers (tests/conftest.py)."""

from pathlib import Path

from conftest import LONGEST_FIRST

TESTS = Path(__file__).resolve().parent


def test_the_longest_files_exist():
    # a renamed file would silently fall back to the end of the queue
    assert [n for n in LONGEST_FIRST if not (TESTS / n).is_file()] == []


def test_make_test_keeps_the_collection_order():
    makefile = (TESTS.parent / "Makefile").read_text(encoding="utf-8")
    line = next(x for x in makefile.splitlines() if "-m pytest -n $(CORES)" in x)
    assert "--dist loadfile" in line and "--no-loadscope-reorder" in line
