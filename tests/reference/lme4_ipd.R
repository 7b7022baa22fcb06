# Reference values for hairtrial.models.ipd from lme4 (lmer, REML) and stats::lm.
#
# Run from the repository root:
#     Rscript tests/reference/lme4_ipd.R
# Writes (both committed; the Python tests read only the CSVs, never R):
#     tests/reference/lme4_ipd_inputs.csv  participant-level long table in the participants.csv
#                                          contract: study, participant, side, treatment, week,
#                                          outcome, unit, value (week 0 = baseline; side empty in
#                                          parallel trials)
#     tests/reference/lme4_ipd.csv         study, method, quantity, term, value
# Every number is written with sprintf("%.17g") so Python reads exactly the same doubles; the
# generated hair densities are rounded to 0.1 hairs/cm2 (as a phototrichogram prints them), so
# the inputs are exact in the CSV too.
#
# Three synthetic trials (set.seed(20261201), Mersenne-Twister / Inversion / Rejection), drawn
# from the model of hairtrial.data.simulate (baseline 150 + 30 z, pre-post correlation 0.7,
# follow-up innovations AR(1) with correlation 0.8 four weeks apart, minoxidil plateau 20 with
# time constant 6 weeks, microneedling difference 15 at week 12 with time constant 8 weeks,
# side-to-side correlation 0.5, dropout completely at random with 15% gone by week 24):
#   ipd_par3   parallel, 41 + 38 participants, follow-up weeks 4, 12, 24 (dropouts: unbalanced)
#   ipd_par1   parallel, 27 + 31 participants, one follow-up week (12), no dropout
#   ipd_split  split-scalp, 34 participants (microneedling side randomised), weeks 12 and 24
#   ipd_boundary  parallel, 25 + 25 participants, weeks 12 and 24, the week-24 deviation the
#              negative of the week-12 one: REML participant variance 0 (lme4: singular fit)
#
# Model (per trial): change from baseline at each follow-up week
#     change ~ 0 + factor(week) + factor(week):experimental + baseline_c
# baseline_c = baseline - mean baseline of the trial's units (participant, or participant x side
# in split-scalp trials) that have a baseline value, experimental = 1 for the microneedling
# arm / side. Random effects: (1 | participant) in parallel trials with several follow-up
# weeks; (1 | participant) + (1 | participant:side) in the split-scalp trial. A parallel trial
# with one follow-up week has one row per participant: no random effect is identifiable and the
# model is ANCOVA by least squares, lm(change ~ experimental + baseline_c) (its intercept is the
# week's control mean, its experimental coefficient the contrast).
#
# Tight control: lme4's default bobyqa stops at rhoend = 2e-7 on theta (relative SDs), and lme4
# checks convergence only to 2e-3 (gradient); that does not support a 1e-4 relative comparison
# of variance components. Here bobyqa runs with rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5, and
# every fit is repeated with NLopt's independent BOBYQA implementation (nloptwrap, xtol_rel =
# xtol_abs = 1e-14, ftol_rel = ftol_abs = 1e-15); both must pass lme4's gradient check at
# tol = 1e-6 (default 2e-3), and the script stops unless they agree to 1e-6 relative on every
# recorded quantity (the minqa fit is written). They agree to ~1e-7 on the variance components,
# no better: the REML deviance is flat at its optimum (a relative change of 1e-8 in theta moves
# it by ~1e-15 of ~1900, i.e. by rounding error), so theta is determined to about sqrt(eps) by
# any optimizer; the SEs follow theta, the fixed effects and logLik agree to ~1e-9 and ~1e-14.
# (lme4's own Nelder_Mead stops at max|grad| ~ 2e-5 whatever its tolerances: not used.)
#
# Recorded (term names as hairtrial.models.ipd spells them: C(week)12, C(week)12:experimental,
# baseline): fixed-effect estimates and SEs (lme4's vcov(): sigma^2 (X' V^-1 X)^-1 at the REML
# estimates, i.e. conditional on the variance parameters); variance components participant,
# participant:side, residual (sigma^2); logLik(fit) (REML, with lme4's constants:
# -1/2 [(n - p) log(2 pi) + log|V| + log|X' V^-1 X| + r' V^-1 r]); for lm in addition the t-based
# 95% CI (confint) and p-values, and logLik(fit, REML = TRUE), which is the same REML formula with
# V = sigma^2 I. lme4 gives no p-values (hairtrial reports Wald z for MixedLM fits). A variance
# lme4 puts at 0 (ipd_boundary; `singular` = 1) is compared as "at the boundary" (below 1e-6 of
# the residual variance in hairtrial, whose square-root parameterisation reaches 0 only in the
# limit).

