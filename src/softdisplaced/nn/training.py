"""``softdisplaced train``: one network from ``nn.networks.<name>``, with all its outputs.

Procedure (documented in docs/nn.md):

1. Load the samples: skims (``input: skims``) or the study's ntuples (``input: study_ntuples``).
2. Split every sample 80/20 (``test_fraction``) with a seeded shuffle
   (``rng_for(seed, network, 0, "nn_split/<sample>")``); the 20 % is never used in training.
3. Class balance (``balance``): ``downsample`` (default) draws equal numbers of signal and
   background training events; with ``n_signal_subsets = k > 1`` the larger class (the signal
   in the study) is cut into k disjoint subsets, each paired with the same smaller class, and
   k networks are trained; ``subset_mode: average`` averages their outputs (saved as one
   model), ``choose`` keeps the one with the lowest validation loss.  ``class_weight`` keeps all
   events and weights the classes by N / (2 N_class); ``none`` uses all events unweighted.
   Background events with generator weights (the importance-sampled HF sample) are weighted by
   them (normalised to mean 1 within the subset) in the fit, and the held-out background
   quantities (AUC, ROC, HF efficiency at the cut) are weighted too; no other event weight enters
   (the study trained unweighted; the d0-efficiency weights are not used because the NN inputs do
   not depend on d0).
4. Standardisation: mean and standard deviation of the training events (all subsets),
   stored in the model (Normalization layer) and in scaler.json.
5. Fit with Adam + binary cross-entropy, early stopping on the loss of a seeded validation
   fraction of the training events (best weights restored).
6. Evaluate on the held-out events: ROC + AUC for every benchmark (held-out part of a
   training sample, every event of the others), HF efficiency and signal efficiencies at
   the cut, per SR, KS over-training test; plots.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import atomic
from ..config import ConfigError, config_hash, with_defaults
from ..provenance import package_versions
from ..samples import rng_for
from . import FEATURES
from . import evaluation as ev
from . import mlp
from . import parameterised as par
from .data import SampleData, benchmark_of, load_study, read_skim, study_input_files
from .model import build_model, device_info, ensemble, predict, set_determinism

log = logging.getLogger(__name__)



# ------------------------------------------------------------------ configuration
def resolve_network(nn_cfg: Mapping, network: str) -> dict:
    """The settings of one network with the section-wide defaults merged in."""
    nets = nn_cfg.get("networks", {}) or {}
    if network not in nets:
        raise ConfigError(f"nn.networks: no network '{network}' (configured: {sorted(nets)})")
    ncfg = copy.deepcopy(nets[network])
    ncfg["name"] = network
    schema_nn = with_defaults({"nn": {}})["nn"]   # the schema is the one source of the defaults
    ncfg["training"] = {**schema_nn["training"], **(nn_cfg.get("training") or {}), **(ncfg.get("training") or {})}
    ncfg["model"] = {**schema_nn["model"], **(nn_cfg.get("model") or {}), **(ncfg.get("model") or {})}
    ncfg.setdefault("input", "skims")
    ncfg["features"] = list(ncfg.get("features") or nn_cfg.get("features") or FEATURES)   # the network's own first
    ncfg["cut"] = float(nn_cfg.get("cut", 0.9))
    p = ncfg.get("parameterised") or {}
    if p.get("enabled", False):
        p["parameters"] = par.check_parameters(p.get("parameters", ["dm"]))
        p.setdefault("compare_single", True)
    ncfg["parameterised"] = p if p.get("enabled", False) else None
    t = ncfg["training"]
    if t["balance"] not in ("downsample", "class_weight", "none"):
        raise ConfigError(f"nn.networks.{network}.training.balance: unknown value {t['balance']!r}")
    if t["subset_mode"] not in ("average", "choose"):
        raise ConfigError(f"nn.networks.{network}.training.subset_mode: unknown value {t['subset_mode']!r}")
    if int(t["n_signal_subsets"]) > 1 and t["balance"] != "downsample":
        raise ConfigError(f"nn.networks.{network}: n_signal_subsets > 1 needs balance: downsample")
    return ncfg


def skim_paths(ncfg: Mapping, skims_dir: str | Path) -> dict[str, list[Path]]:
    """Default skim paths ``<skims_dir>/<analysis>/<sample>.h5`` of a skims network."""
    d = Path(skims_dir) / ncfg.get("analysis", "soft_emu_loose")
    sig = list(ncfg.get("signal", ["bp1"]))
    return {"signal": [d / f"{s}.h5" for s in sig],
            "background": [d / f"{s}.h5" for s in ncfg.get("background", ["hf"])],
            "evaluate": [d / f"{s}.h5" for s in ncfg.get("evaluate", []) if s not in sig]}


# ------------------------------------------------------------------ data handling
def split_sample(d: SampleData, test_fraction: float, rng: np.random.Generator):
    perm = rng.permutation(len(d))
    n_test = int(round(test_fraction * len(d)))
    return d.subset(perm[n_test:]), d.subset(np.sort(perm[:n_test]))


def balanced_subsets(n_sig: int, n_bkg: int, tcfg: Mapping, rng: np.random.Generator):
    """[(signal indices, background indices)] per network, and the class weights (w_sig, w_bkg)."""
    k = int(tcfg["n_signal_subsets"])
    cap = tcfg.get("max_train_per_class")
    cap = int(cap) if cap else None
    if n_sig == 0 or n_bkg == 0:
        raise ValueError(f"cannot train with {n_sig} signal and {n_bkg} background training events")
    if tcfg["balance"] == "downsample":
        sig_large = n_sig >= n_bkg
        n_large, n_small = (n_sig, n_bkg) if sig_large else (n_bkg, n_sig)
        n = min(n_small, n_large // k)
        if cap:
            n = min(n, cap)
        if n == 0:
            raise ValueError(f"{k} subsets of {n_large} events leave none per subset")
        perm_l = rng.permutation(n_large)
        small = rng.permutation(n_small)[:n]
        subsets = []
        for i in range(k):
            large = perm_l[i * n:(i + 1) * n]
            subsets.append((large, small) if sig_large else (small, large))
        return subsets, (1.0, 1.0)
    sig = rng.permutation(n_sig)[:cap] if cap else rng.permutation(n_sig)
    bkg = rng.permutation(n_bkg)[:cap] if cap else rng.permutation(n_bkg)
    if tcfg["balance"] == "class_weight":
        tot = len(sig) + len(bkg)
        return [(sig, bkg)], (tot / (2 * len(sig)), tot / (2 * len(bkg)))
    return [(sig, bkg)], (1.0, 1.0)


def _seed_int(seed: int, network: str, i: int, stream: str) -> int:
    return int(rng_for(seed, network, i, stream).integers(0, 2**31 - 1))


def fit_one(X: np.ndarray, y: np.ndarray, w: np.ndarray, mean, std, ncfg: Mapping, seed: int, name: str):
    """Train one network; returns (model, history dict, best validation loss)."""
    import keras

    t = ncfg["training"]
    set_determinism(seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(X))
    n_val = int(round(float(t["validation_fraction"]) * len(X)))
    val, fit = perm[:n_val], perm[n_val:]
    model = build_model(X.shape[1], ncfg["model"], t["learning_rate"], mean, std, name=name)
    callbacks, vdata = [], None
    if n_val > 0:
        vdata = (X[val].astype("float32"), y[val].astype("float32"), w[val].astype("float32"))
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(t["patience"]),
                                                       restore_best_weights=True))
    hist = model.fit(X[fit].astype("float32"), y[fit].astype("float32"), sample_weight=w[fit].astype("float32"),
                     validation_data=vdata, epochs=int(t["epochs"]), batch_size=int(t["batch_size"]),
                     shuffle=True, verbose=0, callbacks=callbacks)
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    key = "val_loss" if "val_loss" in h else "loss"
    best = float(np.min(h[key])) if h.get(key) else float("nan")
    return model, h, best


def train_model(Xs: np.ndarray, Xb: np.ndarray, ncfg: Mapping, seed: int, network: str, tag: str = "",
                wb_event: np.ndarray | None = None):
    """Balanced subsets, standardisation, fit; returns (model, info dict, used signal idx, used bkg idx).

    ``wb_event``: generator weights of the background events (the importance-sampled HF sample);
    they multiply the background class weight, normalised to mean 1 within each subset, so the
    network learns the physical background distribution with the balance of the chosen scheme."""
    t = ncfg["training"]
    subsets, (ws, wb) = balanced_subsets(len(Xs), len(Xb), t, rng_for(seed, network, 0, f"nn_balance{tag}"))
    used_s = np.unique(np.concatenate([s for s, _ in subsets]))
    used_b = np.unique(np.concatenate([b for _, b in subsets]))
    Xall = np.concatenate([Xs[used_s], Xb[used_b]])
    mean = Xall.mean(axis=0)
    std = Xall.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    models, histories, best = [], [], []
    for i, (si, bi) in enumerate(subsets):
        X = np.concatenate([Xs[si], Xb[bi]])
        y = np.concatenate([np.ones(len(si)), np.zeros(len(bi))])
        wbi = np.full(len(bi), wb)
        if wb_event is not None:
            we = np.asarray(wb_event, float)[bi]
            wbi = wbi * we / we.mean()
        w = np.concatenate([np.full(len(si), ws), wbi])
        m, h, b = fit_one(X, y, w, mean, std, ncfg, _seed_int(seed, network, i, f"nn_init{tag}"),
                          name=f"nn{tag.replace('/', '_')}_{i}")
        models.append(m)
        histories.append(h)
        best.append(b)
    chosen = None
    if len(models) == 1:
        model = models[0]
    elif t["subset_mode"] == "choose":
        chosen = int(np.nanargmin(best))
        model = models[chosen]
    else:
        model = ensemble(models, Xs.shape[1])
    info = {"subsets": [{"n_signal": int(len(s)), "n_background": int(len(b)), "history": h,
                         "epochs_run": len(h.get("loss", [])), "best_val_loss": bl}
                        for (s, b), h, bl in zip(subsets, histories, best)],
            "class_weights": {"signal": ws, "background": wb}, "chosen_subset": chosen,
            "mean": mean.tolist(), "std": std.tolist()}
    if chosen is not None:
        used_s, used_b = subsets[chosen]
    return model, info, used_s, used_b


# ------------------------------------------------------------------ evaluation
def _sr_effs(scores, d: SampleData, cut):
    out, err, wout, werr = {}, {}, {}, {}
    for sr in (1, 2, 3):
        m = d.sr == sr
        e = ev.efficiency(scores[m], cut)
        we = ev.efficiency(scores[m], cut, d.weight[m])
        out[str(sr)], err[str(sr)] = e["eff"], e["err"]
        wout[str(sr)], werr[str(sr)] = we["eff"], we["err"]
    return out, err, wout, werr


def evaluate_points(model, entries, bkg_test: SampleData, ncfg: Mapping, pnames):
    """Per-benchmark scores: {key: (signal scores, background scores, SampleData, eval_set)}."""
    out = {}
    bscore_cache = None
    for key, d, eval_set in entries:
        if pnames:
            p = par.point_of(d, pnames)
            s = predict(model, par.append(d.X, p))
            b = predict(model, par.append(bkg_test.X, p))
        else:
            s = predict(model, d.X)
            if bscore_cache is None:
                bscore_cache = predict(model, bkg_test.X)
            b = bscore_cache
        out[key] = (s, b, d, eval_set)
    return out


def metrics_from_scores(scored: Mapping, cut: float, w_bkg: np.ndarray | None = None) -> dict:
    """Per evaluated point: AUC, efficiencies at the cut; background quantities weighted with ``w_bkg``
    (generator weights of the held-out background) when given."""
    m = {k: {} for k in ("auc", "auc_err", "sig_eff_at_cut", "sig_eff_at_cut_err", "sig_eff_at_cut_interval68",
                         "sig_eff_at_cut_per_sr", "sig_eff_at_cut_per_sr_err", "sig_eff_at_cut_per_sr_weighted",
                         "sig_eff_at_cut_per_sr_weighted_err", "sig_eff_at_cut_weighted",
                         "sig_eff_at_cut_weighted_err", "n_eval_signal", "eval_set", "hf_eff_at_cut_per_point",
                         "hf_eff_at_cut_err_per_point")}
    for key, (s, b, d, eval_set) in scored.items():
        a = ev.auc(s, b, w_bkg)
        m["auc"][key] = a
        m["auc_err"][key] = ev.auc_error(a, len(s), ev.n_effective(w_bkg, len(b)))
        e = ev.efficiency(s, cut)
        we = ev.efficiency(s, cut, d.weight)
        m["sig_eff_at_cut"][key], m["sig_eff_at_cut_err"][key] = e["eff"], e["err"]
        m["sig_eff_at_cut_interval68"][key] = e["interval68"]
        m["sig_eff_at_cut_weighted"][key], m["sig_eff_at_cut_weighted_err"][key] = we["eff"], we["err"]
        (m["sig_eff_at_cut_per_sr"][key], m["sig_eff_at_cut_per_sr_err"][key],
         m["sig_eff_at_cut_per_sr_weighted"][key], m["sig_eff_at_cut_per_sr_weighted_err"][key]) = \
            _sr_effs(s, d, cut)
        m["n_eval_signal"][key] = int(len(s))
        m["eval_set"][key] = eval_set
        hb = ev.efficiency(b, cut, w_bkg)
        m["hf_eff_at_cut_per_point"][key], m["hf_eff_at_cut_err_per_point"][key] = hb["eff"], hb["err"]
    return m


def roc_rows(scored: Mapping, variant: str, w_bkg: np.ndarray | None = None) -> list[str]:
    rows = []
    for key, (s, b, _, _) in scored.items():
        thr, es, eb = ev.roc_curve(s, b, w_bkg=w_bkg)
        rows += [f"{variant},{key},{t:.3f},{x:.6g},{y:.6g}" for t, x, y in zip(thr, es, eb)]
    return rows


# ------------------------------------------------------------------ main entry
def load_inputs(settings: Mapping, ncfg: Mapping, signal_paths=None, background_paths=None, eval_paths=None,
                skims_dir="results/skims"):
    feats = ncfg["features"]
    if ncfg["input"] == "study_ntuples":
        sig, bkg, evs = load_study(settings, ncfg, feats)
        return sig, bkg, evs, [str(p) for p in study_input_files(settings, ncfg)]
    if ncfg["input"] != "skims":
        raise ConfigError(f"nn.networks.{ncfg['name']}.input: unknown input {ncfg['input']!r}")
    default = skim_paths(ncfg, skims_dir)
    signal_paths = list(signal_paths or default["signal"])
    background_paths = list(background_paths or default["background"])
    eval_paths = list(eval_paths if eval_paths is not None else default["evaluate"])
    sig = [read_skim(p, "signal", feats) for p in signal_paths]
    bkg = [read_skim(p, "background", feats) for p in background_paths]
    train_names = {d.name for d in sig}
    evs = [d for d in (read_skim(p, "signal", feats) for p in eval_paths) if d.name not in train_names]
    params = {int(b["id"]): b for b in settings.get("benchmarks", []) or []}
    for d in sig + evs:  # benchmark parameters from settings where the skim lacks them
        b = benchmark_of(d.name)
        if b in params:
            d.m_c = float(params[b]["m_c"]) if d.m_c is None else d.m_c
            d.dm = float(params[b]["dm"]) if d.dm is None else d.dm
    return sig, bkg, evs, [str(p) for p in signal_paths + background_paths + eval_paths]


def train(settings: Mapping, network: str, outdir: str | Path, signal_paths: Sequence | None = None,
          background_paths: Sequence | None = None, eval_paths: Sequence | None = None,
          skims_dir: str | Path = "results/skims", make_plots: bool = True) -> dict:
    """Train network ``network`` and write every output into ``outdir``; returns metrics."""
    from . import plots

    t0 = time.perf_counter()
    nn_cfg = settings.get("nn") or {}
    ncfg = resolve_network(nn_cfg, network)
    seed = int(settings.get("seed", 0))
    cut = ncfg["cut"]
    tcfg = ncfg["training"]
    outdir = Path(outdir)
    sig, bkg, evs, inputs = load_inputs(settings, ncfg, signal_paths, background_paths, eval_paths, skims_dir)
    if not sig or not bkg:
        raise ValueError(f"network {network}: needs at least one signal and one background sample")
    for d in sig + bkg:
        if not np.isfinite(d.X).all():
            raise ValueError(f"{d.source}: non-finite NN feature values in {int((~np.isfinite(d.X)).any(1).sum())} events")

    tf_frac = float(tcfg["test_fraction"])
    splits = {d.name: split_sample(d, tf_frac, rng_for(seed, network, 0, f"nn_split/{d.name}"))
              for d in sig + bkg}
    pcfg = ncfg["parameterised"]
    pnames = pcfg["parameters"] if pcfg else []

    sig_train = [splits[d.name][0] for d in sig]
    def gen_w(part):
        return np.concatenate([ds.gen_weight if ds.gen_weight is not None else np.ones(len(ds)) for ds in part])

    bkg_train = SampleData(**{**bkg[0].__dict__, "X": np.concatenate([splits[d.name][0].X for d in bkg]),
                              "sr": np.concatenate([splits[d.name][0].sr for d in bkg]),
                              "weight": np.concatenate([splits[d.name][0].weight for d in bkg]),
                              "gen_weight": gen_w([splits[d.name][0] for d in bkg])})
    bkg_test = SampleData(**{**bkg[0].__dict__, "X": np.concatenate([splits[d.name][1].X for d in bkg]),
                             "sr": np.concatenate([splits[d.name][1].sr for d in bkg]),
                             "weight": np.concatenate([splits[d.name][1].weight for d in bkg]),
                             "gen_weight": gen_w([splits[d.name][1] for d in bkg])})
    if not np.all(np.isfinite(bkg_train.gen_weight)) or np.any(bkg_train.gen_weight < 0) \
            or np.any(bkg_test.gen_weight < 0):
        raise ValueError(f"network {network}: background generator weights must be finite and non-negative")
    wb_train, wb_test = bkg_train.gen_weight, bkg_test.gen_weight
    Xs = np.concatenate([d.X for d in sig_train])
    Xb = bkg_train.X
    Xb_test_disc = bkg_test.X
    sig_test_all = np.concatenate([splits[d.name][1].X for d in sig])
    if pnames:
        ps = np.concatenate([np.broadcast_to(par.point_of(d, pnames), (len(d), len(pnames))) for d in sig_train])
        Xs = par.append(Xs, ps)
        Xb = par.append(Xb, par.draw_background(len(Xb), ps, rng_for(seed, network, 0, "nn_param")))
        Xb_test_disc = par.append(bkg_test.X, par.draw_background(len(bkg_test), ps,
                                                                  rng_for(seed, network, 0, "nn_param_test")))
        sig_test_all = np.concatenate([par.append(splits[d.name][1].X, par.point_of(d, pnames)) for d in sig])

    dev = device_info()
    log.info("network %s: %d signal / %d background training events before balancing, device %s",
             network, len(Xs), len(Xb), dev["device"])
    model, info, used_s, used_b = train_model(Xs, Xb, ncfg, seed, network, wb_event=wb_train)

    # scores for the over-training check and the discriminant plot
    s_train, b_train = predict(model, Xs[used_s]), predict(model, Xb[used_b])
    s_test, b_test = predict(model, sig_test_all), predict(model, Xb_test_disc)

    entries = [(d.key, splits[d.name][1], "held_out") for d in sig] + [(d.key, d, "all") for d in evs]
    scored = evaluate_points(model, entries, bkg_test, ncfg, pnames)
    metrics = metrics_from_scores(scored, cut, wb_test)
    hb = ev.efficiency(b_test if not pnames else _nominal_bkg(model, bkg_test, pcfg, sig, pnames), cut, wb_test)
    feature_names = list(ncfg["features"]) + list(pnames)
    metrics.update({
        "network": network,
        "input": ncfg["input"],
        "cut": cut,
        "hf_eff_at_cut": hb["eff"],
        "hf_eff_at_cut_err": hb["err"],
        "hf_eff_at_cut_interval68": hb["interval68"],
        "hf_n_test": hb["n"],
        "hf_n_pass": hb["n_pass"],
        "hf_n_eff_test": ev.n_effective(wb_test, len(wb_test)),
        "background_weighted": bool(np.ptp(np.concatenate([wb_train, wb_test])) > 0),
        "n_train": int(len(used_s) + len(used_b)),
        "n_train_per_class": {"signal": int(len(used_s)), "background": int(len(used_b))},
        "n_test": int(len(sig_test_all) + len(bkg_test)),
        "n_test_per_class": {"signal": int(len(sig_test_all)), "background": int(len(bkg_test))},
        "overtraining_ks": {"signal": ev.ks_test(s_train, s_test), "background": ev.ks_test(b_train, b_test)},
        "training_signals": [d.key for d in sig],
        "training_backgrounds": [d.name for d in bkg],
        "features": feature_names,
        "parameters": pnames,
        "device": dev["device"],
        "config_hash": config_hash({"seed": seed, "nn": nn_cfg}),
        "package_versions": package_versions(("tensorflow-cpu", "tensorflow", "keras", "numpy", "h5py")),
    })
    rows = roc_rows(scored, "nominal", wb_test)

    comparison = None
    if pnames and pcfg.get("compare_single", True):
        comparison, crows, cscored = _compare_single(sig, splits, bkg_train, bkg_test, entries, ncfg, seed,
                                                     network, pcfg, metrics, cut)
        metrics["comparison"] = comparison
        rows += crows

    # ------------------------------------------------------------- outputs
    outdir.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(outdir / "model.keras") as tmp:
        model.save(tmp)
    mlp.write(model, outdir / "mlp.json", feature_names)   # the same weights for NumPy scoring (softdisplaced evaluate)
    atomic.write_json(outdir / "scaler.json", {"features": feature_names, "mean": info["mean"], "std": info["std"],
                                               "note": "x_std = (x - mean) / std; also inside model.keras"})
    history = {"network": network, "subsets": info["subsets"], "class_weights": info["class_weights"],
               "chosen_subset": info["chosen_subset"], "subset_mode": tcfg["subset_mode"],
               "training": tcfg, "model": ncfg["model"]}
    atomic.write_json(outdir / "history.json", ev.nan_to_none(history))
    atomic.write_text(outdir / "roc.csv", "variant,key,threshold,sig_eff,bkg_eff\n" + "\n".join(rows) + "\n")
    points = {}
    if pnames:
        points = {d.key: dict(zip(pnames, par.point_of(d, pnames).tolist())) for d in sig + evs}
    atomic.write_json(outdir / "model_info.json", {
        "network": network, "input": ncfg["input"], "features": list(ncfg["features"]), "parameters": pnames,
        "nominal": _nominal_point(pcfg, sig, pnames) if pnames else None, "points": points, "cut": cut,
        "config_hash": metrics["config_hash"], "inputs": inputs})
    metrics = ev.nan_to_none(metrics)
    atomic.write_json(outdir / "metrics.json", metrics)
    if make_plots:
        label = f"{network} ({ncfg['input']})"
        plots.discriminant(outdir / "discriminant", s_train, s_test, b_train, b_test, cut, label)
        plots.roc(outdir / "roc", {k: (v[0], v[1]) for k, v in scored.items()}, cut, label)
        plots.history(outdir / "loss", info["subsets"], label)
        if comparison is not None:
            plots.roc_comparison(outdir / "roc_comparison", scored, cscored, cut, label)
    log.info("network %s trained and evaluated in %.1f s: AUC %s", network, time.perf_counter() - t0,
             {k: round(v, 4) for k, v in metrics["auc"].items() if v is not None})
    return metrics


def _nominal_point(pcfg, sig, pnames):
    nom = pcfg.get("nominal")
    if nom:
        return {n: float(nom[n]) for n in pnames}
    return dict(zip(pnames, par.point_of(sig[0], pnames).tolist()))


def _nominal_bkg(model, bkg_test, pcfg, sig, pnames):
    nom = _nominal_point(pcfg, sig, pnames)
    return predict(model, par.append(bkg_test.X, np.array([nom[n] for n in pnames])))


def _compare_single(sig, splits, bkg_train, bkg_test, entries, ncfg, seed, network, pcfg, metrics, cut):
    """A plain (non-parameterised) network on the reference sample, same split, same held-out sets."""
    ref = pcfg.get("reference") or sig[0].name
    match = [d for d in sig if d.name == ref or d.key == str(ref)]
    if not match:
        raise ConfigError(f"nn.networks.{network}.parameterised.reference: {ref!r} is not a training signal")
    d = match[0]
    scfg = dict(ncfg, parameterised=None)
    model, _, _, _ = train_model(splits[d.name][0].X, bkg_train.X, scfg, seed, network, tag="/single",
                                 wb_event=bkg_train.gen_weight)
    cscored = evaluate_points(model, entries, bkg_test, scfg, [])
    cm = metrics_from_scores(cscored, cut, bkg_test.gen_weight)
    comp = {"single_reference": d.key, "auc_single": cm["auc"], "auc_single_err": cm["auc_err"],
            "auc_parameterised": dict(metrics["auc"]), "sig_eff_at_cut_single": cm["sig_eff_at_cut"],
            "hf_eff_at_cut_single": ev.efficiency(next(iter(cscored.values()))[1], cut, bkg_test.gen_weight)["eff"]}
    return comp, roc_rows(cscored, "single", bkg_test.gen_weight), cscored
