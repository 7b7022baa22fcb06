# Reference values for hairtrial.diagnostics.influence from metafor 3.8: leave1out(), influence(),
# cumul() and baujat() of rma.uni fits.
#
# Run from the repository root:
#     Rscript tests/reference/metafor_influence.R
# Writes (both committed; the Python tests read only the CSVs, never R):
#     tests/reference/metafor_influence_inputs.csv  dataset, study, slab, yi, vi, x1, order
#                                                   (x1: moderator, NA if none; order: the
#                                                   variable cumul() sorts by)
#     tests/reference/metafor_influence.csv         dataset, analysis, method, test, mods,
#                                                   row, quantity, value
#   analysis: leave1out | influence | cumul | baujat.
#   mods: 0 = intercept-only model, 1 = model with the moderator x1 (influence / baujat only;
#         leave1out and cumul are defined by metafor for intercept-only models only).
#   row: 1-based study index in input order (for cumul: the step, i.e. the position in the
#        ordered data; the study added at that step is recorded as quantity "study").
# Every number is written with sprintf("%.17g") so Python reads exactly the same doubles;
# logical influence flags are written as 0 / 1.
#
# Tight controls, so that metafor's own iteration / root-finding tolerances do not limit the
# comparison (metafor defaults: threshold = 1e-5, maxiter = 100, tau2.max = max(100,
# 10 * mad(yi)^2)). leave1out(), influence(), cumul() and baujat() all refit with
# `control = x$control`, so the controls given to the full fit apply to every refit:
#   * REML (Fisher scoring): threshold = 1e-12 on the change in tau2 between iterations,
#     maxiter = 1000 (hairtrial iterates to a tighter tolerance still).
#   * tau2.max = 1e8 for every fit (never binding here; kept as in metafor_univariate.R).
#   * DL and FE are closed form: the controls do not matter.
# Quantities that depend on confint() (Q-profile tau2 CI) are not recorded here; they are
# checked in tests/reference/metafor_univariate.R.
#
# Boundary cases recorded as metafor returns them (the Python tests document the differences):
#   * A refit on k = 1 study (leave1out / influence with k = 2, cumul step 1): metafor sets
#     QE = 0, QEp = 1, I2 = 0, H2 = 1 and switches test = "knha" to "z"; hairtrial.models.univariate.fit
#     gives NaN for Q, Q p-value, I2, H2 (and for the knha CI / p-value / statistic).
#   * A refit that cannot be done (k - 1 studies for p = 2 random-effects coefficients):
#     metafor's try() gives NA, as does hairtrial.

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "3.8")

out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

# ----------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------
datasets <- list()

