# Fit a latent-class conditional logit with flexmix (FLXMRcondlogit), counts as weights.
# Usage: Rscript run_flexmix.R LONG.csv OUT.json K NREP SEED
# LONG.csv: one choice situation per distinct chosen item (column sid), one row per
# (situation, alternative): chosen (0/1), features x0..x{L-1}, w = count of that item.
# The class is shared within a situation (grouping "| sid"), and the weights give each
# situation the multiplicity of its item, so the log-likelihood is sum_j n_j log pi_j.
suppressPackageStartupMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
infile <- args[1]; outfile <- args[2]; K <- as.integer(args[3])
nrep <- if (length(args) >= 4) as.integer(args[4]) else 1L
seed <- if (length(args) >= 5) as.integer(args[5]) else 0L
d <- read.csv(infile)
xs <- grep("^x[0-9]+$", names(d), value = TRUE)
fml <- as.formula(paste("chosen ~ 0 +", paste(xs, collapse = " + "), "| sid"))
set.seed(seed)
t0 <- proc.time()[["elapsed"]]
m <- stepFlexmix(fml, data = d, k = K, nrep = nrep, weights = ~ w,
                 model = FLXMRcondlogit(strata = ~ sid),
                 control = list(iter.max = 1000, tolerance = 1e-8, minprior = 0),
                 verbose = 0)
elapsed <- proc.time()[["elapsed"]] - t0
co <- parameters(m)                      # rows: coef.x0 ...; columns: Comp.1 ...
atoms <- t(matrix(co, nrow = length(xs)))
weights <- prior(m)
kk <- length(weights)
esc <- function(v) paste0("[", paste(sprintf("%.17g", v), collapse = ","), "]")
rows <- paste(apply(atoms, 1, esc), collapse = ",")
json <- sprintf(paste0('{"peer":"flexmix","version":"%s","n_rows":%d,"time_fit_s":%.6f,',
                       '"log_likelihood_reported":%.10f,"n_iter":%d,"converged":%s,',
                       '"n_components_found":%d,"weights":%s,"atoms":[%s]}'),
                as.character(packageVersion("flexmix")), nrow(d), elapsed,
                as.numeric(logLik(m)), as.integer(m@iter),
                ifelse(m@converged, "true", "false"), kk, esc(weights), rows)
writeLines(json, outfile)
cat(json, "\n")