suppressPackageStartupMessages(library(lme4))
stopifnot(packageVersion("lme4") >= "1.1.27")

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20261201)
out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

CONTROL <- "minoxidil"
EXPERIMENTAL <- "minoxidil_microneedling"

# ---------------------------------------------------------------------------------------------
# generation (the model of hairtrial.data.simulate, participant level)
# ---------------------------------------------------------------------------------------------
time_corr <- function(weeks, r = 0.7, phi = 0.8) {
  lag <- abs(outer(weeks, weeks, "-")) / 4
  cc <- r^2 + (1 - r^2) * phi^lag
  cc[1, ] <- r
  cc[, 1] <- r
  diag(cc) <- 1
  cc
}
control_change <- function(w) 20 * (1 - exp(-w / 6))
delta <- function(w) 15 * (1 - exp(-w / 8)) / (1 - exp(-12 / 8))
hazard <- -log(1 - 0.15) / 24

long_rows <- function(study, ids, side, treatment, weeks, y, gone) {
  rows <- list()
  for (k in seq_along(weeks)) {
    keep <- weeks[k] == 0 | gone > weeks[k]
    rows[[k]] <- data.frame(
      study = study, participant = ids[keep], side = side[keep],
      treatment = treatment[keep], week = weeks[k], outcome = "hair_density",
      unit = "hairs/cm2", value = round(y[keep, k], 1), stringsAsFactors = FALSE
    )
  }
  do.call(rbind, rows)
}

gen_parallel <- function(study, n_ctrl, n_exp, follow, dropout = TRUE) {
  weeks <- c(0, follow)
  R <- chol(time_corr(weeks))
  b <- rnorm(1, 150, 15)
  out <- list()
  start <- 0
  for (arm in c(CONTROL, EXPERIMENTAL)) {
    n <- if (arm == CONTROL) n_ctrl else n_exp
    z <- matrix(rnorm(n * length(weeks)), n) %*% R
    mu <- b + control_change(weeks) + (arm == EXPERIMENTAL) * delta(weeks)
    y <- sweep(30 * z, 2, mu, "+")
    gone <- if (dropout) rexp(n, hazard) else rep(Inf, n)
    ids <- sprintf("p%03d", start + seq_len(n))
    start <- start + n
    out[[arm]] <- long_rows(study, ids, rep(NA_character_, n), rep(arm, n), weeks, y, gone)
  }
  do.call(rbind, out)
}

gen_split <- function(study, n, follow, side_r = 0.5) {
  weeks <- c(0, follow)
  m <- length(weeks)
  R <- chol(kronecker(matrix(c(1, side_r, side_r, 1), 2), time_corr(weeks)))
  b <- rnorm(1, 150, 15)
  z <- matrix(rnorm(n * 2 * m), n) %*% R
  mn_left <- runif(n) < 0.5 # microneedling side, randomised per participant
  gone <- rexp(n, hazard)
  ids <- sprintf("p%03d", seq_len(n))
  out <- list()
  for (s in c("left", "right")) {
    zs <- z[, if (s == "left") seq_len(m) else m + seq_len(m), drop = FALSE]
    exp_side <- if (s == "left") mn_left else !mn_left
    mu <- outer(rep(1, n), b + control_change(weeks)) + outer(exp_side, delta(weeks))
    y <- mu + 30 * zs
    trt <- ifelse(exp_side, EXPERIMENTAL, CONTROL)
    out[[s]] <- long_rows(study, ids, rep(s, n), trt, weeks, y, gone)
  }
  do.call(rbind, out)
}

