"""Training on toys: separable -> high AUC, identical -> 0.5, determinism, outputs, CLI."""

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from nn_toys import gauss, settings, write_skim  # noqa: E402

from softdisplaced.cli import main  # noqa: E402
from softdisplaced.nn.training import balanced_subsets, train  # noqa: E402

CONTRACT_KEYS = {"auc", "hf_eff_at_cut", "hf_eff_at_cut_err", "sig_eff_at_cut", "sig_eff_at_cut_err",
                 "sig_eff_at_cut_per_sr", "cut", "n_train", "n_test", "input", "auc_err", "overtraining_ks"}

NET = {"toy": {"input": "skims", "analysis": "soft_emu_loose", "signal": ["bp1"], "background": ["hf"],
               "evaluate": ["bp2", "dm99"]}}


@pytest.fixture(scope="module")
def toy_skims(tmp_path_factory):
    d = tmp_path_factory.mktemp("skims") / "soft_emu_loose"
    rng = np.random.default_rng(11)
    write_skim(d / "bp1.h5", "bp1", gauss(rng, 3000, 2.0), sr=rng.integers(0, 4, 3000), m_c=324, dm=20)
    write_skim(d / "bp2.h5", "bp2", gauss(rng, 1500, 1.0), sr=rng.integers(0, 4, 1500), m_c=220, dm=20)
    write_skim(d / "hf.h5", "hf", gauss(rng, 2500, 0.0))
    write_skim(d / "dm99.h5", "dm99", np.zeros((0, 9)), m_c=220, dm=20)   # zero selected events
    return d


@pytest.fixture(scope="module")
def trained(toy_skims, tmp_path_factory):
    out = tmp_path_factory.mktemp("nn") / "toy"
    s = settings(NET)
    rc = main(["train", "--settings", json.dumps(s), "--network", "toy", "--outdir", str(out),
               "--signal-skims", str(toy_skims / "bp1.h5"), "--background-skims", str(toy_skims / "hf.h5"),
               "--eval-skims", str(toy_skims / "bp2.h5"), str(toy_skims / "dm99.h5")])
    assert rc == 0
    return out, s


def test_separable_toy_reaches_high_auc(trained):
    out, _ = trained
    m = json.loads((out / "metrics.json").read_text())
    assert m["auc"]["1"] > 0.95
    # a weaker signal (half the shift) is separated less well, but clearly
    assert 0.75 < m["auc"]["2"] < m["auc"]["1"]
    assert m["sig_eff_at_cut"]["1"] > m["hf_eff_at_cut"]


def test_outputs_and_metrics_contract(trained):
    out, _ = trained
    for f in ("model.keras", "mlp.json", "scaler.json", "history.json", "metrics.json", "roc.csv", "model_info.json",
              "discriminant.pdf", "discriminant.png", "roc.pdf", "roc.png"):
        assert (out / f).stat().st_size > 0, f
    m = json.loads((out / "metrics.json").read_text())
    assert CONTRACT_KEYS <= set(m)
    assert m["cut"] == 0.9 and m["input"] == "skims"
    # held-out part of the training sample, every event of the others; the empty sample has no AUC
    assert m["eval_set"] == {"1": "held_out", "2": "all", "dm99": "all"}
    assert m["n_eval_signal"] == {"1": 600, "2": 1500, "dm99": 0}
    assert m["auc"]["dm99"] is None
    # equal numbers of signal and background in training: min(2400, 2000) each
    assert m["n_train_per_class"] == {"signal": 2000, "background": 2000} and m["n_train"] == 4000
    assert m["n_test"] == 600 + 500
    assert set(m["sig_eff_at_cut_per_sr"]["1"]) == {"1", "2", "3"}
    assert set(m["overtraining_ks"]) == {"signal", "background"}
    assert 0 <= m["overtraining_ks"]["signal"]["pvalue"] <= 1
    sc = json.loads((out / "scaler.json").read_text())
    assert len(sc["mean"]) == 9 and all(s > 0 for s in sc["std"])
    roc = (out / "roc.csv").read_text().splitlines()
    assert roc[0] == "variant,key,threshold,sig_eff,bkg_eff"
    row = next(r for r in roc if r.startswith("nominal,1,0.900,"))
    assert float(row.split(",")[3]) == pytest.approx(m["sig_eff_at_cut"]["1"], abs=1e-5)


