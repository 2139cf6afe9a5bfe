"""MET mean, median and quantiles of the first 20 000 events of every event file in each directory.

    python met.py EVENTS_DIR ...

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import uproot, numpy as np, awkward as ak, sys, glob
for d in sys.argv[1:]:
    met=[]
    for f in sorted(glob.glob(f"{d}/*.root")):
        a=uproot.open(f)['Delphes'].arrays(['MissingET/MissingET.MET'],entry_stop=20000); met.append(ak.to_numpy(ak.flatten(a['MissingET/MissingET.MET'])))
    met=np.concatenate(met); print(d, len(met), 'MET mean %.1f median %.1f q25 %.1f q75 %.1f q90 %.1f'%(met.mean(), np.median(met), *np.quantile(met,[.25,.75,.9])))