# BCG vaccine trials, log risk ratio; moderator absolute latitude; cumul() by year (has a tie:
# two trials in 1973, so the stable ordering of ties is exercised).
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
datasets[["bcg_logrr"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
                                slab = paste(dat$author, dat$year), x1 = dat$ablat,
                                order = dat$year)

# Normand (1999) length of hospital stay, mean difference; no moderator; cumul() by vi
# (most precise first).
dat <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i,
              m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
datasets[["normand1999_md"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
                                     slab = as.character(dat$source), x1 = NULL,
                                     order = as.numeric(dat$vi))

# Generated hair-density mean differences (hairs / cm^2).
gen <- function(seed, k, mu, tau2, vlo, vhi) {
  set.seed(seed)
  vi <- runif(k, vlo, vhi)
  yi <- mu + rnorm(k, 0, sqrt(vi + tau2))
  list(yi = yi, vi = vi)
}
# k = 3 with a moderator (every refit of the p = 2 model on 2 studies fails -> NA).
g <- gen(20240611, 3, 14, 120, 10, 60)
datasets[["gen_k3"]] <- list(yi = g$yi, vi = g$vi, slab = paste("Trial", LETTERS[1:3]),
                             x1 = c(12, 16, 24), order = c(2019, 2016, 2021))
# k = 2: every leave-one-out / influence refit has k = 1.
g <- gen(20240612, 2, 14, 120, 10, 60)
datasets[["gen_k2"]] <- list(yi = g$yi, vi = g$vi, slab = paste("Trial", LETTERS[1:2]),
                             x1 = NULL, order = c(2020, 2018))

for (nm in names(datasets)) {
  stopifnot(all(is.finite(datasets[[nm]]$yi)), all(datasets[[nm]]$vi > 0))
}

# ----------------------------------------------------------------------------------------------
# analyses
# ----------------------------------------------------------------------------------------------
# (method, test) pairs: common effect, DL and REML with Wald-type and Hartung-Knapp inference.
fits <- list(c("FE", "z"), c("DL", "z"), c("DL", "knha"), c("REML", "z"), c("REML", "knha"))
ctrl_for <- function(method) {
  ctrl <- list(tau2.max = 1e8)
  if (method == "REML") ctrl <- c(ctrl, list(threshold = 1e-12, maxiter = 1000))
  ctrl
}

rows <- list()
add <- function(ds, analysis, method, test, mods, row, quantity, value) {
  rows[[length(rows) + 1L]] <<- data.frame(
    dataset = ds, analysis = analysis, method = method, test = test, mods = mods,
    row = row, quantity = quantity, value = fmt(as.numeric(value)), stringsAsFactors = FALSE)
}
add_cols <- function(ds, analysis, method, test, mods, lst, names_map) {
  for (q in names(names_map)) {
    v <- lst[[names_map[[q]]]]
    if (is.null(v)) next
    for (i in seq_along(v)) add(ds, analysis, method, test, mods, i, q, v[i])
  }
}

l1o_cols <- list(estimate = "estimate", se = "se", zval = "zval", tval = "tval", pval = "pval",
                 ci.lb = "ci.lb", ci.ub = "ci.ub", Q = "Q", Qp = "Qp", tau2 = "tau2",
                 I2 = "I2", H2 = "H2")
cumul_cols <- list(estimate = "estimate", se = "se", zval = "zval", tval = "tval",
                   pval = "pvals", ci.lb = "ci.lb", ci.ub = "ci.ub", Q = "Q", Qp = "Qp",
                   tau2 = "tau2", I2 = "I2", H2 = "H2")

pdf(NULL)  # baujat() draws; send the drawing nowhere
for (ds in names(datasets)) {
  d <- datasets[[ds]]
  k <- length(d$yi)
  for (f in fits) {
    method <- f[1]
    test <- f[2]
    for (mods in c(0L, 1L)) {
      if (mods == 1L && is.null(d$x1)) next
      res <- if (mods == 1L) {
        suppressWarnings(rma.uni(d$yi, d$vi, mods = ~ d$x1, method = method, test = test,
                                 slab = d$slab, control = ctrl_for(method)))
      } else {
        suppressWarnings(rma.uni(d$yi, d$vi, method = method, test = test, slab = d$slab,
                                 control = ctrl_for(method)))
      }

      # influence(): all columns, dfbetas per coefficient, the "*" flag
      inf <- suppressWarnings(influence(res))
      add_cols(ds, "influence", method, test, mods, inf$inf,
               list(rstudent = "rstudent", dffits = "dffits", cook.d = "cook.d",
                    cov.r = "cov.r", tau2.del = "tau2.del", QE.del = "QE.del", hat = "hat",
                    weight = "weight"))
      for (j in seq_len(res$p)) {  # (the list also holds slab and digits: not recorded)
        v <- inf$dfbs[[j]]
        for (i in seq_along(v)) add(ds, "influence", method, test, mods, i,
                                    paste0("dfbs.", j), v[i])
      }
      for (i in seq_len(k)) add(ds, "influence", method, test, mods, i, "inf",
                                as.integer(inf$inf$inf[i] == "*"))

      # baujat(): x = squared Pearson residual / contribution to Q, y = influence
      # (fixed xlim / ylim: the drawing is discarded, and metafor's default limits fail when
      # every y is NA, as for the k = 3 model with a moderator)
      bj <- suppressWarnings(baujat(res, xlim = c(0, 1), ylim = c(0, 1)))
      for (i in seq_len(k)) {
        add(ds, "baujat", method, test, mods, i, "x", bj$x[i])
        add(ds, "baujat", method, test, mods, i, "y", bj$y[i])
      }

      if (mods == 1L) next
      # leave1out(): FE drops the tau2 column, knha renames zval -> tval
      l1o <- suppressWarnings(leave1out(res))
      add_cols(ds, "leave1out", method, test, mods, l1o, l1o_cols)
      # cumul(): ordered by `order` (stable for ties, R's order())
      cu <- suppressWarnings(cumul(res, order = d$order))
      add_cols(ds, "cumul", method, test, mods, cu, cumul_cols)
      ord <- order(d$order)
      for (i in seq_len(k)) add(ds, "cumul", method, test, mods, i, "study", ord[i])
    }
  }
}
invisible(dev.off())

results <- do.call(rbind, rows)
inputs <- do.call(rbind, lapply(names(datasets), function(ds) {
  d <- datasets[[ds]]
  x1 <- if (is.null(d$x1)) NA else d$x1
  data.frame(dataset = ds, study = seq_along(d$yi), slab = gsub(",", ";", d$slab),
             yi = fmt(d$yi), vi = fmt(d$vi), x1 = fmt(x1), order = fmt(d$order),
             stringsAsFactors = FALSE)
}))

write.csv(inputs, file.path(out_dir, "metafor_influence_inputs.csv"), row.names = FALSE,
          quote = FALSE)
write.csv(results, file.path(out_dir, "metafor_influence.csv"), row.names = FALSE,
          quote = FALSE)
cat(sprintf("metafor %s: wrote %d result rows for %d datasets\n",
            as.character(packageVersion("metafor")), nrow(results), length(datasets)))
