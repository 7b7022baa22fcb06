"""Tests of the trajectory plot (mean change from baseline over weeks)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from hairtrial.data.simulate import SimulationSpec, simulate  # noqa: E402
from hairtrial.plots import save_figure  # noqa: E402
from hairtrial.plots.trajectory import DERIVED_LABEL, trajectory_plot  # noqa: E402

UNIT = "hairs/cm²"
_TREAT = {"minoxidil": "control", "minoxidil_microneedling": "experimental"}

# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def published() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three published trials at week 12 (arm means as in study_effects.csv).

    ``means`` and ``contrasts`` are plausible stand-ins, not model output.
    """
    rows = [
        ("adistri2024", "Adistri 2024", 95.6, 52.4, 18, "n_split_equally;from_p_bound"),
        ("dhurat2013", "Dhurat 2013", 91.4, 22.2, 50, "n_split_equally;from_p_value"),
        ("kumar2018", "Kumar 2018", 1.94, 0.29, 34, "unit_converted;n_split_equally"),
    ]
    obs = []
    for study, label, me, mc, n, prov in rows:
        for treatment, mean, arm in (
            ("experimental", me, "Minoxidil + MN"),
            ("control", mc, "Minoxidil"),
        ):
            obs.append(
                {
                    "study": study,
                    "label": label,
                    "arm": arm,
                    "treatment": treatment,
                    "week": 12,
                    "mean": mean,
                    "n": n,
                    "provenance": prov,
                }
            )
    means = pd.DataFrame(
        {
            "treatment": ["experimental", "control"],
            "week": [12, 12],
            "estimate": [62.9, 24.9],
            "se": [27.0, 14.9],
            "ci_lower": [10.0, -4.3],
            "ci_upper": [115.8, 54.1],
        }
    )
    contrasts = pd.DataFrame(
        {"week": [12], "estimate": [38.0], "ci_lower": [4.1], "ci_upper": [71.9], "pvalue": [0.028]}
    )
    return means, pd.DataFrame(obs), contrasts


def synthetic(n_trials: int = 12, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Observed arm changes from :func:`hairtrial.data.simulate.simulate` and simple stand-in means.

    Arms reported as changes give their mean ('reported'); arms reported as
    levels give follow-up minus baseline ('change_from_levels'); medians stand
    in for means ('from_median_iqr'); hairs/inch² are converted. ``means`` and
    ``contrasts`` are unweighted means over studies with a normal-theory CI:
    a stand-in for the model in this test only.
    """
    arms, studies, _ = simulate(SimulationSpec(n_trials=n_trials), seed=seed)
    labels = {r.study: f"Sim {r.study[-2:]} {int(r.year)}" for r in studies.itertuples(index=False)}
    obs = []
    for (study, arm), g in arms.groupby(["study", "arm"], sort=True):
        treatment = _TREAT.get(str(g["treatment"].iloc[0]))
        if treatment is None:
            continue
        g = g.sort_values("week")
        base = g[g["week"] == 0]
        for r in g[g["week"] > 0].itertuples(index=False):
            codes = []
            value = r.mean
            if not math.isfinite(value):
                value, codes = r.median, ["from_median_iqr"]
            if r.stat == "value":
                b = base["mean"].iloc[0] if len(base) else math.nan
                if not math.isfinite(b) and len(base):
                    b = base["median"].iloc[0]
                value -= b
                codes.append("change_from_levels")
            if str(r.unit) != "hairs/cm2":
                value /= 6.4516
                codes.append("unit_converted")
            obs.append(
                {
                    "study": study,
                    "label": labels[study],
                    "arm": arm,
                    "treatment": treatment,
                    "week": int(r.week),
                    "mean": float(value),
                    "n": int(r.n),
                    "provenance": ";".join(codes) or "reported",
                }
            )
    obs = pd.DataFrame(obs)
    agg = obs.groupby(["treatment", "week"])["mean"].agg(["mean", "std", "count"]).reset_index()
    se = agg["std"] / np.sqrt(agg["count"])
    means = pd.DataFrame(
        {
            "treatment": agg["treatment"],
            "week": agg["week"],
            "estimate": agg["mean"],
            "se": se,
            "ci_lower": agg["mean"] - 1.96 * se,
            "ci_upper": agg["mean"] + 1.96 * se,
        }
    )
    e = means[means["treatment"] == "experimental"].set_index("week")
    c = means[means["treatment"] == "control"].set_index("week")
    d = (e["estimate"] - c["estimate"]).dropna()
    dse = np.sqrt(e["se"] ** 2 + c["se"] ** 2).reindex(d.index)
    contrasts = pd.DataFrame(
        {
            "week": d.index.to_numpy(),
            "estimate": d.to_numpy(),
            "ci_lower": (d - 1.96 * dse).to_numpy(),
            "ci_upper": (d + 1.96 * dse).to_numpy(),
            "pvalue": [0.2, 0.03, 0.004, 0.0004, 0.06][: len(d)],
        }
    )
    return means, obs, contrasts


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _boxes_overlap(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of study labels whose rendered boxes overlap (draw the canvas first)."""
    renderer = fig.canvas.get_renderer()
    # Text.get_window_extent: the text alone, without the leader line
    boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in fig.hairtrial_labels]
    bad = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i][1], boxes[j][1]
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            if w > 0.5 and h > 0.5:
                bad.append((boxes[i][0], boxes[j][0]))
    return bad


