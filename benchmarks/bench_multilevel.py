"""Benchmark hairtrial.models.multilevel.fit_mv against metafor rma.mv (sparse=TRUE).

Generates seeded arm-level longitudinal data (studies with 2-3 arms, 2-5 weeks each; random
study and arm effects; sampling errors correlated 0.6 between weeks of the same arm), fits
``mods = "~ treatment * week"``, ``random = ~ 1 | study/arm`` (REML) at 800, 8,000, 40,000 and
400,000 rows, and, when Rscript with metafor is available, times ``rma.mv(..., sparse=TRUE)``
on the same data up to 8,000 rows and checks that the estimates agree (rtol 1e-4 for the
coefficients and variance components: metafor's default nlminb tolerance).

Run from the repository root::

    .venv/bin/python benchmarks/bench_multilevel.py [--sizes 800 8000 40000 400000]
        [--metafor-max 8000] [--repeats 3]

Writes ``benchmarks/results/multilevel.csv`` and ``benchmarks/results/multilevel.png``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hairtrial.models.multilevel import block_covariance, fit_mv, parse_random

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
WEEKS = np.array([4.0, 8.0, 12.0, 16.0, 24.0])


def generate(n_rows: int, seed: int = 1, rho: float = 0.6) -> tuple[pd.DataFrame, sp.csr_matrix]:
    """About n_rows arm-week rows (whole studies); sampling errors correlated rho within arm."""
    rng = np.random.default_rng(seed)
    n_studies = int(np.ceil(n_rows / 8.75 * 1.1)) + 2
    narm = rng.integers(2, 4, n_studies)
    nweek = rng.integers(2, 6, n_studies)
    keep = int(np.searchsorted(np.cumsum(narm * nweek), n_rows)) + 1
    narm, nweek = narm[:keep], nweek[:keep]
    # weeks of each study: the first nweek entries of a random permutation, sorted
    perm = np.argsort(rng.random((keep, WEEKS.size)), axis=1)
    wk_sets = np.sort(np.where(np.arange(WEEKS.size) < nweek[:, None], perm, 99), axis=1)
    s_of_arm = np.repeat(np.arange(keep), narm)
    a_in_s = np.arange(s_of_arm.size) - np.repeat(np.cumsum(narm) - narm, narm)
    nw_arm = nweek[s_of_arm]
    arm_of_row = np.repeat(np.arange(s_of_arm.size), nw_arm)
    w_in_arm = np.arange(arm_of_row.size) - np.repeat(np.cumsum(nw_arm) - nw_arm, nw_arm)
    study = s_of_arm[arm_of_row]
    week = WEEKS[wk_sets[study, w_in_arm]]
    active = a_in_s[arm_of_row] > 0
    d = pd.DataFrame(
        {
            "study": study,
            "arm": [f"{s}-{a}" for s, a in zip(study, a_in_s[arm_of_row], strict=True)],
            "treatment": np.where(active, "active", "control"),
            "week": week,
        }
    )
    n = rng.integers(20, 120, s_of_arm.size)[arm_of_row]
    d["n"] = n
    d["sd"] = 15.0 + d["week"] / 4
    d["vi"] = d["sd"] ** 2 / d["n"]
    V = block_covariance(d, vi="vi", arm="arm", time="week", rho=rho)
    u_s = rng.normal(0, 3.0, keep)[study]
    u_a = rng.normal(0, 2.0, s_of_arm.size)[arm_of_row]
    mu = 2 + 0.3 * week + np.where(active, 5 + 0.2 * week, 0.0)
    # compound-symmetric within-arm correlation: e = sqrt(v) (sqrt(rho) z_arm + sqrt(1-rho) z)
    z_arm = rng.standard_normal(s_of_arm.size)[arm_of_row]
    e = np.sqrt(d["vi"].to_numpy()) * (
        math.sqrt(rho) * z_arm + math.sqrt(1 - rho) * rng.standard_normal(len(d))
    )
    d["yi"] = mu + u_s + u_a + e
    return d, V


R_SCRIPT = r"""
suppressPackageStartupMessages({library(metafor); library(Matrix)})
args <- commandArgs(TRUE)
d <- read.csv(args[1])
v <- read.csv(args[2])
V <- sparseMatrix(i = v$row, j = v$col, x = v$value, dims = c(nrow(d), nrow(d)))
t0 <- proc.time()[["elapsed"]]
res <- rma.mv(yi, V, mods = ~ treatment * week, random = ~ 1 | study/arm, data = d,
              sparse = TRUE)
