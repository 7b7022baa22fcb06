# Reference values for hairtrial.models.univariate / hairtrial.models.tau2 from metafor 3.8 rma.uni.
#
# Run from the repository root:
#     Rscript tests/reference/metafor_univariate.R
# Writes (both committed; the Python tests read only the CSVs, never R):
#     tests/reference/metafor_univariate_inputs.csv  dataset, study, yi, vi, x1, x2
#                                                    (x1, x2: moderators, NA if none)
#     tests/reference/metafor_univariate.csv         dataset, method, test, quantity, value
# Every number is written with sprintf("%.17g") so Python reads exactly the same doubles.
#
# Tight controls, so that metafor's own iteration / root-finding tolerances do not limit
# the comparison (metafor defaults: threshold = 1e-5, maxiter = 100, tol = eps^0.25 ~ 1.2e-4,
# tau2.max = max(100, 10 * mad(yi)^2)):
#   * ML / REML / EB (Fisher scoring): threshold = 1e-12 on the change in tau2, maxiter = 1000.
#     `tol` is NOT tightened for these methods: in rma.uni `tol` is only used by the
#     ll0check (is logLik at tau2 = 0 larger than at the solution by more than `tol`?), and
#     hairtrial uses metafor's default eps^0.25 for that check too.
#   * PM (uniroot): tol = 1e-14, maxiter = 1000.
#   * tau2.max = 1e8 for every fit: removes metafor's "tau2.max too low" failure for PM and
#     (because confint() takes its default search interval from the fit's control list) makes
#     the Q-profile search interval [0, 1e8]; hairtrial instead expands its bracket as needed.
#   * confint(): control = list(tol = 1e-14, maxiter = 1000).
# test = "adhoc" exists in metafor 3.8 (rma.uni: s2w[s2w < 1] <- 1), so it is used directly.
# The prediction interval is predict()'s default (pi.type = "default": t quantile with
# k - p df for knha/adhoc, normal quantile for z).

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "3.8")

out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

# ----------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------
datasets <- list()

dat <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i,
              m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
datasets[["normand1999_md"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi))

dat <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i,
              m2i = m2i, sd2i = sd2i, n2i = n2i, data = dat.normand1999)
datasets[["normand1999_smd"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi))

dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
datasets[["bcg_logrr"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi))

# Generated datasets on a hair-count mean-difference scale (hairs / cm^2).
gen <- function(seed, k, mu, tau2, vlo, vhi, shrink = 1) {
  set.seed(seed)
  vi <- runif(k, vlo, vhi)
  yi <- mu + rnorm(k, 0, sqrt(shrink * vi + tau2))
  list(yi = yi, vi = vi)
}
# heterogeneous, k = 12, tau2 in the hundreds (true tau2 = 400)
datasets[["gen_k12_het"]] <- gen(20240501, 12, 15, 400, 20, 120)
# homogeneous-ish, k = 12 (true tau2 = 0)
datasets[["gen_k12_hom"]] <- gen(20240502, 12, 8, 0, 10, 60)
# heterogeneous, k = 5
datasets[["gen_k5_het"]] <- gen(20240503, 5, 20, 150, 15, 80)
# k = 5, yi much less dispersed than the vi imply: Q < k - 1, tau2 estimated at 0 for all
# estimators, Q-profile CI = [0, 0]
datasets[["gen_k5_zero"]] <- gen(20240504, 5, 10, 0, 20, 60, shrink = 0.04)
# heterogeneous, k = 3
datasets[["gen_k3_het"]] <- gen(20240505, 3, 12, 250, 10, 50)
# k = 2
datasets[["gen_k2"]] <- gen(20240506, 2, 12, 100, 10, 50)
# k = 1
datasets[["gen_k1"]] <- gen(20240507, 1, 12, 0, 10, 50)

# Meta-regressions (general design matrix X = [1, mods]): dat.bcg log RR on absolute latitude,
# and on latitude and publication year. Only coefficient-level results, tau2 and
# heterogeneity are recorded for these (hairtrial computes prediction intervals for
# intercept-only models only).
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
datasets[["bcg_logrr_ablat"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
                                      mods = cbind(x1 = dat$ablat))
datasets[["bcg_logrr_ablat_year"]] <- list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
                                           mods = cbind(x1 = dat$ablat, x2 = dat$year))

for (nm in names(datasets)) {
  stopifnot(all(is.finite(datasets[[nm]]$yi)), all(datasets[[nm]]$vi > 0))
}