def _inside_axes(fig: Figure) -> bool:
    """Whether every study label lies inside the main axes (draw the canvas first)."""
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0].get_window_extent(renderer)
    return all(
        ax.x0 - 1 <= bb.x0 and bb.x1 <= ax.x1 + 1 and ax.y0 - 1 <= bb.y0 and bb.y1 <= ax.y1 + 1
        for bb in (Text.get_window_extent(t, renderer) for t in fig.hairtrial_labels)
    )


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_published_one_week() -> None:
    means, obs, contrasts = published()
    fig = trajectory_plot(means, obs, unit_label=UNIT, contrasts=contrasts, title="Hair density")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # trajectories + difference panel
    # one label per arm path, study labels (three studies fit)
    assert sorted(t.get_text() for t in fig.hairtrial_labels) == sorted(
        ["Adistri 2024", "Dhurat 2013", "Kumar 2018"] * 2
    )
    assert fig.hairtrial_key == {}
    fig.canvas.draw()
    assert _boxes_overlap(fig) == []
    assert _inside_axes(fig)
    assert DERIVED_LABEL in fig.hairtrial_legend_labels
    assert "As reported" not in fig.hairtrial_legend_labels
    # x ticks: baseline and the observed week only
    assert list(fig.axes[1].get_xticks()) == [0.0, 12.0]


def test_synthetic_multi_week_numbered_key() -> None:
    means, obs, contrasts = synthetic(12, seed=3)
    assert obs["week"].nunique() >= 4
    fig = trajectory_plot(means, obs, unit_label=UNIT, contrasts=contrasts)
    assert len(fig.axes) == 2
    assert sorted(fig.hairtrial_key) == list(range(1, 13))
    n_paths = obs.groupby(["study", "treatment", "arm"]).ngroups
    assert len(fig.hairtrial_labels) == n_paths
    fig.canvas.draw()
    assert _boxes_overlap(fig) == []
    assert _inside_axes(fig)
    assert sorted(fig.axes[0].get_xticks()) == sorted({0, *obs["week"].unique().tolist()})


