# Reference values for hairtrial.models.metareg / hairtrial.models.subgroups from metafor 3.8.
#
# Run from the repository root:
#     Rscript tests/reference/metafor_metareg.R
# Writes (all committed; the Python tests read only the CSVs, never R):
#     tests/reference/metafor_metareg_inputs.csv  study, yi, vi, ablat, year, alloc (dat.bcg)
#     tests/reference/metafor_metareg.csv         section, model, method, test, index,
#                                                 quantity, value
# Every number is written with sprintf("%.17g") so Python reads exactly the same doubles.
#
# Sections:
#   fit        rma.uni meta-regressions of the dat.bcg log risk ratio on
#              ablat (all tau2 estimators + FE with test = "z"; REML and DL with knha/adhoc),
#              ablat + year, alloc (categorical, treatment coding, reference "alternate"),
#              ablat + alloc (REML with z / knha / adhoc). index = coefficient number.
#   predict    predict(res, newmods = ...) at new moderator values (index = row of newmods).
#   permutest  permutest(): exact (first 7 bcg studies, ablat: 7!/2! = 2520 unique
#              permutations; intercept-only, first 7 studies: 2^7 = 128 sign flips) and
#              approximate (all 13 studies, ablat, iter = 1000, seed = 20240611; metafor's
#              Monte Carlo p-values, only comparable within Monte Carlo error).
#   subgroup   per-level results for alloc: tau2_option "separate" (one rma per level; the
#              test for subgroup differences is the Q-test of a common-effect meta-analysis of
#              the subgroup estimates with their standard errors) and "common" (rma with
#              mods = ~ factor(alloc) - 1; the test is QM of mods = ~ factor(alloc), checked
#              against anova(res, X = contrasts)).
#
# Tight controls, so that metafor's own iteration / root-finding tolerances do not limit the
# comparison (metafor defaults: threshold = 1e-5, maxiter = 100, tol = eps^0.25):
#   * ML / REML / EB (Fisher scoring): threshold = 1e-12, maxiter = 1000 (`tol` stays at its
#     default: rma.uni only uses it in the ll0check, as hairtrial does).
#   * PM (uniroot): tol = 1e-14, maxiter = 1000.
#   * tau2.max = 1e8 (no "tau2.max too low" failures; also the Q-profile search interval).
#   * confint(): control = list(tol = 1e-14, maxiter = 1000).
# permutest() refits with the same control list (x$control), so the permutation
# distributions are computed with these controls too.

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "3.8")

out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
dat$yi <- as.numeric(dat$yi)
dat$vi <- as.numeric(dat$vi)

ctrl_for <- function(method) {
  ctrl <- list(tau2.max = 1e8)
  if (method %in% c("ML", "REML", "EB")) ctrl <- c(ctrl, list(threshold = 1e-12, maxiter = 1000))
  if (method == "PM") ctrl <- c(ctrl, list(tol = 1e-14, maxiter = 1000))
  ctrl
}
ci_ctrl <- list(tol = 1e-14, maxiter = 1000)

rows <- list()
add <- function(section, model, method, test, index, quantity, value) {
  rows[[length(rows) + 1L]] <<- data.frame(section = section, model = model, method = method,
                                           test = test, index = index, quantity = quantity,
                                           value = fmt(value), stringsAsFactors = FALSE)
}

# ----------------------------------------------------------------------------------------------
# fit
# ----------------------------------------------------------------------------------------------
formulas <- list(ablat = ~ ablat, ablat_year = ~ ablat + year, alloc = ~ alloc,
                 ablat_alloc = ~ ablat + alloc)
grid <- rbind(
  expand.grid(model = "ablat", method = c("FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"),
              test = "z", stringsAsFactors = FALSE),
  expand.grid(model = "ablat", method = c("REML", "DL"), test = c("knha", "adhoc"),
              stringsAsFactors = FALSE),
  expand.grid(model = c("ablat_year", "alloc", "ablat_alloc"), method = "REML",
              test = c("z", "knha", "adhoc"), stringsAsFactors = FALSE)
)

newmods <- list(
  ablat = cbind(c(0, 10, 25, 33.5, 55, 70)),
  ablat_year = cbind(c(13, 33, 55), c(1950, 1965, 1980)),
  alloc = rbind(c(0, 0), c(1, 0), c(0, 1)),
  ablat_alloc = rbind(c(20, 0, 0), c(40, 1, 0), c(50, 0, 1))
)

