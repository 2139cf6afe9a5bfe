"""The study's ntuples (background.root, BP_324_20_DM.root) as skims, for trainings on mixed samples: every
feature under its own name and, for the three jet sums, also under the study's-jets twin name (the study's
features are already over its jets).

    python study_as_skims.py OUTDIR      # -> OUTDIR/study_hf.h5, OUTDIR/study_bp1.h5

Issue 11 diagnostics (docs/features.md); STUDY_DIR (default ../shared/reference/authors_ntuples).
"""
import os
import sys

import h5py
import numpy as np
import uproot

from softdisplaced.processing.features import FEATURES, STUDY_JET_FEATURES

STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for src, name in (("background.root", "hf"), ("BP_324_20_DM.root", "bp1")):
    with uproot.open(f"{STUDY}/{src}") as f:
        a = f["varTree"].arrays(list(FEATURES), library="np")
    n = len(a["dRLL"])
    with h5py.File(f"{out}/study_{name}.h5", "w") as h:
        g = h.create_group("events")
        for k in FEATURES:
            g.create_dataset(k, data=a[k])
            if k in STUDY_JET_FEATURES:
                g.create_dataset(STUDY_JET_FEATURES[k], data=a[k])
        g.create_dataset("sr", data=np.zeros(n, np.int8))
        g.create_dataset("weight_gen", data=np.ones(n))
        g.create_dataset("weight_d0eff", data=np.ones(n))
        h.attrs["sample"] = name
        if name == "bp1":
            h.attrs["m_c"], h.attrs["dm"] = 324.0, 20.0
    print(name, n)
