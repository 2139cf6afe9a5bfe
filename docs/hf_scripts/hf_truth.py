"""Truth and MET anatomy of the selected HF events (NN-background skim joined to the events' particle record).

    python docs/hf_scripts/hf_truth.py NAME SKIM.h5 EVENTS_DIR [NAME SKIM.h5 EVENTS_DIR ...]

EVENTS_DIR holds <chunk>.root (Delphes format, with the Particle record). Per selected event: reconstructed MET
and cos dphi(leading lepton, MET); the true invisible pT (neutrino sum) and its direction; the two weakly decaying
b hadrons: pT asymmetry |pT1 - pT2| / (pT1 + pT2) and the pT of the pair (recoil against radiation). Weighted
(weight_gen) quantiles. Issue 11 (docs/features.md, "HF sample"). Run with PYTHONPATH=src from the repository root.
"""
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from softdisplaced.processing.skim import read_events

Q = (0.10, 0.25, 0.50, 0.75, 0.90)
B_WEAK = np.array([511, 521, 531, 541, 5122, 5132, 5232, 5332])


def wq(x, w, q=Q):
    ok = np.isfinite(x)
    x, w = x[ok], w[ok]
    o = np.argsort(x)
    return np.interp(q, np.cumsum(w[o]) / w.sum(), x[o])


def dphi(a, b):
    return np.mod(a - b + np.pi, 2 * np.pi) - np.pi


def anatomy(skim, events_dir):
    ev, _ = read_events(skim)
    ev = {k: np.asarray(v) for k, v in ev.items()}
    rows = []
    for c in np.unique(ev["chunk"]):
        sel = np.nonzero(ev["chunk"] == c)[0]
        with uproot.open(Path(events_dir) / f"{c}.root") as f:
            t = f["Delphes"]
            num = ak.to_numpy(ak.flatten(t["Event/Event.Number"].array(library="ak")))
            pos = {int(n): i for i, n in enumerate(num)}
            idx = np.array([pos[int(n)] for n in ev["event_number"][sel]])
            br = ["MissingET/MissingET.MET", "MissingET/MissingET.Phi", "Particle/Particle.PID",
                  "Particle/Particle.Status", "Particle/Particle.PT", "Particle/Particle.Phi", "Particle/Particle.Eta", "Particle/Particle.D1"]
            a = t.arrays(br, library="ak")[idx]
        pid, st = a["Particle/Particle.PID"], a["Particle/Particle.Status"]
        pt, ph = a["Particle/Particle.PT"], a["Particle/Particle.Phi"]
        d1 = a["Particle/Particle.D1"]
        apid = abs(pid)
        nu = (st == 1) & ((apid == 12) | (apid == 14) | (apid == 16))
        nux = ak.to_numpy(ak.sum((pt * np.cos(ph))[nu], axis=1))
        nuy = ak.to_numpy(ak.sum((pt * np.sin(ph))[nu], axis=1))
        # weakly decaying b hadrons: b hadrons whose first daughter is not a b hadron
        isb = np.isin(ak.to_numpy(ak.flatten(apid)), B_WEAK)
        isb = ak.unflatten(isb, ak.num(apid))
        fl_pid = ak.to_numpy(ak.flatten(pid))
        offs = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(pid)))[:-1]])
        fl_d1 = ak.to_numpy(ak.flatten(d1))
        ev_of = np.repeat(np.arange(len(pid)), ak.to_numpy(ak.num(pid)))
        g = np.where(fl_d1 >= 0, offs[ev_of] + fl_d1, -1)
        dau = np.where(g >= 0, np.abs(fl_pid[np.clip(g, 0, None)]), 0)
        weak = ak.to_numpy(ak.flatten(isb)) & ~np.isin(dau, B_WEAK)
        weak = ak.unflatten(weak, ak.num(pid))
        bpt = pt[weak]
        bph = ph[weak]
        o = ak.argsort(bpt, axis=1, ascending=False)
        bpt, bph = bpt[o], bph[o]
        b1 = ak.to_numpy(ak.fill_none(ak.pad_none(bpt, 2)[:, 0], np.nan))
        b2 = ak.to_numpy(ak.fill_none(ak.pad_none(bpt, 2)[:, 1], np.nan))
        p1 = ak.to_numpy(ak.fill_none(ak.pad_none(bph, 2)[:, 0], np.nan))
        p2 = ak.to_numpy(ak.fill_none(ak.pad_none(bph, 2)[:, 1], np.nan))
        e = {k: ev[k][sel] for k in ("pt_e", "pt_mu", "phi_e", "phi_mu", "MtLeadLepMET", "weight_gen")}
        lead_is_e = e["pt_e"] >= e["pt_mu"]
        lphi = np.where(lead_is_e, e["phi_e"], e["phi_mu"])
        lpt = np.maximum(e["pt_e"], e["pt_mu"])
        met = ak.to_numpy(ak.firsts(a["MissingET/MissingET.MET"]))
        mphi = ak.to_numpy(ak.firsts(a["MissingET/MissingET.Phi"]))
        vis = (st == 1) & ~((apid == 12) | (apid == 14) | (apid == 16))
        sum_vis = ak.to_numpy(ak.sum(pt[vis], axis=1))
        n_vis = ak.to_numpy(ak.sum(vis, axis=1))
        eta = a["Particle/Particle.Eta"]
        central = vis & (abs(eta) < 5.0)
        gx = -ak.to_numpy(ak.sum((pt * np.cos(ph))[central], axis=1))   # generator-level MET of the acceptance
        gy = -ak.to_numpy(ak.sum((pt * np.sin(ph))[central], axis=1))
        rows.append(dict(
            w=e["weight_gen"], met=met, met_over_lead=met / lpt, cos_lead_met=np.cos(dphi(lphi, mphi)),
            true_met=np.hypot(nux, nuy),
            met_minus_true=np.hypot(met * np.cos(mphi) - nux, met * np.sin(mphi) - nuy), sum_pt_visible=sum_vis,
            gen_met=np.hypot(gx, gy), gen_met_minus_true=np.hypot(gx - nux, gy - nuy),
            met_minus_gen=np.hypot(met * np.cos(mphi) - gx, met * np.sin(mphi) - gy),
            n_visible=n_vis.astype(float), cos_lead_truemet=np.cos(dphi(lphi, np.arctan2(nuy, nux))),
            b_asym=np.abs(b1 - b2) / (b1 + b2),
            b_pair_pt=np.hypot(b1 * np.cos(p1) + b2 * np.cos(p2), b1 * np.sin(p1) + b2 * np.sin(p2)),
            b_dphi=np.abs(dphi(p1, p2)), b1=b1, b2=b2, mt=e["MtLeadLepMET"]))
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def main(argv):
    for i in range(0, len(argv), 3):
        name, skim, evdir = argv[i:i + 3]
        d = anatomy(skim, evdir)
        w = d.pop("w")
        print(f"== {name}: {len(w)} events, n_eff {w.sum() ** 2 / (w * w).sum():.0f}   quantiles 10/25/50/75/90 %")
        for k, x in d.items():
            print(f"  {k:18s} " + " ".join(f"{v:8.3g}" for v in wq(x, w)) + f"   mean {np.sum(w * x) / w.sum():.3g}")
        print(f"  P(cos(lead, MET) > 0.9) = {np.sum(w * (d['cos_lead_met'] > 0.9)) / w.sum():.3f};"
              f" P(MET < 10 GeV) = {np.sum(w * (d['met'] < 10)) / w.sum():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