fits <- list()
for (g in seq_len(nrow(grid))) {
  model <- grid$model[g]
  method <- grid$method[g]
  test <- grid$test[g]
  res <- rma(yi, vi, mods = formulas[[model]], data = dat, method = method, test = test,
             control = ctrl_for(method))
  fits[[paste(model, method, test)]] <- res
  for (j in seq_along(res$beta)) {
    add("fit", model, method, test, j, "beta", res$beta[j])
    add("fit", model, method, test, j, "se", res$se[j])
    add("fit", model, method, test, j, "zval", res$zval[j])
    add("fit", model, method, test, j, "pval", res$pval[j])
    add("fit", model, method, test, j, "ci.lb", res$ci.lb[j])
    add("fit", model, method, test, j, "ci.ub", res$ci.ub[j])
  }
  if (method != "FE") {
    ci <- confint(res, control = ci_ctrl)
    add("fit", model, method, test, 0, "tau2.ci.lb", ci$random["tau^2", "ci.lb"])
    add("fit", model, method, test, 0, "tau2.ci.ub", ci$random["tau^2", "ci.ub"])
  }
  add("fit", model, method, test, 0, "tau2", res$tau2)
  add("fit", model, method, test, 0, "se.tau2", res$se.tau2)
  add("fit", model, method, test, 0, "I2", res$I2)
  add("fit", model, method, test, 0, "H2", res$H2)
  add("fit", model, method, test, 0, "R2", res$R2)
  add("fit", model, method, test, 0, "QE", res$QE)
  add("fit", model, method, test, 0, "QEp", res$QEp)
  add("fit", model, method, test, 0, "QM", res$QM)
  add("fit", model, method, test, 0, "QMdf1", res$QMdf[1])
  add("fit", model, method, test, 0, "QMdf2", res$QMdf[2])
  add("fit", model, method, test, 0, "QMp", res$QMp)
  add("fit", model, method, test, 0, "k", res$k)
  add("fit", model, method, test, 0, "p", res$p)

  # predictions at new moderator values (PI = pred -/+ crit sqrt(se^2 + tau2), crit as CI)
  if (method %in% c("REML", "FE")) {
    pr <- predict(res, newmods = newmods[[model]])
    for (i in seq_along(pr$pred)) {
      add("predict", model, method, test, i, "pred", pr$pred[i])
      add("predict", model, method, test, i, "se", pr$se[i])
      add("predict", model, method, test, i, "ci.lb", pr$ci.lb[i])
      add("predict", model, method, test, i, "ci.ub", pr$ci.ub[i])
      # predict() drops pi.lb/pi.ub for FE models (they equal the CI there)
      add("predict", model, method, test, i, "pi.lb",
          if (is.null(pr$pi.lb)) pr$ci.lb[i] else pr$pi.lb[i])
      add("predict", model, method, test, i, "pi.ub",
          if (is.null(pr$pi.ub)) pr$ci.ub[i] else pr$pi.ub[i])
    }
  }
}

# ----------------------------------------------------------------------------------------------
# permutest
# ----------------------------------------------------------------------------------------------
perm_add <- function(model, method, test, pt, res) {
  for (j in seq_along(pt$pval)) add("permutest", model, method, test, j, "pval", pt$pval[j])
  add("permutest", model, method, test, 0, "QMp", pt$QMp)
  add("permutest", model, method, test, 0, "QM", res$QM)
  add("permutest", model, method, test, 0, "exact.iter", pt$exact.iter)
  add("permutest", model, method, test, 0, "exact", as.numeric(length(pt$QM.perm) ==
                                                                   pt$exact.iter))
}
d7 <- dat[1:7, ]
for (test in c("z", "knha")) {
  res <- rma(yi, vi, mods = ~ ablat, data = d7, method = "REML", test = test,
             control = ctrl_for("REML"))
  pt <- permutest(res, iter = 5000, progbar = FALSE)  # 2520 <= 5000: exact
  stopifnot(pt$exact.iter == 2520, length(pt$QM.perm) == 2520)
  perm_add("ablat_first7", "REML", test, pt, res)
}
res <- rma(yi, vi, data = d7, method = "REML", control = ctrl_for("REML"))
pt <- permutest(res, iter = 1000, progbar = FALSE)  # 2^7 = 128 <= 1000: exact
stopifnot(pt$exact.iter == 128)
perm_add("intercept_first7", "REML", "z", pt, res)

res <- rma(yi, vi, mods = ~ ablat, data = dat, method = "REML", control = ctrl_for("REML"))
pt <- permutest(res, iter = 1000, progbar = FALSE, seed = 20240611)  # approximate
stopifnot(length(pt$QM.perm) == 1000)
perm_add("ablat", "REML", "z", pt, res)
add("permutest", "ablat", "REML", "z", 0, "iter", 1000)

