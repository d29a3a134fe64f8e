"""Every fit of the package, small: run twice, in two fresh processes on one cache folder
(tests/test_two_processes.py).  Prints one JSON line of the figures each fit gave."""

import json
import sys
import warnings

import numpy as np

import smm_ppl as smm

sys.path.insert(0, sys.argv[1])  # the tests folder, for the choice simulator
from _choice_problems import simulate_panel

X = smm.simulate_features(0, n_items=400, n_features=3)
truth = smm.SMMParams(
    weights=np.array([0.3, 0.3, 0.4]),
    atoms=np.array([[1.0, -0.5, 0.3], [-0.6, 0.7, -0.2], [0.2, 0.1, 0.9]]),
)
n = smm.simulate_counts(1, X, truth, n_obs=20000)
start = smm.SMMParams(weights=np.full(3, 1 / 3), atoms=np.random.default_rng(5).normal(0, 1.0, (3, 3)))
out = {}
warnings.simplefilter("ignore")  # slow variants stop at max_iter: the figures are what matter here
for m_step in ("gradient", "newton"):
    for acceleration in ("auto", "lbfgs", "squarem", "none"):
        if m_step == "newton" and acceleration == "lbfgs":
            continue  # L-BFGS replaces the M-step: the gradient variant covers it
        r = smm.fit_em(X, n, 3, init=start, m_step=m_step, acceleration=acceleration, max_iter=300, tol=1e-8)
        out[f"em-{m_step}-{acceleration}"] = [r.n_iter, r.log_likelihood]
r = smm.fit_em(X, n, 3, init="auto", seed=0, max_iter=300)
out["em-auto"] = [r.n_iter, r.log_likelihood]
idata = smm.sample_nuts(X, n, 3, init=r, num_chains=2, num_warmup=30, num_samples=30, seed=0)
out["nuts"] = float(idata.posterior["atoms"].mean())
svi = smm.fit_svi(X, n, 3, init=r, num_steps=50, num_draws=20, seed=0)
out["svi"] = float(np.mean(svi.losses))

frame, _ = simulate_panel(0, [[1.0, -1.0], [-1.0, 0.5]], n_persons=60, n_situations=4)
data = smm.choice_data(
    frame, features=["x1", "x2"], situation="situation", alternative="alternative", choice="chosen", person="person"
)
lc = smm.fit_latent_class(data, 2, n_starts=2, max_iter=100)
out["choice"] = lc.log_likelihood
idata = smm.sample_latent_class(lc, num_chains=1, num_warmup=20, num_samples=20, seed=0)
out["choice-nuts"] = float(idata.posterior["coefficients"].mean())
idata = smm.fit_latent_class_svi(lc, num_steps=30, num_draws=10, seed=0).idata
out["choice-svi"] = float(idata.posterior["coefficients"].mean())
print(json.dumps(out))
