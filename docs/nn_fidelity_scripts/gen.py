"""Fast-generator bp1 events with another ISR (generation.fast.isr: pt0_gev = PT0, power = env POW).

    POW=1.6 python gen.py OUTDIR PT0 N_EVENTS [N_CHUNKS]

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import json, sys, subprocess, copy
from softdisplaced.samples import build_samples
cfg = json.load(open(os.path.join(os.environ.get('RESULTS', 'results'), 'config/resolved.json')))
out, pt0, nev = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
chunks = int(sys.argv[4]) if len(sys.argv) > 4 else 1
spec = dict(build_samples(cfg)["bp1"]); spec.pop("n_chunks", None); spec["events_per_chunk"] = nev
gen = copy.deepcopy(cfg["generation"]); gen["fast"]["isr"]["pt0_gev"] = pt0
import os
if os.environ.get("POW"): gen["fast"]["isr"]["power"] = float(os.environ["POW"])
settings = json.dumps(dict(seed=cfg["seed"], sample=spec, generation=gen, detector=cfg["detector"]))
for c in range(chunks):
    subprocess.run(["softdisplaced", "generate", "--settings", settings, "--sample", "bp1", "--chunk", str(c), "--output", f"{out}/{c}.root"], check=True)
