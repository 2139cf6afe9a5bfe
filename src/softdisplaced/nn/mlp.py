"""The trained network as plain arrays, evaluated with NumPy (no TensorFlow needed to score).

``softdisplaced train`` writes ``results/nn/<network>/mlp.json`` next to ``model.keras``:
the exact float32 weights of the Keras model, in the order the layers are applied::

    {"format": "softdisplaced-mlp/1", "n_inputs": 9, "features": ["YDelpObj", ...], "combine": "average",
     "members": [[{"type": "standardise", "mean": [...], "variance": [...]},
                  {"type": "dense", "activation": "relu", "kernel": [[...]], "bias": [...]},
                  ...,
                  {"type": "dense", "activation": "sigmoid", "kernel": [[...]], "bias": [...]}]]}

``features``: the names of the inputs, in order (the network's features, then its parameters),
checked against the columns the scorer reads (absent in files of earlier versions).
One member per network of a signal-subset ensemble (``subset_mode: average``; the output
is the mean of the members' outputs, as keras.layers.Average), one for a single network.
Dropout layers are the identity at inference and are not stored.  ``standardise`` is
Keras' ``Normalization``: ``(x - mean) / max(sqrt(variance), 1e-7)``.

:func:`MLP.predict` computes in float32, as Keras does, and returns float32 like
:func:`softdisplaced.nn.model.predict`; the two agree to ~2e-7 (the summation order of
the matrix products differs; tests/test_nn_mlp.py checks 1e-6 on the study's events).
Float64 arithmetic would not: for events far in the tails (HtJet ~ 1.5 TeV) Keras'
own float32 round-off reaches ~2e-6.  :func:`export` needs Keras;
:func:`load` and :func:`predict` need only NumPy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

FORMAT = "softdisplaced-mlp/1"
KERAS_NORMALIZATION_EPSILON = 1e-7   # keras.backend.epsilon(), the floor of sqrt(variance)

ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: (0.5 * (1.0 + np.tanh(0.5 * z))).astype(z.dtype),   # 1/(1+exp(-z)), no overflow
    "tanh": np.tanh,
}


# ----------------------------------------------------------------- export (Keras)
def _member_layers(model) -> list[dict]:
    out = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout"):
            continue
        if kind == "Normalization":
            out.append({"type": "standardise",
                        "mean": np.asarray(layer.mean, "float32").reshape(-1).tolist(),
                        "variance": np.asarray(layer.variance, "float32").reshape(-1).tolist()})
        elif kind == "Dense":
            act = layer.get_config()["activation"]
            if act not in ACTIVATIONS:
                raise ValueError(f"layer {layer.name}: activation {act!r} has no NumPy counterpart "
                                 f"(known: {sorted(ACTIVATIONS)})")
            kernel, bias = (np.asarray(w, "float32") for w in layer.get_weights())
            out.append({"type": "dense", "activation": act, "kernel": kernel.tolist(), "bias": bias.tolist()})
        else:
            raise ValueError(f"layer {layer.name} ({kind}) has no NumPy counterpart in softdisplaced.nn.mlp")
    return out


def export(model, features=None) -> dict:
    """The arrays of a model built by :func:`softdisplaced.nn.model.build_model` (or an
    :func:`~softdisplaced.nn.model.ensemble` of such models); ``features``: the input names, in order."""
    subs = [layer for layer in model.layers if type(layer).__name__ in ("Sequential", "Functional")]
    if subs:
        kinds = {type(layer).__name__ for layer in model.layers} - {"Sequential", "Functional", "InputLayer"}
        if kinds != {"Average"}:
            raise ValueError(f"model {model.name}: an ensemble must combine its members with Average (has {kinds})")
        members = [_member_layers(m) for m in subs]
    else:
        members = [_member_layers(model)]
    n_inputs = int(model.inputs[0].shape[-1])
    out = {"format": FORMAT, "n_inputs": n_inputs, "combine": "average", "members": members}
    if features is not None:
        features = [str(f) for f in features]
        if len(features) != n_inputs:
            raise ValueError(f"model {model.name}: {n_inputs} inputs, but {len(features)} feature names {features}")
        out["features"] = features
    return out


def write(model, path: str | Path, features=None) -> None:
    from .. import atomic

    atomic.write_json(path, export(model, features))


# ------------------------------------------------------------- evaluate (NumPy)
class MLP:
    """A loaded ``mlp.json``; call :meth:`predict` with raw (unstandardised) inputs."""

    def __init__(self, spec: Mapping, source: str = "mlp.json"):
        if spec.get("format") != FORMAT:
            raise ValueError(f"{source}: format {spec.get('format')!r}, expected {FORMAT!r}")
        self.n_inputs = int(spec["n_inputs"])
        self.features = list(spec["features"]) if spec.get("features") is not None else None
        if self.features is not None and len(self.features) != self.n_inputs:
            raise ValueError(f"{source}: {self.n_inputs} inputs, but {len(self.features)} feature names")
        self.source = source
        self.members = []
        for member in spec["members"]:
            layers = []
            for layer in member:
                if layer["type"] == "standardise":
                    mean = np.asarray(layer["mean"], "float32")
                    scale = np.maximum(np.sqrt(np.asarray(layer["variance"], "float32")),
                                       np.float32(KERAS_NORMALIZATION_EPSILON))
                    layers.append(("standardise", mean, scale))
                elif layer["type"] == "dense":
                    if layer["activation"] not in ACTIVATIONS:
                        raise ValueError(f"{source}: unknown activation {layer['activation']!r}")
                    layers.append((layer["activation"], np.asarray(layer["kernel"], "float32"),
                                   np.asarray(layer["bias"], "float32")))
                else:
                    raise ValueError(f"{source}: unknown layer type {layer['type']!r}")
            self.members.append(layers)
        if not self.members:
            raise ValueError(f"{source}: no members")

    @staticmethod
    def _forward(layers, X):
        for kind, a, b in layers:
            X = (X - a) / b if kind == "standardise" else ACTIVATIONS[kind](X @ a + b)
        return X.reshape(-1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores (float32, shape (n,)), inference mode (dropout off)."""
        X = np.asarray(X, dtype="float32")
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"{self.source}: the network takes {self.n_inputs} inputs, got shape {X.shape}")
        if len(X) == 0:
            return np.zeros(0, dtype="float32")
        out = self._forward(self.members[0], X)
        for m in self.members[1:]:
            out = out + self._forward(m, X)
        return (out / np.float32(len(self.members))).astype("float32")


def load(path: str | Path) -> MLP:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: exported network not found (run softdisplaced train first)")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from exc
    return MLP(spec, str(path))
