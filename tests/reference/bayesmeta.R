# Reference values for hairtrial.models.bayes from the R package bayesmeta 3.4 (Röver 2020).
#
# Run from the repository root, after tests/reference/bayes_integrate.R (whose inputs and
# priors files this script reads, so that both references cover the same cases):
#     Rscript tests/reference/bayesmeta.R
# Writes tests/reference/bayesmeta.csv (dataset, prior, quantity, value; committed, the Python
# tests read only the CSV). Every number is written with sprintf("%.17g").
#
# bayesmeta 3.4 is not in Debian: it was installed with `R CMD INSTALL` from the CRAN source
# (with forestplot 3.1.6 from its CRAN source; metafor, mvtnorm, numDeriv, checkmate, abind
# from Debian r-cran-*).
#
# Settings:
#   * interval.type = "central" (bayesmeta's default is "shortest"; hairtrial reports central
#     intervals).
#   * bayesmeta integrates over tau with integrate() (rel.tol.integrate = 2^16 * eps ~ 1.5e-11,
#     the default, kept) and roots with uniroot(tol = rel.tol.integrate): the tau summaries
#     (mean, SD, median, quantiles, CDF, density) and the marginal likelihood are accurate to
#     ~1e-9 or better.
#   * The distributions of mu, of a new trial's effect and of the shrunken trial effects are
#     DIRECT mixtures over a tau grid (Röver & Friede 2017) whose accuracy is set by `delta`
#     (bound on the symmetrised KL divergence between neighbouring mixture components) and
#     `epsilon` (tail probability of tau left out). The defaults (0.01, 1e-4) give ~1e-3
#     relative accuracy; here delta = 1e-4 and epsilon = 1e-7 (a few hundred support points;
#     the error shrinks about linearly in delta: on the published MD data the error of the
#     posterior mean of mu was 1.2e-3, 1.2e-4, 1.2e-5, 1.2e-6 (absolute, mean 6.84) for
#     delta = 1e-2 ... 1e-5, and delta = 1e-5 takes ~15 s per fit), which bounds those
#     quantities' error at ~1e-5 relative (see the tolerances in tests/test_bayes.py).
#   * The mode of tau comes from optimize() with its default tol (~1.2e-4 absolute).
#   * The fixed-tau prior has no bayesmeta counterpart and is not run; the marginal likelihood
#     is only reported by bayesmeta for the proper (normal) mu prior.
#   * Moments that do not exist (e.g. the SD of tau with k = 2 and a half-Cauchy prior) are
#     still written as bayesmeta computes them; the tests skip them (hairtrial reports Inf/NaN).

suppressPackageStartupMessages(library(bayesmeta))
stopifnot(packageVersion("bayesmeta") == "3.4")

out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
DELTA <- 1e-4
EPSILON <- 1e-7

inputs <- read.csv(file.path(out_dir, "bayes_integrate_inputs.csv"))
priors <- read.csv(file.path(out_dir, "bayes_integrate_priors.csv"), na.strings = "NA")

tau_prior_fun <- function(pr) {
  switch(pr$family,
    halfnormal = function(t) dhalfnormal(t, scale = pr$scale),
    halfcauchy = function(t) dhalfcauchy(t, scale = pr$scale),
    halft = function(t) dhalft(t, df = pr$df, scale = pr$scale),
    lognormal = if (pr$on == "tau2") {
      function(t) ifelse(t > 0, dlnorm(t^2, pr$meanlog, pr$sdlog) * 2 * t, 0)
    } else {
      function(t) dlnorm(t, pr$meanlog, pr$sdlog)
    },
    uniform = function(t) dunif(t, 0, pr$upper))
}

