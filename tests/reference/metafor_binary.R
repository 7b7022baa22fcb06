# Reference values for hairtrial.derive.binary / hairtrial.models.binary (issue 10, binary
# outcomes) from metafor 3.8 escalc, rma.mh, rma.peto, rma.glmm and rma.uni, and lme4.
#
# Run from the repository root:
#     Rscript tests/reference/metafor_binary.R
# Writes (all committed; the Python tests read only the CSVs, never R):
#     tests/reference/metafor_binary_inputs.csv  dataset, study, ai, n1i, ci, n2i
#                                                (2x2 tables: arm 1 = experimental, arm 2 = control)
#     tests/reference/metafor_binary_arms.csv    arm-level rows of the multi-arm example
#                                                (trial, treatment, events, n) before combining
#     tests/reference/metafor_binary_escalc.csv  dataset, measure, to, add, drop00, cc, study, yi, vi
#     tests/reference/metafor_binary.csv         dataset, model, measure, quantity, value
# Every number is written with sprintf("%.17g") so Python reads exactly the same doubles.
#
# Settings:
#   * escalc: measures RR, OR, RD (vtype = "LS") for every `to` option, drop00 FALSE/TRUE,
#     add = 1/2 (plus add = 1/4 for to = "all"); cc = "constant" is escalc itself.
#     cc = "tacc" (treatment-arm continuity correction, Sweeting, Sutton & Lambert 2004, as
#     meta::metabin(incr = "TACC")) is computed by hand: in each table selected by the `to`
#     rule, every cell of arm 1 gets 2 * add * n1 / (n1 + n2) and every cell of arm 2 gets
#     2 * add * n2 / (n1 + n2); escalc is then called on the corrected cells with to = "none".
#   * rma.mh (RR, OR, RD), rma.peto: metafor defaults (add = 1/2, to = "only0", drop00 = TRUE
#     for the yi/vi used in Q; no correction in the pooled estimate; correct = TRUE for the CMH
#     test). These are closed form: no control settings involved.
#   * rma.glmm(measure = "OR", model = "UM.FS", method = "ML", nAGQ = 7): metafor calls
#     lme4::glmer(cbind(events, non-events) ~ -1 + X.fit + study + (group - 1 | study)) with
#     X.fit = 1 for arm 1 / 0 for arm 2 and group = +1/2 (arm 1) / -1/2 (arm 2). The lme4
#     defaults (bobyqa stage 1 + Nelder-Mead stage 2 with FtolAbs = 1e-5, PIRLS tolPwrss =
#     1e-7) would not support a 1e-4 comparison, so both stages use bobyqa with
#     rhoend = 1e-12 and maxfun = 1e6, and tolPwrss = 1e-9 (glmerCtrl); the FE and saturated
#     glm fits (heterogeneity tests) use epsilon = 1e-14, maxit = 1000 (glmCtrl). lme4's
#     standard errors come from its finite-difference Hessian (deriv12, delta = 1e-4) of the
#     deviance in (theta, beta), as vcov.merMod does by default for nAGQ > 0.
#     The k = 1 set is not fitted (rma.glmm stops: more parameters than observations).
#     nAGQ = 1 (Laplace) is also recorded for bcg12, sparse6 and rare8.
#   * rma.uni on escalc yi/vi (drop00 = TRUE): FE and DL, to check the inverse-variance route.
#     rma.uni's defaults suffice for FE/DL (closed form).

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(numDeriv)
})
stopifnot(packageVersion("metafor") >= "3.8")

out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

# ----------------------------------------------------------------------------------------------
# datasets (ai/n1i: arm 1 events/size, ci/n2i: arm 2 events/size)
# ----------------------------------------------------------------------------------------------
tab <- function(study, ai, n1i, ci, n2i) {
  data.frame(study = study, ai = ai, n1i = n1i, ci = ci, n2i = n2i, stringsAsFactors = FALSE)
}
ds <- list()
b <- dat.bcg
ds[["bcg12"]] <- tab(paste0("bcg", b$trial[1:12]), b$tpos[1:12], b$tpos[1:12] + b$tneg[1:12],
                     b$cpos[1:12], b$cpos[1:12] + b$cneg[1:12])