# A boundary case: the two follow-up changes of a participant are negatively correlated (the
# week-24 deviation mirrors the week-12 one), so the REML participant variance is 0 and lme4
# reports a singular fit.
gen_boundary <- function(study, n_ctrl, n_exp) {
  out <- list()
  start <- 0
  for (arm in c(CONTROL, EXPERIMENTAL)) {
    n <- if (arm == CONTROL) n_ctrl else n_exp
    b <- 150 + 30 * rnorm(n)
    e12 <- 12 * rnorm(n)
    e24 <- -e12 + 6 * rnorm(n)
    y <- cbind(b, b + 15 + (arm == EXPERIMENTAL) * 10 + e12 - 0.2 * (b - 150),
               b + 20 + (arm == EXPERIMENTAL) * 14 + e24 - 0.2 * (b - 150))
    ids <- sprintf("p%03d", start + seq_len(n))
    start <- start + n
    out[[arm]] <- long_rows(study, ids, rep(NA_character_, n), rep(arm, n), c(0, 12, 24), y,
                            rep(Inf, n))
  }
  do.call(rbind, out)
}

inputs <- rbind(
  gen_parallel("ipd_par3", 41, 38, c(4, 12, 24)),
  gen_parallel("ipd_par1", 27, 31, 12, dropout = FALSE),
  gen_split("ipd_split", 34, c(12, 24)),
  gen_boundary("ipd_boundary", 25, 25)
)
inputs <- inputs[order(inputs$study, inputs$participant, inputs$side, inputs$week), ]
rownames(inputs) <- NULL
stopifnot(!anyNA(inputs$value))

# ---------------------------------------------------------------------------------------------
# analysis frame: change from baseline, baseline centred at the trial's mean baseline
# ---------------------------------------------------------------------------------------------
analysis_frame <- function(d) {
  d$unit_id <- paste(d$participant, ifelse(is.na(d$side), "", d$side), sep = "|")
  base <- d[d$week == 0, c("unit_id", "value")]
  names(base)[2] <- "baseline"
  f <- merge(d[d$week > 0, ], base, by = "unit_id")
  f$change <- f$value - f$baseline
  f$baseline_c <- f$baseline - mean(base$baseline)
  f$experimental <- as.numeric(f$treatment == EXPERIMENTAL)
  f$week_f <- factor(f$week)
  f
}

term_name <- function(x) {
  x <- sub("^week_f", "C(week)", x)
  x <- sub("^baseline_c$", "baseline", x)
  x
}

records <- list()
add <- function(study, method, quantity, term, value) {
  records[[length(records) + 1]] <<- data.frame(
    study = study, method = method, quantity = quantity, term = term, value = value,
    stringsAsFactors = FALSE
  )
}

ctrl_bobyqa <- lmerControl(
  optimizer = "bobyqa",
  optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5),
  check.conv.grad = .makeCC("warning", tol = 1e-6, relTol = NULL)
)
ctrl_nm <- lmerControl(
  optimizer = "nloptwrap",
  optCtrl = list(algorithm = "NLOPT_LN_BOBYQA", xtol_rel = 1e-14, xtol_abs = 1e-14,
                 ftol_rel = 1e-15, ftol_abs = 1e-15, maxeval = 1e5),
  check.conv.grad = .makeCC("warning", tol = 1e-6, relTol = NULL)
)

lmer_quantities <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  comp <- setNames(vc$vcov, ifelse(is.na(vc$var1), "residual", vc$grp))
  c(
    setNames(fixef(fit), paste0("estimate/", term_name(names(fixef(fit))))),
    setNames(sqrt(diag(as.matrix(vcov(fit)))), paste0("se/", term_name(names(fixef(fit))))),
    setNames(comp, paste0("variance/", names(comp))),
    "logLik/" = as.numeric(logLik(fit))
  )
}

