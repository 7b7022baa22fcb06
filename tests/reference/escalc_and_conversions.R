#!/usr/bin/env Rscript
# Reference values for src/hairtrial/effects.py and src/hairtrial/dispersion.py.
#
#   cd tests/reference && Rscript escalc_and_conversions.R
#
# writes escalc_reference.csv (long format: section, case, field, value, origin).
# The tests read only the CSV; R is needed only to regenerate it.
# Generated with R 4.x and metafor 3.8-1 (Debian r-cran-metafor).
#
# 'origin' says where each expected value comes from:
#   metafor         computed by metafor::escalc() / metafor:::.cmicalc()
#   raw-data        recomputed from simulated raw data with base R (mean, sd,
#                   var, cor, t.test): an exact, formula-independent check
#   hand            the published formula evaluated in R (qt, qnorm, lgamma);
#                   used where no R implementation is installed (see notes)
#   input           an input of the case
#
# Notes
# * SMCRP (standardised mean change, raw-score standardisation by the pooled SD
#   of both occasions) exists only in metafor >= 4.6-0. metafor 3.8-1 cannot
#   compute it, so section 'SMCRP_hand' evaluates the metafor >= 4.6-0 formula
#   (R/escalc.r: mi = 2(n-1)/(1+r^2); yi = cmi * (m1-m2)/sqrt((sd1^2+sd2^2)/2);
#   vi = 2(1-r)/n + yi^2 (1+r^2)/(4n)) by hand, with metafor 3.8-1's own
#   .cmicalc(). Two cross-checks use what metafor 3.8-1 can compute:
#   - SMCRP_vs_SMCR: for sd1 = sd2 and r = 1, SMCRP reduces exactly to
#     escalc("SMCR") (both yi and vi);
#   - SMCRP_yi_vs_SMD: for any r, SMCRP's yi equals escalc("SMD") with
#     n1 = n2 = mi/2 + 1 (non-integer group sizes), because then SMD's pooled
#     SD is sqrt((sd1^2+sd2^2)/2) and its correction factor is cmi(mi).
# * No R implementation of Luo (2018) / Wan (2014) / Shi (2020) is installable
#   here (no Debian package of estmeansd or meta; metafor's conv.fivenum()
#   appeared in 4.0-0). Sections 'luo_mean' and 'wan_shi_sd' therefore evaluate
#   the published equations by hand, as written in metafor >= 4.0
#   R/conv.fivenum.r with dist = "norm": Luo 2018 scenario S1/S2/S3 weights;
#   Wan 2014 eq. 9 (xi) and eq. 16 (eta); Shi 2020 eq. 10 (w = 1/(1+0.07 n^0.6)).

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") == "3.8.1")

rows <- list()
# (formals start with '.' so that value names such as 'se' or 'n' cannot
# partially match them)
add <- function(.section, .case, .origin, ...) {
  vals <- list(...)
  for (nm in names(vals)) {
    stopifnot(length(vals[[nm]]) == 1L)
    rows[[length(rows) + 1L]] <<- data.frame(
      section = .section, case = as.character(.case), field = nm,
      value = sprintf("%.17g", as.numeric(vals[[nm]])), origin = .origin,
      stringsAsFactors = FALSE
    )
  }
}
add_inputs <- function(.section, .case, ...) add(.section, .case, "input", ...)

# ---------------------------------------------------------------- MD and SMD
two_group <- data.frame(
  case = paste0("normand1999_", dat.normand1999$study),
  m1 = dat.normand1999$m1i, sd1 = dat.normand1999$sd1i, n1 = dat.normand1999$n1i,
  m2 = dat.normand1999$m2i, sd2 = dat.normand1999$sd2i, n2 = dat.normand1999$n2i
)
hand_rows <- data.frame(
  case = c("small_n3_n3", "small_n4_n6", "small_n5_n10", "small_n10_n8",
           "small_neg_n7_n9", "hair_density_n40_n38", "large_n5000_n5000",
           "large_n20000_n15000", "unequal_sd_n3_n30", "zero_diff_n12_n15"),
  m1  = c(12.5, 160.2, 0.35, -3.1, 20.0, 168.7, 101.3, 55.05, 7.0, 4.2),
  sd1 = c(2.1, 30.5, 0.12, 1.7, 4.0, 34.2, 15.2, 9.87, 0.5, 1.1),
  n1  = c(3, 4, 5, 10, 7, 40, 5000, 20000, 3, 12),
  m2  = c(10.0, 150.4, 0.28, -1.4, 26.5, 150.1, 100.0, 55.00, 5.0, 4.2),
  sd2 = c(1.4, 28.1, 0.09, 2.2, 5.5, 31.9, 14.8, 10.02, 6.0, 0.9),
  n2  = c(3, 6, 10, 8, 9, 38, 5000, 15000, 30, 15)
)
two_group <- rbind(two_group, hand_rows)

