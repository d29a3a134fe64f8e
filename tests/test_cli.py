import numpy as np

from smm_ppl.cli import main


def test_simulate_writes_npz(tmp_path, capsys):
    out = tmp_path / "sim.npz"
    rc = main(["simulate", "-p", "50", "-L", "2", "-K", "2", "-N", "300", "--seed", "3", "-o", str(out)])
    assert rc == 0
    d = np.load(out)
    assert d["features"].shape == (50, 2) and d["counts"].sum() == 300
    assert d["atoms"].shape == (2, 2) and np.isclose(d["weights"].sum(), 1.0)


def test_simulate_bad_argument_is_a_clear_error(tmp_path, capsys):
    rc = main(["simulate", "-K", "0", "-o", str(tmp_path / "x.npz")])
    assert rc == 2
    assert "n_components must be an integer >= 1" in capsys.readouterr().err


def test_help_lists_simulate(capsys):
    assert main([]) == 0
    assert "simulate" in capsys.readouterr().out


def test_fit_em_writes_parameters(tmp_path, capsys):
    import json

    import smm_ppl as smm

    data = tmp_path / "sim.npz"
    assert main(["simulate", "-p", "200", "-L", "2", "-K", "2", "-N", "5000", "--seed", "1", "-o", str(data)]) == 0
    out = tmp_path / "fit"
    assert main(["fit", str(data), "-K", "2", "--method", "em", "--out", str(out)]) == 0
    params, se, meta = smm.load_params(out / "em_fit.json")
    d = np.load(data)
    truth = smm.SMMParams(d["weights"], d["atoms"])
    assert smm.parameter_error(params, truth)["atoms"] < 0.3
    assert meta["converged"] is True and se is not None
    assert json.loads((out / "summary.json").read_text())["em"]["n_iter"] == meta["n_iter"]


def test_fit_bad_inputs_are_clear_errors(tmp_path, capsys):
    rc = main(["fit", str(tmp_path / "nope.npz"), "-K", "2", "--out", str(tmp_path / "o")])
    assert rc == 2 and "features: no such file" in capsys.readouterr().err
    np.save(tmp_path / "X.npy", np.random.default_rng(0).normal(size=(10, 2)))
    np.save(tmp_path / "n.npy", np.ones(9))
    rc = main(
        ["fit", str(tmp_path / "X.npy"), "--counts", str(tmp_path / "n.npy"), "-K", "2", "--out", str(tmp_path / "o")]
    )
    assert rc == 2 and "counts has 9 entries but features has 10" in capsys.readouterr().err
