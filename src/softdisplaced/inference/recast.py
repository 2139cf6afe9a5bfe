"""Recasts of published CMS searches: model-independent s95 per SR, R95 / CLs versus c*tau for the
chargino model, and the long-lived top-squark model of the CMS papers (yields, CLs, excluded mass).

Each recast (``recast.analyses``) is a configured analysis (its cuts live in the
processing stage's ``analyses`` section) with the published luminosity, observed
counts and background estimates. Background uncertainties: a number, or
components added in quadrature, or asymmetric errors symmetrised (mean).

Signal of a recast: each channel (``channel``: emu, ee, mumu) takes its own events
from the skims (:func:`softdisplaced.inference.yields.lifetime_entry`, with the per-event flavour factor); searches with data-taking periods of different thresholds
(``eras``: skim analysis + luminosity each) sum L_era x efficiency_era. The
efficiency at any c*tau comes from the exact lifetime reweighting of
:func:`softdisplaced.inference.limits.pooled_efficiency`. A recast at ``sqrt_s_tev = 8``
uses only samples generated at 8 TeV, normalised with the 8 TeV cross sections.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

from softdisplaced.inference import statistics as st
from softdisplaced.inference.limits import EXCLUSION_COLUMNS, pooled_efficiency
from softdisplaced.samples import build_samples, cross_section_fb

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



def eras(name: str, entry: Mapping) -> list[tuple[str, float]]:
    """(skim analysis, luminosity) of each data-taking period of a recast (one period by default)."""
    if entry.get("eras"):
        out = [(str(e["skim_analysis"]), float(e["lumi_fb"])) for e in entry["eras"]]
        if not math.isclose(sum(l for _, l in out), float(entry["lumi_fb"]), rel_tol=1e-3):
            raise ValueError(f"recast.analyses.{name}: the eras' luminosities sum to {sum(l for _, l in out):g}, "
                             f"not lumi_fb = {entry['lumi_fb']}")
        return out
    return [(str(entry.get("skim_analysis", name)), float(entry["lumi_fb"]))]


def signal_groups(cfg: Mapping, name: str, entry: Mapping, skims: Sequence, model: str = "chargino") -> dict:
    """Skimmed signal events of a recast, per model point and era: ``{key: {era: [sample dicts]}}``.

    key: (source, m_c, dm) for charginos, m_stop for stops. Each sample dict is
    :func:`softdisplaced.inference.yields.lifetime_entry` of the skim (the events of the recast's channel, weight =
    w_gen x flavour factor x, when ``d0_efficiency``, the displaced-lepton efficiency weight) plus the
    cross section (fb) and its error.
    """
    from softdisplaced.samples import stop_cross_section_fb
    from softdisplaced.inference.yields import lifetime_entry, skim_key

    samples = build_samples(cfg)
    era_of = {a: a for a, _ in eras(name, entry)}
    sqrt_s = float(entry.get("sqrt_s_tev", 13))
    channel = entry.get("channel", "emu")
    use_eff = bool(entry.get("d0_efficiency", True))
    groups: dict = defaultdict(lambda: defaultdict(list))
    for sk in skims:
        an, sname = skim_key(sk)
        spec = samples.get(sname)
        if an not in era_of or spec is None or spec["kind"] != "signal" or spec.get("model", "chargino") != model \
                or float(spec.get("sqrt_s_tev", 13)) != sqrt_s:
            continue
        entry_ = lifetime_entry(sk, spec, sname, channel=channel, d0_efficiency=use_eff)   # this channel only
        if model == "stop":
            key = float(spec["m_stop"])
            sig, err, _ = stop_cross_section_fb(cfg, key)
        else:
            key = (spec.get("source", "fast"), float(spec["m_c"]), float(spec["dm"]))
            sig, err, _ = cross_section_fb(cfg, float(spec["m_c"]), sqrt_s)
        groups[key][an].append(dict(entry_, xsec_fb=sig, xsec_err_fb=err))
    return groups


def signal_counts(cfg: Mapping, name: str, entry: Mapping, skims: Sequence, grid_cm, model: str = "chargino",
                  factor: float = 1.0) -> dict:
    """Expected signal events per SR on the c*tau grid: ``{key: dict(S (G, K), E (G, K) MC-stat error,
    n_eff (G, K), xsec_fb, xsec_rel)}``; S = factor x sigma x sum_eras L_era x efficiency_era."""
    K = len(entry["regions"])
    srs = tuple(range(1, K + 1))
    grid = np.atleast_1d(np.asarray(grid_cm, float))
    lumi = dict(eras(name, entry))
    out = {}
    for key, by_era in sorted(signal_groups(cfg, name, entry, skims, model).items()):
        S = np.zeros((K, len(grid)))
        V = np.zeros_like(S)
        first = next(iter(by_era.values()))[0]
        for era, group in by_era.items():
            pe = pooled_efficiency(group, grid, srs)
            S += lumi[era] * pe["eff"]
            V += (lumi[era] * pe["eff_err"]) ** 2
        missing = set(lumi) - set(by_era)
        if missing:
            raise ValueError(f"recast {name}: no skims of {sorted(missing)} for the signal point {key}")
        norm = factor * first["xsec_fb"]
        S, E = norm * S, norm * np.sqrt(V)
        with np.errstate(divide="ignore", invalid="ignore"):
            n_eff = np.where(E > 0, (S / np.where(E > 0, E, 1)) ** 2, 0.0)
        out[key] = dict(S=S.T, E=E.T, n_eff=n_eff.T, xsec_fb=first["xsec_fb"],
                        xsec_rel=first["xsec_err_fb"] / first["xsec_fb"])
    return out


def limit_inputs(S, E, xsec_rel, entries: Sequence[Mapping]) -> "st.LimitInputs":
    """The counting model of one or several recasts (their SRs side by side): signal with MC-statistical
    and cross-section uncertainties, one background nuisance per recast (correlated over its SRs)."""
    parts = [region_inputs(e) for e in entries]
    obs = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    S = np.atleast_2d(S)
    syst, k0 = [], 0
    for o, bb, err in parts:
        rel = np.zeros(len(b))
        rel[k0:k0 + len(bb)] = np.where(bb > 0, err / np.where(bb > 0, bb, 1), 0.0)
        syst.append(rel)
        k0 += len(bb)
    return st.LimitInputs.build(S, np.broadcast_to(b, S.shape), E, xsec_rel, syst,
                                n_obs=np.broadcast_to(obs, S.shape))


def _mu95(cfg: Mapping, inp, seed: int, n_toys: int | None = None) -> dict:
    """CLs limits with limits.cls; the chargino curves pass their own toy count (recast.n_toys)."""
    cls_cfg = cfg["limits"]["cls"]
    return st.mu95(inp, method=cls_cfg["method"], asymptotic_min_b=float(cls_cfg["asymptotic_min_b"]),
                   cl=float(cls_cfg["cl"]), n_toys=int(n_toys or cls_cfg["n_toys"]), seed=seed)


def recast_ctau(cfg: Mapping, name: str, entry: Mapping, skims: Sequence, grid_cm, seed: int = 0) -> list[dict]:
    """R95 (N = observed) and CLs mu95 versus c*tau for every (m_c, dm) among the recast's chargino skims."""
    obs, b, err = region_inputs(entry)
    lcfg = cfg.get("limits", {})
    grid = np.atleast_1d(grid_cm)
    rows = []
    # the flavour factor (forced e-mu samples: 1/2 in e-mu, 0 in ee / mu-mu) is per event (yields.signal_weights)
    counts = signal_counts(cfg, name, entry, skims, grid, factor=float(lcfg.get("scan_br_ll", 1.0)))
    for (src, m_c, dm), c in counts.items():
        S, E = c["S"], c["E"]
        if not np.any(S > 0):
            continue
        lim = _mu95(cfg, limit_inputs(S, E, c["xsec_rel"], [entry]), seed, int(cfg["recast"]["n_toys"]))
        r95_obs = st.r95(S, np.broadcast_to(b, S.shape), np.broadcast_to(obs, S.shape))
        r95_exp = st.r95(S, np.broadcast_to(b, S.shape))
        for i, ct in enumerate(grid):
            ex = lim["exp"][i]
            rows.append(dict(source=src, analysis=name, m_c=m_c, dm=dm, lumi_fb=float(entry["lumi_fb"]),
                             ctau_cm=float(ct), r95=float(r95_obs[i]), r95_exp=float(r95_exp[i]),
                             mu95_exp=float(ex[2]), mu95_obs=float(lim["obs"][i]), mu95_exp_m2=float(ex[0]),
                             mu95_exp_m1=float(ex[1]), mu95_exp_p1=float(ex[3]), mu95_exp_p2=float(ex[4]),
                             cls_method=str(lim["method"][i]), s_total=float(S[i].sum()), b_total=float(b.sum())))
    return rows


