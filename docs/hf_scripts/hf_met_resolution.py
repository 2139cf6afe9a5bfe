"""MET resolution of HF event files: reconstructed MET minus the generator-level MET of the visible particles.

    python docs/hf_scripts/hf_met_resolution.py EVENTS.root [EVENTS.root ...]

Per file (Delphes format with the Particle record, first 20 000 events): |MET_reco - MET_gen| with
MET_gen = -(sum of the final-state particles' pT except neutrinos, |eta| < 5), quartiles and 90 % quantile
(unweighted: the biased samples' events as generated), the median number of visible particles within
|eta| < 2.5 and of K0L / neutrons / K0S / Lambda within |eta| < 5. The calibration of
generation.fast.heavy_flavour.soft_activity (docs/generator.md, "Soft activity"). Run with PYTHONPATH=src.
"""
import sys

import awkward as ak
import numpy as np
import uproot

for path in sys.argv[1:]:
    a = uproot.open(path)["Delphes"].arrays(
        ["MissingET/MissingET.MET", "MissingET/MissingET.Phi"] + [f"Particle/Particle.{k}" for k in
                                                                  ("PID", "Status", "PT", "Phi", "Eta")],
        entry_stop=20000)
    pid, st, pt, ph, eta = (a[f"Particle/Particle.{k}"] for k in ("PID", "Status", "PT", "Phi", "Eta"))
    apid = abs(pid)
    vis = (st == 1) & (apid != 12) & (apid != 14) & (apid != 16) & (abs(eta) < 5)
    gx = -ak.to_numpy(ak.sum((pt * np.cos(ph))[vis], axis=1))
    gy = -ak.to_numpy(ak.sum((pt * np.sin(ph))[vis], axis=1))
    met = ak.to_numpy(ak.firsts(a["MissingET/MissingET.MET"]))
    mph = ak.to_numpy(ak.firsts(a["MissingET/MissingET.Phi"]))
    d = np.hypot(met * np.cos(mph) - gx, met * np.sin(mph) - gy)
    n_central = ak.to_numpy(ak.sum(vis & (abs(eta) < 2.5), axis=1))
    n_neutral_hadrons = ak.to_numpy(ak.sum(vis & ((apid == 130) | (apid == 2112) | (apid == 310) | (apid == 3122)),
                                           axis=1))
    q = np.quantile(d, [0.25, 0.5, 0.75, 0.9])
    print(f"{path}: {len(d)} events; MET_reco - MET_gen q25/50/75/90 " + " / ".join(f"{v:.2f}" for v in q)
          + f" GeV; median visible particles (|eta| < 2.5) {np.median(n_central):.0f}, neutral hadrons"
            f" {np.median(n_neutral_hadrons):.0f}")
