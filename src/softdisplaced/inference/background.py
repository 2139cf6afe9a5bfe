"""Heavy-flavour background: double-exponential fit, transfer factors, B per SR (spec section 5).

The HF lepton pT spectrum is described by

    f(pT) = exp(a1 + b1 pT) + exp(a2 + b2 pT)

and the transfer factor from the CMS thresholds (42 GeV for electrons, 40 GeV for
muons) down to a threshold pT is the ratio of integrals up to ``upper`` (70 GeV):

    kappa(pT) = int_pT^upper f / int_ref^upper f,   kappa_emu = kappa_e x kappa_mu.

The background per signal region at luminosity L is
``B_i = kappa_emu x N_i x L / L_ref`` (N_i: the CMS 95 % CL upper limits at
L_ref = 2.6 fb^-1), and after the NN cut ``B_i x f_HF(NN >= cut)``.

Three methods (``background.method``):

* ``own_fit``: extended unbinned maximum-likelihood fit (iminuit) of the HF skim
  spectra, covariance from the Hessian with the sandwich correction for weighted
  events; kappa uncertainties by linear propagation (analytic gradients).
* ``published_fit``: integrate the study's rounded fit (no covariance is
  published: uncertainties are the published table's relative ones where the
  threshold is in the table, NaN elsewhere).
* ``published_table``: the study's Table 2 as it stands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

PARAMS = ("a1", "b1", "a2", "b2")
SR_NAMES = ("I", "II", "III")
METHODS = ("own_fit", "published_fit", "published_table")


# --------------------------------------------------------------------------- model
def double_exp(pt, p) -> np.ndarray:
    """f(pT) for parameters ``p = (a1, b1, a2, b2)`` (sequence or mapping)."""
    a1, b1, a2, b2 = _as_tuple(p)
    pt = np.asarray(pt, dtype=float)
    return np.exp(a1 + b1 * pt) + np.exp(a2 + b2 * pt)


def _as_tuple(p) -> tuple[float, float, float, float]:
    if isinstance(p, Mapping):
        return tuple(float(p[k]) for k in PARAMS)  # type: ignore[return-value]
    return tuple(float(x) for x in p)  # type: ignore[return-value]


def _exp_integral(a, b, lo, hi):
    """int_lo^hi exp(a + b x) dx and its derivatives with respect to a and b."""
    if abs(b) < 1e-12:
        val = np.exp(a) * (hi - lo)
        return val, val, np.exp(a) * (hi ** 2 - lo ** 2) / 2
    eh, el = np.exp(b * hi), np.exp(b * lo)
    val = np.exp(a) * (eh - el) / b
    d_a = val
    d_b = np.exp(a) * ((hi * eh - lo * el) / b - (eh - el) / b ** 2)
    return val, d_a, d_b


def integral(p, lo: float, hi: float) -> tuple[float, np.ndarray]:
    """int_lo^hi f and its gradient with respect to (a1, b1, a2, b2)."""
    a1, b1, a2, b2 = _as_tuple(p)
    v1, da1, db1 = _exp_integral(a1, b1, lo, hi)
    v2, da2, db2 = _exp_integral(a2, b2, lo, hi)
    return float(v1 + v2), np.array([da1, db1, da2, db2], dtype=float)


def transfer_factor(p, threshold: float, reference: float, upper: float = 70.0,
                    cov: np.ndarray | None = None) -> tuple[float, float]:
    """kappa = int_threshold^upper f / int_reference^upper f, with its propagated error."""
    num, gnum = integral(p, threshold, upper)
    den, gden = integral(p, reference, upper)
    kappa = num / den
    if cov is None:
        return kappa, float("nan")
    grad = kappa * (gnum / num - gden / den)
    return kappa, float(np.sqrt(max(grad @ np.asarray(cov) @ grad, 0.0)))


# ------------------------------------------------------------------------- the fit
@dataclass
class FitResult:
    params: np.ndarray
    cov: np.ndarray
    n_events: float
    sum_w2: float
    fit_range: tuple[float, float]
    valid: bool
    nll: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "params": dict(zip(PARAMS, map(float, self.params))),
            "errors": dict(zip(PARAMS, map(float, np.sqrt(np.clip(np.diag(self.cov), 0, None))))),
            "covariance": self.cov.tolist(),
            "n_events": float(self.n_events),
            "sum_w2": float(self.sum_w2),
            "fit_range_gev": list(self.fit_range),
            "valid": bool(self.valid),
            "nll": float(self.nll),
            **self.extra,
        }


def _start_values(pt: np.ndarray, w: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Start: straight-line fits of log(density) in the lower and upper halves of the range."""
    edges = np.linspace(lo, hi, 11)
    h, _ = np.histogram(pt, bins=edges, weights=w)
    c = 0.5 * (edges[1:] + edges[:-1])
    dens = np.clip(h / np.diff(edges), 1e-3 * max(h.max(), 1.0), None)
    y = np.log(dens)
    b_soft, a_soft = np.polyfit(c[:4], y[:4], 1)
    b_hard, a_hard = np.polyfit(c[-4:], y[-4:], 1)
    b_soft = min(b_soft, -1e-3)
    b_hard = min(max(b_hard, 0.5 * b_soft), -1e-3)
    return np.array([a_soft - np.log(2), b_soft, a_hard - np.log(2), b_hard])