def recast_ctau_combined(cfg: Mapping, model: str, members: Sequence[str], skims: Sequence, grid_cm,
                         seed: int = 0) -> list[dict]:
    """R95 and CLs mu95 versus c*tau of a ``recast.combined`` model (chargino signal; the SRs of all members
    in one model) for every (m_c, dm) with signal in all members."""
    entries = [cfg["recast"]["analyses"][n] for n in members]
    factor = float(cfg.get("limits", {}).get("scan_br_ll", 1.0))
    counts = [signal_counts(cfg, n, e, skims, grid_cm, factor=factor) for n, e in zip(members, entries)]
    parts = [region_inputs(e) for e in entries]
    obs = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    grid = np.atleast_1d(grid_cm)
    rows = []
    for key in sorted(set.intersection(*(set(c) for c in counts))):
        S = np.concatenate([c[key]["S"] for c in counts], axis=1)
        E = np.concatenate([c[key]["E"] for c in counts], axis=1)
        if not np.any(S > 0):
            continue
        lim = _mu95(cfg, limit_inputs(S, E, counts[0][key]["xsec_rel"], entries), seed,
                    int(cfg["recast"]["n_toys"]))
        r95_obs = st.r95(S, np.broadcast_to(b, S.shape), np.broadcast_to(obs, S.shape))
        r95_exp = st.r95(S, np.broadcast_to(b, S.shape))
        src, m_c, dm = key
        for i, ct in enumerate(grid):
            ex = lim["exp"][i]
            rows.append(dict(source=src, analysis=model, m_c=m_c, dm=dm, lumi_fb=float(entries[0]["lumi_fb"]),
                             ctau_cm=float(ct), r95=float(r95_obs[i]), r95_exp=float(r95_exp[i]),
                             mu95_exp=float(ex[2]), mu95_obs=float(lim["obs"][i]), mu95_exp_m2=float(ex[0]),
                             mu95_exp_m1=float(ex[1]), mu95_exp_p1=float(ex[3]), mu95_exp_p2=float(ex[4]),
                             cls_method=str(lim["method"][i]), s_total=float(S[i].sum()), b_total=float(b.sum())))
    return rows