for (study in c("ipd_par3", "ipd_split", "ipd_boundary")) {
  f <- analysis_frame(inputs[inputs$study == study, ])
  form <- if (study == "ipd_split") {
    change ~ 0 + week_f + week_f:experimental + baseline_c + (1 | participant) +
      (1 | participant:side)
  } else {
    change ~ 0 + week_f + week_f:experimental + baseline_c + (1 | participant)
  }
  fit <- suppressMessages(lmer(form, data = f, REML = TRUE, control = ctrl_bobyqa))
  fit_nm <- suppressMessages(lmer(form, data = f, REML = TRUE, control = ctrl_nm))
  q <- lmer_quantities(fit)
  q_nm <- lmer_quantities(fit_nm)
  rel <- abs(q - q_nm) / pmax(abs(q), 1e-300)
  stopifnot(length(fit@optinfo$conv$lme4$code) == 0 || isSingular(fit))
  stopifnot(length(fit_nm@optinfo$conv$lme4$code) == 0 || isSingular(fit_nm))
  stopifnot(isSingular(fit) == (study == "ipd_boundary"))
  stopifnot(max(rel) < 1e-6)
  cat(sprintf("%s: minqa vs NLopt BOBYQA, max relative difference %.2e\n", study, max(rel)))
  parts <- strsplit(names(q), "/", fixed = TRUE)
  for (i in seq_along(q)) {
    add(study, "REML", parts[[i]][1], if (length(parts[[i]]) > 1) parts[[i]][2] else "",
        unname(q[i]))
  }
  add(study, "REML", "n_obs", "", nrow(f))
  add(study, "REML", "n_participants", "", length(unique(f$participant)))
  add(study, "REML", "singular", "", as.numeric(isSingular(fit)))
}

# one follow-up week, parallel: ANCOVA by least squares
f <- analysis_frame(inputs[inputs$study == "ipd_par1", ])
stopifnot(length(unique(f$week)) == 1, !anyDuplicated(f$participant))
fit <- lm(change ~ experimental + baseline_c, data = f)
wk <- unique(f$week)
lm_terms <- c(
  "(Intercept)" = sprintf("C(week)%d", wk),
  experimental = sprintf("C(week)%d:experimental", wk),
  baseline_c = "baseline"
)
cf <- summary(fit)$coefficients
ci <- confint(fit, level = 0.95)
for (nm in rownames(cf)) {
  add("ipd_par1", "OLS", "estimate", lm_terms[[nm]], cf[nm, "Estimate"])
  add("ipd_par1", "OLS", "se", lm_terms[[nm]], cf[nm, "Std. Error"])
  add("ipd_par1", "OLS", "statistic", lm_terms[[nm]], cf[nm, "t value"])
  add("ipd_par1", "OLS", "pvalue", lm_terms[[nm]], cf[nm, "Pr(>|t|)"])
  add("ipd_par1", "OLS", "ci_lower", lm_terms[[nm]], ci[nm, 1])
  add("ipd_par1", "OLS", "ci_upper", lm_terms[[nm]], ci[nm, 2])
}
add("ipd_par1", "OLS", "variance", "residual", summary(fit)$sigma^2)
add("ipd_par1", "OLS", "logLik", "", as.numeric(logLik(fit, REML = TRUE)))
add("ipd_par1", "OLS", "logLik_ml", "", as.numeric(logLik(fit)))
add("ipd_par1", "OLS", "df", "", fit$df.residual)
add("ipd_par1", "OLS", "n_obs", "", nrow(f))
add("ipd_par1", "OLS", "n_participants", "", length(unique(f$participant)))

ref <- do.call(rbind, records)
ref$value <- fmt(ref$value)
write.csv(ref, file.path(out_dir, "lme4_ipd.csv"), row.names = FALSE, quote = TRUE)

inputs_out <- inputs
inputs_out$value <- sprintf("%.1f", inputs_out$value)
inputs_out$side[is.na(inputs_out$side)] <- ""
write.csv(inputs_out, file.path(out_dir, "lme4_ipd_inputs.csv"), row.names = FALSE,
          quote = FALSE)
