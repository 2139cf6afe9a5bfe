"""Mean and median of YDelpObj and of YDelpObj_photon_veto (MET / sqrt of the study card's HT, ScalarHT.HTUnique)
for bp1 and HF (weighted by weight_gen) of a skims directory, against the study's ntuples.

    python ht_unique.py SKIMS_DIR        # SKIMS_DIR holds bp1.h5 and hf.h5 (soft_emu_nn_background)

Issue 11 diagnostics (docs/features.md, "The study's HT"); run with PYTHONPATH=src from the repository root;
STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
import sys

import numpy as np
import uproot

from softdisplaced.processing.skim import read_events

STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")


def study(name):
    with uproot.open(f"{STUDY}/{name}") as f:
        return np.asarray(f["varTree"]["YDelpObj"].array(library="np"), float)


def wmedian(x, w):
    o = np.argsort(x)
    return float(np.interp(0.5, np.cumsum(w[o]) / w.sum(), x[o]))


sk = sys.argv[1]
sig, bkg = read_events(f"{sk}/bp1.h5")[0], read_events(f"{sk}/hf.h5")[0]
w = np.asarray(bkg["weight_gen"], float)
print(f"project: {len(sig['YDelpObj'])} bp1, {len(w)} HF events (n_eff {w.sum() ** 2 / (w * w).sum():.0f})")
rows = [("study YDelpObj", study("BP_324_20_DM.root"), study("background.root"), None)]
rows += [(f"project {f}", np.asarray(sig[f], float), np.asarray(bkg[f], float), w)
         for f in ("YDelpObj", "YDelpObj_photon_veto")]
for name, s, b, wb in rows:
    wb = np.ones(len(b)) if wb is None else wb
    print(f"{name:30s} S mean {s.mean():.3f} median {np.median(s):.3f} | "
          f"B mean {np.sum(b * wb) / wb.sum():.3f} median {wmedian(b, wb):.3f}")