def fit_double_exponential(pt, weights=None, fit_range: Sequence[float] = (20.0, 70.0)) -> FitResult:
    """Extended unbinned (weighted) maximum-likelihood fit of ``f`` to a pT spectrum.

    NLL = int_range f - sum_j w_j ln f(pT_j). For weighted events the covariance is
    the sandwich H^-1 (sum_j w_j^2 g_j g_j^T) H^-1 with g_j the per-event score, which
    reduces to H^-1 for unit weights.
    """
    from iminuit import Minuit

    pt = np.asarray(pt, dtype=float)
    w = np.ones_like(pt) if weights is None else np.asarray(weights, dtype=float)
    lo, hi = map(float, fit_range)
    m = (pt >= lo) & (pt <= hi) & np.isfinite(pt) & np.isfinite(w)
    pt, w = pt[m], w[m]
    if len(pt) < 10:
        raise ValueError(f"double-exponential fit: only {len(pt)} entries in [{lo}, {hi}] GeV; need at least 10")

    def nll(a1, b1, a2, b2):
        p = (a1, b1, a2, b2)
        val = integral(p, lo, hi)[0] - np.sum(w * np.log(double_exp(pt, p)))
        return val if np.isfinite(val) else 1e300

    def grad(a1, b1, a2, b2):
        e1, e2 = np.exp(a1 + b1 * pt), np.exp(a2 + b2 * pt)
        f = e1 + e2
        g_int = integral((a1, b1, a2, b2), lo, hi)[1]
        g_log = np.array([np.sum(w * e1 / f), np.sum(w * pt * e1 / f), np.sum(w * e2 / f), np.sum(w * pt * e2 / f)])
        return g_int - g_log

    start = _start_values(pt, w, lo, hi)
    mi = Minuit(nll, *start, grad=grad, name=PARAMS)
    mi.errordef = Minuit.LIKELIHOOD
    mi.strategy = 2
    mi.migrad()
    mi.hesse()
    p = np.array(mi.values)
    # order the components: 1 = steep (soft), 2 = shallow (hard), as in the study's parametrisation
    if p[1] > p[3]:
        p = p[[2, 3, 0, 1]]
    h_inv = _hessian_inverse(p, pt, w, lo, hi)
    e1, e2 = np.exp(p[0] + p[1] * pt), np.exp(p[2] + p[3] * pt)
    f = e1 + e2
    scores = np.stack([e1 / f, pt * e1 / f, e2 / f, pt * e2 / f], axis=1)
    # per-event score of the extended likelihood: the integral term is shared; for unit weights
    # sum w^2 g g^T equals the Hessian at the optimum (expected), the sandwich keeps that limit
    meat = (scores * (w ** 2)[:, None]).T @ scores
    cov = h_inv @ meat @ h_inv
    return FitResult(params=p, cov=cov, n_events=float(w.sum()), sum_w2=float((w ** 2).sum()),
                     fit_range=(lo, hi), valid=bool(mi.valid), nll=float(mi.fval),
                     extra={"hesse_covariance": h_inv.tolist(), "n_entries": int(len(pt))})


