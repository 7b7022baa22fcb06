# Reference values for hairtrial.models.multilevel from metafor 3.8 rma.mv.
#
# Run from the repository root:
#     Rscript tests/reference/metafor_multilevel.R
# Writes (all committed; the Python tests read only the CSVs, never R):
#     tests/reference/metafor_multilevel_inputs_<dataset>.csv  the data rows of each dataset
#     tests/reference/metafor_multilevel_V_<dataset>.csv       non-zero entries of V
#                                                              (row, col: 1-based, data order)
#     tests/reference/metafor_multilevel.csv          case, quantity, name, value
#         quantity: beta, se, stat, pval, ci.lb, ci.ub, ddf (name = coefficient),
#                   vb (name = "i,j"), sigma2 / tau2 / rho / gamma2 / phi (name = index),
#                   ll, dev, AIC, BIC, AICc (fitstats of the fit's own method), parms, k, p
#     tests/reference/metafor_multilevel_profile.csv  case, component, index, estimate, ci.lb,
#                                                     ci.ub (confint(): profile-likelihood CIs)
#     tests/reference/metafor_multilevel_blups.csv    case, term, level, pred, se, pi.lb, pi.ub
#                                                     (ranef())
#     tests/reference/metafor_multilevel_lrt.csv      case, quantity, value (anova(full, reduced))
# Every number is written with sprintf("%.17g") so Python reads exactly the same doubles.
#
# Tight controls, so that metafor's own optimiser tolerance does not limit the comparison:
#   rma.mv's default optimiser is nlminb (PORT defaults: rel.tol = 1e-10, iter.max = 150,
#   eval.max = 200) on the (RE)ML criterion with finite-difference gradients; for the flatter
#   likelihoods below that leaves the variance components ~1e-5 (relative) from the optimum.
#   Every fit is therefore done in two stages (function rma_mv below):
#     1. nlminb with control = list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
#        (falling back to rel.tol = 1e-11, then 1e-10, where nlminb reports "false
#        convergence" at the tighter tolerance: its finite-difference noise floor);
#     2. a refit with the derivative-free optimizer = "bobyqa" (minqa; rhoend = 1e-12,
#        maxfun = 1e5) started at the stage-1 estimates, kept if its logLik is not lower.
#   Stage 2 agrees with optim(BFGS, reltol = 1e-14), optim(Nelder-Mead, reltol = 1e-16) and
#   uobyqa restarts to ~1e-7 relative in the variance components, so metafor's tolerance is
#   far below the 1e-5 used in tests/test_multilevel.py. The Python tests also check that
#   hairtrial's (RE)ML log-likelihood is >= metafor's minus 1e-9 (hairtrial uses analytic
#   gradients plus Newton polishing).
#   confint() uses control = list(tol = 1e-12) for its uniroot() searches (default
#   eps^0.25 ~ 1.2e-4).

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "3.8")

out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
ctrl <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)
rma_mv <- function(...) {
  cl <- match.call()
  cl[[1]] <- quote(rma.mv)
  res <- NULL
  for (rt in c(1e-12, 1e-11, 1e-10)) {
    ctrl$rel.tol <- rt
    cl$control <- ctrl
    res <- try(eval(cl, parent.frame()), silent = TRUE)
    if (!inherits(res, "try-error")) break
  }
  if (inherits(res, "try-error")) stop(res)
  pos <- function(x) pmax(x, 1e-10)
  ctrl2 <- list(optimizer = "bobyqa", rhoend = 1e-12, maxfun = 1e5)
  if (res$withS) ctrl2$sigma2.init <- pos(res$sigma2)
  if (res$withG) {
    ctrl2$tau2.init <- pos(res$tau2)
    ctrl2$rho.init <- if (res$struct[1] == "CAR") pmin(pmax(res$rho, 1e-6), 1 - 1e-6) else res$rho
  }
  if (res$withH) {
    ctrl2$gamma2.init <- pos(res$gamma2)
    ctrl2$phi.init <- if (res$struct[2] == "CAR") pmin(pmax(res$phi, 1e-6), 1 - 1e-6) else res$phi
  }
  cl$control <- ctrl2
  res2 <- try(eval(cl, parent.frame()), silent = TRUE)
  if (!inherits(res2, "try-error") && logLik(res2) >= logLik(res)) {
    cat(sprintf("nlminb rel.tol = %g, bobyqa refit: logLik %+.3g\n", rt,
                logLik(res2) - logLik(res)))
    return(res2)
  }
  cat(sprintf("nlminb rel.tol = %g (bobyqa refit not better)\n", rt))
  res
}

