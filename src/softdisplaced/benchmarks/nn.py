"""NN speed: training time of the study's network and inference throughput.

Trains the ``study_ntuples`` network of ``config/config.yaml`` (benchmark 1 vs the
study's 4108 HF events, default training settings) when the study's ntuples are
present, else the same network on a Gaussian toy of the same size, and times
inference of the trained model (``predict``, batches of 65536) on 200 000 events
(best of 3).  Writes ``<outdir>/nn.json``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..config import REPO_ROOT, load_config

NAME = "nn"


def run(outdir: str | Path = "results/benchmarks", configfile: str | Path | None = None,
        n_inference: int = 200_000) -> dict:
    from ..nn import FEATURES
    from ..nn.model import device_info, predict
    from ..nn.training import resolve_network, train, train_model

    cfg = load_config(configfile or REPO_ROOT / "config" / "config.yaml")
    sdir = Path(cfg["samples"]["study_ntuples"]["dir"])
    if not sdir.is_absolute():
        sdir = (REPO_ROOT / sdir).resolve()
    result: dict = {"device": device_info()}
    with tempfile.TemporaryDirectory() as tmp:
        if (sdir / "background.root").exists() and "study_ntuples" in cfg["nn"].get("networks", {}):
            settings = {"seed": cfg["seed"], "nn": cfg["nn"], "benchmarks": cfg["benchmarks"],
                        "samples": {"study_ntuples": {"dir": str(sdir)}}}
            t0 = time.perf_counter()
            m = train(settings, "study_ntuples", tmp, make_plots=False)
            result.update(input="study_ntuples", train_and_evaluate_s=round(time.perf_counter() - t0, 2),
                          n_train=m["n_train"], auc_bp1=m["auc"]["1"])
            from ..nn.model import load_model
            model = load_model(Path(tmp) / "model.keras")
            import json
            hist = json.loads((Path(tmp) / "history.json").read_text())
            result["epochs_run"] = hist["subsets"][0]["epochs_run"]
        else:
            rng = np.random.default_rng(1)
            ncfg = resolve_network({**cfg["nn"], "networks": {"toy": {"input": "skims"}}}, "toy")
            Xs = rng.normal(0.5, 1, (3286, len(FEATURES)))
            Xb = rng.normal(0.0, 1, (3286, len(FEATURES)))
            t0 = time.perf_counter()
            model, info, _, _ = train_model(Xs, Xb, ncfg, cfg["seed"], "toy")
            result.update(input="gaussian_toy", train_and_evaluate_s=round(time.perf_counter() - t0, 2),
                          n_train=len(Xs) + len(Xb), epochs_run=info["subsets"][0]["epochs_run"])
        X = np.random.default_rng(2).normal(size=(n_inference, len(FEATURES)))
        predict(model, X[:1000])  # warm-up (graph tracing)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            predict(model, X)
            best = min(best, time.perf_counter() - t0)
    result.update(inference_events=n_inference, inference_s=round(best, 4),
                  inference_events_per_s=round(n_inference / best),
                  training_events_per_s=round(result["n_train"] * 0.8 * result["epochs_run"]
                                              / result["train_and_evaluate_s"]))
    write_json(Path(outdir) / f"{NAME}.json", result)
    return result