def test_scores_row_aligned_for_every_sample(trained, toy_skims, tmp_path):
    import h5py

    from softdisplaced.nn.model import load_model, predict
    from softdisplaced.provenance import file_sha256

    out, s = trained
    model = load_model(out / "model.keras")
    # a reversed copy of bp2: its scores must come out reversed
    with h5py.File(toy_skims / "bp2.h5") as fh:
        X = np.stack([fh["events"][f][...] for f in s["nn"]["features"]], 1)
    write_skim(tmp_path / "bp2rev.h5", "bp2rev", X[::-1])
    scores = {}
    for name, skim in [("bp1", toy_skims / "bp1.h5"), ("bp2", toy_skims / "bp2.h5"), ("hf", toy_skims / "hf.h5"),
                       ("dm99", toy_skims / "dm99.h5"), ("bp2rev", tmp_path / "bp2rev.h5")]:
        before = file_sha256(skim)
        dest = tmp_path / "scores" / "soft_emu_loose" / f"{name}.h5"
        assert main(["evaluate", "--settings", json.dumps(s), "--network", "toy", "--model-dir", str(out),
                     "--skim", str(skim), "--output", str(dest)]) == 0
        assert file_sha256(skim) == before        # the skim is never rewritten
        with h5py.File(dest) as fh, h5py.File(skim) as sk:
            sc = fh["score"][...]
            assert fh["score"].dtype == np.float32
            assert fh.attrs["network"] == "toy" and len(fh.attrs["config_hash"]) == 16
            n = len(sk["events"]["YDelpObj"])
            assert sc.shape == (n,)
            Xs = np.stack([sk["events"][f][...] for f in s["nn"]["features"]], 1).reshape(n, 9)
        assert np.allclose(sc, predict(model, Xs), atol=1e-6)
        scores[name] = sc
    assert len(scores["dm99"]) == 0
    # row i of the reversed skim is row n-1-i of the original (float32 round-off of batched matmul aside)
    assert np.allclose(scores["bp2rev"], scores["bp2"][::-1], atol=1e-6)
    assert not np.allclose(scores["bp2rev"], scores["bp2"], atol=1e-2)
    assert np.mean(scores["bp1"] >= 0.9) > 5 * np.mean(scores["hf"] >= 0.9)


def test_identical_classes_give_auc_half(tmp_path):
    rng = np.random.default_rng(21)
    d = tmp_path / "soft_emu_loose"
    write_skim(d / "bp1.h5", "bp1", gauss(rng, 5000), m_c=324, dm=20)
    write_skim(d / "hf.h5", "hf", gauss(rng, 5000))
    m = train(settings({"same": {"input": "skims", "signal": ["bp1"], "background": ["hf"]}}), "same",
              tmp_path / "nn", skims_dir=tmp_path, make_plots=False)
    assert abs(m["auc"]["1"] - 0.5) < 0.05
    assert abs(m["auc"]["1"] - 0.5) < 4 * m["auc_err"]["1"]


def test_same_seed_same_scores_other_seed_differs(toy_skims, tmp_path):
    def run(seed, tag):
        s = settings({"det": {"input": "skims", "signal": ["bp1"], "background": ["hf"]}}, epochs=2,
                     max_train_per_class=600)
        s["seed"] = seed
        train(s, "det", tmp_path / tag, skims_dir=toy_skims.parent, make_plots=False)
        from softdisplaced.nn.scoring import evaluate
        evaluate(s, "det", tmp_path / tag, toy_skims / "bp2.h5", tmp_path / f"{tag}.h5")
        import h5py
        with h5py.File(tmp_path / f"{tag}.h5") as fh:
            return fh["score"][...], json.loads((tmp_path / tag / "metrics.json").read_text())

    a, ma = run(7, "a")
    b, mb = run(7, "b")
    c, _ = run(8, "c")
    assert np.array_equal(a, b)
    assert ma["auc"] == mb["auc"] and ma["hf_eff_at_cut"] == mb["hf_eff_at_cut"]
    assert not np.array_equal(a, c)


