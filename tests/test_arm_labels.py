"""The two arms have one name, from the config's comparison, in every figure (issue 8: one
source per fact). The forest heads said "Microneedling + minoxidil", the L'Abbé and trajectory
figures "Minoxidil + microneedling", the participants' figure the raw codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.text import Text

from hairtrial.core import vocab
from hairtrial.report import figures

ROOT = Path(__file__).resolve().parents[1]
PART = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def test_published_comparison_is_the_default_configs():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    assert config["comparison"] == vocab.PUBLISHED_COMPARISON
    assert vocab.ARM_LABELS == ("Minoxidil + microneedling", "Minoxidil alone")
    assert vocab.FAVOURS == ("Favours minoxidil alone", "Favours minoxidil + microneedling")


@given(st.lists(PART, min_size=1, max_size=3, unique=True), st.lists(PART, max_size=2))
def test_arm_names_from_codes(control_parts, added):
    """Codes in words; the control of an add-on comparison (its parts a strict subset of the
    experimental's) is "... alone"; the labels differ from the names only in the first
    letter; harm swaps the 'favours' texts."""
    control = "_".join(control_parts)
    experimental = "_".join([*control_parts, *[a for a in added if a not in control_parts]])
    exp, ctl = vocab.arm_names(control, experimental)
    assert "_" not in exp + ctl
    assert exp == " + ".join(experimental.split("_"))
    add_on = len(experimental.split("_")) > len(control_parts)
    assert ctl == " + ".join(control_parts) + (" alone" if add_on else "")
    labels = vocab.arm_labels(control, experimental)
    assert [lab[1:] for lab in labels] == [exp[1:], ctl[1:]]
    assert all(lab[0] == lab[0].upper() for lab in labels)
    benefit = vocab.favours(control, experimental)
    assert benefit == (f"Favours {ctl}", f"Favours {exp}")
    assert vocab.favours(control, experimental, harm=True) == benefit[::-1]


@pytest.mark.parametrize(
    "comparison",
    [vocab.PUBLISHED_COMPARISON, {"control": "placebo", "experimental": "minoxidil_prp"}],
)
def test_forest_and_labbe_name_the_arms_of_the_run(default_config, default_results, comparison):
    """Every figure that names the arms uses the run's comparison, in the same words."""
    *_, meta_table, study_effects = default_results
    config = {**default_config, "comparison": comparison}
    exp, ctl = vocab.arm_labels(**comparison)
    forest = _texts(
        figures.forest_figure_object(
            meta_table, study_effects, config, outcome="hair_density", week=12, measure="MD"
        )
    )
    assert exp in forest and ctl in forest
    left, right = vocab.favours(**comparison)
    assert any(left in t for t in forest) and any(right in t for t in forest)
    labbe = _texts(
        figures.labbe_figure_object(
            meta_table, study_effects, config, outcome="hair_density", week=12
        )
    )
    assert any(t.startswith(f"{exp}: ") for t in labbe)
    assert any(t.startswith(f"{ctl}: ") for t in labbe)
    others = {"Microneedling + minoxidil", "Minoxidil + microneedling", "Minoxidil alone"}
    assert not (others - {exp, ctl}) & {t.split(":")[0] for t in forest + labbe}


def test_no_arm_label_is_written_outside_the_vocabulary():
    """The library names the arms only through hairtrial.core.vocab."""
    literals = ("Microneedling + minoxidil", "Minoxidil + microneedling", "Minoxidil alone")
    found = [
        f"{path.relative_to(ROOT)}: {lit}"
        for path in sorted((ROOT / "src" / "hairtrial").rglob("*.py"))
        if path.name != "vocab.py"
        for lit in literals
        if lit in path.read_text(encoding="utf-8")
    ]
    assert not found
