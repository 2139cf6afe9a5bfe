"""Parameterised network (spec section 7) on a toy whose signal depends on dm."""

import json

import h5py
import numpy as np
import pytest

pytest.importorskip("keras")

from nn_toys import gauss, settings, write_skim  # noqa: E402

from softdisplaced.nn import parameterised as par  # noqa: E402
from softdisplaced.nn.scoring import evaluate  # noqa: E402
from softdisplaced.nn.training import train  # noqa: E402


def test_background_parameters_follow_signal_distribution():
    sig = np.array([[20.0]] * 3000 + [[40.0]] * 1000)
    drawn = par.draw_background(20000, sig, np.random.default_rng(1))
    assert set(np.unique(drawn)) == {20.0, 40.0}
    assert np.mean(drawn == 40.0) == pytest.approx(0.25, abs=0.01)
    X = np.zeros((4, 9))
    assert par.append(X, np.array([20.0, 324.0])).shape == (4, 11)
    with pytest.raises(ValueError):
        par.check_parameters(["ctau"])


def test_parameterised_beats_single_network_away_from_its_benchmark(tmp_path):
    # signal at dm = 20 sits at +2 in three features, at dm = 40 at -2: a network trained on dm = 20
    # alone ranks dm = 40 signal below background; the parameterised one separates both
    rng = np.random.default_rng(8)
    d = tmp_path / "soft_emu_loose"
    write_skim(d / "bp1.h5", "bp1", gauss(rng, 2500, 2.0), m_c=324, dm=20)
    write_skim(d / "bp7.h5", "bp7", gauss(rng, 2500, -2.0), m_c=220, dm=40)
    write_skim(d / "hf.h5", "hf", gauss(rng, 4000, 0.0))
    net = {"p": {"input": "skims", "signal": ["bp1", "bp7"], "background": ["hf"],
                 "parameterised": {"enabled": True, "parameters": ["dm"], "reference": "bp1",
                                   "nominal": {"dm": 20}}}}
    s = settings(net, epochs=8)
    m = train(s, "p", tmp_path / "nn", skims_dir=tmp_path, make_plots=True)
    comp = m["comparison"]
    assert comp["single_reference"] == "1"
    assert m["auc"]["1"] > 0.95 and m["auc"]["7"] > 0.95
    assert comp["auc_single"]["1"] > 0.95 and comp["auc_single"]["7"] < 0.3
    assert m["features"][-1] == "dm" and m["parameters"] == ["dm"]
    assert (tmp_path / "nn" / "roc_comparison.png").exists()
    roc = (tmp_path / "nn" / "roc.csv").read_text()
    assert "\nsingle,7," in roc and "\nnominal,7," in roc
    # scoring: signal at its own dm, background at the nominal point plus every benchmark point
    for name in ("bp7", "hf"):
        evaluate(s, "p", tmp_path / "nn", d / f"{name}.h5", tmp_path / f"{name}.score.h5")
    with h5py.File(tmp_path / "bp7.score.h5") as fh:
        assert json.loads(fh.attrs["parameter_point"]) == {"dm": 40.0}
        assert np.mean(fh["score"][...] >= 0.9) > 0.5
        assert np.array_equal(fh["score"][...], fh["score_at"]["7"][...])
    with h5py.File(tmp_path / "hf.score.h5") as fh:
        assert json.loads(fh.attrs["parameter_point"]) == {"dm": 20.0}
        assert set(fh["score_at"]) == {"1", "7"}
        assert np.array_equal(fh["score"][...], fh["score_at"]["1"][...])
        assert np.mean(fh["score"][...] >= 0.9) < 0.05