def _hessian_inverse(p, pt, w, lo, hi) -> np.ndarray:
    """Analytic Hessian of the extended NLL, inverted."""
    a1, b1, a2, b2 = p
    H = np.zeros((4, 4))
    # integral term: d2/dadb of int exp(a + b x) = int x^k exp(a + b x)
    xs = np.linspace(lo, hi, 2001)
    for (ia, ib), (a, b) in (((0, 1), (a1, b1)), ((2, 3), (a2, b2))):
        e = np.exp(a + b * xs)
        m0, m1, m2 = (np.trapezoid(e * xs ** k, xs) for k in range(3))
        H[ia, ia] += m0
        H[ia, ib] += m1
        H[ib, ia] += m1
        H[ib, ib] += m2
    # - sum w ln f: Hessian = - sum w (f''/f - f' f'^T / f^2)
    e1, e2 = np.exp(a1 + b1 * pt), np.exp(a2 + b2 * pt)
    f = e1 + e2
    d = np.stack([e1, pt * e1, e2, pt * e2], axis=1)
    second = np.zeros((len(pt), 4, 4))
    second[:, 0, 0], second[:, 0, 1], second[:, 1, 0], second[:, 1, 1] = e1, pt * e1, pt * e1, pt ** 2 * e1
    second[:, 2, 2], second[:, 2, 3], second[:, 3, 2], second[:, 3, 3] = e2, pt * e2, pt * e2, pt ** 2 * e2
    H -= np.einsum("n,nij->ij", w / f, second)
    H += np.einsum("n,ni,nj->ij", w / f ** 2, d, d)
    return np.linalg.inv(H)


# ----------------------------------------------------------------- transfer factors
@dataclass
class TransferFactors:
    method: str
    rows: list[dict]                     # threshold, kappa_e, kappa_e_err, kappa_mu, ..., method
    fits: dict = field(default_factory=dict)   # lepton -> FitResult dict (own_fit) / params (published_fit)

    def at(self, threshold: float) -> dict:
        for r in self.rows:
            if abs(r["threshold"] - float(threshold)) < 1e-9:
                return r
        raise ValueError(f"transfer factors ({self.method}): threshold {threshold} GeV not computed; "
                         f"have {[r['threshold'] for r in self.rows]} (background.thresholds_gev)")


def _row(threshold, ke, dke, km, dkm, method) -> dict:
    kemu = ke * km
    dkemu = kemu * float(np.hypot(dke / ke, dkm / km)) if np.isfinite(dke) and np.isfinite(dkm) else float("nan")
    return dict(threshold=float(threshold), kappa_e=float(ke), kappa_e_err=float(dke), kappa_mu=float(km),
                kappa_mu_err=float(dkm), kappa_emu=float(kemu), kappa_emu_err=float(dkemu), method=method)


def _thresholds(bcfg: Mapping) -> list[float]:
    ths = sorted({float(t) for t in bcfg.get("thresholds_gev", [20, 25, 30, 35])}
                 | {float(t) for t in bcfg.get("analysis_threshold_gev", {}).values()})
    return ths


def _ref(bcfg: Mapping) -> tuple[float, float]:
    r = bcfg.get("reference_threshold_gev", {"electron": 42, "muon": 40})
    return float(r["electron"]), float(r["muon"])


def _is_reference(th: float, bcfg: Mapping) -> bool:
    """Threshold 42 (or the electron reference) stands for the CMS thresholds (42, 40): kappa = 1."""
    return abs(th - _ref(bcfg)[0]) < 1e-9


