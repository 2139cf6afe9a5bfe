"""GPU path: CPU and GPU features agree; gpu = on without a GPU fails clearly; auto falls back."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from delphes_factory import jet, lepton, simple_emu_event, write_delphes
from processing_helpers import run_analyses
from softdisplaced.processing.processor import GPUUnavailableError, gpu_available, resolve_gpu

HAVE_GPU = gpu_available()[0]


def _file(tmp_path):
    rng = np.random.default_rng(3)
    evs = []
    for i in range(300):
        ev = simple_emu_event(number=i, pt_e=float(rng.uniform(20.5, 80)), pt_mu=float(rng.uniform(20.5, 80)),
                              d0_e=float(rng.uniform(0.25, 5)), d0_mu=float(rng.uniform(0.25, 5)),
                              phi_e=float(rng.uniform(-3, 3)), phi_mu=float(rng.uniform(-3, 3)),
                              jets=[jet(float(rng.uniform(10, 90)), float(rng.uniform(-3, 3)),
                                        float(rng.uniform(-3, 3))) for _ in range(int(rng.integers(0, 4)))])
        if i % 3 == 0:  # extra soft and forward leptons entering the "all leptons" sums
            ev["electrons"].append(lepton(12.0, 0.5, 1.0, 1, 0.3))
        evs.append(ev)
    evs[-1]["jets"] = []  # trailing events without jets (the pattern of awkward issue 4310)
    evs[-2]["jets"] = []
    return write_delphes(tmp_path / "gpu.root", evs)


@pytest.mark.skipif(HAVE_GPU, reason="a GPU is present")
def test_gpu_on_without_gpu_fails_clearly(default_config, tmp_path):
    with pytest.raises(GPUUnavailableError, match="processing.gpu = on"):
        resolve_gpu("on")
    with pytest.raises(GPUUnavailableError, match="no usable CUDA GPU"):
        run_analyses(default_config, [_file(tmp_path)], tmp_path, processing={"gpu": "on"})


@pytest.mark.skipif(HAVE_GPU, reason="a GPU is present")
def test_gpu_auto_falls_back_to_cpu_with_a_log_line(default_config, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="softdisplaced.processing.processor"):
        assert resolve_gpu("auto") is False
    assert "NN features on the CPU" in caplog.text
    f = _file(tmp_path)
    a = run_analyses(default_config, [f], tmp_path, tag="cpu")[1][0].read_bytes()
    b = run_analyses(default_config, [f], tmp_path, tag="auto", processing={"gpu": "auto"})[1][0].read_bytes()
    assert a == b


@pytest.mark.gpu
@pytest.mark.skipif(not HAVE_GPU, reason="needs cupy and a CUDA GPU")
def test_gpu_features_equal_cpu(default_config, tmp_path):
    f = _file(tmp_path)
    cpu = run_analyses(default_config, [f], tmp_path, tag="cpu")[0]["soft_emu"]["events"]
    gpu = run_analyses(default_config, [f], tmp_path, tag="gpu", processing={"gpu": "on"})[0]["soft_emu"]["events"]
    assert len(cpu["sr"]) > 100
    for k, v in cpu.items():
        np.testing.assert_allclose(gpu[k], v, rtol=1e-12, atol=1e-12, err_msg=k)