def test_balanced_subsets_are_disjoint_and_equal():
    rng = np.random.default_rng(0)
    t = {"balance": "downsample", "n_signal_subsets": 3, "max_train_per_class": None}
    subs, w = balanced_subsets(1000, 300, t, rng)
    assert w == (1.0, 1.0) and len(subs) == 3
    sig = [set(s) for s, _ in subs]
    assert all(len(s) == 300 and len(b) == 300 for s, b in subs)
    assert not (sig[0] & sig[1]) and not (sig[1] & sig[2]) and not (sig[0] & sig[2])
    # fewer signal than background: background is the class that is downsampled
    subs, _ = balanced_subsets(100, 1000, {**t, "n_signal_subsets": 1}, rng)
    assert len(subs[0][0]) == len(subs[0][1]) == 100
    subs, w = balanced_subsets(100, 300, {**t, "balance": "class_weight", "n_signal_subsets": 1}, rng)
    assert len(subs[0][0]) == 100 and len(subs[0][1]) == 300
    assert w == pytest.approx((2.0, 400 / 600))  # N/(2 N_class): equal total weight per class
    assert w[0] * 100 == pytest.approx(w[1] * 300)


def test_signal_subset_ensemble(toy_skims, tmp_path):
    s = settings({"ens": {"input": "skims", "signal": ["bp1"], "background": ["hf"],
                          "training": {"n_signal_subsets": 2, "max_train_per_class": 500}}}, epochs=3)
    m = train(s, "ens", tmp_path, skims_dir=toy_skims.parent, make_plots=False)
    h = json.loads((tmp_path / "history.json").read_text())
    assert len(h["subsets"]) == 2 and all(x["n_signal"] == 500 for x in h["subsets"])
    assert m["n_train_per_class"] == {"signal": 1000, "background": 500}
    assert m["auc"]["1"] > 0.95
    # the saved ensemble reloads and averages its two members
    from softdisplaced.nn.model import load_model, predict
    model = load_model(tmp_path / "model.keras")
    members = [layer for layer in model.layers if type(layer).__name__ == "Sequential"]
    assert len(members) == 2
    X = np.random.default_rng(1).normal(size=(200, 9))
    avg = (predict(members[0], X) + predict(members[1], X)) / 2
    assert np.allclose(predict(model, X), avg, atol=1e-6)
    assert not np.allclose(predict(members[0], X), predict(members[1], X), atol=1e-3)


def test_missing_skim_is_a_clear_error(tmp_path, capsys):
    s = settings(NET)
    rc = main(["train", "--settings", json.dumps(s), "--network", "toy", "--outdir", str(tmp_path / "o"),
               "--skims-dir", str(tmp_path)])
    assert rc == 1
    assert "bp1.h5: skim not found" in capsys.readouterr().err
    rc = main(["train", "--settings", json.dumps(s), "--network", "nope", "--outdir", str(tmp_path / "o")])
    assert rc == 2


def test_weighted_background_auc_roc_and_efficiency():
    """Weighted background (importance sampling): AUC, ROC and efficiency equal those of the same
    sample with each event repeated w times (integer weights)."""
    from softdisplaced.nn import evaluation as ev

    rng = np.random.default_rng(5)
    s = rng.normal(1.0, 1.0, 3000)
    b = rng.normal(0.0, 1.0, 2000)
    w = rng.integers(1, 5, len(b)).astype(float)
    rep = np.repeat(b, w.astype(int))
    assert ev.auc(s, b, w) == pytest.approx(ev.auc(s, rep), rel=1e-12)
    assert ev.auc(s, b, w) != pytest.approx(ev.auc(s, b), rel=1e-3)
    thr = np.linspace(-2, 3, 11)
    np.testing.assert_allclose(ev.roc_curve(s, b, thr, w_bkg=w)[2], ev.roc_curve(s, rep, thr)[2], rtol=1e-12)
    e = ev.efficiency(b, 1.0, w)
    assert e["eff"] == pytest.approx(ev.efficiency(rep, 1.0)["eff"], rel=1e-12)
    assert e["n_eff"] == pytest.approx(w.sum() ** 2 / np.sum(w ** 2)) and len(e["interval68"]) == 2


