"""The NumPy evaluation of the exported network equals Keras, and scoring needs no TensorFlow."""

import json
import subprocess
import sys

import numpy as np
import pytest

from softdisplaced.nn import FEATURES, mlp
from softdisplaced.nn.data import read_study_ntuple

keras = pytest.importorskip("keras")

from nn_toys import write_skim  # noqa: E402

from softdisplaced.nn.model import build_model, ensemble, predict  # noqa: E402


@pytest.fixture(scope="module")
def study_events(reference_dir):
    """The nine features of real events: the study's benchmark-1 signal and its HF background."""
    d = reference_dir / "authors_ntuples"
    sig = read_study_ntuple(d / "BP_324_20_DM.root", "signal", name="bp1", key="1")
    bkg = read_study_ntuple(d / "background.root", "background", name="hf", key="hf")
    return sig, bkg


def _fitted(sig, bkg, seed, n_inputs=9, extra=None):
    Xs, Xb = sig.X[:1500], bkg.X[:1500]
    if extra is not None:
        Xs, Xb = np.hstack([Xs, extra(len(Xs))]), np.hstack([Xb, extra(len(Xb))])
    X = np.vstack([Xs, Xb])
    y = np.r_[np.ones(len(Xs)), np.zeros(len(Xb))]
    keras.utils.set_random_seed(seed)
    m = build_model(n_inputs, None, 0.01, X.mean(0), X.std(0), name=f"m{seed}")
    m.fit(X.astype("float32"), y.astype("float32"), epochs=2, batch_size=128, verbose=0)
    return m


def test_numpy_equals_keras_on_real_events(study_events):
    sig, bkg = study_events
    single = _fitted(sig, bkg, 1)
    both = ensemble([single, _fitted(sig, bkg, 2)], 9)
    X = np.vstack([sig.X, bkg.X])          # every event of both files, raw features
    for model in (single, both):
        spec = json.loads(json.dumps(mlp.export(model)))   # through JSON, as written to mlp.json
        assert len(spec["members"]) == (1 if model is single else 2)
        net = mlp.MLP(spec)
        ours, theirs = net.predict(X), predict(model, X)
        assert ours.dtype == np.float32 and ours.shape == (len(X),)
        assert np.max(np.abs(ours - theirs)) < 1e-6
        # a network that has learnt something: the scores span the range and separate the classes
        assert np.mean(ours[: len(sig.X)]) > np.mean(ours[len(sig.X):]) + 0.2


def test_parameterised_inputs_equal_keras(study_events):
    sig, bkg = study_events
    rng = np.random.default_rng(3)
    model = _fitted(sig, bkg, 4, n_inputs=11,
                    extra=lambda n: np.c_[rng.choice([20.0, 30.0], n), rng.choice([200.0, 324.0], n)])
    X = np.hstack([sig.X, np.tile([20.0, 324.0], (len(sig.X), 1))])
    assert np.max(np.abs(mlp.MLP(mlp.export(model)).predict(X) - predict(model, X))) < 1e-6


def test_evaluate_command_scores_skims_without_tensorflow(study_events, tmp_path):
    """softdisplaced evaluate, all samples in one call, in a fresh interpreter: Keras-equal scores,
    TensorFlow and Keras never imported."""
    sig, bkg = study_events
    model = _fitted(sig, bkg, 5)
    mdir = tmp_path / "nn" / "net"
    mdir.mkdir(parents=True)
    mlp.write(model, mdir / "mlp.json")
    (mdir / "model_info.json").write_text(json.dumps({"network": "net", "features": list(FEATURES),
                                                      "parameters": []}))
    skims = [write_skim(tmp_path / "skims" / "bp1.h5", "bp1", sig.X),
             write_skim(tmp_path / "skims" / "hf.h5", "hf", bkg.X)]
    outs = [tmp_path / "scores" / "bp1.h5", tmp_path / "scores" / "hf.h5"]
    code = ("import sys; from softdisplaced.cli import main; "
            f"rc = main(['evaluate', '--settings', '{{}}', '--network', 'net', '--model-dir', {str(mdir)!r}, "
            f"'--skim', {str(skims[0])!r}, {str(skims[1])!r}, '--output', {str(outs[0])!r}, {str(outs[1])!r}]); "
            "assert rc == 0; "
            "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TensorFlow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    import h5py

    for out, X in zip(outs, (sig.X, bkg.X)):
        with h5py.File(out) as fh:
            score = fh["score"][...]
            assert fh.attrs["network"] == "net"
        assert score.shape == (len(X),)
        assert np.max(np.abs(score - predict(model, X))) < 1e-6


def test_unknown_layer_and_wrong_width_are_clear_errors(tmp_path):
    spec = {"format": mlp.FORMAT, "n_inputs": 2, "combine": "average",
            "members": [[{"type": "dense", "activation": "relu", "kernel": [[1.0], [1.0]], "bias": [0.0]}]]}
    assert mlp.MLP(spec).predict(np.array([[1.0, -3.0], [2.0, 1.0]])).tolist() == [0.0, 3.0]
    with pytest.raises(ValueError, match="takes 2 inputs"):
        mlp.MLP(spec, "x.json").predict(np.zeros((3, 9)))
    bad = dict(spec, members=[[{"type": "conv", "activation": "relu"}]])
    with pytest.raises(ValueError, match="x.json: unknown layer type 'conv'"):
        mlp.MLP(bad, "x.json")
    with pytest.raises(FileNotFoundError, match="mlp.json: exported network not found"):
        mlp.load(tmp_path / "mlp.json")
