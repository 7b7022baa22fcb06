"""Benchmark the batched univariate engine: REML + Hartung-Knapp fits per second (issue 13).

Measures, in one run and on the same seeded data sets of two scenarios (``smd``: SMD-like
trials of 10 to 150 participants per arm, SMD 0.4, tau^2 0.05; ``wide``: sampling variances
uniform on (0.01, 1), tau^2 0.1, where at k = 10 about 1.3% of REML Fisher-scoring runs
oscillate and take the fallback after 1000 iterations, in the scalar code as in the batched
one):

* ``batched``: :func:`hairtrial.models.batched.fit_batched` (``method="REML"``,
  ``ci_method="knha"``) with the Q-profile CI of tau^2 (everything ``fit`` computes) and without
  it (what ``rma()`` computes);
* ``scalar``: :func:`hairtrial.models.univariate.fit` in a Python loop (always computes the
  Q-profile CI);
* ``metafor``: ``rma(yi, vi, method = "REML", test = "knha")`` in an R loop (metafor's default
  tolerances), and ``rma()`` + ``confint()`` (the Q-profile CI), when Rscript with metafor is
  installed; timed inside R (start-up excluded); the estimates are compared with the batched
  ones (``max_rel_diff``, and ``max_diff_over_se``: the largest difference in units of the
  estimate's standard error; metafor stops Fisher scoring at a change of 1e-5, so expect
  differences of that order);

at k = 3, 10 and 30, with BLAS pinned to one thread (threadpoolctl; numpy's element-wise code is
single-threaded anyway), so "fits per second" is per core. Each timing is repeated and the
median and best are reported; the 1-minute load average before and after each measurement is
recorded, because the machine may be shared. It also records the peak traced memory of
``fit_batched`` (tracemalloc) at growing numbers of replicates, minus the inputs and outputs,
to show that the working memory stays flat (chunking).

Run from the repository root::

    .venv/bin/python benchmarks/bench_batched.py [--ks 3 10 30] [--replicates 100000]
        [--scalar-replicates 300] [--metafor-replicates 300] [--repeats 3]

Writes ``benchmarks/results/batched.csv``. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from hairtrial.models.batched import DEFAULT_CHUNK_SIZE, fit_batched
from hairtrial.models.univariate import fit

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"

R_LOOP = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(TRUE)
y <- as.matrix(read.csv(args[1], header = FALSE))
v <- as.matrix(read.csv(args[2], header = FALSE))
with_ci <- args[3] == "1"
n <- nrow(y)
est <- rep(NA_real_, n)
t0 <- proc.time()[["elapsed"]]
for (i in seq_len(n)) {
  res <- tryCatch(rma(y[i, ], v[i, ], method = "REML", test = "knha"), error = function(e) NULL)
  if (!is.null(res)) {
    if (with_ci) ci <- tryCatch(confint(res), error = function(e) NULL)
    est[i] <- res$beta[1]
  }
}
elapsed <- proc.time()[["elapsed"]] - t0
cat(sprintf("%.6f\n", elapsed))
cat(sprintf("%.17g\n", est), sep = "")
"""


def generate(k: int, n: int, seed: int, scenario: str = "smd") -> tuple[np.ndarray, np.ndarray]:
    """n data sets of k trials.

    ``smd``: SMD-like (10 to 150 per arm, SMD 0.4, tau^2 0.05, large-sample variance of g);
    ``wide``: sampling variances uniform on (0.01, 1), tau^2 0.1, a hard case for Fisher
    scoring (at k = 10 about 1.3% of REML fits oscillate and take the fallback).
    """
    rng = np.random.default_rng([seed, k, 0 if scenario == "smd" else 1])
    if scenario == "wide":
        v = rng.uniform(0.01, 1.0, (n, k))
        return 0.3 + rng.normal(0.0, 1.0, (n, k)) * np.sqrt(v + 0.1), v
    n1 = rng.integers(10, 151, (n, k))
    n2 = rng.integers(10, 151, (n, k))
    theta = 0.4 + rng.normal(0.0, np.sqrt(0.05), (n, k))
    v_true = 1 / n1 + 1 / n2 + theta**2 / (2 * (n1 + n2))
    y = theta + rng.normal(0.0, 1.0, (n, k)) * np.sqrt(v_true)
    v = 1 / n1 + 1 / n2 + y**2 / (2 * (n1 + n2))
    return y, v


def load1() -> float:
    return os.getloadavg()[0]


def timed(fn, repeats: int) -> tuple[list[float], float, float, object]:
    """Wall-clock seconds of each repeat, the load average before and after, the last result."""
    before = load1()
    secs = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        secs.append(time.perf_counter() - t0)
    return secs, before, load1(), out


def scalar_loop(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """REML + knha estimates by the scalar path, one data set after the other."""
    fits = (fit(yi, vi, method="REML", ci_method="knha") for yi, vi in zip(y, v, strict=True))
    return np.array([res.estimate for res in fits])


def metafor_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    r = subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True)
    return r.returncode == 0


