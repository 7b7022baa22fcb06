# Reference for the pipeline on generated arm-level data with several weeks.
#
# Run from the repository root:
#     Rscript tests/reference/pipeline_multiweek.R
# Writes (committed; the Python tests read only these files):
#     tests/reference/pipeline_multiweek_arms.csv     input, in the data/ contract
#     tests/reference/pipeline_multiweek_studies.csv  input, in the data/ contract
#     tests/reference/pipeline_multiweek.csv          expected results (long format)
# Eight generated trials report mean change at weeks 4, 8, 12 and/or 24, with the SD
# given directly, as an SE, or as a t-based 95% CI of the arm mean; one trial is
# three-armed (two microneedling arms sharing one control: combined as in Cochrane
# Handbook 6.5.2.10). Every derivation is redone here by hand, then metafor 3.8
# escalc (MD, SMD) and rma.uni for every method and test, confint (Q-profile) and
# predict, with the tight controls used in metafor_univariate.R.

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "3.8")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
set.seed(20261123)

studies <- sprintf("gen%02d", 1:8)
weeks_of <- list(c(4, 12), c(4, 8, 12), c(12, 24), c(4, 8, 12, 24), c(8, 12), c(12),
                 c(4, 12, 24), c(8, 12, 24))
arms_rows <- list()
truth <- list()
for (s in seq_along(studies)) {
  arms <- if (s == 4) c("MN deep", "MN shallow", "Minoxidil") else c("MN", "Minoxidil")
  trt <- ifelse(grepl("^MN", arms), "minoxidil_microneedling", "minoxidil")
  n <- sample(12:45, length(arms), replace = TRUE)
  report <- c("sd", "se", "ci")[(s %% 3) + 1]
  for (w in weeks_of[[s]]) {
    for (a in seq_along(arms)) {
      mu <- 8 * log1p(w / 4) + ifelse(trt[a] == "minoxidil_microneedling", 0.9 * w, 0) +
        rnorm(1, 0, 3)
      sdv <- runif(1, 8, 25)
      m <- round(mu + rnorm(1, 0, sdv / sqrt(n[a])), 2)
      sdr <- round(sdv * sqrt(rchisq(1, n[a] - 1) / (n[a] - 1)), 2)
      row <- data.frame(study = studies[s], arm = arms[a], treatment = trt[a], week = w,
                        outcome = "hair_density", unit = "hairs/cm2", n = n[a], mean = m,
                        stat = "change", sd = NA, se = NA, ci_lower = NA, ci_upper = NA)
      if (report == "sd") row$sd <- sdr
      if (report == "se") row$se <- round(sdr / sqrt(n[a]), 3)
      if (report == "ci") {
        h <- qt(0.975, n[a] - 1) * sdr / sqrt(n[a])
        row$ci_lower <- round(m - h, 2)
        row$ci_upper <- round(m + h, 2)
      }
      arms_rows[[length(arms_rows) + 1]] <- row
    }
  }
}
arms <- do.call(rbind, arms_rows)
write.csv(arms, file.path("tests", "reference", "pipeline_multiweek_arms.csv"),
          row.names = FALSE, na = "", quote = TRUE)
st <- data.frame(study = studies, year = 2010 + seq_along(studies), design = "parallel",
                 primary = "yes")
write.csv(st, file.path("tests", "reference", "pipeline_multiweek_studies.csv"),
          row.names = FALSE, na = "", quote = TRUE)

# --- derivations by hand -------------------------------------------------------------
arms$sd_d <- ifelse(!is.na(arms$sd), arms$sd,
             ifelse(!is.na(arms$se), arms$se * sqrt(arms$n),
                    sqrt(arms$n) * (arms$ci_upper - arms$ci_lower) / (2 * qt(0.975, arms$n - 1))))