def transfer_factors_from_params(params: Mapping[str, Sequence[float]], bcfg: Mapping, method: str,
                                 covs: Mapping[str, np.ndarray] | None = None) -> TransferFactors:
    ref_e, ref_mu = _ref(bcfg)
    upper = float(bcfg.get("upper_gev", 70))
    rows = []
    for th in _thresholds(bcfg):
        the, thmu = (ref_e, ref_mu) if _is_reference(th, bcfg) else (th, th)
        ke, dke = transfer_factor(params["electron"], the, ref_e, upper, None if covs is None else covs["electron"])
        km, dkm = transfer_factor(params["muon"], thmu, ref_mu, upper, None if covs is None else covs["muon"])
        rows.append(_row(th, ke, dke, km, dkm, method))
    return TransferFactors(method=method, rows=rows)


def published_fit_factors(bcfg: Mapping) -> TransferFactors:
    """Integrate the study's rounded fit; errors: the published table's relative errors (no covariance published)."""
    pf = bcfg.get("published_fit") or {}
    if "electron" not in pf or "muon" not in pf:
        raise ValueError("background.published_fit: needs 'electron' and 'muon' parameters (a1, b1, a2, b2)")
    tf = transfer_factors_from_params({k: _as_tuple(pf[k]) for k in ("electron", "muon")}, bcfg, "published_fit")
    table = {float(k): v for k, v in (bcfg.get("published_kappa") or {}).items()}
    for r in tf.rows:
        if _is_reference(r["threshold"], bcfg):
            r.update(kappa_e_err=0.0, kappa_mu_err=0.0, kappa_emu_err=0.0)
        elif r["threshold"] in table:
            t = table[r["threshold"]]
            r.update(kappa_e_err=r["kappa_e"] * t[1] / t[0], kappa_mu_err=r["kappa_mu"] * t[3] / t[2],
                     kappa_emu_err=r["kappa_emu"] * t[5] / t[4])
    tf.fits = {k: dict(zip(PARAMS, _as_tuple(pf[k]))) for k in ("electron", "muon")}
    return tf


def published_table_factors(bcfg: Mapping) -> TransferFactors:
    table = {float(k): v for k, v in (bcfg.get("published_kappa") or {}).items()}
    rows = []
    for th in _thresholds(bcfg):
        if _is_reference(th, bcfg):
            rows.append(_row(th, 1.0, 0.0, 1.0, 0.0, "published_table"))
            continue
        if th not in table:
            raise ValueError(f"background.published_kappa: no entry for threshold {th:g} GeV "
                             f"(have {sorted(table)}); use method own_fit or published_fit")
        ke, dke, km, dkm, kemu, dkemu = map(float, table[th])
        rows.append(dict(threshold=th, kappa_e=ke, kappa_e_err=dke, kappa_mu=km, kappa_mu_err=dkm,
                         kappa_emu=kemu, kappa_emu_err=dkemu, method="published_table"))
    return TransferFactors(method="published_table", rows=rows)


def own_fit_factors(spectra: Mapping[str, tuple[np.ndarray, np.ndarray]], bcfg: Mapping) -> TransferFactors:
    """Fit electron and muon spectra ``{lepton: (pt, weight)}`` and compute the transfer factors."""
    fr = tuple(bcfg.get("fit_range_gev", (20.0, 70.0)))
    fits = {lep: fit_double_exponential(pt, w, fr) for lep, (pt, w) in spectra.items()}
    for lep, f in fits.items():
        if not f.valid:
            log.warning("double-exponential fit of the HF %s spectrum did not converge (Minuit invalid)", lep)
    tf = transfer_factors_from_params({k: f.params for k, f in fits.items()}, bcfg, "own_fit",
                                      {k: f.cov for k, f in fits.items()})
    tf.fits = {k: f.as_dict() for k, f in fits.items()}
    return tf


