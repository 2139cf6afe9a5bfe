"""Per feature: mean of signal (bp1) and HF, fraction at 0, single-variable AUC (signal vs HF, HF with its
generator weights), the study's ntuples (BP_324_20_DM.root, background.root) beside the project's skims.

    python compare.py SKIMS_DIR [STUDY_BRANCH=SKIM_COLUMN ...]     # SKIMS_DIR holds bp1.h5, hf.h5 (or bp1_*.h5 parts)

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import sys, numpy as np, uproot
from softdisplaced.processing.skim import read_events
F = ["YDelpObj","HtJet","dRLL","MtLeadLepMET","YUserObj","dPhiLepMETSelObj","Sphericity","alphaT","Spherocity"]
skdir = sys.argv[1] if len(sys.argv) > 1 else "results/skims/soft_emu_nn_background"
extra = sys.argv[2:] 
def auc(s, b, ws=None, wb=None):
    ws = np.ones(len(s)) if ws is None else ws; wb = np.ones(len(b)) if wb is None else wb
    x = np.concatenate([s, b]); y = np.r_[np.ones(len(s)), np.zeros(len(b))]; w = np.r_[ws/ws.sum(), wb/wb.sum()]
    o = np.argsort(x, kind="mergesort"); x, y, w = x[o], y[o], w[o]
    # weighted Mann-Whitney with ties
    _, idx, inv = np.unique(x, return_index=True, return_inverse=True)
    wb_c = np.bincount(inv, w*(y==0)); ws_c = np.bincount(inv, w*(y==1))
    cb = np.cumsum(wb_c) - wb_c
    a = np.sum(ws_c*(cb + 0.5*wb_c))
    return max(a, 1-a)
def st(path):
    with uproot.open(path) as f: return f["varTree"].arrays(F, library="np")
S = st("" + STUDY + "/BP_324_20_DM.root"); B = st("" + STUDY + "/background.root")
import glob, os
def rd(name):
    if os.path.exists(f"{skdir}/{name}.h5"): return read_events(f"{skdir}/{name}.h5")[0]
    parts = [read_events(p)[0] for p in sorted(glob.glob(f"{skdir}/{name}_*.h5"))]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
ps = rd("bp1"); pb = rd("hf")
wpb = pb["weight_gen"]; wps = np.ones(len(ps["dRLL"]))
print(f"study n_sig {len(S['dRLL'])} n_bkg {len(B['dRLL'])}; project n_sig {len(wps)} n_bkg {len(wpb)} neff_bkg {wpb.sum()**2/(wpb**2).sum():.0f}")
print(f"{'feature':24s} | {'mean S st':>9s} {'pr':>9s} | {'mean B st':>9s} {'pr':>9s} | {'f0 S st':>7s} {'pr':>6s} | {'f0 B st':>7s} {'pr':>6s} | {'AUC st':>6s} {'pr':>6s}")
cols = F + [c for c in extra]
for f in cols:
    fs = f.split("=")[0]; fp = f.split("=")[-1]
    s, b = S[fs], B[fs]; qs, qb = ps[fp], pb[fp]
    wm = lambda x, w: np.sum(x*w)/np.sum(w)
    print(f"{f:24s} | {s.mean():9.3g} {qs.mean():9.3g} | {b.mean():9.3g} {wm(qb,wpb):9.3g} | {np.mean(s==0):7.3f} {np.mean(qs==0):6.3f} | {np.mean(b==0):7.3f} {wm(qb==0,wpb):6.3f} | {auc(s,b):6.3f} {auc(qs,qb,wps,wpb):6.3f}")
