# Reference values for hairtrial.models.cr2 from clubSandwich (CR2 + Satterthwaite / HTZ)
# applied to metafor rma.mv and rma.uni fits.
#
# Run from the repository root:
#     Rscript tests/reference/clubsandwich_cr2.R
# Writes (the Python tests read only the CSVs, never R); every number with sprintf("%.17g"):
#     tests/reference/clubsandwich_cr2_cases.csv     case, model, inverse_var, n, p, J, versions
#     tests/reference/clubsandwich_cr2_data.csv      case, row, cluster, y, term, x   (long X)
#     tests/reference/clubsandwich_cr2_blocks.csv    case, i, j, M, W   (within-cluster entries
#                                                    of the block-diagonal target M and weight
#                                                    matrix W exactly as clubSandwich sees them:
#                                                    targetVariance() and weightMatrix())
#     tests/reference/clubsandwich_cr2_coef.csv      case, term, estimate, se, statistic, df,
#                                                    pvalue, ci_lower, ci_upper
#     tests/reference/clubsandwich_cr2_vcov.csv      case, row, col, value  (CR2 vcov)
#     tests/reference/clubsandwich_cr2_tests.csv     case, kind (contrast | wald), name, row,
#                                                    term, L (long contrast matrix) and results
#
# Rows of every case are written in clubSandwich's cluster order (levels of the factor, rows
# within a cluster in data order), so the Python side gets X, y in contiguous cluster order;
# 1-based row indices i, j refer to that order.
# Fits use metafor's default optimiser controls: the blocks file records M at the reported
# estimates, so the comparison does not depend on how tightly the variance components converged.
#
# clubSandwich 0.5.8 bug worked around: linear_contrast() references an undefined `q` in
# its non-inverse-variance branch (model fitted with user weights), so for those cases the
# function is evaluated with `q <- nrow(contrasts)` defined first (otherwise identical).

suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
})
stopifnot(packageVersion("metafor") >= "3.8", packageVersion("clubSandwich") >= "0.5.8")

out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

# linear_contrast with the `q` bug fixed (see header)
linear_contrast_fixed <- clubSandwich::linear_contrast
body(linear_contrast_fixed) <- as.call(c(as.name("{"),
                                         quote(q <- nrow(contrasts)),
                                         as.list(body(linear_contrast_fixed))[-1]))
environment(linear_contrast_fixed) <- asNamespace("clubSandwich")

tab <- list(cases = list(), data = list(), blocks = list(), coef = list(), vcov = list(),
            tests = list())
push <- function(nm, df) tab[[nm]][[length(tab[[nm]]) + 1L]] <<- df

