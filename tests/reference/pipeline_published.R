# End-to-end reference for the default analysis on the published data
# (hair density, week 12, minoxidil + microneedling vs minoxidil alone).
#
# Run from the repository root:
#     Rscript tests/reference/pipeline_published.R
# Writes tests/reference/pipeline_published.csv (committed; the Python tests read
# only the CSV). Every derivation the pipeline makes is redone here by hand from the
# numbers in data/arms.csv and data/studies.csv, independently of the Python code:
#   * per-arm n: total randomised split equally (dhurat 100, kumar 68, adistri 36);
#   * kumar2018 per-inch^2 counts divided by 6.4516;
#   * SD from the between-arm p-value (Cochrane Handbook 6.5.2.3), a bound used as
#     its value: sd = |MD| / qt(1 - p/2, n1 + n2 - 2) / sqrt(1/n1 + 1/n2);
#   * escalc MD and SMD (metafor defaults), rma.uni for every method and test,
#     confint() Q-profile CI and predict() prediction interval.
# Tight controls as in metafor_univariate.R (threshold 1e-12, tol 1e-14, tau2.max 1e8).

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "3.8")

fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

arm <- data.frame(
  study = c("adistri2024", "dhurat2013", "kumar2018"),
  n_total = c(36, 100, 68),
  m_e = c(95.6, 91.4, 12.52 / 6.4516),
  m_c = c(52.4, 22.2, 1.89 / 6.4516),
  p = c(0.001, 0.039, 0.0001)
)
arm$n_e <- floor(arm$n_total / 2)
arm$n_c <- floor(arm$n_total / 2)
md <- arm$m_e - arm$m_c
tval <- qt(1 - arm$p / 2, arm$n_e + arm$n_c - 2)
arm$sd <- abs(md) / tval / sqrt(1 / arm$n_e + 1 / arm$n_c)

rows <- list()
add <- function(measure, method, test, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(measure = measure, method = method, test = test,
                                          quantity = quantity, value = fmt(value))
}
for (measure in c("MD", "SMD")) {
  dat <- escalc(measure = measure, m1i = m_e, sd1i = sd, n1i = n_e,
                m2i = m_c, sd2i = sd, n2i = n_c, data = arm)
  for (i in seq_len(nrow(dat))) {
    add(measure, "study", dat$study[i], "yi", dat$yi[i])
    add(measure, "study", dat$study[i], "vi", dat$vi[i])
    add(measure, "study", dat$study[i], "sd", arm$sd[i])
  }
  for (method in c("FE", "REML", "DL", "PM", "ML", "EB", "HS", "HE", "SJ")) {
    for (test in c("z", "knha", "adhoc")) {
      ctrl <- list(threshold = 1e-12, maxiter = 1000, tau2.max = 1e8)
      if (method == "PM") ctrl$tol <- 1e-14
      fit <- suppressWarnings(rma(yi, vi, data = dat, method = method, test = test,
                                  control = ctrl))
      pr <- predict(fit)
      add(measure, method, test, "estimate", fit$beta[1])
      add(measure, method, test, "se", fit$se)
      add(measure, method, test, "ci_lower", fit$ci.lb)
      add(measure, method, test, "ci_upper", fit$ci.ub)
      add(measure, method, test, "pvalue", fit$pval)
      add(measure, method, test, "pi_lower", if (is.null(pr$pi.lb)) pr$ci.lb else pr$pi.lb)
      add(measure, method, test, "pi_upper", if (is.null(pr$pi.ub)) pr$ci.ub else pr$pi.ub)
      add(measure, method, test, "tau2", fit$tau2)
      add(measure, method, test, "I2", fit$I2)
      add(measure, method, test, "H2", fit$H2)
      add(measure, method, test, "Q", fit$QE)
      add(measure, method, test, "Q_pvalue", fit$QEp)
      if (method != "FE") {
        ci <- confint(fit, control = list(tol = 1e-14, maxiter = 1000))
        add(measure, method, test, "tau2_ci_lower", ci$random["tau^2", "ci.lb"])
        add(measure, method, test, "tau2_ci_upper", ci$random["tau^2", "ci.ub"])
      }
    }
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path("tests", "reference", "pipeline_published.csv"), row.names = FALSE,
          quote = FALSE)
cat("wrote", nrow(out), "rows\n")