write_inputs <- function(name, df) {
  num <- vapply(df, is.numeric, logical(1))
  df[num] <- lapply(df[num], fmt)
  write.csv(df, file.path(out_dir, paste0("metafor_multilevel_inputs_", name, ".csv")),
            row.names = FALSE, quote = TRUE)
}
write_V <- function(name, V) {
  V <- as.matrix(V)
  idx <- which(V != 0, arr.ind = TRUE)
  out <- data.frame(row = idx[, 1], col = idx[, 2], value = fmt(V[idx]))
  write.csv(out, file.path(out_dir, paste0("metafor_multilevel_V_", name, ".csv")),
            row.names = FALSE, quote = FALSE)
}

rows <- list()
add <- function(case, quantity, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, quantity = quantity,
                                          name = as.character(name), value = fmt(value))
}
record <- function(case, res) {
  nm <- rownames(res$beta)
  add(case, "beta", nm, as.vector(res$beta))
  add(case, "se", nm, res$se)
  add(case, "stat", nm, res$zval)
  add(case, "pval", nm, res$pval)
  add(case, "ci.lb", nm, res$ci.lb)
  add(case, "ci.ub", nm, res$ci.ub)
  if (res$test == "t") add(case, "ddf", nm, as.vector(res$ddf))
  vb <- as.matrix(res$vb)
  ij <- expand.grid(i = seq_len(nrow(vb)), j = seq_len(ncol(vb)))
  add(case, "vb", paste(ij$i, ij$j, sep = ","), vb[cbind(ij$i, ij$j)])
  if (res$withS) add(case, "sigma2", seq_along(res$sigma2), res$sigma2)
  if (res$withG) {
    add(case, "tau2", seq_along(res$tau2), res$tau2)
    add(case, "rho", seq_along(res$rho), res$rho)
  }
  if (res$withH) {
    add(case, "gamma2", seq_along(res$gamma2), res$gamma2)
    add(case, "phi", seq_along(res$phi), res$phi)
  }
  fs <- fitstats(res)
  add(case, c("ll", "dev", "AIC", "BIC", "AICc"), "", fs[, 1])
  add(case, "parms", "", res$parms)
  add(case, "k", "", res$k)
  add(case, "p", "", res$p)
  invisible(res)
}

# ----------------------------------------------------------------------------------------------
# konstantopoulos2011: schools within districts (Konstantopoulos 2011)
# ----------------------------------------------------------------------------------------------
dat <- dat.konstantopoulos2011
write_inputs("konstantopoulos", data.frame(district = dat$district, school = dat$school,
                                           study = dat$study, year = dat$year,
                                           yi = as.numeric(dat$yi), vi = dat$vi))
fits <- list()
for (method in c("REML", "ML")) {
  res <- rma_mv(yi, vi, random = ~ 1 | district/school, data = dat, method = method)
  record(paste0("konst_", method, "_z"), res)
  fits[[paste0("konst_", method, "_z")]] <- res
  for (dfs in c("residual", "contain")) {
    res <- rma_mv(yi, vi, random = ~ 1 | district/school, data = dat, method = method,
                  test = "t", dfs = dfs)
    record(paste0("konst_", method, "_t_", dfs), res)
  }
}
# meta-regression on centred year, t with contain df
res <- rma_mv(yi, vi, mods = ~ I(year - 1990), random = ~ 1 | district/school, data = dat,
              test = "t", dfs = "contain")
record("konst_REML_year_t_contain", res)
# one component fixed (sigma2 for schools fixed at 0.02)
res <- rma_mv(yi, vi, random = ~ 1 | district/school, data = dat, sigma2 = c(NA, 0.02))
record("konst_REML_fixed", res)

# profile-likelihood CIs and BLUPs for the REML fit. The refits inside confint() inherit the
# fit's control list; with rel.tol = 1e-12 nlminb stops with "false convergence" at some
# profile points, so the fit used for confint/ranef/anova has nlminb's default rel.tol (its
# estimates are identical to the rel.tol = 1e-12 fit to all printed digits, checked by the
# Python tests through konst_REML_z).
res <- rma.mv(yi, vi, random = ~ 1 | district/school, data = dat,
              control = list(iter.max = 10000, eval.max = 10000))
