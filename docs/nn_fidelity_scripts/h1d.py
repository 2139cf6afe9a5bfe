"""Binned fractions of one feature (study signal / project signal / study HF / project HF, quantile bins of the study).

    python h1d.py SKIMS_DIR STUDY_BRANCH [SKIM_COLUMN] [bin,edges]

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import sys, numpy as np, uproot, glob, os
from softdisplaced.processing.skim import read_events
skdir=sys.argv[1]; feat=sys.argv[2]; pf=sys.argv[3] if len(sys.argv)>3 else feat
bins=np.array([float(x) for x in sys.argv[4].split(",")]) if len(sys.argv)>4 else None
def rd(name):
    if os.path.exists(f"{skdir}/{name}.h5"): return read_events(f"{skdir}/{name}.h5")[0]
    parts = [read_events(p)[0] for p in sorted(glob.glob(f"{skdir}/{name}_*.h5"))]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
ps, pb = rd("bp1"), rd("hf")
with uproot.open("" + STUDY + "/BP_324_20_DM.root") as f: S=f["varTree"][feat].array(library="np")
with uproot.open("" + STUDY + "/background.root") as f: B=f["varTree"][feat].array(library="np")
if bins is None: bins=np.quantile(np.r_[S,B], np.linspace(0,1,11)); bins[-1]*=1.0001
h=lambda x,w=None: np.histogram(np.clip(x,bins[0],bins[-1]*0.99999),bins,weights=w)[0]/ (np.sum(w) if w is not None else len(x))
print(f"{feat} vs {pf}: bins", np.round(bins,3))
for lab,arr in (("S study",h(S)),("S proj",h(ps[pf])),("B study",h(B)),("B proj",h(pb[pf],pb["weight_gen"]))):
    print(f"{lab:8s}", " ".join(f"{v:6.3f}" for v in arr))