def reference_factors(path, label: str, bcfg: Mapping | None = None) -> TransferFactors:
    """Transfer factors measured once and committed (``softdisplaced hf-kappa``, e.g.
    ``config/reference/hf_kappa_pythia8.json``), labelled ``label``. With ``bcfg`` and the file's fits
    (parameters and covariance per lepton), kappa is recomputed at every threshold of ``bcfg`` (a new
    threshold of a threshold scan included); otherwise the file's rows are used as they stand."""
    import json

    try:
        with open(path) as fh:
            rec = json.load(fh)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the kappa reference file ({exc}); make it with softdisplaced hf-kappa") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: kappa reference file is not valid JSON: {exc}") from exc
    keys = ("threshold", "kappa_e", "kappa_e_err", "kappa_mu", "kappa_mu_err", "kappa_emu", "kappa_emu_err")
    rows = rec.get("rows") if isinstance(rec, Mapping) else None
    if not rows or not all(isinstance(r, Mapping) and all(k in r for k in keys) for r in rows):
        raise ValueError(f"{path}: kappa reference file needs 'rows' with {', '.join(keys)}")
    fits = dict(rec.get("fits") or {})
    if bcfg is not None and all(isinstance(fits.get(k), Mapping) and "params" in fits[k] and "covariance" in fits[k]
                                for k in ("electron", "muon")):
        try:
            params = {k: [float(fits[k]["params"][p]) for p in PARAMS] for k in ("electron", "muon")}
            covs = {k: np.asarray(fits[k]["covariance"], dtype=float).reshape(4, 4) for k in ("electron", "muon")}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: kappa reference file has malformed fits ({exc})") from exc
        tf = transfer_factors_from_params(params, bcfg, label, covs)
        tf.fits = fits
        return tf
    return TransferFactors(method=label, rows=[{**{k: float(r[k]) for k in keys}, "method": label} for r in rows],
                           fits=fits)


def reference_provenance(path) -> str:
    """'measured by <command> on <date> (<events> events, seed <seed>, <source>)' of a kappa reference file."""
    import json

    try:
        with open(path) as fh:
            rec = json.load(fh)
        m = rec["measured"]
        head, _, dirty = str(m.get("git_commit", "unknown")).partition("+")
        commit = head[:10] + (f"+{dirty}" if dirty else "")
        return (f"measured by `{m['command']}` on {m['date']} ({rec['events_used']} {rec['source']} events, "
                f"seed {rec['seed']}, commit {commit})")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: kappa reference file without its provenance ({exc})") from exc