cat("wrote", file.path(out_dir, "lme4_ipd.csv"), "and", file.path(out_dir, "lme4_ipd_inputs.csv"),
    "\n")

# ---------------------------------------------------------------------------------------------
# one-stage model across trials at one follow-up week (hairtrial.models.ipd.fit_one_stage)
# ---------------------------------------------------------------------------------------------
# change ~ 0 + study + study:baseline_c + experimental + (0 + experimental | study)
#          + (0 + split | pid)
# Trial-specific intercepts and baseline slopes (baseline centred within each trial at the mean
# baseline of its units observed that week), a random treatment effect across trials, a random
# participant effect shared by the two sides in split-scalp trials only (split = 1 there, 0 in
# parallel trials, whose participants then carry no random effect), one residual variance.
# Same optimizer settings and cross-check as above. Written to lme4_ipd_one_stage.csv:
# week, quantity (estimate, se, variance, logLik, k, n_obs, singular), term (experimental;
# tau2, participant, residual).
one_stage_frame <- function(week) {
  parts <- lapply(split(inputs, inputs$study), function(d) {
    f <- analysis_frame(d)
    f <- f[f$week == week, ]
    if (nrow(f) == 0) return(NULL)
    f$baseline_c <- f$baseline - mean(f$baseline)
    f
  })
  f <- do.call(rbind, parts)
  f$split <- as.numeric(!is.na(f$side))
  f$pid <- paste(f$study, f$participant, sep = "|")
  f$study <- factor(f$study)
  f
}
one_stage <- list()
for (week in c(12, 24)) {
  f <- one_stage_frame(week)
  form <- change ~ 0 + study + study:baseline_c + experimental + (0 + experimental | study) +
    (0 + split | pid)
  fit <- suppressMessages(lmer(form, data = f, REML = TRUE, control = ctrl_bobyqa))
  fit_nm <- suppressMessages(lmer(form, data = f, REML = TRUE, control = ctrl_nm))
  take <- function(fit) {
    vc <- as.data.frame(VarCorr(fit))
    c(
      estimate = unname(fixef(fit)["experimental"]),
      se = unname(sqrt(diag(as.matrix(vcov(fit))))[names(fixef(fit)) == "experimental"]),
      tau2 = vc$vcov[vc$grp == "study"],
      participant = vc$vcov[vc$grp == "pid"],
      residual = vc$vcov[vc$grp == "Residual"],
      logLik = as.numeric(logLik(fit))
    )
  }
  q <- take(fit)
  q_nm <- take(fit_nm)
  rel <- abs(q - q_nm) / pmax(abs(q), 1e-300)
  stopifnot(length(fit@optinfo$conv$lme4$code) == 0 || isSingular(fit))
  stopifnot(max(rel[q != 0]) < 1e-6)
  cat(sprintf("one-stage week %d: minqa vs NLopt BOBYQA, max relative difference %.2e\n", week,
              max(rel[q != 0])))
  rows <- data.frame(
    week = week,
    quantity = c("estimate", "se", "variance", "variance", "variance", "logLik", "k", "n_obs",
                 "singular"),
    term = c("experimental", "experimental", "tau2", "participant", "residual", "", "", "", ""),
    value = c(q[["estimate"]], q[["se"]], q[["tau2"]], q[["participant"]], q[["residual"]],
              q[["logLik"]], nlevels(f$study), nrow(f), as.numeric(isSingular(fit))),
    stringsAsFactors = FALSE
  )
  one_stage[[length(one_stage) + 1]] <- rows
}
one_stage <- do.call(rbind, one_stage)
one_stage$value <- fmt(one_stage$value)
write.csv(one_stage, file.path(out_dir, "lme4_ipd_one_stage.csv"), row.names = FALSE,
          quote = TRUE)
cat("wrote", file.path(out_dir, "lme4_ipd_one_stage.csv"), "\n")
