"""The network of spec section 4, built from configuration; determinism and device helpers.

Layout (defaults of ``nn.model``)::

    Input(n_inputs) -> Normalization(mean, variance fixed from the training set)
      -> Dense(18, relu) -> Dropout(0.2) -> Dense(18, relu) -> Dropout(0.2)
      -> Dense(1, sigmoid)

compiled with Adam(learning_rate) and binary cross-entropy.  The standardisation
is part of the saved model (a non-trainable ``Normalization`` layer), so
``model.keras`` takes the raw features; the same mean and standard deviation
are also written to ``scaler.json`` for use outside Keras.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)



def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: WPS433

    return keras


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras and ask TensorFlow for deterministic ops.

    ``keras.utils.set_random_seed`` seeds ``random``, NumPy, TensorFlow and the
    global Keras SeedGenerator (weight initialisers, dropout masks);
    ``tf.config.experimental.enable_op_determinism`` makes TensorFlow pick
    deterministic kernels (on GPU it raises for ops that have none).
    """
    keras = _keras()
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed) % (2**31))
    tf.config.experimental.enable_op_determinism()


def device_info() -> dict:
    """Which device TensorFlow uses: the GPU when one is visible, else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "device": "GPU" if gpus else "CPU",
        "gpus": [g.name for g in gpus],
        "tensorflow": tf.__version__,
        "keras": _keras().__version__,
    }


def build_model(n_inputs: int, model_cfg: Mapping | None = None, learning_rate: float = 1e-3,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                name: str = "nn"):
    """Compiled Keras model; ``mean``/``std`` (training-set statistics) fix the input standardisation."""
    keras = _keras()
    from ..config import with_defaults

    cfg = {**with_defaults({"nn": {}})["nn"]["model"], **(model_cfg or {})}   # defaults: the schema
    mean = np.zeros(n_inputs) if mean is None else np.asarray(mean, dtype="float64")
    std = np.ones(n_inputs) if std is None else np.asarray(std, dtype="float64")
    if mean.shape != (n_inputs,) or std.shape != (n_inputs,):
        raise ValueError(f"scaler has {mean.shape} / {std.shape} entries, the network {n_inputs} inputs")
    layers = [keras.Input(shape=(n_inputs,), name="features"),
              keras.layers.Normalization(mean=mean.tolist(), variance=(std**2).tolist(), name="standardise")]
    for i, units in enumerate(cfg["hidden_units"]):
        layers.append(keras.layers.Dense(int(units), activation=cfg["activation"], name=f"hidden{i + 1}"))
        if cfg["dropout"] > 0:
            layers.append(keras.layers.Dropout(float(cfg["dropout"]), name=f"dropout{i + 1}"))
    layers.append(keras.layers.Dense(1, activation="sigmoid", name="output"))
    model = keras.Sequential(layers, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
                  loss="binary_crossentropy")
    return model


def ensemble(models: Sequence, n_inputs: int, name: str = "nn_ensemble"):
    """One model averaging the sigmoid outputs of ``models`` (signal-subset ensemble)."""
    keras = _keras()
    if len(models) == 1:
        return models[0]
    inp = keras.Input(shape=(n_inputs,), name="features")
    outs = [m(inp, training=False) for m in models]
    out = keras.layers.Average(name="average")(outs)
    return keras.Model(inp, out, name=name)


def load_model(path):
    keras = _keras()
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: trained model not found (run softdisplaced train first)")
    return keras.models.load_model(path, compile=False)


def predict(model, X: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Scores (float32, shape (n,)) in inference mode (dropout off); deterministic batching."""
    X = np.asarray(X, dtype="float32")
    if len(X) == 0:
        return np.zeros(0, dtype="float32")
    out = [np.asarray(model(X[i:i + batch_size], training=False)).reshape(-1)
           for i in range(0, len(X), batch_size)]
    return np.concatenate(out).astype("float32")
