# Reference values for hairtrial.diagnostics.smallstudy from metafor 3.8 regtest / ranktest / trimfill.
#
# Run from the repository root:
#     Rscript tests/reference/metafor_smallstudy.R
# Writes (both committed; the Python tests read only the CSVs, never R):
#     tests/reference/metafor_smallstudy_inputs.csv  dataset, study, yi, vi, ni
#     tests/reference/metafor_smallstudy.csv         dataset, func, model, predictor, method,
#                                                    test, estimator, side_in, quantity, value
# Every number is written with sprintf("%.17g") so Python reads exactly the same doubles;
# `value` is a string column ("left"/"right" for quantity "side", "NA" for missing).
#
# Tight controls, so that metafor's own iteration tolerances do not limit the comparison
# (metafor defaults: threshold = 1e-5, maxiter = 100):
#   * every rma.uni fit with ML / REML / EB (Fisher scoring): threshold = 1e-10 on the
#     change in tau2, maxiter = 1000; tau2.max = 1e8. (metafor_univariate.R uses 1e-12; here
#     the hair-density data reach tau2 ~ 1900 (hairs/cm^2)^2, where successive Fisher steps
#     keep changing tau2 by a few ulps, ~5e-13, so 1e-12 never "converges"; 1e-10 is still a
#     relative error below 1e-9 for every tau2 here.)
#   * regtest() is called on the fitted model object, so its internal meta-regression uses
#     the model's control list (regtest on a vector has no way to pass `control`).
#   * trimfill() passes `...` to every internal rma.uni call (side choice, each iteration,
#     refit), so the same control list is passed there explicitly.
# trimfill's refit does not inherit the input model's `test` (metafor passes only `...`),
# so trimfill is called with `test = <input test>` as well; with test = "z" this changes
# nothing.

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "3.8")

out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
ctrl <- list(threshold = 1e-10, maxiter = 1000, tau2.max = 1e8)

# ----------------------------------------------------------------------------------------------
# datasets (ni = total sample size)
# ----------------------------------------------------------------------------------------------
datasets <- list()

dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
datasets[["bcg_logrr"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
                                ni = with(dat.bcg, tpos + tneg + cpos + cneg))

dat <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i,
              m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
datasets[["normand1999_md"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
                                     ni = with(dat.normand1999, n1i + n2i))

# Generated, asymmetric, hair-density mean differences (hairs/cm^2): smaller trials report
# larger gains (yi = 8 + 1.6 sei + error), k = 15. Two seeds: one where L0 imputes studies
# under both FE and REML, one where FE and REML disagree.
gen_asym <- function(seed, k) {
  set.seed(seed)
  n <- round(runif(k, 10, 150))                  # per-arm n
  sd <- runif(k, 20, 45)                         # SD of change, hairs/cm^2
  vi <- 2 * sd^2 / n
  yi <- 8 + 1.6 * sqrt(vi) + rnorm(k, 0, sqrt(vi + 9))
  list(yi = yi, vi = vi, ni = 2 * n)
}
datasets[["gen_asym_k15"]] <- gen_asym(20240602, 15)
datasets[["gen_asym_k15b"]] <- gen_asym(20240603, 15)

# k = 3 with very different variances, like the default hair-density MDs (Adistri 2024,
# Dhurat 2013, Kumar 2018 at week 12: the pipeline's numbers, rounded).
datasets[["hair_k3"]] <- list(yi = c(43.2, 69.2, 1.6477), vi = c(143.94, 1093.9, 0.15825),
                              ni = c(36, 100, 68))

# k = 3, generated (seeded), moderate variance differences.
set.seed(20240607)
v3 <- runif(3, 10, 80)
datasets[["gen_k3"]] <- list(yi = 12 + rnorm(3, 0, sqrt(v3 + 25)), vi = v3,
                             ni = c(40, 64, 90))

# k = 10 with tied variances (ranktest: normal approximation with tie correction).
datasets[["ties_k10"]] <- list(yi = c(0.10, 0.30, 0.35, 0.65, 0.45, 0.15, 0.70, 0.90, 0.40, 0.80),
                               vi = c(0.01, 0.03, 0.02, 0.09, 0.05, 0.01, 0.10, 0.16, 0.04, 0.12),
                               ni = c(400, 140, 200, 50, 80, 390, 40, 25, 100, 35))

for (nm in names(datasets)) {
  d <- datasets[[nm]]
  stopifnot(all(is.finite(d$yi)), all(d$vi > 0), length(d$ni) == length(d$yi))
}

# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
rows <- list()
add <- function(ds, func, quantity, value, model = "", predictor = "", method = "", test = "",
                estimator = "", side_in = "") {
  v <- if (is.character(value)) value else fmt(value)
  rows[[length(rows) + 1L]] <<- data.frame(
    dataset = ds, func = func, model = model, predictor = predictor, method = method,
    test = test, estimator = estimator, side_in = side_in, quantity = quantity, value = v,
    stringsAsFactors = FALSE)
}

fit_input <- function(d, method, test) {
  rma.uni(d$yi, d$vi, ni = d$ni, method = method, test = test, control = ctrl)
}

for (ds in names(datasets)) {
  d <- datasets[[ds]]

  # --- regression test ------------------------------------------------------------------------
  for (method in c("FE", "REML")) {
    for (test in c("z", "knha")) {
      if (method == "FE" && test == "knha") next
      x <- fit_input(d, method, test)
      for (model in c("rma", "lm")) {
        if (model == "lm" && (method != "REML" || test != "z")) next  # lm ignores both
        for (predictor in c("sei", "vi", "ni", "sqrtninv")) {
          rt <- suppressWarnings(regtest(x, model = model, predictor = predictor))
          a <- function(q, v) add(ds, "regtest", q, v, model = model, predictor = predictor,
                                  method = if (model == "lm") "lm" else method,
                                  test = if (model == "lm") "t" else test)
          a("zval", rt$zval)
          a("pval", rt$pval)
          a("ddf", rt$ddf)
          a("est", if (is.null(rt$est)) NA else rt$est)
          a("ci.lb", if (is.null(rt$ci.lb)) NA else rt$ci.lb)
          a("ci.ub", if (is.null(rt$ci.ub)) NA else rt$ci.ub)
          cf <- if (model == "lm") coef(summary(rt$fit)) else NULL
          a("b0", if (model == "lm") cf[1, 1] else rt$fit$beta[1])
          a("b1", if (model == "lm") cf[2, 1] else rt$fit$beta[2])
          a("se0", if (model == "lm") cf[1, 2] else rt$fit$se[1])
          a("se1", if (model == "lm") cf[2, 2] else rt$fit$se[2])
          a("tau2", if (model == "lm") NA else rt$fit$tau2)
        }
      }
    }
  }

  # --- rank correlation test --------------------------------------------------------------------
  rk <- suppressWarnings(ranktest(d$yi, d$vi))
  add(ds, "ranktest", "tau", unname(rk$tau))
  add(ds, "ranktest", "pval", rk$pval)

  # --- trim and fill -----------------------------------------------------------------------------
  for (method in c("FE", "REML")) {
    x <- fit_input(d, method, "z")
    for (estimator in c("L0", "R0")) {
      for (side_in in c("auto", "left", "right")) {
        tf <- if (side_in == "auto") {
          suppressWarnings(trimfill(x, estimator = estimator, test = "z", control = ctrl))
        } else {
          suppressWarnings(trimfill(x, estimator = estimator, side = side_in, test = "z",
                                    control = ctrl))
        }
        a <- function(q, v) add(ds, "trimfill", q, v, method = method, test = "z",
                                estimator = estimator, side_in = side_in)
        a("side", tf$side)
        a("k0", tf$k0)
        a("se.k0", tf$se.k0)
        a("p.k0", tf$p.k0)
        a("estimate", tf$beta[1])
        a("se", tf$se)
        a("zval", tf$zval)
        a("pval", tf$pval)
        a("ci.lb", tf$ci.lb)
        a("ci.ub", tf$ci.ub)
        a("tau2", tf$tau2)
        if (tf$k0 > 0) {
          for (j in seq_len(tf$k0)) {
            a(paste0("fill_yi.", j), tf$yi[tf$fill][j])
            a(paste0("fill_vi.", j), tf$vi[tf$fill][j])
          }
        }
      }
    }
  }
}

results <- do.call(rbind, rows)
inputs <- do.call(rbind, lapply(names(datasets), function(ds) {
  d <- datasets[[ds]]
  data.frame(dataset = ds, study = seq_along(d$yi), yi = fmt(d$yi), vi = fmt(d$vi),
             ni = fmt(d$ni), stringsAsFactors = FALSE)
}))

write.csv(inputs, file.path(out_dir, "metafor_smallstudy_inputs.csv"), row.names = FALSE,
          quote = FALSE)
write.csv(results, file.path(out_dir, "metafor_smallstudy.csv"), row.names = FALSE,
          quote = FALSE)
cat(sprintf("metafor %s: wrote %d result rows for %d datasets\n",
            as.character(packageVersion("metafor")), nrow(results), length(datasets)))
