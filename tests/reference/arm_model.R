# Reference for hairtrial.models.arm_model: metafor 3.8 rma.mv on arm-level rows.
#
# Run from the repository root:
#     Rscript tests/reference/arm_model.R
# Writes tests/reference/arm_model.csv (committed; the tests read only the CSV); for the
# multi-week data also clubSandwich CR2 SEs / Satterthwaite df clustered by study.
# Two datasets, both built here by hand from the committed input files, with every
# derivation redone in R:
#   * published: data/arms.csv, hair density at week 12 (3 trials, 2 arms each): n split
#     equally from the total, per-inch^2 converted, the SD of both arms from the between-arm
#     p-value (a bound used as its value);
#   * multiweek: tests/reference/pipeline_multiweek_arms.csv (8 trials, weeks 4-24, SDs given
#     as SD, SE or 95% CI; one three-arm trial).
# Model: yi = arm mean change, V: sd^2/n on the diagonal and, between two weeks of one arm,
# 0.5 * sd_t * sd_s / max(n_t, n_s); mods = ~ factor(week) + factor(week):experimental - 1;
# random = ~ 1 | study/arm; REML; test = "t", dfs = "contain". Tight optimiser settings and
# a bobyqa restart, so that metafor's tolerance does not limit the comparison.

suppressPackageStartupMessages(library(metafor))
suppressPackageStartupMessages(library(clubSandwich))
stopifnot(packageVersion("metafor") >= "3.8")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

fit_arms <- function(d, mods = ~ factor(week) + factor(week):experimental - 1) {
  d <- d[order(d$study, d$arm, d$week), ]
  k <- nrow(d)
  V <- matrix(0, k, k)
  for (i in 1:k) for (j in 1:k) {
    if (d$study[i] == d$study[j] && d$arm[i] == d$arm[j]) {
      r <- if (d$week[i] == d$week[j]) 1 else 0.5
      V[i, j] <- r * d$sd[i] * d$sd[j] / max(d$n[i], d$n[j])
    }
  }
  d$arm_id <- paste(d$study, d$arm, sep = ": ")
  fit1 <- NULL
  for (rt in c(1e-12, 1e-11, 1e-10)) {  # nlminb may report false convergence at 1e-12
    fit1 <- try(rma.mv(mean, V, mods = mods, random = ~ 1 | study/arm_id, data = d,
                       method = "REML", test = "t", dfs = "contain",
                       control = list(rel.tol = rt, iter.max = 10000, eval.max = 10000)),
                silent = TRUE)
    if (!inherits(fit1, "try-error")) break
  }
  fit <- try(rma.mv(mean, V, mods = mods, random = ~ 1 | study/arm_id, data = d,
                    method = "REML", test = "t", dfs = "contain",
                    control = list(optimizer = "bobyqa", rhoend = 1e-12, maxfun = 1e5,
                                   sigma2.init = pmax(fit1$sigma2, 1e-10))), silent = TRUE)
  if (inherits(fit, "try-error") || logLik(fit) < logLik(fit1)) fit <- fit1
  fit
}

rows <- list()
add <- function(dataset, what, name, value) {
  rows[[length(rows) + 1]] <<- data.frame(dataset = dataset, what = what, name = name,
                                          value = fmt(value))
}
record <- function(dataset, fit) {
  weeks <- sort(unique(fit$data$week))
  for (i in seq_along(fit$beta)) {
    nm <- rownames(fit$beta)[i]
    # factor(week)12 -> C(week)12 ; factor(week)12:experimental -> C(week)12:experimental
    nm <- sub("^factor\\(week\\)", "C(week)", nm)
    if (length(weeks) == 1) {  # one week: R cannot build a one-level factor
      nm <- c(intrcpt = sprintf("C(week)%d", weeks), experimental =
                sprintf("C(week)%d:experimental", weeks))[[nm]]
    }
    add(dataset, "estimate", nm, fit$beta[i])
    add(dataset, "se", nm, fit$se[i])
    add(dataset, "df", nm, fit$ddf[i])
    add(dataset, "ci_lower", nm, fit$ci.lb[i])
    add(dataset, "ci_upper", nm, fit$ci.ub[i])
    add(dataset, "pvalue", nm, fit$pval[i])
  }
  add(dataset, "sigma2", "study", fit$sigma2[1])
  add(dataset, "sigma2", "study/arm", fit$sigma2[2])
  add(dataset, "fit", "logLik", logLik(fit))
}

# published
a <- read.csv("data/arms.csv", stringsAsFactors = FALSE)
a <- a[a$outcome == "hair_density" & a$week == 12, ]
total <- c(dhurat2013 = 100, kumar2018 = 68, adistri2024 = 36)
a$n <- floor(total[a$study] / 2)
a$mean <- ifelse(a$unit == "hairs/inch2", a$mean / 6.4516, a$mean)
a$sd <- NA
for (s in unique(a$study)) {
  g <- a[a$study == s, ]
  md <- g$mean[g$treatment == "minoxidil_microneedling"] - g$mean[g$treatment == "minoxidil"]
  n1 <- g$n[1]; n2 <- g$n[2]
  a$sd[a$study == s] <- abs(md) / qt(1 - g$p_value[1] / 2, n1 + n2 - 2) / sqrt(1 / n1 + 1 / n2)
}
a$experimental <- as.numeric(a$treatment == "minoxidil_microneedling")
# one week only: ~ experimental is the same model as the week-factor parametrisation
record("published", fit_arms(a, mods = ~ experimental))

# multiweek
m <- read.csv("tests/reference/pipeline_multiweek_arms.csv", stringsAsFactors = FALSE)
m$sd <- ifelse(!is.na(m$sd), m$sd, ifelse(!is.na(m$se), m$se * sqrt(m$n),
               sqrt(m$n) * (m$ci_upper - m$ci_lower) / (2 * qt(0.975, m$n - 1))))
m$experimental <- as.numeric(m$treatment == "minoxidil_microneedling")
fm <- fit_arms(m)
record("multiweek", fm)
# cluster-robust CR2 inference by study (arm_model.robust: CR2)
ct <- coef_test(fm, vcov = "CR2", cluster = fm$data$study, test = "Satterthwaite")
for (i in seq_len(nrow(ct))) {
  nm <- sub("^factor\\(week\\)", "C(week)", ct$Coef[i])
  add("multiweek_cr2", "se", nm, ct$SE[i])
  add("multiweek_cr2", "df", nm, ct$df_Satt[i])
  add("multiweek_cr2", "pvalue", nm, ct$p_Satt[i])
}

out <- do.call(rbind, rows)
write.csv(out, file.path("tests", "reference", "arm_model.csv"), row.names = FALSE, quote = FALSE)
cat("wrote", nrow(out), "rows\n")
