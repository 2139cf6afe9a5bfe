"""The network has the architecture of spec section 4 and standardises its inputs."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from softdisplaced.config import load_config  # noqa: E402
from softdisplaced.nn import FEATURES  # noqa: E402
from softdisplaced.nn.model import build_model, predict  # noqa: E402
from softdisplaced.nn.training import resolve_network  # noqa: E402


def test_architecture_from_default_config(repo_root):
    cfg = load_config(repo_root / "config" / "config.yaml")
    ncfg = resolve_network(cfg["nn"], "study_ntuples")
    assert ncfg["features"] == list(FEATURES) and len(FEATURES) == 9
    model = build_model(len(ncfg["features"]), ncfg["model"], ncfg["training"]["learning_rate"])
    assert model.input_shape == (None, 9)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Normalization", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [18, 18, 1]
    assert [d.activation.__name__ for d in dense] == ["relu", "relu", "sigmoid"]
    assert [d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)] == [0.2, 0.2]
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert "binary_crossentropy" in str(model.loss)
    # 9*18+18 + 18*18+18 + 18+1 trainable parameters
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 9 * 18 + 18 + 18 * 18 + 18 + 19


def test_normalization_layer_standardises_with_given_statistics():
    mean = np.arange(9, dtype=float)
    std = np.linspace(1, 5, 9)
    model = build_model(9, {}, mean=mean, std=std)
    norm = model.layers[0]
    x = mean + 2 * std
    assert np.allclose(np.asarray(norm(x[None, :])), 2.0, atol=1e-5)
    # shifting the inputs by the stored mean in units of std gives identical scores
    m0 = build_model(9, {}, mean=np.zeros(9), std=np.ones(9))
    m0.set_weights([w for w in m0.get_weights()])
    for a, b in zip(model.layers[1:], m0.layers[1:]):
        b.set_weights(a.get_weights())
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 9))
    assert np.allclose(predict(model, mean + z * std), predict(m0, z), atol=1e-5)


def test_rejects_scaler_of_wrong_length():
    with pytest.raises(ValueError, match="scaler"):
        build_model(9, {}, mean=np.zeros(8), std=np.ones(8))
