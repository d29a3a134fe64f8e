"""One of two CPU processes on loopback (``jax.distributed``), each holding half of the items.

``python _multiprocess_check.py PROCESS_ID PORT``: fits the mixture with the
items split over both processes, and alone on all the items, and prints one
JSON line of the differences (``tests/test_layouts_placement.py`` starts both).
"""

import json
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
process_id, port = int(sys.argv[1]), int(sys.argv[2])
jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)

import numpy as np  # noqa: E402

import smm_ppl as smm  # noqa: E402

assert jax.process_count() == 2 and jax.device_count() == 2, jax.devices()
# Every process draws the same data; each keeps its own (uneven) share of the items.
X = smm.simulate_features(0, 1_001, 3, mean=[1.0, -0.5, 0.2])
truth = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, 0.0, -0.5], [-0.5, 1.0, 0.5]]))
n = smm.simulate_counts(1, X, truth, 20_000)
mine = np.array_split(np.arange(X.shape[0]), 2)[process_id]
split = smm.fit_em(X[mine], n[mine], 2, init=truth, devices=2)
one = smm.fit_em(X, n, 2, init=truth)
print(
    json.dumps(
        {
            "process": process_id,
            "ll": abs(split.log_likelihood - one.log_likelihood) / abs(one.log_likelihood),
            "atoms": float(np.abs(split.params.atoms - one.params.atoms).max()),
            "weights": float(np.abs(split.params.weights - one.params.weights).max()),
            "se": float(np.abs(split.standard_errors.atoms - one.standard_errors.atoms).max()),
            "iterations": abs(split.n_iter - one.n_iter),
            "n_obs": [split.n_obs, one.n_obs],
            "log_likelihood": split.log_likelihood,
        }
    )
)