def run_metafor(y: np.ndarray, v: np.ndarray, with_ci: bool) -> tuple[float, np.ndarray]:
    """Seconds of the R loop (timed inside R) and metafor's estimates."""
    with tempfile.TemporaryDirectory() as tmp:
        fy, fv, fr = Path(tmp, "y.csv"), Path(tmp, "v.csv"), Path(tmp, "loop.R")
        np.savetxt(fy, y, delimiter=",", fmt="%.17g")
        np.savetxt(fv, v, delimiter=",", fmt="%.17g")
        fr.write_text(R_LOOP)
        out = subprocess.run(
            ["Rscript", str(fr), str(fy), str(fv), "1" if with_ci else "0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    return float(out[0]), np.array([np.nan if x == "NA" else float(x) for x in out[1:]])


def r_version() -> str:
    r = subprocess.run(
        [
            "Rscript",
            "-e",
            'cat(R.version.string, "metafor", as.character(packageVersion("metafor")))',
        ],
        capture_output=True,
        text=True,
    )
    return r.stdout.strip()


def working_memory(k: int, sizes: list[int], seed: int) -> list[dict]:
    """Peak traced memory of fit_batched minus its inputs and outputs, per number of replicates."""
    rows = []
    for n in sizes:
        y, v = generate(k, n, seed)
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        res = fit_batched(y, v, method="REML", ci_method="knha")
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        outputs = current - base
        rows.append(
            {
                "engine": "batched",
                "scenario": "smd",
                "k": k,
                "replicates": n,
                "tau2_ci": True,
                "peak_working_mb": (peak - base - outputs) / 2**20,
                "output_mb": outputs / 2**20,
                "note": "tracemalloc peak above inputs and outputs; "
                f"chunk_size {DEFAULT_CHUNK_SIZE}",
            }
        )
        del res
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[3, 10, 30])
    ap.add_argument("--scenarios", nargs="+", default=["smd", "wide"], choices=["smd", "wide"])
    ap.add_argument("--replicates", type=int, default=100_000)
    ap.add_argument("--scalar-replicates", type=int, default=300)
    ap.add_argument("--metafor-replicates", type=int, default=300)
    ap.add_argument("--metafor-ci-replicates", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-sizes", type=int, nargs="+", default=[10_000, 40_000, 160_000])
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--out", type=Path, default=OUT / "batched.csv")
    args = ap.parse_args(argv)

    have_r = metafor_available()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime: {uptime}; cores: {os.cpu_count()}; R: {r_version() if have_r else 'no'}")
    rows: list[dict] = []

    def add(engine, k, n, tau2_ci, secs, before, after, **extra) -> None:
        med = statistics.median(secs)
        row = {
            "engine": engine,
            "scenario": scenario,
            "k": k,
            "replicates": n,
            "repeats": len(secs),
            "tau2_ci": tau2_ci,
            "fits_per_second": n / med,
            "fits_per_second_best": n / min(secs),
            "load_1min_before": before,
            "load_1min_after": after,
            **extra,
        }
        rows.append(row)
        print(
            f"{scenario:4s} k={k:3d} {engine:8s} tau2_ci={tau2_ci!s:5s} "
            f"{row['fits_per_second']:12,.0f} fits/s "
            f"(best {row['fits_per_second_best']:,.0f}; load {before:.2f} -> {after:.2f})",
            flush=True,
        )

    with threadpool_limits(limits=1):
        for scenario, k in itertools.product(args.scenarios, args.ks):
            y, v = generate(k, args.replicates, args.seed, scenario)
            fit_batched(y[:1000], v[:1000], method="REML", ci_method="knha")  # warm-up
            for tau2_ci in (True, False):
                secs, before, after, res = timed(
                    lambda y=y, v=v, tau2_ci=tau2_ci: fit_batched(
                        y, v, method="REML", ci_method="knha", tau2_ci=tau2_ci
                    ),
                    args.repeats,
                )
                add(
                    "batched",
                    k,
                    args.replicates,
                    tau2_ci,
                    secs,
                    before,
                    after,
                    mean_iterations=float(res.iterations.mean()),
                    fallback_share=float(res.fallback.mean()),
                    note=f"chunk_size {DEFAULT_CHUNK_SIZE}",
                )
            batched = res

            ns = min(args.scalar_replicates, args.replicates)
            secs, before, after, scalar_est = timed(
                lambda y=y[:ns], v=v[:ns]: scalar_loop(y, v), args.repeats
            )
            diff = np.abs(scalar_est - batched.estimate[:ns])
            add(
                "scalar",
                k,
                ns,
                True,
                secs,
                before,
                after,
                max_rel_diff=float((diff / np.abs(scalar_est)).max()),
                max_diff_over_se=float((diff / batched.se[:ns]).max()),
                note="univariate.fit in a Python loop (Q-profile CI always computed)",
            )

            if have_r:
                for with_ci, nm in (
                    (False, args.metafor_replicates),
                    (True, args.metafor_ci_replicates),
                ):
                    nm = min(nm, args.replicates)
                    before = load1()
                    secs_r, est = run_metafor(y[:nm], v[:nm], with_ci)
                    ok = np.isfinite(est)
                    diff = np.abs(est[ok] - batched.estimate[:nm][ok])
                    add(
                        "metafor",
                        k,
                        nm,
                        with_ci,
                        [secs_r],
                        before,
                        load1(),
                        max_rel_diff=float((diff / np.abs(est[ok])).max()),
                        max_diff_over_se=float((diff / batched.se[:nm][ok]).max()),
                        note=(
                            f"rma(){' + confint()' if with_ci else ''} in an R loop, default "
                            f"control; {int((~ok).sum())} of {nm} stopped with an error"
                        ),
                    )
    rows.extend(working_memory(10, args.memory_sizes, args.seed))
    for r in rows[-len(args.memory_sizes) :]:
        print(
            f"memory k=10 replicates={r['replicates']:,}: working {r['peak_working_mb']:.1f} MB, "
            f"outputs {r['output_mb']:.1f} MB"
        )

    table = pd.DataFrame(rows)
    table["uptime"] = uptime
    table["numpy"] = np.__version__
    table["python"] = sys.version.split()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