prof <- list()
ci <- confint(res, control = list(tol = 1e-12))
for (j in 1:2) {
  r <- ci[[j]]$random
  prof[[j]] <- data.frame(case = "konst_REML_z", component = "sigma2", index = j,
                          estimate = fmt(r[1, 1]), ci.lb = fmt(r[1, 2]), ci.ub = fmt(r[1, 3]))
}
re <- ranef(res)
blups <- list()
for (term in names(re)) {
  b <- re[[term]]
  blups[[term]] <- data.frame(case = "konst_REML_z", term = term, level = rownames(b),
                              pred = fmt(b$intrcpt), se = fmt(b$se), pi.lb = fmt(b$pi.lb),
                              pi.ub = fmt(b$pi.ub))
}
# LRT: district/school vs district only (REML, same fixed effects)
res0 <- rma.mv(yi, vi, random = ~ 1 | district, data = dat,
               control = list(iter.max = 10000, eval.max = 10000))
record("konst_REML_district_only", res0)
a <- anova(res, res0)
lrt <- data.frame(case = "konst_REML_lrt",
                  quantity = c("LRT", "pval", "parms.f", "parms.r", "ll.f", "ll.r"),
                  value = fmt(c(a$LRT, a$pval, a$parms.f, a$parms.r, a$fit.stats.f["ll"],
                                a$fit.stats.r["ll"])))

# ----------------------------------------------------------------------------------------------
# berkey1998: bivariate (PD, AL) with known within-trial covariance, UN (Berkey et al 1998)
# ----------------------------------------------------------------------------------------------
dat <- dat.berkey1998
V <- bldiag(lapply(split(dat[, c("v1i", "v2i")], dat$trial), as.matrix))
write_inputs("berkey", data.frame(trial = dat$trial, outcome = dat$outcome, year = dat$year,
                                  yi = as.numeric(dat$yi), vi = dat$vi, v1i = dat$v1i,
                                  v2i = dat$v2i))
write_V("berkey", V)
for (method in c("REML", "ML")) {
  res <- rma_mv(yi, V, mods = ~ outcome - 1, random = ~ outcome | trial, struct = "UN",
                data = dat, method = method)
  record(paste0("berkey_UN_", method), res)
  if (method == "REML") {
    # profile CIs of tau2.1, tau2.2 and rho (refits inherit the fit's bobyqa control)
    ci <- confint(res, control = list(tol = 1e-12))
    comp <- c("tau2", "tau2", "rho")
    for (j in 1:3) {
      r <- ci[[j]]$random
      prof[[length(prof) + 1]] <- data.frame(case = "berkey_UN_REML", component = comp[j],
                                             index = c(1, 2, 1)[j], estimate = fmt(r[1, 1]),
                                             ci.lb = fmt(r[1, 2]), ci.ub = fmt(r[1, 3]))
    }
  }
}

# ----------------------------------------------------------------------------------------------
# ishak2007: long format, AR and HAR over time points (Ishak et al 2007)
# ----------------------------------------------------------------------------------------------
dat.long <- reshape(dat.ishak2007, direction = "long", idvar = "study",
                    v.names = c("yi", "vi"), varying = list(c(2, 4, 6, 8), c(3, 5, 7, 9)))
dat.long <- dat.long[order(dat.long$study, dat.long$time), ]
dat.long <- dat.long[!is.na(dat.long$yi), ]
rownames(dat.long) <- NULL
V <- vcalc(vi, cluster = study, time1 = time, phi = 0.97, data = dat.long)
write_inputs("ishak", data.frame(study = dat.long$study, time = dat.long$time,
                                 yi = as.numeric(dat.long$yi), vi = dat.long$vi,
                                 mdur = dat.long$mdur, mbase = dat.long$mbase))
write_V("ishak", V)
for (struct in c("AR", "HAR")) {
  res <- rma_mv(yi, V, mods = ~ factor(time) - 1, random = ~ time | study, struct = struct,
                data = dat.long)
  record(paste0("ishak_", struct), res)
}
res <- rma_mv(yi, V, mods = ~ factor(time) - 1, random = ~ time | study, struct = "AR",
              data = dat.long, method = "ML")