# Optional arguments: dataset names to run (output then goes to bayesmeta_<first>.csv in
# $BAYESMETA_PARTS or the session's temporary directory, for running parts in parallel; the
# rows of the parts together are those of bayesmeta.csv, in another order).
only <- commandArgs(trailingOnly = TRUE)
rows <- list()
for (i in seq_len(nrow(priors))) {
  pr <- priors[i, ]
  if (pr$family == "fixed") next
  if (length(only) > 0 && !(pr$dataset %in% only)) next
  d <- inputs[inputs$dataset == pr$dataset, ]
  d <- d[order(d$study), ]
  t0 <- proc.time()[["elapsed"]]
  run <- function(eps) {
    suppressWarnings(bayesmeta(
      y = d$yi, sigma = d$sei, tau.prior = tau_prior_fun(pr),
      mu.prior.mean = if (is.na(pr$mu_mean)) NA else pr$mu_mean,
      mu.prior.sd = if (is.na(pr$mu_sd)) NA else pr$mu_sd,
      interval.type = "central", delta = DELTA, epsilon = eps))
  }
  # With a bounded (uniform) prior, bayesmeta's search for the 1 - epsilon quantile of tau
  # can fail (the numerical CDF stays just below 1 - epsilon at the bound, and the search
  # interval grows without limit): then retry with bayesmeta's default epsilon = 1e-4.
  # If that fails too (pposterior() then integrates the density far beyond the bound and
  # integrate() reports a divergent integral), the case is left out (quantity "failed").
  eps_used <- EPSILON
  bm <- tryCatch(run(EPSILON), error = function(e) NULL)
  if (is.null(bm)) {
    eps_used <- 1e-4
    bm <- tryCatch(run(eps_used), error = function(e) NULL)
  }
  if (is.null(bm)) {
    cat(sprintf("%-16s %-12s bayesmeta failed\n", pr$dataset, pr$prior))
    rows[[i]] <- data.frame(dataset = pr$dataset, prior = pr$prior, quantity = "failed",
                            value = "1")
    next
  }
  res <- list()
  add <- function(q, v) res[[q]] <<- v
  sm <- bm$summary
  add("tau_mode", sm["mode", "tau"])
  add("tau_median", sm["median", "tau"])
  add("tau_mean", sm["mean", "tau"])
  add("tau_sd", sm["sd", "tau"])
  add("tau_q025", sm["95% lower", "tau"])
  add("tau_q975", sm["95% upper", "tau"])
  add("tau_cdf", bm$pposterior(tau = pr$x_tau))
  add("tau_pdf", bm$dposterior(tau = pr$x_tau))
  add("mu_median", sm["median", "mu"])
  add("mu_mean", sm["mean", "mu"])
  add("mu_sd", sm["sd", "mu"])
  add("mu_q025", sm["95% lower", "mu"])
  add("mu_q975", sm["95% upper", "mu"])
  add("mu_cdf", bm$pposterior(mu = pr$x_mu))
  add("mu_pdf", bm$dposterior(mu = pr$x_mu))
  add("p_positive", 1 - bm$pposterior(mu = 0))
  add("p_greater", 1 - bm$pposterior(mu = pr$x_mu))
  add("p_less", bm$pposterior(mu = pr$x_mu))
  add("pred_median", sm["median", "theta"])
  add("pred_mean", sm["mean", "theta"])
  add("pred_sd", sm["sd", "theta"])
  add("pred_q025", sm["95% lower", "theta"])
  add("pred_q975", sm["95% upper", "theta"])
  for (j in seq_len(nrow(d))) {
    add(paste0("theta_mean.", j), bm$theta["mean", j])
    add(paste0("theta_sd.", j), bm$theta["sd", j])
    add(paste0("theta_median.", j), bm$theta["median", j])
    add(paste0("theta_q025.", j), bm$theta["95% lower", j])
    add(paste0("theta_q975.", j), bm$theta["95% upper", j])
  }
  add("log_marglik", log(bm$marginal.likelihood))
  add("n_support", nrow(bm$support))
  add("epsilon", eps_used)
  cat(sprintf("%-16s %-12s %4d support points %6.1f s\n", pr$dataset, pr$prior,
              nrow(bm$support), proc.time()[["elapsed"]] - t0))
  rows[[i]] <- data.frame(dataset = pr$dataset, prior = pr$prior, quantity = names(res),
                          value = fmt(unlist(res)))
}
for (dn in if (length(only) > 0) only else unique(inputs$dataset)) {
  d <- inputs[inputs$dataset == dn, ]
  rows[[length(rows) + 1]] <- data.frame(dataset = dn, prior = "", quantity = "uisd",
                                         value = fmt(uisd(d$n, d$sei)))
}
out_file <- if (length(only) > 0) {
  file.path(Sys.getenv("BAYESMETA_PARTS", tempdir()), paste0("bayesmeta_", only[1], ".csv"))
} else {
  file.path(out_dir, "bayesmeta.csv")
}
write.csv(do.call(rbind, rows), out_file, row.names = FALSE, quote = FALSE)