for (measure in c("MD", "SMD")) {
  es <- escalc(measure, m1i = m1, sd1i = sd1, n1i = n1, m2i = m2, sd2i = sd2,
               n2i = n2, data = two_group)
  ci95 <- summary(es)              # normal-based per-study CI, as in forest()
  ci90 <- summary(es, level = 90)
  for (i in seq_len(nrow(two_group))) {
    d <- two_group[i, ]
    add_inputs(measure, d$case, m1 = d$m1, sd1 = d$sd1, n1 = d$n1,
               m2 = d$m2, sd2 = d$sd2, n2 = d$n2)
    add(measure, d$case, "metafor", yi = es$yi[i], vi = es$vi[i],
        ci_lb = ci95$ci.lb[i], ci_ub = ci95$ci.ub[i],
        ci90_lb = ci90$ci.lb[i], ci90_ub = ci90$ci.ub[i])
  }
}

# ---------------------------------------------------------------- Hedges' c(m)
# .cmicalc() is exp(lgamma(m/2) - log(sqrt(m/2)) - lgamma((m-1)/2)): for very
# large m the two lgamma values are ~m/2*log(m/2) and their difference loses
# about log10(m) digits, so R and scipy can legitimately differ by more than
# 1e-10 beyond m ~ 1e5. Reference points stay below that (trial arms are far
# smaller); the Python tests check the large-m behaviour separately.
for (m in c(1.5, 2, 3, 4.5, 10, 37.25, 100, 343, 344, 1e4, 3.5e4)) {
  add_inputs("hedges_c", m, m = m)
  add("hedges_c", m, "metafor", c = metafor:::.cmicalc(m))
}

# ---------------------------------------------------------------- paired (split-scalp)
# Morris (2008) data (as in metafor's morris2008 analysis example): post vs pre
# in treatment and control groups, used here as 'side 1' vs 'side 2'.
paired <- data.frame(
  case = c(paste0("morris2008_T", 1:5), paste0("morris2008_C", 1:5),
           "split_scalp_n8_r0.6", "split_scalp_n3_r0", "split_scalp_n25_rneg",
           "split_scalp_n12_r0.95", "split_scalp_n400_r0.3"),
  m1  = c(38.5, 26.8, 0.7, 75.9, 36.0, 19.7, 25.3, 0.6, 60.7, 33.4,
          142.0, 12.0, 88.0, 171.3, 160.0),
  sd1 = c(11.6, 4.1, 0.1, 4.4, 4.6, 14.8, 3.3, 0.2, 17.9, 6.9,
          25.0, 3.0, 20.0, 33.0, 28.0),
  m2  = c(30.6, 23.5, 0.5, 53.4, 35.6, 23.1, 24.9, 0.6, 55.7, 34.8,
          131.5, 9.5, 91.0, 165.0, 152.5),
  sd2 = c(15.0, 3.1, 0.1, 14.5, 4.7, 13.8, 4.1, 0.2, 17.3, 3.1,
          22.0, 2.0, 18.0, 31.0, 27.0),
  n   = c(20, 50, 9, 10, 14, 20, 42, 9, 11, 14, 8, 3, 25, 12, 400),
  r   = c(.47, .64, .77, .89, .44, .47, .64, .77, .89, .44, 0.6, 0, -0.3, 0.95, 0.3)
)
es <- escalc("MC", m1i = m1, sd1i = sd1, m2i = m2, sd2i = sd2, ni = n, ri = r,
             data = paired)
