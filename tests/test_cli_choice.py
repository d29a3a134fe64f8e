"""``smm fit DATA --situation ...``: the latent-class logit from a long-format CSV or Parquet file.

One small simulated panel (60 persons x 3 situations, K = 2, 2 starts) and
one model specification, so that the command and the Python fit share one
compiled program.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest
from _choice_problems import simulate_panel

import smm_ppl as smm
from smm_ppl.cli import main, parse_fixed_specs
from smm_ppl.io import read_table

FEATURES = ["x1", "x2", "x3"]
SHARED = ["x3"]
FIXED = {"x2": {2: 1.0}}
ARGS = [
    "--situation", "situation",
    "--alternative", "alternative",
    "--choice", "chosen",
    "--features", *FEATURES,
    "--availability", "available",
    "--person", "person",
    "--covariates", "income",
    "--shared", *SHARED,
    "--fixed", "x2[2]=1",
    "-K", "2",
    "--n-starts", "2",
    "--seed", "3",
]  # fmt: skip


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """The frame, its CSV and Parquet files, and the Python fit of the same model."""
    frame, _ = simulate_panel(
        5,
        [[1.5, -1.0, 0.5], [-1.0, 1.0, 0.5]],
        n_persons=60,
        n_situations=3,
        membership=[[0.0, 0.3], [0.0, 1.0]],
        unavailable=0.1,
    )
    folder = tmp_path_factory.mktemp("choices")
    csv, parquet = folder / "panel.csv", folder / "panel.parquet"
    frame.to_csv(csv, index=False)
    if HAVE_PYARROW:
        frame.to_parquet(parquet, index=False)
    data = smm.choice_data(
        frame,
        situation="situation",
        alternative="alternative",
        choice="chosen",
        features=FEATURES,
        availability="available",
        person="person",
        covariates=["income"],
    )
    result = smm.fit_latent_class(data, 2, shared=SHARED, fixed=FIXED, n_starts=2, seed=3)
    return frame, csv, parquet, result


# pyarrow is optional (the `parquet` extra) and kept out of the test process: loaded beside jaxlib it
# was the one new native library in the run where JAX's compilation-cache reads crashed.
HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None


@pytest.mark.parametrize(
    "kind", ["csv", pytest.param("parquet", marks=pytest.mark.skipif(not HAVE_PYARROW, reason="pyarrow not installed"))]
)
def test_fit_choice_file_matches_python(kind, panel, tmp_path, capsys):
    frame, csv, parquet, result = panel
    out = tmp_path / "out"
    rc = main(["fit", str(csv if kind == "csv" else parquet), *ARGS, "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "Latent-class logit: 2 classes" in printed and "x1[1]" in printed
    summary = json.loads((out / "summary.json").read_text())
    # Two computations of one fit: the command on the file, fit_latent_class on the frame.
    assert summary["log_likelihood"] == pytest.approx(result.log_likelihood, rel=1e-12, abs=0)
    assert summary["n_params"] == result.n_params and summary["n_components"] == 2
    assert summary["bic"] == pytest.approx(result.bic, rel=1e-12)
    assert summary["data"]["panel"] is True and summary["data"]["n_units"] == 60
    assert summary["data"]["n_situations"] == 180
    assert summary["fixed"] == {"x2": {"2": 1.0}}
    params = pd.read_csv(out / "params.csv", index_col=0)
    assert list(params.index) == list(result.params.index)
    assert "x2[2]" not in params.index and "x3" in params.index  # fixed, shared
    np.testing.assert_allclose(params.to_numpy(), result.params.to_numpy(), rtol=1e-9)
    weights = pd.read_csv(out / "weights.csv", index_col=0)
    np.testing.assert_allclose(weights["estimate"], result.weights_table["estimate"], rtol=1e-9)
    probs = pd.read_csv(out / "class_probabilities.csv", index_col=0)
    assert list(probs.columns) == ["class_1", "class_2"] and len(probs) == 60
    np.testing.assert_allclose(probs.to_numpy(), result.class_probabilities.to_numpy(), rtol=1e-9)


def test_fit_choice_file_with_nuts_and_svi(panel, tmp_path, capsys):
    """--method all on choice data: EM, then NUTS and SVI from it, through the one path of items."""
    _, csv, _, result = panel
    out = tmp_path / "out"
    bayes = ["--num-chains", "1", "--num-warmup", "50", "--num-samples", "50", "--svi-steps", "50", "--no-progress"]
    assert main(["fit", str(csv), *ARGS, "--method", "all", *bayes, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["log_likelihood"] == pytest.approx(result.log_likelihood, rel=1e-12, abs=0)
    assert np.isfinite(summary["nuts"]["loo"]) and summary["svi"]["guide"] == "normal"
    table = pd.read_csv(out / "nuts_vs_em.csv", index_col=0)
    assert list(table.index) == [*result.names, "weight[1]", "weight[2]"]
    idata = smm.load_inference_data(out / "nuts.nc")
    assert idata.posterior["z"].shape == (1, 50, result.n_params)
    assert smm.load_inference_data(out / "svi.nc").posterior["z"].shape[-1] == result.n_params
    params, _, meta = smm.load_params(out / "svi_fit.json")
    assert params.atoms.shape == result.atoms.shape and meta["guide"] == "normal"
    assert (out / "nuts_trace.png").exists()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("x2", "expected name=value"),
        ("x2[2]=abc", "'abc' is not a number"),
        ("x2[0]=1", "class '0' must be a whole number 1 .. 2"),
        ("x2[3]=1", "class '3'"),
        ("x9=1", "'x9' is not one of the --features"),
        ("x1=inf", "must be finite"),
    ],
)
def test_bad_fixed_spec_is_named(spec, message, panel, tmp_path, capsys):
    _, csv, _, _ = panel
    args = [a if a != "x2[2]=1" else spec for a in ARGS]
    rc = main(["fit", str(csv), *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc != 0
    assert "smm fit: error:" in err and repr(spec) in err and message in err
    assert not (tmp_path / "o").exists()


def test_missing_column_is_named(panel, tmp_path, capsys):
    _, csv, _, _ = panel
    args = ["xx9" if a == "x1" else a for a in ARGS]
    rc = main(["fit", str(csv), *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc != 0 and "--features 'xx9'" in err and "its columns are" in err

    rc = main(["fit", str(csv), *ARGS, "--person", "respondent", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc != 0 and "--person 'respondent'" in err


def test_choice_data_errors(panel, tmp_path, capsys):
    _, csv, _, _ = panel
    out = ["--out", str(tmp_path / "o")]
    assert main(["fit", str(csv), *ARGS, "--method", "svi", "--guide", "delta", *out]) != 0
    assert "guide" in capsys.readouterr().err
    assert main(["fit", str(csv), "--situation", "situation", "--features", "x1", "-K", "2", *out]) != 0
    assert "--alternative, --choice" in capsys.readouterr().err
    assert main(["fit", str(csv), *ARGS, "--shared", "income", *out]) != 0
    assert "--shared 'income'" in capsys.readouterr().err
    # Choice options without --situation: the items path says what is missing.
    assert main(["fit", str(csv), "--features", "x1", "-K", "2", *out]) != 0
    assert "give --situation" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "none.csv"), *ARGS, *out]) != 0
    assert "no such file" in capsys.readouterr().err


def test_parse_fixed_specs_combines_classes():
    assert parse_fixed_specs(["a=0", "b[1]=0.5", "b[3] = -2"], ["a", "b"], 3) == {"a": 0.0, "b": {1: 0.5, 3: -2.0}}
    with pytest.raises(ValueError, match=r"'b=1'.*already fixed in class\(es\) \[1\]"):
        parse_fixed_specs(["b[1]=0", "b=1"])
    with pytest.raises(ValueError, match=r"'b\[2\]=1'.*already fixed in every class"):
        parse_fixed_specs(["b=0", "b[2]=1"])
    with pytest.raises(ValueError, match=r"'b\[1\]=2'.*more than once"):
        parse_fixed_specs(["b[1]=0", "b[1]=2"])


def test_read_table_suffixes_and_errors(tmp_path, monkeypatch):
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    frame.to_csv(tmp_path / "t.csv.gz", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv.gz"), frame)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"unsupported file type '\.xlsx'"):
        read_table(tmp_path / "t.xlsx")
    if HAVE_PYARROW:
        frame.to_parquet(tmp_path / "t.parquet", index=False)
        pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), frame)
    else:
        (tmp_path / "t.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(ValueError, match=r'pip install "smm-ppl\[parquet\]"'):
        read_table(tmp_path / "t.parquet", name="choices")