@pytest.mark.parametrize("n_trials", [2, 20])
def test_study_counts(n_trials: int) -> None:
    means, obs, contrasts = synthetic(n_trials, seed=11)
    fig = trajectory_plot(means, obs, unit_label=UNIT, contrasts=contrasts)
    assert len(fig.hairtrial_labels) == obs.groupby(["study", "treatment", "arm"]).ngroups
    fig.canvas.draw()
    if n_trials > 8:
        assert sorted(fig.hairtrial_key) == list(range(1, n_trials + 1))
    if n_trials == 2:
        assert fig.hairtrial_key == {}  # two studies: labelled by name
    assert _inside_axes(fig)


def test_model_not_fitted() -> None:
    _, obs, _ = synthetic(6, seed=5)
    empty = pd.DataFrame(columns=["treatment", "week", "estimate", "se", "ci_lower", "ci_upper"])
    fig = trajectory_plot(empty, obs, unit_label=UNIT)
    assert len(fig.axes) == 1
    assert any("Model not fitted" in line for line in fig.hairtrial_notes)
    # no band, no model line: only thin observed paths and the zero line
    assert all(ln.get_linewidth() <= 0.6 for ln in fig.axes[0].get_lines())


def test_nan_cis_and_gaps() -> None:
    means, obs, contrasts = synthetic(8, seed=7)
    means.loc[means["week"] == 8, ["ci_lower", "ci_upper"]] = np.nan
    means.loc[(means["week"] == 24) & (means["treatment"] == "control"), "estimate"] = np.nan
    contrasts.loc[0, ["ci_lower", "ci_upper"]] = np.nan
    fig = trajectory_plot(means, obs, unit_label=UNIT, contrasts=contrasts)
    notes = " ".join(fig.hairtrial_notes)
    assert "95% CI not estimable at week 8" in notes
    assert "Difference: 95% CI not estimable" in notes


def test_derived_legend_iff_derived() -> None:
    means, obs, contrasts = published()
    reported = obs.assign(provenance="reported")
    fig = trajectory_plot(means, reported, unit_label=UNIT)
    assert DERIVED_LABEL not in fig.hairtrial_legend_labels
    assert "As reported" in fig.hairtrial_legend_labels
    mixed = reported.copy()
    mixed.loc[0, "provenance"] = "from_se"
    fig = trajectory_plot(means, mixed, unit_label=UNIT)
    assert DERIVED_LABEL in fig.hairtrial_legend_labels
    missing = reported.drop(columns="provenance")
    fig = trajectory_plot(means, missing, unit_label=UNIT)
    assert DERIVED_LABEL not in fig.hairtrial_legend_labels


def test_model_only_one_week_with_multi_week_observed() -> None:
    means, obs, _ = synthetic(6, seed=2)
    fig = trajectory_plot(means[means["week"] == 12], obs, unit_label=UNIT)
    assert len(fig.axes) == 1


def test_missing_column() -> None:
    means, obs, _ = published()
    with pytest.raises(ValueError, match="observed lacks"):
        trajectory_plot(means, obs.drop(columns="n"), unit_label=UNIT)


@pytest.mark.parametrize(
    ("case", "formats"), [("published", ("png", "svg", "pdf")), ("synthetic", ("png",))]
)
def test_saves_are_byte_identical(tmp_path: Path, case: str, formats: tuple[str, ...]) -> None:
    means, obs, contrasts = published() if case == "published" else synthetic(12, seed=3)
    fig = trajectory_plot(means, obs, unit_label=UNIT, contrasts=contrasts)
    first = save_figure(fig, tmp_path / "a" / "traj", formats=formats, dpi=100)
    second = save_figure(fig, tmp_path / "b" / "traj", formats=formats, dpi=100)
    assert [p.suffix for p in first] == [f".{f}" for f in formats]
    for a, b in zip(first, second, strict=True):
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    if case != "published":
        return
    # a second figure from the same inputs gives the same bytes too
    again = trajectory_plot(means, obs, unit_label=UNIT, contrasts=contrasts)
    third = save_figure(again, tmp_path / "c" / "traj", formats=("png",), dpi=100)
    assert third[0].read_bytes() == first[0].read_bytes()