# ----------------------------------------------------------------------------------------------
# subgroups (alloc)
# ----------------------------------------------------------------------------------------------
levs <- sort(unique(dat$alloc))
for (cfg in list(c("REML", "z"), c("REML", "knha"), c("DL", "z"))) {
  method <- cfg[1]
  test <- cfg[2]
  model <- "alloc_separate"
  est <- ses <- numeric(0)
  for (i in seq_along(levs)) {
    sub <- dat[dat$alloc == levs[i], ]
    r <- rma(yi, vi, data = sub, method = method, test = test, control = ctrl_for(method))
    pr <- predict(r)
    est <- c(est, r$beta[1])
    ses <- c(ses, r$se)
    add("subgroup", model, method, test, i, "k", r$k)
    add("subgroup", model, method, test, i, "estimate", r$beta[1])
    add("subgroup", model, method, test, i, "se", r$se)
    add("subgroup", model, method, test, i, "ci.lb", r$ci.lb)
    add("subgroup", model, method, test, i, "ci.ub", r$ci.ub)
    add("subgroup", model, method, test, i, "pval", r$pval)
    add("subgroup", model, method, test, i, "pi.lb", pr$pi.lb)
    add("subgroup", model, method, test, i, "pi.ub", pr$pi.ub)
    add("subgroup", model, method, test, i, "tau2", r$tau2)
    add("subgroup", model, method, test, i, "I2", r$I2)
    add("subgroup", model, method, test, i, "H2", r$H2)
    add("subgroup", model, method, test, i, "QE", r$QE)
    add("subgroup", model, method, test, i, "QEp", r$QEp)
  }
  between <- rma(est, sei = ses, method = "FE")
  add("subgroup_test", model, method, test, 0, "Q_between", between$QE)
  add("subgroup_test", model, method, test, 0, "df", between$k - 1)
  add("subgroup_test", model, method, test, 0, "pvalue", between$QEp)

  model <- "alloc_common"
  r <- rma(yi, vi, mods = ~ factor(alloc) - 1, data = dat, method = method, test = test,
           control = ctrl_for(method))
  pr <- predict(r, newmods = diag(length(levs)))
  for (i in seq_along(levs)) {
    add("subgroup", model, method, test, i, "k", sum(dat$alloc == levs[i]))
    add("subgroup", model, method, test, i, "estimate", r$beta[i])
    add("subgroup", model, method, test, i, "se", r$se[i])
    add("subgroup", model, method, test, i, "ci.lb", r$ci.lb[i])
    add("subgroup", model, method, test, i, "ci.ub", r$ci.ub[i])
    add("subgroup", model, method, test, i, "pval", r$pval[i])
    add("subgroup", model, method, test, i, "pi.lb", pr$pi.lb[i])
    add("subgroup", model, method, test, i, "pi.ub", pr$pi.ub[i])
    add("subgroup", model, method, test, i, "tau2", r$tau2)
    add("subgroup", model, method, test, i, "I2", r$I2)
    add("subgroup", model, method, test, i, "H2", r$H2)
  }
  r1 <- rma(yi, vi, mods = ~ factor(alloc), data = dat, method = method, test = test,
            control = ctrl_for(method))
  contr <- cbind(-1, diag(length(levs) - 1))  # level j - level 1, j = 2..L
  an <- anova(r, X = contr)
  stopifnot(isTRUE(all.equal(an$QM, r1$QM * ifelse(test == "z", 1, length(levs) - 1),
                             tolerance = 1e-8)) || isTRUE(all.equal(an$QM, r1$QM, tolerance = 1e-8)))
  add("subgroup_test", model, method, test, 0, "Q_between", r1$QM)
  add("subgroup_test", model, method, test, 0, "df", r1$QMdf[1])
  add("subgroup_test", model, method, test, 0, "df2", r1$QMdf[2])
  add("subgroup_test", model, method, test, 0, "pvalue", r1$QMp)
  add("subgroup_test", model, method, test, 0, "anova_QM", an$QM)
  add("subgroup_test", model, method, test, 0, "anova_QMp", an$QMp)
  add("subgroup_test", model, method, test, 0, "tau2", r$tau2)
  add("subgroup_test", model, method, test, 0, "QE", r$QE)
}

results <- do.call(rbind, rows)
inputs <- data.frame(study = seq_len(nrow(dat)), yi = fmt(dat$yi), vi = fmt(dat$vi),
                     ablat = dat$ablat, year = dat$year, alloc = dat$alloc,
                     stringsAsFactors = FALSE)
write.csv(inputs, file.path(out_dir, "metafor_metareg_inputs.csv"), row.names = FALSE,
          quote = FALSE)
write.csv(results, file.path(out_dir, "metafor_metareg.csv"), row.names = FALSE, quote = FALSE)
cat(sprintf("metafor %s: wrote %d result rows\n", as.character(packageVersion("metafor")),
            nrow(results)))