smcrp_hand <- function(m1, sd1, m2, sd2, n, r) {
  sdp <- sqrt((sd1^2 + sd2^2) / 2)
  mi <- 2 * (n - 1) / (1 + r^2)
  yi <- metafor:::.cmicalc(mi) * (m1 - m2) / sdp
  vi <- 2 * (1 - r) / n + yi^2 * (1 + r^2) / (4 * n)
  list(yi = yi, vi = vi, mi = mi)
}
for (i in seq_len(nrow(paired))) {
  d <- paired[i, ]
  for (sec in c("MC", "SMCRP_hand", "SMCRP_yi_vs_SMD")) {
    add_inputs(sec, d$case, m1 = d$m1, sd1 = d$sd1, m2 = d$m2, sd2 = d$sd2,
               n = d$n, r = d$r)
  }
  add("MC", d$case, "metafor", yi = es$yi[i], vi = es$vi[i])
  h <- smcrp_hand(d$m1, d$sd1, d$m2, d$sd2, d$n, d$r)
  add("SMCRP_hand", d$case, "hand", yi = h$yi, vi = h$vi)
  # cross-check of yi through metafor 3.8-1's SMD with n1 = n2 = mi/2 + 1
  nn <- h$mi / 2 + 1
  s <- escalc("SMD", m1i = d$m1, sd1i = d$sd1, n1i = nn, m2i = d$m2, sd2i = d$sd2,
              n2i = nn)
  add("SMCRP_yi_vs_SMD", d$case, "metafor", yi = s$yi)
}

# SMCRP with sd1 = sd2 and r = 1 equals metafor 3.8-1's SMCR (raw-score
# standardisation by sd1, mi = n - 1, vi = 2(1-r)/n + yi^2/(2n)).
same_sd <- data.frame(
  case = c("r1_n5", "r1_n20", "r1_n3_neg", "r1_n300"),
  m1 = c(12.0, 160.0, 3.0, 55.5), m2 = c(10.0, 150.0, 4.5, 54.0),
  sd = c(2.5, 30.0, 1.2, 9.0), n = c(5, 20, 3, 300), r = 1
)
for (i in seq_len(nrow(same_sd))) {
  d <- same_sd[i, ]
  s <- escalc("SMCR", m1i = d$m1, m2i = d$m2, sd1i = d$sd, ni = d$n, ri = d$r)
  add_inputs("SMCRP_vs_SMCR", d$case, m1 = d$m1, sd1 = d$sd, m2 = d$m2, sd2 = d$sd,
             n = d$n, r = d$r)
  add("SMCRP_vs_SMCR", d$case, "metafor", yi = s$yi, vi = s$vi)
}

# ---------------------------------------------------------------- combining groups
set.seed(20240611)
comb_cases <- list(
  two_small = list(n = c(4, 6), mu = c(10, 14), s = c(2, 3)),
  two_dose = list(n = c(40, 38), mu = c(160, 172), s = c(30, 35)),
  three = list(n = c(3, 11, 25), mu = c(5, 5.5, 9), s = c(1, 2, 4)),
  four_large_means = list(n = c(50, 60, 70, 80), mu = c(1e4, 1e4 + 1, 1e4 + 3, 1e4 - 2),
                          s = c(1, 1.5, 2, 0.5)),
  two_one_each = list(n = c(1, 1), mu = c(3, 7), s = c(0, 0))
)
for (nm in names(comb_cases)) {
  cc <- comb_cases[[nm]]
  xs <- mapply(function(n, mu, s) rnorm(n, mu, s), cc$n, cc$mu, cc$s, SIMPLIFY = FALSE)
  gn <- sapply(xs, length)
  gm <- sapply(xs, mean)
  gs <- sapply(xs, function(x) if (length(x) > 1) sd(x) else 0)
  k <- length(xs)
  vals <- c(list(k = k), setNames(as.list(gn), paste0("n_", seq_len(k))),
            setNames(as.list(gm), paste0("mean_", seq_len(k))),
            setNames(as.list(gs), paste0("sd_", seq_len(k))))
  do.call(add_inputs, c(list("combine_raw", nm), vals))
  do.call(add_inputs, c(list("combine_hand", nm), vals))
  all <- unlist(xs)
  add("combine_raw", nm, "raw-data", n = length(all), mean = mean(all), sd = sd(all))
  # Cochrane Handbook Table 6.5.a, applied iteratively (first with second, ...)
  N <- gn[1]; M <- gm[1]; S <- gs[1]
  for (j in seq_len(k)[-1]) {
    N2 <- gn[j]; M2 <- gm[j]; S2 <- gs[j]
    S <- sqrt(((N - 1) * S^2 + (N2 - 1) * S2^2 + N * N2 / (N + N2) * (M^2 + M2^2 - 2 * M * M2)) /
                (N + N2 - 1))
    M <- (N * M + N2 * M2) / (N + N2)
    N <- N + N2
  }
  add("combine_hand", nm, "hand", n = N, mean = M, sd = S)
}