record("ishak_AR_ML", res)

# ----------------------------------------------------------------------------------------------
# generated longitudinal arm-level data (seeded): studies with 2-3 arms, 2-5 weeks
# ----------------------------------------------------------------------------------------------
gen <- function(seed, nstudy, s_study, s_arm, tau_car, rho_car) {
  set.seed(seed)
  out <- list()
  for (s in seq_len(nstudy)) {
    narm <- sample(2:3, 1)
    trt <- if (narm == 3) c("control", "low", "high") else c("control", sample(c("low", "high"), 1))
    nw <- sample(2:5, 1)
    weeks <- sort(sample(c(4, 8, 12, 16, 24), nw))
    u_s <- rnorm(1, 0, s_study)
    for (a in seq_len(narm)) {
      n <- sample(20:80, 1)
      u_a <- rnorm(1, 0, s_arm)
      R <- outer(weeks, weeks, function(x, y) rho_car^abs(x - y))
      e_car <- as.vector(t(chol(tau_car^2 * R)) %*% rnorm(nw))
      sdw <- 15 + weeks / 4
      eff <- c(control = 0, low = 8, high = 14)[trt[a]]
      mu <- 2 + 0.3 * weeks + eff * (1 - exp(-weeks / 8))
      out[[length(out) + 1]] <- data.frame(study = sprintf("S%02d", s),
                                           arm = sprintf("S%02d-%s", s, trt[a]),
                                           treatment = trt[a], week = weeks,
                                           n = n, sd = sdw, mu = mu + u_s + u_a + e_car)
    }
  }
  d <- do.call(rbind, out)
  d$vi <- d$sd^2 / d$n
  # sampling errors correlated 0.6 between weeks of the same arm
  same_arm <- outer(d$arm, d$arm, "==")
  V <- 0.6 * sqrt(outer(d$vi, d$vi)) * same_arm
  diag(V) <- d$vi
  d$yi <- d$mu + as.vector(t(chol(as.matrix(V))) %*% rnorm(nrow(d)))
  d$mu <- NULL
  list(d = d, V = V)
}
g <- gen(20240611, 40, 3, 2, 2.5, 0.9)
d <- g$d
write_inputs("arms", d)
write_V("arms", g$V)
res <- rma_mv(yi, g$V, mods = ~ treatment * factor(week), data = d,
              random = list(~ 1 | study, ~ week | arm), struct = "CAR")
record("arms_CAR", res)
re <- ranef(res)
for (j in seq_along(re)) {
  b <- re[[j]]
  blups[[length(blups) + 1]] <- data.frame(case = "arms_CAR", term = names(re)[j],
                                           level = trimws(rownames(b)), pred = fmt(b$intrcpt),
                                           se = fmt(b$se), pi.lb = fmt(b$pi.lb),
                                           pi.ub = fmt(b$pi.ub))
}
res <- rma_mv(yi, g$V, mods = ~ treatment * factor(week), data = d,
              random = ~ treatment | study, struct = "UN")
record("arms_UN", res)
res <- rma_mv(yi, g$V, mods = ~ treatment * week, data = d, random = ~ 1 | study/arm)
record("arms_nested", res)

# boundary: no arm-level heterogeneity generated; sigma2 for study/arm estimated at ~0
g <- gen(7, 25, 3, 0, 0.001, 0.5)
d <- g$d
write_inputs("boundary", d)
write_V("boundary", g$V)
res <- rma_mv(yi, g$V, mods = ~ treatment + week, data = d, random = ~ 1 | study/arm)
print(res$sigma2)
record("boundary_nested", res)

write.csv(do.call(rbind, rows), file.path(out_dir, "metafor_multilevel.csv"),
          row.names = FALSE, quote = TRUE)
write.csv(do.call(rbind, prof), file.path(out_dir, "metafor_multilevel_profile.csv"),
          row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, blups), file.path(out_dir, "metafor_multilevel_blups.csv"),
          row.names = FALSE, quote = TRUE)
write.csv(lrt, file.path(out_dir, "metafor_multilevel_lrt.csv"), row.names = FALSE,
          quote = FALSE)
cat("done\n")