el <- proc.time()[["elapsed"]] - t0
out <- data.frame(what = c("time", paste0("beta", seq_along(res$beta)), "sigma2.1", "sigma2.2",
                           "ll"),
                  value = sprintf("%.17g", c(el, res$beta, res$sigma2, logLik(res))))
write.csv(out, args[3], row.names = FALSE)
"""


def metafor_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    r = subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True)
    return r.returncode == 0


def run_metafor(d: pd.DataFrame, V: sp.csr_matrix) -> pd.Series:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d.to_csv(tmp / "d.csv", index=False, float_format="%.17g")
        c = V.tocoo()
        pd.DataFrame({"row": c.row + 1, "col": c.col + 1, "value": c.data}).to_csv(
            tmp / "v.csv", index=False, float_format="%.17g"
        )
        (tmp / "fit.R").write_text(R_SCRIPT)
        subprocess.run(
            [
                "Rscript",
                str(tmp / "fit.R"),
                str(tmp / "d.csv"),
                str(tmp / "v.csv"),
                str(tmp / "out.csv"),
            ],
            check=True,
            capture_output=True,
        )
        out = pd.read_csv(tmp / "out.csv")
    return pd.Series(out["value"].to_numpy(float), index=out["what"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[800, 8000, 40000, 400000])
    ap.add_argument("--metafor-max", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (best is reported)")
    args = ap.parse_args(argv)
    have_r = metafor_available()
    rows = []
    ok = True
    for size in args.sizes:
        d, V = generate(size, seed=size)
        kw = dict(yi="yi", V=V, mods="~ treatment * week", random=[parse_random("~ 1 | study/arm")])
        times = []
        reps = args.repeats if size <= 40000 else 1
        for _ in range(reps):
            t0 = time.perf_counter()
            res = fit_mv(d, **kw)
            times.append(time.perf_counter() - t0)
        row = {
            "rows": len(d),
            "studies": d["study"].nunique(),
            "hairtrial_s": min(times),
            "iterations": res.iterations,
            "converged": res.converged,
            "metafor_s": np.nan,
            "ratio": np.nan,
            "max_rel_diff": np.nan,
        }
        if have_r and size <= args.metafor_max:
            mf = run_metafor(d, V)
            row["metafor_s"] = float(mf["time"])
            row["ratio"] = row["metafor_s"] / row["hairtrial_s"]
            mine = np.concatenate([res.beta, res.variance_components["estimate"].to_numpy()])
            theirs = np.concatenate(
                [
                    mf[[f"beta{j + 1}" for j in range(res.p)]].to_numpy(),
                    mf[["sigma2.1", "sigma2.2"]].to_numpy(),
                ]
            )
            rel = float(np.max(np.abs(mine - theirs) / np.abs(theirs)))
            row["max_rel_diff"] = rel
            row["logLik_diff"] = res.logLik - float(mf["ll"])
            if rel > 1e-4 or row["logLik_diff"] < -1e-6:
                ok = False
        rows.append(row)
        print(
            f"{row['rows']:>8d} rows  hairtrial {row['hairtrial_s']:8.3f} s"
            + (
                f"  metafor {row['metafor_s']:8.3f} s  ratio {row['ratio']:7.1f}"
                f"  max rel diff {row['max_rel_diff']:.1e}"
                if np.isfinite(row["metafor_s"])
                else "  metafor skipped"
            ),
            flush=True,
        )
    table = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "multilevel.csv", index=False)
    print(table.to_string(index=False))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4))
        ax.loglog(table["rows"], table["hairtrial_s"], "o-", label="hairtrial fit_mv")
        m = table["metafor_s"].notna()
        if m.any():
            ax.loglog(
                table.loc[m, "rows"],
                table.loc[m, "metafor_s"],
                "s--",
                label="metafor rma.mv (sparse)",
            )
        ax.set_xlabel("rows")
        ax.set_ylabel("seconds")
        ax.set_title("~ 1 | study/arm, mods ~ treatment * week (REML)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(OUT / "multilevel.png", dpi=120)
    except ImportError:  # pragma: no cover
        print("matplotlib not available: no figure")
    if not ok:
        print("ERROR: estimates differ from metafor", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