ds[["bcg3"]] <- ds[["bcg12"]][c(1, 2, 6), ]
# sparse, invented: a zero control arm with many treated events, a zero control arm with few,
# a moderately sized table without zeros, a double-zero table (no events), a small table, and
# a "double-zero" table in which every participant has the event (bi = di = 0)
ds[["sparse6"]] <- tab(paste0("s", 1:6), c(40, 4, 17, 0, 3, 20), c(50, 25, 20, 30, 40, 20),
                       c(0, 0, 9, 0, 1, 20), c(50, 25, 20, 30, 38, 20))
ds[["sparse4"]] <- ds[["sparse6"]][1:4, ]
ds[["k1"]] <- tab("t1", 17, 20, 9, 20)
ds[["k2"]] <- tab(c("t1", "t2"), c(4, 17), c(25, 20), c(0, 9), c(25, 20))
# three-arm trial A (two doses vs one placebo arm) combined into one experimental group by
# summing events and n, so that the placebo arm is used once; plus two two-arm trials
arms <- data.frame(
  trial = c("A", "A", "A", "B", "B", "C", "C"),
  treatment = c("drug", "drug", "placebo", "drug", "placebo", "drug", "placebo"),
  events = c(6, 9, 2, 12, 5, 3, 0),
  n = c(30, 31, 30, 45, 44, 28, 29),
  stringsAsFactors = FALSE
)
comb <- aggregate(cbind(events, n) ~ trial + treatment, data = arms, FUN = sum)
e <- comb[comb$treatment == "drug", ]
p <- comb[comb$treatment == "placebo", ]
stopifnot(identical(e$trial, p$trial))
ds[["threearm"]] <- tab(e$trial, e$events, e$n, p$events, p$n)
# homogeneous: the GLMM puts tau2 on the boundary (0)
ds[["homog4"]] <- tab(paste0("h", 1:4), c(10, 12, 9, 11), c(100, 110, 95, 102),
                      c(20, 23, 19, 21), c(100, 105, 98, 99))
# no events at all in arm 1 (MH log RR / log OR undefined)
ds[["arm1zero"]] <- tab(c("z1", "z2"), c(0, 0), c(20, 25), c(3, 2), c(20, 25))
# rare events, k = 8, two tables with a zero cell
ds[["rare8"]] <- tab(paste0("r", 1:8), c(2, 0, 5, 1, 3, 0, 7, 4),
                     c(60, 45, 110, 38, 75, 52, 140, 90), c(6, 3, 9, 4, 2, 1, 15, 10),
                     c(58, 47, 105, 40, 80, 50, 138, 95))

inputs <- do.call(rbind, lapply(names(ds), function(nm) cbind(dataset = nm, ds[[nm]])))
write.csv(inputs, file.path(out_dir, "metafor_binary_inputs.csv"), row.names = FALSE,
          quote = FALSE)
write.csv(arms, file.path(out_dir, "metafor_binary_arms.csv"), row.names = FALSE, quote = FALSE)

# ----------------------------------------------------------------------------------------------
# escalc
# ----------------------------------------------------------------------------------------------
tacc <- function(d, measure, add, to, drop00) {
  ai <- d$ai; bi <- d$n1i - d$ai; ci <- d$ci; di <- d$n2i - d$ci
  id00 <- (ai == 0 & ci == 0) | (bi == 0 & di == 0)
  if (!drop00) id00[] <- FALSE
  id0 <- (ai == 0 | bi == 0 | ci == 0 | di == 0) & !id00
  sel <- switch(to, all = !id00, only0 = id0, if0all = if (any(id0)) !id00 else id0 & FALSE,
                none = id0 & FALSE)
  k1 <- ifelse(sel, 2 * add * d$n1i / (d$n1i + d$n2i), 0)
  k2 <- ifelse(sel, 2 * add * d$n2i / (d$n1i + d$n2i), 0)
  res <- escalc(measure = measure, ai = ai + k1, bi = bi + k1, ci = ci + k2, di = di + k2,
                to = "none")
  res$yi[id00] <- NA
  res$vi[id00] <- NA
  res
}
erows <- list()
for (nm in names(ds)) {
  d <- ds[[nm]]
  for (measure in c("RR", "OR", "RD")) {
    for (to in c("only0", "all", "if0all", "none")) {
      for (drop00 in c(FALSE, TRUE)) {
        for (add in if (to == "all") c(1/2, 1/4) else 1/2) {
          for (cc in c("constant", "tacc")) {
            if (cc == "constant") {
              res <- suppressWarnings(escalc(measure = measure, ai = d$ai, n1i = d$n1i,
                                             ci = d$ci, n2i = d$n2i, add = add, to = to,
                                             drop00 = drop00))
            } else {
              res <- suppressWarnings(tacc(d, measure, add, to, drop00))
            }
            erows[[length(erows) + 1L]] <- data.frame(
              dataset = nm, measure = measure, to = to, add = fmt(add),
              drop00 = if (drop00) "TRUE" else "FALSE", cc = cc, study = d$study,
              yi = fmt(as.numeric(res$yi)), vi = fmt(as.numeric(res$vi)),
              stringsAsFactors = FALSE)
          }
        }
      }
    }
  }
}
write.csv(do.call(rbind, erows), file.path(out_dir, "metafor_binary_escalc.csv"),
          row.names = FALSE, quote = FALSE)