# ---------------------------------------------------------------- SD from SE
for (cs in list(c(2, 25), c(0.37, 7), c(1.25, 1000))) {
  add_inputs("sd_from_se", paste(cs, collapse = "_"), se = cs[1], n = cs[2])
  add("sd_from_se", paste(cs, collapse = "_"), "hand", sd = cs[1] * sqrt(cs[2]))
}

# ---------------------------------------------------------------- SD from CI of one mean
for (cs in list(list(n = 3, mu = 10, s = 2, level = 0.95),
                list(n = 8, mu = 150, s = 30, level = 0.95),
                list(n = 25, mu = 50, s = 12, level = 0.90),
                list(n = 60, mu = 0.4, s = 0.1, level = 0.99),
                list(n = 2000, mu = 20, s = 5, level = 0.95))) {
  x <- rnorm(cs$n, cs$mu, cs$s)
  ci <- t.test(x, conf.level = cs$level)$conf.int
  nm <- sprintf("n%d_level%g", cs$n, cs$level)
  add_inputs("sd_from_ci", nm, lower = ci[1], upper = ci[2], n = cs$n, level = cs$level)
  add("sd_from_ci", nm, "raw-data", sd = sd(x))
}
# the Cochrane Handbook 6.5.2.2 formula by hand
for (cs in list(c(44, 56, 25, 0.95), c(1.2, 3.4, 10, 0.9), c(100, 130, 400, 0.95))) {
  nm <- paste(cs, collapse = "_")
  add_inputs("sd_from_ci_hand", nm, lower = cs[1], upper = cs[2], n = cs[3], level = cs[4])
  add("sd_from_ci_hand", nm, "hand",
      sd = sqrt(cs[3]) * (cs[2] - cs[1]) / (2 * qt((1 + cs[4]) / 2, cs[3] - 1)))
}

# ---------------------------------------------------------------- pooled SD from t / p
pooled_sd <- function(x, y) {
  sqrt(((length(x) - 1) * var(x) + (length(y) - 1) * var(y)) / (length(x) + length(y) - 2))
}
for (cs in list(list(n1 = 3, n2 = 4, d = 3, s = 2),
                list(n1 = 10, n2 = 12, d = 0.5, s = 1),
                list(n1 = 25, n2 = 22, d = 20, s = 30),
                list(n1 = 60, n2 = 55, d = 1.5, s = 1),
                list(n1 = 40, n2 = 45, d = -8, s = 12))) {
  x <- rnorm(cs$n1, 100 + cs$d, cs$s)
  y <- rnorm(cs$n2, 100, cs$s)
  tt <- t.test(x, y, var.equal = TRUE)
  nm <- sprintf("n%d_n%d", cs$n1, cs$n2)
  md <- mean(x) - mean(y)
  for (sec in c("pooled_sd_from_p_raw", "pooled_sd_from_t_raw")) {
    add_inputs(sec, nm, mean_diff = md, n1 = cs$n1, n2 = cs$n2)
    add(sec, nm, "raw-data", sd = pooled_sd(x, y))
  }
  add_inputs("pooled_sd_from_p_raw", nm, p = tt$p.value)
  add_inputs("pooled_sd_from_t_raw", nm, t = unname(tt$statistic))
}
# hand (Cochrane Handbook 6.5.2.3), including p-values given as bounds
for (cs in list(c(3, 25, 22, 0.008, 1), c(-2.4, 15, 15, 0.001, 1), c(5, 100, 98, 1e-4, 1),
                c(0.8, 6, 5, 0.04, 0), c(1.1, 30, 31, 0.5, 1))) {
  nm <- paste(cs, collapse = "_")
  two_sided <- cs[5] == 1
  tq <- if (two_sided) qt(cs[4] / 2, cs[2] + cs[3] - 2, lower.tail = FALSE) else
    qt(cs[4], cs[2] + cs[3] - 2, lower.tail = FALSE)
  add_inputs("pooled_sd_from_p_hand", nm, mean_diff = cs[1], n1 = cs[2], n2 = cs[3],
             p = cs[4], two_sided = cs[5])
  add("pooled_sd_from_p_hand", nm, "hand", sd = abs(cs[1]) / tq / sqrt(1 / cs[2] + 1 / cs[3]))
}

