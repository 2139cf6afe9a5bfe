"""Score a network on the soft_emu skims of bp1-bp6 and print its post-NN yields against the study's
(validation.generators.fidelity_post_nn on RESULTS/yields/yields.csv).

    python post.py NETWORK_DIR SOFT_EMU_SKIMS_DIR

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import json, sys, subprocess
from pathlib import Path
from softdisplaced.validation import generators as V
net_dir, skims_dir = sys.argv[1], sys.argv[2]
cfg = json.load(open(os.path.join(os.environ.get('RESULTS', 'results'), 'config/resolved.json')))
info = json.load(open(f"{net_dir}/model_info.json")); name = info["network"]
nn = {k: v for k, v in cfg["nn"].items() if k != "networks"}; nn["networks"] = {name: dict(cfg["nn"]["networks"].get(name, {}), features=info["features"])}
settings = json.dumps(dict(seed=cfg["seed"], nn=nn, benchmarks=cfg["benchmarks"], samples={"study_ntuples": cfg["samples"]["study_ntuples"]}))
skims = [f"{skims_dir}/bp{i}.h5" for i in range(1, 7)]
outs = [f"{net_dir}/scores/soft_emu/bp{i}.h5" for i in range(1, 7)]
Path(f"{net_dir}/scores/soft_emu").mkdir(parents=True, exist_ok=True)
subprocess.run(["softdisplaced", "evaluate", "--settings", settings, "--network", name, "--model-dir", net_dir, "--skim", *skims, "--output", *outs], check=True, capture_output=True)
rows = V._read_rows(os.path.join(os.environ.get("RESULTS", "results"), "yields/yields.csv"))
post = V.fidelity_post_nn(rows, outs, {i: skims[i - 1] for i in range(1, 7)}, cut=0.9)
big = [r for r in post if r["study"] > 1.0]
for r in post:
    print(f"BP{r['benchmark']} SR {r['sr']:3s} project {r['project']:8.3g} study {r['study']:8.3g} ratio {r['ratio']:.2f} +- {r['ratio_err']:.2f}" + ("  *" if r["study"] > 1 else ""))
ok = [r for r in big if abs(r["ratio"] - 1) <= 0.3]
print(f"SRs with study post-NN yield > 1: {len(big)}, within 30 %: {len(ok)}")