RECAST_CTAU_COLUMNS = EXCLUSION_COLUMNS + ("r95_exp",)


# ------------------------------------------------------------------ long-lived top squarks
STOP_YIELD_COLUMNS = ("analysis", "m_stop", "ctau_cm", "region", "s", "s_err", "n_eff", "xsec_fb")
STOP_LIMIT_COLUMNS = ("analysis", "m_stop", "ctau_cm", "mu95_obs", "mu95_exp", "mu95_exp_m2", "mu95_exp_m1",
                      "mu95_exp_p1", "mu95_exp_p2", "cls_method", "s_total", "b_total")
MASS_LIMIT_COLUMNS = ("analysis", "ctau_cm", "m_excl_obs", "m_excl_exp", "m_excl_exp_m1", "m_excl_exp_p1",
                      "m_min", "m_max", "obs_flag", "exp_flag")


def stop_counts(cfg: Mapping, skims: Sequence, grid_cm) -> dict:
    """``{recast name: {m_stop: counts}}`` (:func:`signal_counts`) for every recast of ``recast.stops.analyses``.
    The channel split comes from the events (stop -> b e / b mu / b tau, 1/3 each, in the generator)."""
    rcfg = cfg["recast"]
    out = {}
    for name in (rcfg.get("stops") or {}).get("analyses", []):
        entry = rcfg["analyses"].get(name)
        if entry is None:
            raise ValueError(f"recast.stops.analyses: {name!r} is not in recast.analyses")
        out[name] = signal_counts(cfg, name, entry, skims, grid_cm, model="stop")
    return out


def stop_yield_rows(counts: Mapping, cfg: Mapping, grid_cm) -> list[dict]:
    rows = []
    for name, by_mass in counts.items():
        regions = cfg["recast"]["analyses"][name]["regions"]
        for m, c in by_mass.items():
            for i, ct in enumerate(np.atleast_1d(grid_cm)):
                for k, reg in enumerate(regions):
                    rows.append(dict(analysis=name, m_stop=m, ctau_cm=float(ct), region=reg, s=float(c["S"][i, k]),
                                     s_err=float(c["E"][i, k]), n_eff=float(c["n_eff"][i, k]), xsec_fb=c["xsec_fb"]))
    return rows