def read_spectra(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{electron|muon: (pt, weight)}`` from the group ``spectra`` of an HF skim."""
    import h5py

    with h5py.File(path, "r") as f:
        if "spectra" not in f:
            raise ValueError(f"{path}: HF skim has no group 'spectra' (needed for the double-exponential fit)")
        g = f["spectra"]
        out = {}
        for lep in ("electron", "muon"):
            for k in (f"{lep}_pt", f"{lep}_weight"):
                if k not in g:
                    raise ValueError(f"{path}: dataset spectra/{k} missing")
            out[lep] = (g[f"{lep}_pt"][:], g[f"{lep}_weight"][:])
    return out


def transfer_factors(bcfg: Mapping, hf_spectra_path=None) -> TransferFactors:
    method = bcfg.get("method", "own_fit")
    if method == "own_fit":
        if hf_spectra_path is None:
            raise ValueError("background.method = own_fit needs the HF skim with spectra (--hf-spectra)")
        return own_fit_factors(read_spectra(hf_spectra_path), bcfg)
    if method == "published_fit":
        return published_fit_factors(bcfg)
    if method == "published_table":
        return published_table_factors(bcfg)
    raise ValueError(f"background.method: unknown method {method!r}; choose one of {METHODS}")


# ----------------------------------------------------------------------- backgrounds
def nn_fraction_from_scores(skim_path, score_path, cut: float) -> tuple[float, float]:
    """Weighted fraction of HF skim events with score >= cut and its binomial error (effective counts)."""
    from softdisplaced.nn.scoring import read_scores
    from softdisplaced.processing.skim import read_events

    ev, _ = read_events(skim_path, ["weight_gen", "weight_d0eff"])
    w = np.asarray(ev["weight_gen"], float) * np.asarray(ev["weight_d0eff"], float)
    s = read_scores(score_path, len(w))
    return weighted_fraction(s >= cut, w)


def weighted_fraction(passed: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    if len(w) == 0 or w.sum() <= 0:
        raise ValueError("NN fraction: the HF sample has no selected events")
    tot = w.sum()
    p = float(w[passed].sum() / tot)
    n_eff = tot ** 2 / np.sum(w ** 2)
    err = float(np.sqrt(max(p * (1 - p), 0.0) / n_eff))
    if p == 0.0:   # no passing event: 68 % one-sided upper bound as the uncertainty
        err = float(1 - 0.32 ** (1 / n_eff))
    return p, err


def nn_fraction_from_metrics(metrics_path) -> tuple[float, float]:
    import json

    with open(metrics_path) as fh:
        m = json.load(fh)
    if "hf_eff_at_cut" not in m:
        raise ValueError(f"{metrics_path}: key 'hf_eff_at_cut' missing")
    return float(m["hf_eff_at_cut"]), float(m.get("hf_eff_at_cut_err", float("nan")))


def background_per_sr(kappa_emu: float, kappa_emu_err: float, bcfg: Mapping, lumi_fb: float,
                      nn_fraction: tuple[float, float] | None = None) -> list[dict]:
    """B_i = kappa_emu x N_i x L / L_ref (x f_NN) with its relative uncertainty per SR."""
    n_i = list(map(float, bcfg.get("cms_upper_limits_2p6fb", [3.0, 0.5, 0.019])))
    lref = float(bcfg.get("reference_lumi_fb", 2.6))
    rel = kappa_emu_err / kappa_emu if kappa_emu > 0 and np.isfinite(kappa_emu_err) else 0.0
    f, df = (1.0, 0.0) if nn_fraction is None else nn_fraction
    rel_nn = df / f if f > 0 and np.isfinite(df) else 0.0
    out = []
    for name, n in zip(SR_NAMES, n_i):
        b = kappa_emu * n * lumi_fb / lref * f
        out.append(dict(sr=name, b=b, b_err=b * float(np.hypot(rel, rel_nn)), rel_tf=rel, rel_nn=rel_nn))
    return out


def kappa_spread(primary: TransferFactors, alternatives: Sequence[TransferFactors]) -> dict[float, float]:
    """Per threshold: the largest relative difference max_alt |kappa_emu(alt) / kappa_emu(primary) - 1|.

    The transfer factor is not reproduced by LO simulation (spec section 5): the spread between
    the method used for the results and the project's own determinations (fast generator, Pythia 8)
    is a systematic uncertainty of the background; :func:`background_table` adds it in quadrature
    to the statistical transfer-factor uncertainty (column ``rel_tf``, the nuisance parameter
    ``limits.background_uncertainties.transfer_factor``)."""
    out = {}
    for r in primary.rows:
        th, k = r["threshold"], r["kappa_emu"]
        rel = 0.0
        for alt in alternatives:
            try:
                ka = alt.at(th)["kappa_emu"]
            except ValueError:
                continue
            if k > 0 and np.isfinite(ka):
                rel = max(rel, abs(ka / k - 1.0))
        out[float(th)] = float(rel)
    return out


def relative_tf_uncertainty(row: Mapping, spread: Mapping[float, float] | None = None) -> tuple[float, float, float]:
    """(total, statistical, spread) relative uncertainty of kappa_emu for one transfer-factor row."""
    k, dk = row["kappa_emu"], row["kappa_emu_err"]
    stat = dk / k if k > 0 and np.isfinite(dk) else 0.0
    sp = float((spread or {}).get(float(row["threshold"]), 0.0))
    return float(np.hypot(stat, sp)), float(stat), sp


def background_table(tf: TransferFactors, bcfg: Mapping, lumis: Sequence[float],
                     nn_fraction: tuple[float, float] | None, cut: float | None,
                     spread: Mapping[float, float] | None = None) -> list[dict]:
    """Rows (threshold, analysis, stage, lumi_fb, sr, b, b_err, rel_tf, rel_tf_stat, rel_spread, rel_nn, method)
    for every threshold and luminosity; ``spread`` (:func:`kappa_spread`) enlarges the transfer-factor
    uncertainty in quadrature."""
    th_to_an = {}
    for an, th in bcfg.get("analysis_threshold_gev", {}).items():
        th_to_an.setdefault(float(th), an)
    rows = []
    for r in tf.rows:
        rel_tf, rel_stat, rel_sp = relative_tf_uncertainty(r, spread)
        for lumi in lumis:
            stages = [("pre_nn", None)] + ([("post_nn", nn_fraction)] if nn_fraction is not None else [])
            for stage, frac in stages:
                for b in background_per_sr(r["kappa_emu"], r["kappa_emu"] * rel_tf, bcfg, lumi, frac):
                    rows.append(dict(threshold=r["threshold"], analysis=th_to_an.get(r["threshold"], ""),
                                     stage=stage, lumi_fb=float(lumi), sr=b["sr"], b=b["b"], b_err=b["b_err"],
                                     rel_tf=b["rel_tf"], rel_tf_stat=rel_stat, rel_spread=rel_sp,
                                     rel_nn=b["rel_nn"], nn_cut=cut if stage == "post_nn" else None,
                                     method=tf.method))
    return rows


def background_for_analysis(tf: TransferFactors, bcfg: Mapping, analysis: str, lumi_fb: float,
                            nn_fraction: tuple[float, float] | None = None) -> list[dict]:
    ths = bcfg.get("analysis_threshold_gev", {})
    if analysis not in ths:
        raise ValueError(f"background.analysis_threshold_gev: analysis {analysis!r} has no threshold "
                         f"(have {sorted(ths)})")
    r = tf.at(float(ths[analysis]))
    return background_per_sr(r["kappa_emu"], r["kappa_emu_err"], bcfg, lumi_fb, nn_fraction)


def comparison_table(bcfg: Mapping, own: TransferFactors) -> list[dict]:
    """Own kappa and B(2.6 fb^-1) next to the published fit integration and the published tables."""
    pub_fit = published_fit_factors(bcfg) if bcfg.get("published_fit") else None
    table = {float(k): v for k, v in (bcfg.get("published_kappa") or {}).items()}
    pub_b = {}
    for k, v in (bcfg.get("published_background_2p6fb") or {}).items():
        pub_b[float(str(k).split(",")[0])] = v
    n_i = list(map(float, bcfg.get("cms_upper_limits_2p6fb", [3.0, 0.5, 0.019])))
    rows = []
    for r in own.rows:
        th = r["threshold"]
        row = dict(threshold=th, method=own.method, kappa_emu=r["kappa_emu"], kappa_emu_err=r["kappa_emu_err"],
                   kappa_e=r["kappa_e"], kappa_mu=r["kappa_mu"])
        if pub_fit is not None:
            pf = pub_fit.at(th)
            row.update(kappa_e_pubfit=pf["kappa_e"], kappa_mu_pubfit=pf["kappa_mu"], kappa_emu_pubfit=pf["kappa_emu"])
        if th in table:
            row.update(kappa_e_pub=table[th][0], kappa_mu_pub=table[th][2], kappa_emu_pub=table[th][4],
                       kappa_emu_rel_diff=r["kappa_emu"] / table[th][4] - 1)
        for name, n in zip(SR_NAMES, n_i):
            row[f"B_{name}"] = r["kappa_emu"] * n
            if th in pub_b:
                row[f"B_{name}_pub"] = float(pub_b[th][SR_NAMES.index(name)])
        if th in pub_b:
            row["published_B_over_kappa"] = [float(pub_b[th][i]) / (table[th][4] if th in table else 1.0)
                                             for i in range(3)]
        rows.append(row)
    return rows