# ----------------------------------------------------------------------------------------------
# fits
# ----------------------------------------------------------------------------------------------
methods <- c("FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
tests <- c("z", "knha", "adhoc")

ctrl_for <- function(method) {
  ctrl <- list(tau2.max = 1e8)
  if (method %in% c("ML", "REML", "EB")) ctrl <- c(ctrl, list(threshold = 1e-12, maxiter = 1000))
  if (method == "PM") ctrl <- c(ctrl, list(tol = 1e-14, maxiter = 1000))
  ctrl
}

rows <- list()
add <- function(ds, method, test, quantity, value) {
  rows[[length(rows) + 1L]] <<- data.frame(dataset = ds, method = method, test = test,
                                           quantity = quantity, value = fmt(value),
                                           stringsAsFactors = FALSE)
}

for (ds in names(datasets)) {
  yi <- datasets[[ds]]$yi
  vi <- datasets[[ds]]$vi
  mods <- datasets[[ds]]$mods
  k <- length(yi)
  for (method in methods) {
    for (test in tests) {
      if (!is.null(mods)) {
        res <- suppressWarnings(rma.uni(yi, vi, mods = mods, method = method, test = test,
                                        control = ctrl_for(method)))
        ci <- if (method == "FE") NULL else
          suppressWarnings(confint(res, control = list(tol = 1e-14, maxiter = 1000)))
        for (j in seq_along(res$beta)) {
          add(ds, method, test, paste0("beta.", j), res$beta[j])
          add(ds, method, test, paste0("se.", j), res$se[j])
          add(ds, method, test, paste0("zval.", j), res$zval[j])
          add(ds, method, test, paste0("ci.lb.", j), res$ci.lb[j])
          add(ds, method, test, paste0("ci.ub.", j), res$ci.ub[j])
          add(ds, method, test, paste0("pval.", j), res$pval[j])
        }
        add(ds, method, test, "tau2", res$tau2)
        add(ds, method, test, "se.tau2", res$se.tau2)
        add(ds, method, test, "tau2.ci.lb", if (is.null(ci)) NA else ci$random["tau^2", "ci.lb"])
        add(ds, method, test, "tau2.ci.ub", if (is.null(ci)) NA else ci$random["tau^2", "ci.ub"])
        add(ds, method, test, "I2", res$I2)
        add(ds, method, test, "H2", res$H2)
        add(ds, method, test, "QE", res$QE)
        add(ds, method, test, "QEp", res$QEp)
        add(ds, method, test, "dfs", if (is.na(res$ddf)) NA else res$ddf)
        w <- weights(res)
        for (i in seq_len(k)) add(ds, method, test, paste0("weight.", i), w[i])
        next
      }
      # metafor warns e.g. for knha with FE and switches test to "z" when k = 1; the values it
      # returns are recorded as they are (the Python tests document the k = 1 differences).
      res <- suppressWarnings(rma.uni(yi, vi, method = method, test = test,
                                      control = ctrl_for(method)))
      pred <- predict(res)
      ci <- if (method == "FE" || k == 1) NULL else
        suppressWarnings(confint(res, control = list(tol = 1e-14, maxiter = 1000)))
      add(ds, method, test, "estimate", res$beta[1])
      add(ds, method, test, "se", res$se)
      add(ds, method, test, "zval", res$zval)
      add(ds, method, test, "ci.lb", res$ci.lb)
      add(ds, method, test, "ci.ub", res$ci.ub)
      add(ds, method, test, "pval", res$pval)
      # predict() drops pi.lb/pi.ub for FE models; its formula pred -/+ crit * sqrt(se^2 + tau2)
      # with tau2 = 0 gives the CI, so the CI is recorded as the FE prediction interval.
      add(ds, method, test, "pi.lb", if (is.null(pred$pi.lb)) pred$ci.lb else pred$pi.lb)
      add(ds, method, test, "pi.ub", if (is.null(pred$pi.ub)) pred$ci.ub else pred$pi.ub)
      add(ds, method, test, "tau2", res$tau2)
      add(ds, method, test, "se.tau2", res$se.tau2)
      add(ds, method, test, "tau2.ci.lb", if (is.null(ci)) NA else ci$random["tau^2", "ci.lb"])
      add(ds, method, test, "tau2.ci.ub", if (is.null(ci)) NA else ci$random["tau^2", "ci.ub"])
      add(ds, method, test, "I2", res$I2)
      add(ds, method, test, "H2", res$H2)
      add(ds, method, test, "QE", res$QE)
      add(ds, method, test, "QEp", res$QEp)
      add(ds, method, test, "dfs", if (is.na(res$ddf)) NA else res$ddf)
      add(ds, method, test, "test_used", match(res$test, tests))  # 1 = z, 2 = knha, 3 = adhoc
      w <- weights(res)
      for (i in seq_len(k)) add(ds, method, test, paste0("weight.", i), w[i])
    }
  }
}

results <- do.call(rbind, rows)
inputs <- do.call(rbind, lapply(names(datasets), function(ds) {
  d <- datasets[[ds]]
  x1 <- if (is.null(d$mods)) NA else d$mods[, 1]
  x2 <- if (is.null(d$mods) || ncol(d$mods) < 2) NA else d$mods[, 2]
  data.frame(dataset = ds, study = seq_along(d$yi), yi = fmt(d$yi), vi = fmt(d$vi),
             x1 = fmt(x1), x2 = fmt(x2), stringsAsFactors = FALSE)
}))

write.csv(inputs, file.path(out_dir, "metafor_univariate_inputs.csv"), row.names = FALSE,
          quote = FALSE)
write.csv(results, file.path(out_dir, "metafor_univariate.csv"), row.names = FALSE,
          quote = FALSE)
cat(sprintf("metafor %s: wrote %d result rows for %d datasets\n",
            as.character(packageVersion("metafor")), nrow(results), length(datasets)))