export_case <- function(case, fit, cluster, contrasts, wald) {
  cluster <- droplevels(as.factor(cluster))
  ord <- order(as.integer(cluster), seq_along(cluster))
  X <- model.matrix(fit)
  terms <- colnames(X)
  y <- as.numeric(fit$yi)
  n <- nrow(X)
  p <- ncol(X)
  stopifnot(!any(is.na(coef(fit))))

  vc <- vcovCR(fit, cluster = cluster, type = "CR2")
  inverse_var <- attr(vc, "inverse_var")
  theta <- clubSandwich:::targetVariance(fit, cluster)
  wmat <- clubSandwich:::weightMatrix(fit, cluster)

  push("cases", data.frame(case = case, model = class(fit)[1], inverse_var = inverse_var,
                           n = n, p = p, J = nlevels(cluster),
                           metafor = as.character(packageVersion("metafor")),
                           clubSandwich = as.character(packageVersion("clubSandwich"))))
  cl_sorted <- as.character(cluster[ord])
  for (k in seq_len(p)) {
    push("data", data.frame(case = case, row = seq_len(n), cluster = cl_sorted,
                            y = fmt(y[ord]), term = terms[k], x = fmt(X[ord, k])))
  }
  offset <- 0L
  for (lev in seq_along(levels(cluster))) {
    th <- as.matrix(theta[[lev]])
    w <- as.matrix(wmat[[lev]])
    nj <- nrow(th)
    ij <- expand.grid(a = seq_len(nj), b = seq_len(nj))
    push("blocks", data.frame(case = case, i = offset + ij$a, j = offset + ij$b,
                              M = fmt(th[cbind(ij$a, ij$b)]), W = fmt(w[cbind(ij$a, ij$b)])))
    offset <- offset + nj
  }
  stopifnot(offset == n)

  ct <- coef_test(fit, vcov = vc, test = "Satterthwaite")
  ci <- conf_int(fit, vcov = vc, level = 0.95, test = "Satterthwaite")
  push("coef", data.frame(case = case, term = terms, estimate = fmt(ct$beta), se = fmt(ct$SE),
                          statistic = fmt(ct$tstat), df = fmt(ct$df_Satt),
                          pvalue = fmt(ct$p_Satt), ci_lower = fmt(ci$CI_L),
                          ci_upper = fmt(ci$CI_U)))
  rc <- expand.grid(r = seq_len(p), c = seq_len(p))
  push("vcov", data.frame(case = case, row = terms[rc$r], col = terms[rc$c],
                          value = fmt(as.matrix(vc)[cbind(rc$r, rc$c)])))

  empty <- c(estimate = NA, se = NA, statistic = NA, df = NA, pvalue = NA, ci_lower = NA,
             ci_upper = NA, Fstat = NA, delta = NA, df_num = NA, df_denom = NA)
  long_L <- function(kind, name, L, res) {
    do.call(rbind, lapply(seq_len(nrow(L)), function(r) {
      vals <- res[[r]]
      data.frame(case = case, kind = kind, name = name, row = r, term = terms,
                 L = fmt(L[r, ]), t(sapply(vals, fmt)), check.names = FALSE)
    }))
  }
  for (nm in names(contrasts)) {
    L <- contrasts[[nm]]
    lc_fun <- if (inverse_var) clubSandwich::linear_contrast else linear_contrast_fixed
    lc <- lc_fun(fit, vcov = vc, contrasts = L, level = 0.95, test = "Satterthwaite",
                 p_values = TRUE)
    res <- lapply(seq_len(nrow(L)), function(r) {
      v <- empty
      v[c("estimate", "se", "df", "pvalue", "ci_lower", "ci_upper")] <-
        c(lc$Est[r], lc$SE[r], lc$df[r], lc$p_val[r], lc$CI_L[r], lc$CI_U[r])
      v["statistic"] <- lc$Est[r] / lc$SE[r]
      v
    })
    push("tests", long_L("contrast", nm, L, res))
  }
  for (nm in names(wald)) {
    L <- wald[[nm]]
    wt <- Wald_test(fit, constraints = L, vcov = vc, test = "HTZ")
    v <- empty
    v[c("Fstat", "delta", "df_num", "df_denom", "pvalue")] <-
      c(wt$Fstat, wt$delta, wt$df_num, wt$df_denom, wt$p_val)
    push("tests", long_L("wald", nm, L, rep(list(v), nrow(L))))
  }
  invisible(NULL)
}

# ----------------------------------------------------------------------------------------------
# (1) dat.konstantopoulos2011: rma.mv ~ 1 | district/school with year, clustered by district
# ----------------------------------------------------------------------------------------------
dat <- dat.konstantopoulos2011
fit <- rma.mv(yi, vi, mods = ~ year, random = ~ 1 | district / school, data = dat)
export_case("konstantopoulos", fit, dat$district,
            contrasts = list(year1990 = rbind(at1990 = c(1, 1990), per10y = c(0, 10))),
            wald = list(all = diag(2)))