# ----------------------------------------------------------------------------------------------
# pooled models
# ----------------------------------------------------------------------------------------------
rows <- list()
add_row <- function(ds, model, measure, quantity, value) {
  rows[[length(rows) + 1L]] <<- data.frame(dataset = ds, model = model, measure = measure,
                                           quantity = quantity, value = fmt(value),
                                           stringsAsFactors = FALSE)
}
glmm_ctrl <- list(
  glmerCtrl = list(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                   tolPwrss = 1e-9),
  glmCtrl = list(epsilon = 1e-14, maxit = 1000)
)

glmm_rows <- function(nm, d, nagq, model) {
  res <- suppressWarnings(rma.glmm(measure = "OR", ai = d$ai, n1i = d$n1i, ci = d$ci,
                                   n2i = d$n2i, model = "UM.FS", method = "ML", nAGQ = nagq,
                                   control = glmm_ctrl))
  for (q in c("beta", "se", "zval", "pval", "ci.lb", "ci.ub", "tau2", "QE.Wld", "QEp.Wld",
              "QE.LRT", "QEp.LRT", "I2", "H2")) {
    add_row(nm, model, "OR", q, as.numeric(res[[q]]))
  }
  add_row(nm, model, "OR", "k", res$k)
  # The same glmer call as rma.glmm makes (double-zero tables dropped), to get at lme4's
  # deviance function. lme4's standard error comes from deriv12 (central differences,
  # step 1e-4) of a deviance that is itself only as exact as PIRLS converges, which limits
  # it to ~1e-5 relative on large tables (dat.bcg: TPT Madras has n = 88,391 per arm); the
  # ".acc" quantities use numDeriv's Richardson-extrapolated Hessian of the same deviance
  # function at the same optimum instead.
  keep <- !((d$ai == 0 & d$ci == 0) | (d$ai == d$n1i & d$ci == d$n2i))
  ai <- d$ai[keep]; bi <- d$n1i[keep] - ai; ci <- d$ci[keep]; di <- d$n2i[keep] - ci
  kk <- length(ai)
  dat.grp <- cbind(xi = c(rbind(ai, ci)), mi = c(rbind(bi, di)))
  X.fit <- cbind(intrcpt = rep(c(1, 0), times = kk))
  group <- rep(c(1/2, -1/2), times = kk)
  study <- factor(rep(seq_len(kk), each = 2L))
  gctl <- do.call(lme4::glmerControl, glmm_ctrl$glmerCtrl)
  f <- dat.grp ~ -1 + X.fit + study + (group - 1 | study)
  fit <- suppressWarnings(suppressMessages(
    lme4::glmer(f, family = binomial, nAGQ = nagq, control = gctl)))
  stopifnot(abs(lme4::fixef(fit)[1] - res$beta[1]) < 1e-12)
  devf <- suppressWarnings(suppressMessages(
    lme4::glmer(f, family = binomial, nAGQ = nagq, control = gctl, devFunOnly = TRUE)))
  par <- c(lme4::getME(fit, "theta"), lme4::fixef(fit))
  H <- numDeriv::hessian(devf, par)
  se.acc <- sqrt(2 * solve(H)[2, 2])
  z.acc <- res$beta[1] / se.acc
  add_row(nm, model, "OR", "se.acc", se.acc)
  add_row(nm, model, "OR", "zval.acc", z.acc)
  add_row(nm, model, "OR", "pval.acc", 2 * pnorm(abs(z.acc), lower.tail = FALSE))
  add_row(nm, model, "OR", "ci.lb.acc", res$beta[1] - qnorm(0.975) * se.acc)
  add_row(nm, model, "OR", "ci.ub.acc", res$beta[1] + qnorm(0.975) * se.acc)
  # Wald heterogeneity test: a table with a zero cell has an infinite saturated-model log
  # odds ratio, and glm stops at ~ +-30 with a variance ~ 1e14 in which the other tables'
  # variances (~ 1) are lost to rounding, so rma.glmm's QE.Wld is then numerically
  # unreliable. Its limit (the zero-cell tables add 0) is Cochran's Q of the uncorrected
  # log odds ratios of the tables without zero cells, on k - 1 df:
  nz <- ai > 0 & bi > 0 & ci > 0 & di > 0
  qlim <- if (sum(nz) >= 2) {
    es <- escalc(measure = "OR", ai = ai[nz], bi = bi[nz], ci = ci[nz], di = di[nz])
    rma.uni(es$yi, es$vi, method = "FE")$QE
  } else 0
  add_row(nm, model, "OR", "QE.Wld.limit", qlim)
  add_row(nm, model, "OR", "QEp.Wld.limit", pchisq(qlim, df = kk - 1, lower.tail = FALSE))
  add_row(nm, model, "OR", "zero.cells", sum(!nz))
}

