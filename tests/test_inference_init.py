"""Starting values (smm_ppl.inference.init): per-chain jittered starts, one vocabulary of start names."""

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.inference import resolve_init

from _inference_problems import TRUTH, k2_problem


@pytest.fixture(scope="module")
def k2():
    return k2_problem()


@pytest.mark.parametrize("ordered", [False, True])
def test_chain_init_params_are_jittered_warm_start(k2, ordered):
    """Each chain starts at the warm start plus its own jitter, in unconstrained space."""
    import jax
    from numpyro.infer.util import constrain_fn

    from smm_ppl.inference import chain_init_params, model_kwargs
    from smm_ppl.models import mixture_model

    X, n, em = k2
    args = (smm.as_layout(X, n),)
    kw = model_kwargs(2, ordered, smm.Prior(1.0, 3.0))
    starts = smm.SMMParams(em.params.weights[None], em.params.atoms[None])
    exact = chain_init_params(starts, 3, 0.0, 0, model_args=args, model_kwargs=kw)
    jittered = chain_init_params(starts, 3, 0.05, 0, model_args=args, model_kwargs=kw)
    for name, value in exact.items():
        assert value.shape[0] == 3
        np.testing.assert_array_equal(value[0], value[1])  # jitter 0: one common start
        d = np.asarray(jittered[name] - value)
        assert 0 < np.abs(d).max() < 0.05 * 5  # small ...
        assert not np.allclose(d[0], d[1])  # ... and different per chain
    back = constrain_fn(
        mixture_model, args, kw, jax.tree_util.tree_map(lambda v: v[0], exact), return_deterministic=True
    )
    atoms = np.asarray(back["atoms"])
    expected = em.params.atoms[np.argsort(em.params.atoms[:, 0])] if ordered else em.params.atoms
    np.testing.assert_allclose(atoms, expected, atol=1e-8)


# ---------------------------------------------------------------------------
# init handling and validation
# ---------------------------------------------------------------------------


def test_resolve_init_variants(k2):
    X, n, em = k2
    layout = smm.as_layout(X, n)
    p, se, desc = resolve_init(em, layout, 2)
    assert desc == "em" and p.weights.shape == (1, 2)
    np.testing.assert_array_equal(se.atoms, em.standard_errors.atoms)
    p, se, desc = resolve_init(TRUTH, layout, 2)
    assert desc == "user" and se is None
    np.testing.assert_array_equal(p.atoms[0], TRUTH.atoms)
    assert resolve_init(None, layout, 2)[0] is None
    p, _, desc = resolve_init("auto", layout, 2, seed=0)
    assert desc == "auto" and smm.parameter_error(smm.SMMParams(p.weights[0], p.atoms[0]), TRUTH)["atoms"] < 0.2
    # "auto" means the same in fit_em and in the samplers: the EM estimate from init="auto"
    np.testing.assert_allclose(p.atoms[0], smm.fit_em(X, n, 2, init="auto", seed=0).params.atoms)


@pytest.mark.parametrize("name", ["mom", "tensor"])
def test_resolve_init_start_names_mean_em_from_that_start(k2, name):
    X, n, _ = k2
    p, se, desc = resolve_init(name, smm.as_layout(X, n), 2, seed=0)
    assert desc == name and p.atoms.shape == (1, 2, 2) and se is not None
    np.testing.assert_allclose(p.atoms[0], smm.fit_em(X, n, 2, init=name, seed=0).params.atoms)
