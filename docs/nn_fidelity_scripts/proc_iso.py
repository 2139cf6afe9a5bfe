"""As proc.py for soft_emu_nn_background with the analysis isolation 0.12 / 0.15 (the study's signal NN sample).

    python proc_iso.py OUT SAMPLE

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import json, sys, os, subprocess
from softdisplaced.processing.analyses import build_analyses, normalise_spec
from softdisplaced.processing.skim import process_files
from softdisplaced.processing.features import SKIM_FEATURES
from softdisplaced.samples import build_samples
cfg = json.load(open(os.path.join(os.environ.get('RESULTS', 'results'), 'config/resolved.json')))
an = build_analyses(cfg, only_enabled=False)
A = "soft_emu_nn_background"
spec = dict(an[A]); spec["features"] = list(SKIM_FEATURES); spec["isolation"] = {"electron": 0.12, "muon": 0.15}
analyses = {A: spec}
samples = build_samples(cfg)
out = sys.argv[1]; s = sys.argv[2]; EV = os.environ.get("EVDIR", os.path.join(os.environ.get("RESULTS", "results"), "events"))
for c in range(2):
    os.makedirs(f"{out}/partials/{A}/{s}", exist_ok=True)
    process_files([f"{EV}/{s}/{c}.root"], [f"{out}/partials/{A}/{s}/{c}.h5"], analyses=analyses, sample=samples[s], efficiency=cfg["efficiency"], processing=cfg["processing"], chunk=c)
settings = json.dumps(dict(sample=samples[s], analyses=analyses, efficiency=cfg["efficiency"], processing=cfg["processing"]))
for d in ("skims", "cutflows", "hists"): os.makedirs(f"{out}/{d}/{A}", exist_ok=True)
subprocess.run(["softdisplaced", "merge", "--settings", settings, "--sample", s, "--analysis", A, "--partials-dir", f"{out}/partials", "--skim", f"{out}/skims/{A}/{s}.h5", "--cutflow", f"{out}/cutflows/{A}/{s}.json", "--hists", f"{out}/hists/{A}/{s}.pkl"], check=True)
print("done")
