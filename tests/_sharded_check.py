"""Run under several forced host devices: every entry point on one device and with the items split.

Prints one JSON line of the largest differences (``tests/test_layouts_placement.py``
runs it in a fresh interpreter, which the host device count needs).
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.util import log_density
from scipy.optimize import linear_sum_assignment

import smm_ppl as smm
from smm_ppl.layouts import bucketed, item_counts, row_mesh
from smm_ppl.models import mixture_model

n_devices = int(sys.argv[1])
assert jax.device_count() == n_devices, jax.devices()
out = {}


def matched(a, b):
    """Largest atom difference after matching the classes (the starts may tie)."""
    rows, cols = linear_sum_assignment(np.linalg.norm(a[:, None] - b[None], axis=2))
    return float(np.abs(a[rows] - b[cols]).max())


# A Gaussian design whose rows do not divide evenly among the devices (padding).
X = smm.simulate_features(0, 1_001, 3)
truth = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, 0.0, -0.5], [-0.5, 1.0, 0.5]]))
n = smm.simulate_counts(1, X, truth, 20_000)
one = smm.fit_em(X, n, 2, init=truth)
split = smm.fit_em(X, n, 2, init=truth, devices=n_devices)
out["em_ll"] = abs(one.log_likelihood - split.log_likelihood) / abs(one.log_likelihood)
out["em_atoms"] = float(np.abs(one.params.atoms - split.params.atoms).max())
out["em_se"] = float(np.abs(one.standard_errors.atoms - split.standard_errors.atoms).max())
out["em_iterations"] = abs(one.n_iter - split.n_iter)
out["ll"] = abs(smm.log_likelihood(X, n, truth) - smm.log_likelihood(X, n, truth, devices=n_devices)) / abs(
    one.log_likelihood
)
info = smm.observed_information(X, n, truth)
out["information"] = float(np.abs(info - smm.observed_information(X, n, truth, devices=n_devices)).max()) / float(
    np.abs(info).max()
)

# A skewed, heavy-tailed design from init="auto": the same start must win.  There the likelihood
# is flat enough near its maximum that two summation orders stop a few 1e-6 apart, so the atoms
# are compared in units of their standard errors.
rng = np.random.default_rng(3)
Xh = rng.standard_t(3, size=(1_500, 4)) + rng.exponential(size=(1_500, 4))
th = smm.SMMParams(np.array([0.35, 0.65]), np.array([[1.0, -0.5, 0.3, 0.0], [-0.6, 0.4, -0.2, 0.5]]))
nh = smm.simulate_counts(4, Xh, th, 50_000)
one = smm.fit_em(Xh, nh, 2, seed=0, max_iter=300)
split = smm.fit_em(Xh, nh, 2, seed=0, max_iter=300, devices=n_devices)
out["auto_ll"] = abs(one.log_likelihood - split.log_likelihood) / abs(one.log_likelihood)
out["auto_atoms_in_se"] = matched(
    one.params.atoms / one.standard_errors.atoms, split.params.atoms / one.standard_errors.atoms
)
out["auto_same_start"] = one.init == split.init

# The NumPyro model's log density and its gradient on the placed layout.
layout = item_counts(X, n)
kwargs = dict(n_components=2, units="all")
site = {"weights": jnp.asarray(truth.weights), "atoms": jnp.asarray(truth.atoms)}


def density(placed, atoms):
    return log_density(mixture_model, (placed,), kwargs, {**site, "atoms": atoms})[0]


d1, g1 = jax.value_and_grad(density, argnums=1)(bucketed(layout), site["atoms"])
d4, g4 = jax.value_and_grad(density, argnums=1)(bucketed(layout, row_mesh(n_devices)), site["atoms"])
out["density"] = float(abs(d1 - d4) / abs(d1))
out["density_grad"] = float(jnp.abs(g1 - g4).max() / jnp.abs(g1).max())

# NUTS: the same chain, up to round-off that the trajectories amplify (hence a looser bound in the
# test), so the draws are compared in units of the posterior sd.
kw = dict(init=truth, num_chains=2, num_warmup=30, num_samples=30, progress_bar=False)
a1 = smm.sample_nuts(X, n, 2, **kw).posterior["atoms"].values
a4 = smm.sample_nuts(X, n, 2, devices=n_devices, **kw).posterior["atoms"].values
out["nuts_in_sd"] = float((np.abs(a1 - a4) / a1.std(axis=(0, 1))).max())
print(json.dumps(out))
