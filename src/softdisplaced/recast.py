"""Recasts of published CMS searches: model-independent s95 per SR and R95 / CLs versus c*tau.

Each recast (``recast.analyses``) is a configured analysis (its cuts live in the
processing stage's ``analyses`` section) with the published luminosity, observed
counts and background estimates. Background uncertainties: a number, or
components added in quadrature, or asymmetric errors symmetrised (mean).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

from . import statistics as st
from .limits import EXCLUSION_COLUMNS, pooled_efficiency
from .samples import build_samples, cross_section_fb

S95_COLUMNS = ("analysis", "region", "lumi_fb", "observed", "background", "background_err", "s95_obs", "s95_exp",
               "s95_exp_m1", "s95_exp_p1", "method")


def region_inputs(entry: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observed, background, background_err) arrays of a recast entry."""
    regs = entry["regions"]
    obs = np.asarray(entry["observed"], float)
    b = np.asarray(entry["background"], float)
    if "background_err" in entry:
        err = np.array([math.sqrt(sum(float(c) ** 2 for c in e)) if isinstance(e, (list, tuple)) else float(e)
                        for e in entry["background_err"]])
    elif "background_err_up" in entry and "background_err_down" in entry:
        err = 0.5 * (np.asarray(entry["background_err_up"], float) + np.asarray(entry["background_err_down"], float))
    else:
        err = np.zeros(len(b))
    for name, arr in (("observed", obs), ("background", b), ("background errors", err)):
        if len(arr) != len(regs):
            raise ValueError(f"recast: {len(arr)} {name} for {len(regs)} regions {regs}")
    return obs, b, err


def s95_rows(name: str, entry: Mapping, method: str = "exact", cl: float = 0.95) -> list[dict]:
    """Model-independent 95 % CL upper limits on signal events per region (observed and expected +-1 sigma)."""
    obs, b, err = region_inputs(entry)
    rows = []
    if method == "exact":
        s_obs = st.s95_exact(b, obs, err, cl)
        nq = st.expected_counts_quantiles(b, err)                 # (K, 5): n at -2..+2 sigma
        s_exp = np.stack([st.s95_exact(b, nq[:, j], err, cl) for j in range(5)], axis=1)
        for k, reg in enumerate(entry["regions"]):
            rows.append(dict(analysis=name, region=reg, lumi_fb=float(entry["lumi_fb"]), observed=int(obs[k]),
                             background=float(b[k]), background_err=float(err[k]), s95_obs=float(s_obs[k]),
                             s95_exp=float(s_exp[k, 2]), s95_exp_m1=float(s_exp[k, 1]), s95_exp_p1=float(s_exp[k, 3]),
                             method="exact_poisson_cls"))
        return rows
    calctype = {"pyhf_asymptotic": "asymptotics", "pyhf_toys": "toybased"}.get(method)
    if calctype is None:
        raise ValueError(f"recast.s95_method: unknown method {method!r}")
    for k, reg in enumerate(entry["regions"]):
        rel = err[k] / b[k] if b[k] > 0 else 0.0
        spec = st.pyhf_spec([1.0], [b[k]], None, 0.0, [rel])
        res = st.mu95_pyhf(spec, [obs[k]], calctype=calctype,
                           scan=np.linspace(0, 3 * (3 + obs[k] + 2 * math.sqrt(b[k] + err[k] ** 2)), 61))
        rows.append(dict(analysis=name, region=reg, lumi_fb=float(entry["lumi_fb"]), observed=int(obs[k]),
                         background=float(b[k]), background_err=float(err[k]), s95_obs=res["obs"],
                         s95_exp=res["exp"][2], s95_exp_m1=res["exp"][1], s95_exp_p1=res["exp"][3], method=method))
    return rows


def recast_ctau(cfg: Mapping, name: str, entry: Mapping, skims: Sequence, grid_cm, seed: int = 0) -> list[dict]:
    """R95 (N = observed) and CLs mu95 versus c*tau for every (m_c, dm) among the recast's signal skims."""
    import h5py

    from .yields import CHANNEL_CODES, signal_weights, skim_key

    obs, b, err = region_inputs(entry)
    K = len(b)
    srs = tuple(range(1, K + 1))
    channel = entry.get("channel", "emu")
    samples = build_samples(cfg)
    scale = float(entry.get("cross_section_scale", 1.0))
    lumi = float(entry["lumi_fb"])
    groups: dict = defaultdict(list)
    for sk in skims:
        an, sname = skim_key(sk)
        if an != entry.get("skim_analysis", name) or sname not in samples or samples[sname]["kind"] != "signal":
            continue
        w, ev, attrs = signal_weights(sk)  # w_gen x w_d0eff x flavour factor of each event's channel
        with h5py.File(sk, "r") as f:
            ct = f["events/mediator_ct_mm"][:]
        if "channel" in ev:  # multi-channel skim: this recast's channel only
            mine = np.asarray(ev["channel"]) == CHANNEL_CODES[channel]
        else:
            mine = np.full(len(w), channel in json.loads(attrs.get("channels", '{"emu": 0}')))
        spec = samples[sname]
        groups[(spec.get("source", "fast"), float(spec["m_c"]), float(spec["dm"]))].append(dict(
            ct_mm=ct[mine], base=w[mine], sr=np.asarray(ev["sr"])[mine], n_gen=float(attrs["sum_gen_weights"]),
            ctau_cm=float(attrs.get("ctau_cm", spec["ctau_cm"])), name=sname))
    rows = []
    lcfg = cfg.get("limits", {})
    cls_cfg = lcfg.get("cls", {})
    grid = np.atleast_1d(grid_cm)
    for (src, m_c, dm), group in sorted(groups.items()):
        pe = pooled_efficiency(group, grid, srs)
        sig, xerr, _ = cross_section_fb(cfg, m_c)
        norm = sig * scale * float(lcfg.get("scan_br_ll", 1.0)) * lumi
        S = (norm * pe["eff"]).T                                  # (G, K)
        E = (norm * pe["eff_err"]).T
        if not np.any(S > 0):
            continue
        inp = st.LimitInputs.build(S, np.broadcast_to(b, S.shape), E, xerr / sig,
                                   [np.where(b > 0, err / np.where(b > 0, b, 1), 0.0)],
                                   n_obs=np.broadcast_to(obs, S.shape))
        lim = st.mu95(inp, method=cls_cfg.get("method", "auto"), asymptotic_min_b=float(cls_cfg.get("asymptotic_min_b", 1.0)),
                      cl=float(cls_cfg.get("cl", 0.95)), n_toys=int(cls_cfg.get("n_toys", 5000)), seed=seed)
        r95_obs = st.r95(S, np.broadcast_to(b, S.shape), np.broadcast_to(obs, S.shape))
        r95_exp = st.r95(S, np.broadcast_to(b, S.shape))
        for i, ct in enumerate(grid):
            ex = lim["exp"][i]
            rows.append(dict(source=src, analysis=name, m_c=m_c, dm=dm, lumi_fb=lumi, ctau_cm=float(ct),
                             r95=float(r95_obs[i]), r95_exp=float(r95_exp[i]), mu95_exp=float(ex[2]),
                             mu95_obs=float(lim["obs"][i]), mu95_exp_m2=float(ex[0]), mu95_exp_m1=float(ex[1]),
                             mu95_exp_p1=float(ex[3]), mu95_exp_p2=float(ex[4]), cls_method=str(lim["method"][i]),
                             s_total=float(S[i].sum()), b_total=float(b.sum())))
    return rows


RECAST_CTAU_COLUMNS = EXCLUSION_COLUMNS + ("r95_exp",)
