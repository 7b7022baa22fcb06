"""Coverage of the arm model's week-12 CI on simulated data with known truth (slow).

500 replicates of the 20-trial scenario of config/simulation.yaml: the 95% CI of the
experimental-minus-control difference at week 12 (test t, dfs contain) must cover the true
population difference at the nominal rate within Monte Carlo error. The same run reports,
without asserting, the coverage with 6 trials. Run with `make test-slow`.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from hairtrial.analyses import arm_model
from hairtrial.analyses.config import load_config
from hairtrial.data.simulate import load_spec, simulate, write_dataset

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _coverage(scenario: str, replicates: int, tmp_path: Path) -> tuple[float, int]:
    spec, seed = load_spec(ROOT / "config" / "simulation.yaml", scenario)
    hits, fitted = 0, 0
    for r in range(replicates):
        arms, studies, truth = simulate(spec, seed + r)
        folder = tmp_path / f"{scenario}_{r}"
        write_dataset(arms, studies, folder, truth)
        cfg = load_config(folder / "config.yaml")
        rows, _ = arm_model.arm_rows(cfg)
        res = arm_model.fit_outcome(rows, cfg, "hair_density", profile=False)
        ct = res["contrasts"]
        ct = ct[(ct.week == 12) & (ct.contrast == "experimental - control")]
        if ct.empty:
            continue
        true = truth[(truth.scope == "population") & (truth.quantity == "delta")
                     & (truth.week == 12)]["value"].iloc[0]  # fmt: skip
        fitted += 1
        hits += int(ct.ci_lower.iloc[0] <= true <= ct.ci_upper.iloc[0])
    return hits / fitted, fitted


def test_week12_ci_covers_truth_at_nominal_rate(tmp_path, capsys):
    cov20, n20 = _coverage("benchmark_20", 500, tmp_path)
    cov6, n6 = _coverage("small_6", 500, tmp_path)
    with capsys.disabled():
        print(f"\nweek-12 CI coverage: 20 trials {cov20:.3f} ({n20} fits); "
              f"6 trials {cov6:.3f} ({n6} fits, reported only)")  # fmt: skip
    assert n20 >= 490
    mc_se = math.sqrt(0.95 * 0.05 / n20)
    assert abs(cov20 - 0.95) <= 3 * mc_se, f"coverage {cov20:.3f} with {n20} fits"
    assert np.isfinite(cov6)