def test_generator_weights_of_the_background_define_its_distribution(tmp_path):
    """Background = half signal-like (weight 10) and half separated (weight 0.1) events: the physical
    background is 99 % signal-like, so the weighted AUC is near 0.5, not the ~0.75 of the raw events."""
    rng = np.random.default_rng(22)
    d = tmp_path / "soft_emu_loose"
    write_skim(d / "bp1.h5", "bp1", gauss(rng, 4000), m_c=324, dm=20)
    xb = np.concatenate([gauss(rng, 3000), gauss(rng, 3000, shift=3.0)])
    wg = np.r_[np.full(3000, 10.0), np.full(3000, 0.1)]
    write_skim(d / "hf.h5", "hf", xb, weight_gen=wg)
    m = train(settings({"w": {"input": "skims", "signal": ["bp1"], "background": ["hf"]}}), "w",
              tmp_path / "nn", skims_dir=tmp_path, make_plots=False)
    assert m["background_weighted"] is True
    assert m["hf_n_eff_test"] < 0.6 * m["n_test_per_class"]["background"]
    assert abs(m["auc"]["1"] - 0.5) < 0.1, m["auc"]


def test_network_feature_override_trains_and_scores_its_own_columns(tmp_path):
    """nn.networks.<name>.features replaces nn.features for that network only (issue 11: the study's
    HtJet in place of the physical one): with classes the nine features cannot tell apart and a separating
    HtJet_photon_veto, the plain network gives AUC 0.5 and the override network the column's AUC
    (Phi(2.5 / sqrt 2) = 0.96); its mlp.json names its inputs and the NumPy scorer reads those columns."""
    import h5py

    from softdisplaced.nn import FEATURES, mlp
    from softdisplaced.nn.scoring import evaluate
    from softdisplaced.processing.features import STUDY_HTJET

    rng = np.random.default_rng(5)
    d = tmp_path / "soft_emu_loose"
    n = 2000
    write_skim(d / "bp1.h5", "bp1", gauss(rng, n), m_c=324, dm=20, extra={STUDY_HTJET: rng.normal(2.5, 1.0, n)})
    write_skim(d / "hf.h5", "hf", gauss(rng, n), extra={STUDY_HTJET: rng.normal(0.0, 1.0, n)})
    study = [STUDY_HTJET if f == "HtJet" else f for f in FEATURES]
    net = {"input": "skims", "signal": ["bp1"], "background": ["hf"]}
    s = settings({"phys": net, "study": {**net, "features": study}})
    m_phys = train(s, "phys", tmp_path / "phys", skims_dir=tmp_path, make_plots=False)
    m_study = train(s, "study", tmp_path / "study", skims_dir=tmp_path, make_plots=False)
    assert m_phys["features"] == list(FEATURES) and m_study["features"] == study
    assert abs(m_phys["auc"]["1"] - 0.5) < 0.05
    assert m_study["auc"]["1"] > 0.9
    assert json.loads((tmp_path / "study" / "mlp.json").read_text())["features"] == study

    evaluate(s, "study", tmp_path / "study", d / "bp1.h5", tmp_path / "scores.h5")
    with h5py.File(d / "bp1.h5") as fh:
        X = np.stack([fh["events"][f][...] for f in study], axis=1)
    with h5py.File(tmp_path / "scores.h5") as fh:
        score = fh["score"][...]
    np.testing.assert_array_equal(score, mlp.load(tmp_path / "study" / "mlp.json").predict(X))
    # an mlp.json whose inputs differ from its model_info.json (two trainings mixed up) is refused
    info_path = tmp_path / "study" / "model_info.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "features": list(FEATURES)}))
    with pytest.raises(ValueError, match="differ from the features"):
        evaluate(s, "study", tmp_path / "study", d / "bp1.h5", tmp_path / "scores2.h5")