# ---------------------------------------------------------------- paired: SD of differences from p
for (cs in list(list(n = 4, d = 2, s = 1), list(n = 12, d = 8, s = 10),
                list(n = 30, d = -1, s = 2), list(n = 200, d = 0.3, s = 1))) {
  x0 <- rnorm(cs$n, 50, 10)
  x1 <- x0 + rnorm(cs$n, cs$d, cs$s)
  dd <- x1 - x0
  tt <- t.test(x1, x0, paired = TRUE)
  nm <- sprintf("n%d", cs$n)
  add_inputs("sd_change_diff_from_p_raw", nm, mean_diff = mean(dd), n = cs$n, p = tt$p.value,
             t = unname(tt$statistic))
  add("sd_change_diff_from_p_raw", nm, "raw-data", sd = sd(dd))
  # SD of change from the two levels and their correlation (Cochrane 6.5.2.8)
  add_inputs("sd_change_from_levels_raw", nm, sd_baseline = sd(x0), sd_followup = sd(x1),
             r = cor(x0, x1))
  add("sd_change_from_levels_raw", nm, "raw-data", sd = sd(dd))
}

# ---------------------------------------------------------------- Luo mean, Wan / Shi SD
xi <- function(n) 2 * qnorm((n - 0.375) / (n + 0.25))
eta <- function(n) 2 * qnorm((0.75 * n - 0.125) / (n + 0.25))
fivenums <- list(c(2, 6, 9, 17, 41), c(0, 10, 15, 22, 50), c(120, 140, 151, 160, 185),
                 c(-3.5, -1.2, 0.1, 1.0, 2.2))
for (fv in fivenums) {
  for (n in c(5, 7, 30, 100, 1000)) {
    a <- fv[1]; q1 <- fv[2]; m <- fv[3]; q3 <- fv[4]; b <- fv[5]
    nm <- sprintf("n%d_%s", n, paste(fv, collapse = "_"))
    w <- 4 / (4 + n^0.75)
    s1_mean <- w * (a + b) / 2 + (1 - w) * m
    w <- 0.7 + 0.39 / n
    s2_mean <- w * (q1 + q3) / 2 + (1 - w) * m
    w1 <- 2.2 / (2.2 + n^0.75)
    w2 <- 0.7 - 0.72 / n^0.55
    s3_mean <- w1 * (a + b) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * m
    w <- 1 / (1 + 0.07 * n^0.6)
    for (sec in c("luo_mean", "wan_shi_sd")) {
      add_inputs(sec, nm, n = n, minimum = a, q1 = q1, median = m, q3 = q3, maximum = b)
    }
    add("luo_mean", nm, "hand", S1 = s1_mean, S2 = s2_mean, S3 = s3_mean)
    add("wan_shi_sd", nm, "hand", S1 = (b - a) / xi(n), S2 = (q3 - q1) / eta(n),
        S3 = w * (b - a) / xi(n) + (1 - w) * (q3 - q1) / eta(n))
  }
}

# ---------------------------------------------------------------- units
for (x in c(64.516, 1, 250.3)) {
  add_inputs("per_inch2", x, x = x)
  add("per_inch2", x, "hand", per_cm2 = x / 6.4516)
}

out <- do.call(rbind, rows)
write.csv(out, "escalc_reference.csv", row.names = FALSE, quote = TRUE)
cat("wrote", nrow(out), "rows to escalc_reference.csv\n")
