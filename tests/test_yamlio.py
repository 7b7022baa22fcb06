"""hairtrial.core.yamlio gives the values of PyYAML's pure-Python safe loader and dumper."""

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hairtrial.core import yamlio

RESOURCES = Path(yamlio.__file__).resolve().parents[1] / "resources"
ROOT = Path(__file__).resolve().parents[1]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_libyaml_is_used_where_pyyaml_has_it():
    assert yaml.__with_libyaml__, "the locked PyYAML wheel is built with libyaml"
    assert yamlio._LOADER is yaml.CSafeLoader
    assert yamlio._DUMPER is yaml.CSafeDumper


@pytest.mark.parametrize(
    "path",
    [
        *sorted(RESOURCES.glob("*.yaml")),
        ROOT / "config" / "config.yaml",
        *sorted((ROOT / ".test" / "config").glob("*.yaml")),
    ],
    ids=lambda p: p.name,
)
def test_package_files_load_as_with_the_python_loader(path):
    text = path.read_text(encoding="utf-8")
    assert yamlio.load_yaml(text) == yaml.safe_load(text)


@given(values)
def test_copy_equals_the_python_round_trip(value):
    assert yamlio.yaml_copy(value) == yaml.safe_load(yaml.safe_dump(value))


@given(values)
def test_load_equals_the_python_loader_on_dumped_text(value):
    text = yaml.safe_dump(value, allow_unicode=True)
    assert yamlio.load_yaml(text) == yaml.safe_load(text)


def test_a_value_yaml_cannot_represent_raises_as_before():
    with pytest.raises(yaml.representer.RepresenterError):
        yaml.safe_dump({"a": object()})
    with pytest.raises(yaml.representer.RepresenterError):
        yamlio.yaml_copy({"a": object()})
