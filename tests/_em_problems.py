"""Problems and helpers shared by the EM tests (tests/test_em_*.py)."""

import warnings

import numpy as np

import smm_ppl as smm

COV4 = np.array([[1.0, 0.4, 0.0, 0.0], [0.4, 2.0, 0.3, 0.0], [0.0, 0.3, 0.5, 0.0], [0.0, 0.0, 0.0, 1.5]])


#: A poor start: one dominant class, atoms far from the truth.
POOR = smm.SMMParams(
    np.array([0.9, 0.05, 0.05]),
    np.array([[2.5, 2.5, -2.5, 2.0], [-2.0, 2.0, 2.5, -2.5], [0.0, -3.0, 0.0, 2.0]]),
)


#: One multi-start configuration shared by many tests (shares compiled code).
MULTI = dict(n_starts=4, short_iter=5, max_iter=40)


def fit_quiet(*args, **kwargs):
    kwargs.setdefault("compute_standard_errors", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", smm.ConvergenceWarning)
        return smm.fit_em(*args, **kwargs)


def max_relative_decrease(trace: np.ndarray) -> float:
    """Largest decrease of the trace from one iteration to the next, relative to |ll|."""
    d = (trace[:-1] - trace[1:]) / np.abs(trace[:-1])
    return float(max(d.max(), 0.0))
