"""HF NN-background features: the project's skims (fast generator, Pythia 8) against the study's background.root.

    python docs/hf_scripts/hf_features.py NAME=SKIM.h5[,SKIM.h5...] [NAME=...]

Weighted quantiles (weight_gen) of the NN inputs, the fraction with MtLeadLepMET < 8.6 GeV (per dRLL class),
the fraction of events without a study jet, and the lepton pT of the project's samples. Issue 11 (docs/features.md, "HF sample").
Run with PYTHONPATH=src from the repository root; STUDY_DIR (default ../shared/reference/authors_ntuples).
"""
import os
import sys

import numpy as np
import uproot

from softdisplaced.processing.skim import read_events

STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
Q = (0.10, 0.25, 0.50, 0.75, 0.90)
STUDY_NAMES = {"HtJet_photon_veto": "HtJet", "YUserObj_photon_veto": "YUserObj",
               "dPhiLepMETSelObj_photon_veto": "dPhiLepMETSelObj"}


def wquantile(x, w, q):
    o = np.argsort(x)
    c = np.cumsum(w[o]) / w.sum()
    return np.interp(q, c, x[o])


def load_study():
    with uproot.open(f"{STUDY}/background.root") as f:
        t = f["varTree"].arrays(library="np")
    d = {k: np.asarray(v, float) for k, v in t.items()}
    for ours, theirs in STUDY_NAMES.items():
        d[ours] = d[theirs]
    d["weight_gen"] = np.ones(len(d["dRLL"]))
    return d


def load(paths):
    parts = [read_events(p)[0] for p in paths.split(",")]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0] if np.ndim(parts[0][k]) == 1}


def main(argv):
    samples = {"study": load_study()}
    for a in argv:
        name, paths = a.split("=", 1)
        samples[name] = load(paths)
    feats = ["MtLeadLepMET", "YDelpObj", "dRLL", "dPhiLepMETSelObj_photon_veto", "alphaT", "Sphericity",
             "YUserObj_photon_veto", "HtJet_photon_veto", "pt_lead", "pt_sub"]
    for name, d in samples.items():
        w = d["weight_gen"]
        n = len(w)
        extra = pair_kinematics(d)
        d.update(extra)
        neff = w.sum() ** 2 / (w * w).sum()
        print(f"== {name}: {n} events, n_eff {neff:.0f}")
        for f in feats:
            if f not in d:
                continue
            x = d[f]
            ok = np.isfinite(x)
            qs = wquantile(x[ok], w[ok], Q)
            print(f"  {f:30s} " + " ".join(f"{v:8.3g}" for v in qs) + (f"   (n {ok.sum()})" if not ok.all() else ""))
        mt = d["MtLeadLepMET"]
        low = mt < 8.6
        dr = d["dRLL"]
        line = f"  MT < 8.6: {np.sum(w * low) / w.sum():.3f}"
        for lo, hi in ((0, 0.4), (0.4, 2.5), (2.5, 99)):
            m = (dr >= lo) & (dr < hi)
            line += f" | dRLL [{lo},{hi}): {np.sum(w[m] * low[m]) / max(w[m].sum(), 1e-300):.3f} (frac {w[m].sum() / w.sum():.3f})"
        print(line)
        nj = d["HtJet_photon_veto"] == 0
        print(f"  no-jet fraction {np.sum(w * nj) / w.sum():.3f}")
    return 0


def pair_kinematics(d):
    """Lead / sub-lead lepton pT (the project's skims store them; the study's ntuple does not)."""
    if "pt_e" not in d:
        return {}
    return {"pt_lead": np.maximum(d["pt_e"], d["pt_mu"]), "pt_sub": np.minimum(d["pt_e"], d["pt_mu"])}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