combine <- function(n, m, s) {  # Cochrane Handbook 6.5.2.10, applied in turn
  N <- n[1]; M <- m[1]; S <- s[1]
  for (i in seq_along(n)[-1]) {
    S <- sqrt(((N - 1) * S^2 + (n[i] - 1) * s[i]^2 + N * n[i] / (N + n[i]) *
                 (M^2 + m[i]^2 - 2 * M * m[i])) / (N + n[i] - 1))
    M <- (N * M + n[i] * m[i]) / (N + n[i])
    N <- N + n[i]
  }
  c(N, M, S)
}
cmp <- list()
for (s in studies) for (w in sort(unique(arms$week[arms$study == s]))) {
  g <- arms[arms$study == s & arms$week == w, ]
  e <- g[g$treatment == "minoxidil_microneedling", ]
  c <- g[g$treatment == "minoxidil", ]
  ee <- combine(e$n, e$mean, e$sd_d)
  cc <- combine(c$n, c$mean, c$sd_d)
  cmp[[length(cmp) + 1]] <- data.frame(study = s, week = w, n1 = ee[1], m1 = ee[2], sd1 = ee[3],
                                       n2 = cc[1], m2 = cc[2], sd2 = cc[3])
}
cmp <- do.call(rbind, cmp)

rows <- list()
add <- function(week, measure, method, test, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(week = week, measure = measure, method = method,
                                          test = test, quantity = quantity, value = fmt(value))
}
for (w in sort(unique(cmp$week))) for (measure in c("MD", "SMD")) {
  dat <- escalc(measure = measure, m1i = m1, sd1i = sd1, n1i = n1, m2i = m2, sd2i = sd2,
                n2i = n2, data = cmp[cmp$week == w, ])
  for (i in seq_len(nrow(dat))) {
    add(w, measure, "study", dat$study[i], "yi", dat$yi[i])
    add(w, measure, "study", dat$study[i], "vi", dat$vi[i])
  }
  for (method in c("FE", "REML", "DL", "PM", "ML", "EB", "HS", "HE", "SJ")) {
    for (test in c("z", "knha", "adhoc")) {
      if (nrow(dat) < 2 && method != "FE") next
      ctrl <- list(threshold = 1e-12, maxiter = 1000, tau2.max = 1e8)
      if (method == "PM") ctrl$tol <- 1e-14
      fit <- suppressWarnings(rma(yi, vi, data = dat, method = method, test = test,
                                  control = ctrl))
      pr <- predict(fit)
      add(w, measure, method, test, "k", fit$k)
      add(w, measure, method, test, "estimate", fit$beta[1])
      add(w, measure, method, test, "se", fit$se)
      add(w, measure, method, test, "ci_lower", fit$ci.lb)
      add(w, measure, method, test, "ci_upper", fit$ci.ub)
      add(w, measure, method, test, "pvalue", fit$pval)
      add(w, measure, method, test, "pi_lower", if (is.null(pr$pi.lb)) pr$ci.lb else pr$pi.lb)
      add(w, measure, method, test, "pi_upper", if (is.null(pr$pi.ub)) pr$ci.ub else pr$pi.ub)
      add(w, measure, method, test, "tau2", fit$tau2)
      add(w, measure, method, test, "I2", fit$I2)
      add(w, measure, method, test, "H2", fit$H2)
      add(w, measure, method, test, "Q", fit$QE)
      add(w, measure, method, test, "Q_pvalue", fit$QEp)
      if (method != "FE") {
        ci <- confint(fit, control = list(tol = 1e-14, maxiter = 1000))
        add(w, measure, method, test, "tau2_ci_lower", ci$random["tau^2", "ci.lb"])
        add(w, measure, method, test, "tau2_ci_upper", ci$random["tau^2", "ci.ub"])
      }
    }
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path("tests", "reference", "pipeline_multiweek.csv"), row.names = FALSE,
          quote = FALSE)
cat("wrote", nrow(out), "rows;", nrow(cmp), "comparisons\n")
print(table(cmp$week))
