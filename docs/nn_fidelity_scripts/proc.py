"""Process the event files of RESULTS/events/<sample> with one analysis (env ANA, default soft_emu_nn_background) and
every skim feature, then merge: OUT/skims/<analysis>/<sample>.h5 (EVDIR: other event directories).

    python proc.py OUT SAMPLE ...

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import json, sys, time, os, subprocess
from softdisplaced.processing.analyses import build_analyses
from softdisplaced.processing.skim import process_files
from softdisplaced.processing.features import SKIM_FEATURES
from softdisplaced.samples import build_samples
cfg = json.load(open(os.path.join(os.environ.get('RESULTS', 'results'), 'config/resolved.json')))
cfg["analyses"]["features"] = list(SKIM_FEATURES)
an = build_analyses(cfg, only_enabled=False)
A = os.environ.get("ANA", "soft_emu_nn_background")
spec = dict(an[A]); spec["features"] = list(SKIM_FEATURES)
analyses = {A: spec}
samples = build_samples(cfg)
out = sys.argv[1]
EV = os.environ.get("EVDIR", os.path.join(os.environ.get("RESULTS", "results"), "events"))
for s in sys.argv[2:]:
    n = len([p for p in os.listdir(f"{EV}/{s}") if p.endswith(".root")])
    for c in range(n):
        os.makedirs(f"{out}/partials/{A}/{s}", exist_ok=True)
        process_files([f"{EV}/{s}/{c}.root"], [f"{out}/partials/{A}/{s}/{c}.h5"], analyses=analyses,
                      sample=samples[s], efficiency=cfg["efficiency"], processing=cfg["processing"], chunk=c)
    settings = json.dumps(dict(sample=samples[s], analyses=analyses, efficiency=cfg["efficiency"], processing=cfg["processing"]))
    for d in ("skims", "cutflows", "hists"): os.makedirs(f"{out}/{d}/{A}", exist_ok=True)
    subprocess.run(["softdisplaced", "merge", "--settings", settings, "--sample", s, "--analysis", A, "--partials-dir", f"{out}/partials",
                    "--skim", f"{out}/skims/{A}/{s}.h5", "--cutflow", f"{out}/cutflows/{A}/{s}.json", "--hists", f"{out}/hists/{A}/{s}.pkl"], check=True)
    print(s, "done", flush=True)
