"""As proc.py with MET smeared by a crude calorimeter-resolution model, sigma(MET_x,y) = K sqrt(ScalarHT + 20 GeV)
(env K, default 1): a diagnostic, not a detector model.

    K=1 python proc_smear.py OUT SAMPLE ...

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import json, sys, os, subprocess
import numpy as np
from softdisplaced.processing import processor as P
K = float(os.environ.get("K", "1.0"))
orig = P.SoftDisplacedProcessor._read
def _read(self, events):
    ev = orig(self, events)
    rng = np.random.default_rng(int(ev.number[0]) if ev.n else 0)
    sig = K * np.sqrt(ev.ht + 20.0)
    mx = ev.met * np.cos(ev.met_phi) + rng.normal(0, 1, ev.n) * sig
    my = ev.met * np.sin(ev.met_phi) + rng.normal(0, 1, ev.n) * sig
    import dataclasses
    return dataclasses.replace(ev, met=np.hypot(mx, my), met_phi=np.arctan2(my, mx))
P.SoftDisplacedProcessor._read = _read
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "proc.py")).read())