# ----------------------------------------------------------------------------------------------
# (2) dat.bcg: rma.uni log RR ~ ablat; clustered by study and by allocation method;
#     plus a user-weighted fit (weights = 1/vi: working weights != 1/(vi + tau2), so
#     clubSandwich uses inverse_var = FALSE with target vi + tau2)
# ----------------------------------------------------------------------------------------------
dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
fit <- rma(yi, vi, mods = ~ ablat, data = dat, control = list(threshold = 1e-12, maxiter = 1000))
bcg_L <- list(ablat30 = rbind(at30 = c(1, 30), at50 = c(1, 50)))
export_case("bcg_study", fit, dat$trial, contrasts = bcg_L, wald = list(all = diag(2)))
export_case("bcg_alloc", fit, dat$alloc, contrasts = bcg_L, wald = list(all = diag(2)))
fitw <- rma(yi, vi, mods = ~ ablat, weights = 1 / vi, data = dat,
            control = list(threshold = 1e-12, maxiter = 1000))
export_case("bcg_study_weights", fitw, dat$trial, contrasts = bcg_L,
            wald = list(all = diag(2)))

# ----------------------------------------------------------------------------------------------
# (3) generated longitudinal arm-level data: ~10 studies, 2-3 arms, 2-4 weeks per study,
#     yi = arm mean change at a week, V block-diagonal by arm with AR-type correlation between
#     weeks, mods ~ treatment * factor(week), random ~ 1 | study/arm, clustered by study.
#     Also fitted with a user weight matrix W = V^-1 (inverse_var = FALSE in clubSandwich).
# ----------------------------------------------------------------------------------------------
set.seed(20240611)
weeks_all <- c(4, 8, 12, 24)
rows <- list()
Vblocks <- list()
for (s in 1:10) {
  n_arms <- sample(2:3, 1)
  wk <- sort(sample(weeks_all, sample(2:4, 1)))
  u_study <- rnorm(1, 0, 2)
  for (a in seq_len(n_arms)) {
    trt <- as.integer(a > 1)
    n_arm <- sample(20:60, 1)
    sdw <- 8 + 0.3 * wk + runif(length(wk), -1, 1)
    vi <- sdw^2 / n_arm
    rho <- 0.6^(abs(outer(wk, wk, "-")) / 4)
    V <- rho * sqrt(outer(vi, vi))
    u_arm <- rnorm(1, 0, 1.5)
    mu <- 2 + 0.1 * wk + trt * (3 + 0.25 * wk)
    yi <- mu + u_study + u_arm + as.numeric(t(chol(V)) %*% rnorm(length(wk)))
    rows[[length(rows) + 1L]] <- data.frame(study = s, arm = a, treatment = trt, week = wk,
                                            yi = yi)
    Vblocks[[length(Vblocks) + 1L]] <- V
  }
}
dat <- do.call(rbind, rows)
V <- bldiag(Vblocks)
fit <- rma.mv(yi, V, mods = ~ treatment * factor(week), random = ~ 1 | study / arm,
              data = dat)
p <- length(coef(fit))
trt_terms <- grep("treatment", names(coef(fit)))
wk_levels <- sort(unique(dat$week))
L_wk <- t(sapply(wk_levels, function(w) {
  l <- numeric(p)
  names(l) <- names(coef(fit))
  l["treatment"] <- 1
  if (w != wk_levels[1]) l[paste0("treatment:factor(week)", w)] <- 1
  l
}))
rownames(L_wk) <- paste0("trt_week", wk_levels)
C_trt <- diag(p)[trt_terms, , drop = FALSE]
export_case("longitudinal", fit, dat$study, contrasts = list(trt_by_week = L_wk),
            wald = list(treatment = C_trt))
fitW <- rma.mv(yi, V, W = solve(V), mods = ~ treatment * factor(week),
               random = ~ 1 | study / arm, data = dat)
export_case("longitudinal_W", fitW, dat$study, contrasts = list(trt_by_week = L_wk),
            wald = list(treatment = C_trt))

for (nm in names(tab)) {
  out <- do.call(rbind, tab[[nm]])
  write.csv(out, file.path(out_dir, paste0("clubsandwich_cr2_", nm, ".csv")), row.names = FALSE,
            quote = FALSE)
}