def combined_models(cfg: Mapping, available: Sequence[str]) -> dict[str, list[str]]:
    """``recast.combined`` models whose members are all ``available`` recasts (all SRs of all members in one
    model); a model with a member that is not configured (e.g. a reduced ``recast.analyses``) is left out."""
    out = {}
    for comb, members in ((cfg.get("recast") or {}).get("combined") or {}).items():
        if all(m in available for m in members):
            out[comb] = list(members)
    return out


def stop_models(cfg: Mapping) -> dict[str, list[str]]:
    """Statistical models of the stop recast: each recast of ``recast.stops.analyses`` alone, and the
    ``recast.combined`` models made of them."""
    names = list((cfg["recast"].get("stops") or {}).get("analyses", []))
    return {**{n: [n] for n in names}, **combined_models(cfg, names)}


def stop_limits(cfg: Mapping, counts: Mapping, grid_cm, seed: int = 0) -> list[dict]:
    """CLs upper limits on the signal strength per (model, m_stop, c*tau): mu95 < 1 excludes the point."""
    rcfg = cfg["recast"]
    grid = np.atleast_1d(np.asarray(grid_cm, float))
    rows = []
    for model, members in stop_models(cfg).items():
        entries = [rcfg["analyses"][n] for n in members]
        masses = sorted(set.intersection(*(set(counts[n]) for n in members))) if members else []
        for m in masses:
            S = np.concatenate([counts[n][m]["S"] for n in members], axis=1)
            E = np.concatenate([counts[n][m]["E"] for n in members], axis=1)
            inp = limit_inputs(S, E, counts[members[0]][m]["xsec_rel"], entries)
            lim = _mu95(cfg, inp, seed)
            for i, ct in enumerate(grid):
                ex = lim["exp"][i]
                rows.append(dict(analysis=model, m_stop=m, ctau_cm=float(ct), mu95_obs=float(lim["obs"][i]),
                                 mu95_exp=float(ex[2]), mu95_exp_m2=float(ex[0]), mu95_exp_m1=float(ex[1]),
                                 mu95_exp_p1=float(ex[3]), mu95_exp_p2=float(ex[4]),
                                 cls_method=str(lim["method"][i]), s_total=float(S[i].sum()),
                                 b_total=float(inp.b[i].sum())))
    return rows


def excluded_mass(masses, mu95) -> tuple[float, str]:
    """Largest excluded mass along a mass scan at fixed c*tau: the first crossing of mu95 = 1 from below
    going up in mass, interpolated linearly in (mass, log mu95). Flags: 'none' (the lowest mass is not
    excluded: nan), 'above_range' (excluded up to the highest mass: that mass, a lower bound), 'ok'."""
    m = np.asarray(masses, float)
    mu = np.asarray(mu95, float)
    order = np.argsort(m)
    m, mu = m[order], mu[order]
    ok = np.isfinite(mu) & (mu > 0)
    m, mu = m[ok], mu[ok]
    if not len(m) or mu[0] >= 1:
        return float("nan"), "none"
    above = np.nonzero(mu >= 1)[0]
    if not len(above):
        return float(m[-1]), "above_range"
    j = above[0]
    x0, x1, y0, y1 = m[j - 1], m[j], math.log(mu[j - 1]), math.log(mu[j])
    return float(x0 + (0.0 - y0) * (x1 - x0) / (y1 - y0)), "ok"


def mass_limit_rows(limit_rows: Sequence[Mapping]) -> list[dict]:
    """Largest excluded stop mass versus c*tau per model: observed, expected and its +-1 sigma band
    (mu95_exp_m1 is the -1 sigma quantile of the limit: a stronger limit, a larger excluded mass)."""
    by = defaultdict(list)
    for r in limit_rows:
        by[(r["analysis"], r["ctau_cm"])].append(r)
    rows = []
    for (model, ct), rs in sorted(by.items()):
        ms = [r["m_stop"] for r in rs]
        obs, fo = excluded_mass(ms, [r["mu95_obs"] for r in rs])
        exp, fe = excluded_mass(ms, [r["mu95_exp"] for r in rs])
        m1, _ = excluded_mass(ms, [r["mu95_exp_p1"] for r in rs])
        p1, _ = excluded_mass(ms, [r["mu95_exp_m1"] for r in rs])
        rows.append(dict(analysis=model, ctau_cm=ct, m_excl_obs=obs, m_excl_exp=exp, m_excl_exp_m1=m1,
                         m_excl_exp_p1=p1, m_min=min(ms), m_max=max(ms), obs_flag=fo, exp_flag=fe))
    return rows


