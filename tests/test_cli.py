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
