# Reference values for the binary-outcome workflow (hairtrial.analyses.binary, issue 10): the
# numbers of binary_meta_analysis.csv and binary_study_effects.csv that metafor_binary.R does
# not cover: weights of the Mantel-Haenszel and Peto models, every inverse-variance model
# (REML, DL, FE x z, knha, adhoc) with its prediction interval and Q-profile tau2 CI, and the
# prediction interval of the GLMM (predict.rma).
#
# Run from the repository root (after metafor_binary.R, whose inputs it reads):
#     Rscript tests/reference/metafor_binary_workflow.R
# Writes tests/reference/metafor_binary_workflow.csv:
#     dataset, model, measure, method, test, quantity, study, value
# (study is empty for model-level quantities). Numbers with sprintf("%.17g").
#
# As the workflow does: escalc with add = 1/2, to = "only0", drop00 = TRUE for RR and OR and
# drop00 = FALSE for RD (a double-zero table estimates a zero risk difference); rma.mh and
# rma.peto with their defaults. Tight controls as in metafor_univariate.R, so that metafor's
# own tolerances do not limit the comparison: REML threshold = 1e-12 (maxiter 1000),
# tau2.max = 1e8, confint() tol = 1e-14.

suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "3.8")
out_dir <- file.path("tests", "reference")
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
inp <- read.csv(file.path(out_dir, "metafor_binary_inputs.csv"), stringsAsFactors = FALSE)
rows <- list()
put <- function(ds, model, measure, method, test, quantity, value, study = "") {
  rows[[length(rows) + 1L]] <<- data.frame(
    dataset = ds, model = model, measure = measure, method = method, test = test,
    quantity = quantity, study = study, value = fmt(value), stringsAsFactors = FALSE)
}
glmm_ctrl <- list(
  glmerCtrl = list(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                   tolPwrss = 1e-9),
  glmCtrl = list(epsilon = 1e-14, maxit = 1000)
)
for (nm in c("bcg3", "sparse6", "threearm", "k2", "rare8", "homog4")) {
  d <- inp[inp$dataset == nm, ]
  for (measure in c("RR", "OR", "RD")) {
    mh <- suppressWarnings(rma.mh(measure = measure, ai = d$ai, n1i = d$n1i, ci = d$ci,
                                  n2i = d$n2i))
    put(nm, "MH", measure, "MH", "z", "weight", weights(mh), d$study)
    es <- suppressWarnings(escalc(measure = measure, ai = d$ai, n1i = d$n1i, ci = d$ci,
                                  n2i = d$n2i, drop00 = measure != "RD"))
    ok <- !is.na(es$yi)
    for (method in c("REML", "DL", "FE")) {
      for (test in c("z", "knha", "adhoc")) {
        ctrl <- list(tau2.max = 1e8)
        if (method == "REML") ctrl <- c(ctrl, list(threshold = 1e-12, maxiter = 1000))
        r <- suppressWarnings(rma.uni(es$yi[ok], es$vi[ok], method = method, test = test,
                                      control = ctrl))
        for (q in c("beta", "se", "ci.lb", "ci.ub", "pval", "tau2", "I2", "QE", "QEp")) {
          put(nm, "IV", measure, method, test, q, as.numeric(r[[q]]))
        }
        put(nm, "IV", measure, method, test, "k", r$k)
        p <- predict(r)
        put(nm, "IV", measure, method, test, "pi.lb",
            if (is.null(p$pi.lb)) p$ci.lb else p$pi.lb)
        put(nm, "IV", measure, method, test, "pi.ub",
            if (is.null(p$pi.ub)) p$ci.ub else p$pi.ub)
        if (method != "FE") {
          ci <- suppressWarnings(confint(r, control = list(tol = 1e-14, maxiter = 1000)))$random
          put(nm, "IV", measure, method, test, "tau2.lb", ci["tau^2", "ci.lb"])
          put(nm, "IV", measure, method, test, "tau2.ub", ci["tau^2", "ci.ub"])
        }
        w <- rep(NA_real_, nrow(d))
        w[ok] <- weights(r)
        put(nm, "IV", measure, method, test, "weight", w, d$study)
      }
    }
  }
  pe <- try(suppressWarnings(rma.peto(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i)),
            silent = TRUE)
  if (!inherits(pe, "try-error")) put(nm, "PETO", "OR", "Peto", "z", "weight", weights(pe), d$study)
  if (nm %in% c("sparse6", "rare8")) {
    g <- suppressWarnings(rma.glmm(measure = "OR", ai = d$ai, n1i = d$n1i, ci = d$ci,
                                   n2i = d$n2i, model = "UM.FS", method = "ML", nAGQ = 7,
                                   control = glmm_ctrl))
    p <- predict(g)
    put(nm, "GLMM", "OR", "GLMM", "z", "pi.lb", p$pi.lb)
    put(nm, "GLMM", "OR", "GLMM", "z", "pi.ub", p$pi.ub)
  }
}
write.csv(do.call(rbind, rows), file.path(out_dir, "metafor_binary_workflow.csv"),
          row.names = FALSE, quote = FALSE)