def pyhf_workspace(cfg: Mapping, counts: Mapping, model: str, m_stop: float, ctau_index: int) -> dict:
    """pyhf workspace of one stop point for a model (all SRs of all its channels), for users of pyhf."""
    members = stop_models(cfg)[model]
    rcfg = cfg["recast"]
    entries = [rcfg["analyses"][n] for n in members]
    S = np.concatenate([counts[n][m_stop]["S"][ctau_index] for n in members])
    E = np.concatenate([counts[n][m_stop]["E"][ctau_index] for n in members])
    parts = [region_inputs(e) for e in entries]
    b = np.concatenate([p[1] for p in parts])
    obs = np.concatenate([p[0] for p in parts])
    names = [f"{n}_{r}" for n, e in zip(members, entries) for r in e["regions"]]
    rel = np.concatenate([np.where(p[1] > 0, p[2] / np.where(p[1] > 0, p[1], 1), 0.0) for p in parts])
    spec = st.pyhf_spec(S, b, E, counts[members[0]][m_stop]["xsec_rel"], [rel], names=names)
    return {"channels": spec["channels"],
            "observations": [{"name": n, "data": [float(o)]} for n, o in zip(names, obs)],
            "measurements": [{"name": "stop", "config": {"poi": "mu", "parameters": []}}],
            "version": "1.0.0"}


VALIDATION_COLUMNS = ("analysis", "m_stop", "ctau_cm", "region", "cms", "ours", "ours_err", "ratio", "ratio_err",
                      "tested", "within_tolerance", "n_eff", "ratio_no_d0eff")


def validation_rows(cfg: Mapping, counts: Mapping, grid_cm, counts_no_d0eff: Mapping | None = None) -> list[dict]:
    """Our stop yields against the published CMS ones (``recast.stops.validation``), per SR, with ratios.
    The acceptance test applies where CMS expects more than ``min_events``. ``counts_no_d0eff``: the same
    without the displaced-lepton efficiency weight (column ratio_no_d0eff, for the record)."""
    vcfg = (cfg["recast"].get("stops") or {}).get("validation") or {}
    tol, min_ev = float(vcfg.get("tolerance", 0.3)), float(vcfg.get("min_events", 0.5))
    grid = np.atleast_1d(np.asarray(grid_cm, float))
    rows = []
    for name, pts in (vcfg.get("published") or {}).items():
        regions = cfg["recast"]["analyses"][name]["regions"]
        for pt in pts:
            m, ct = float(pt["m_stop"]), float(pt["ctau_cm"])
            c = counts.get(name, {}).get(m)
            i = int(np.argmin(np.abs(np.log(grid / ct))))
            if c is None or not math.isclose(grid[i], ct, rel_tol=1e-6):
                raise ValueError(f"recast.stops.validation: no {name} signal at m_stop = {m:g}, c*tau = {ct:g} cm "
                                 "(add the mass to samples.stops.masses and c*tau to recast.stops.ctau_grid_cm)")
            for k, reg in enumerate(regions):
                cms, ours, err = float(pt["yields"][k]), float(c["S"][i, k]), float(c["E"][i, k])
                ratio = ours / cms if cms > 0 else float("nan")
                tested = cms > min_ev
                alt = (counts_no_d0eff or {}).get(name, {}).get(m)
                rows.append(dict(analysis=name, m_stop=m, ctau_cm=ct, region=reg, cms=cms, ours=ours, ours_err=err,
                                 ratio=ratio, ratio_err=err / cms if cms > 0 else float("nan"), tested=tested,
                                 within_tolerance=bool(abs(ratio - 1) <= tol) if tested else None,
                                 n_eff=float(c["n_eff"][i, k]),
                                 ratio_no_d0eff=float(alt["S"][i, k]) / cms if alt is not None and cms > 0 else None))
    return rows