for (nm in names(ds)) {
  d <- ds[[nm]]
  for (measure in c("RR", "OR", "RD")) {
    res <- suppressWarnings(rma.mh(measure = measure, ai = d$ai, n1i = d$n1i, ci = d$ci,
                                   n2i = d$n2i))
    for (q in c("beta", "se", "zval", "pval", "ci.lb", "ci.ub", "QE", "QEp", "I2", "H2")) {
      add_row(nm, "MH", measure, q, as.numeric(res[[q]]))
    }
    add_row(nm, "MH", measure, "k", res$k)
    add_row(nm, "MH", measure, "k.yi", res$k.yi)
    if (measure == "OR") {
      for (q in c("MH", "MHp", "BD", "BDp", "TA", "TAp")) {
        add_row(nm, "MH", measure, q, as.numeric(res[[q]]))
      }
    }
    # inverse-variance route: escalc with double-zero tables dropped, then rma.uni
    es <- suppressWarnings(escalc(measure = measure, ai = d$ai, n1i = d$n1i, ci = d$ci,
                                  n2i = d$n2i, drop00 = TRUE))
    if (sum(!is.na(es$yi)) >= 1) {
      for (method in c("FE", "DL")) {
        r <- suppressWarnings(rma.uni(es$yi, es$vi, method = method))
        for (q in c("beta", "se", "ci.lb", "ci.ub", "pval", "tau2", "QE", "QEp")) {
          add_row(nm, paste0("IV.", method), measure, q, as.numeric(r[[q]]))
        }
        add_row(nm, paste0("IV.", method), measure, "k", r$k)
      }
    }
  }
  res <- try(suppressWarnings(rma.peto(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i)),
             silent = TRUE)
  if (!inherits(res, "try-error")) {
    for (q in c("beta", "se", "zval", "pval", "ci.lb", "ci.ub", "QE", "QEp", "I2", "H2")) {
      add_row(nm, "PETO", "OR", q, as.numeric(res[[q]]))
    }
    add_row(nm, "PETO", "OR", "k", res$k)
    add_row(nm, "PETO", "OR", "k.yi", res$k.yi)
  }
  if (nrow(d) >= 2 && nm != "arm1zero") {
    glmm_rows(nm, d, 7, "GLMM.UMFS")
    # Laplace approximation (nAGQ = 1) for a few sets: the quadrature rule is a parameter.
    # On bcg12, lme4's Laplace deviance is not smooth to better than ~4e-6 (PIRLS noise:
    # piecewise offsets along single parameters, found by evaluating it on a grid), so its
    # deriv12 and numDeriv standard errors (0.18026 / 0.17995) are both unreliable there; the
    # Python tests compare estimate, tau2 and the heterogeneity tests only for that case.
    if (nm %in% c("bcg12", "sparse6", "rare8")) glmm_rows(nm, d, 1, "GLMM.UMFS.AGQ1")
  }
}
write.csv(do.call(rbind, rows), file.path(out_dir, "metafor_binary.csv"), row.names = FALSE,
          quote = FALSE)
cat("wrote", length(erows), "escalc blocks and", length(rows), "model rows\n")
