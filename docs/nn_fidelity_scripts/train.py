"""Train one network with the configured recipe (nn section of RESULTS/config/resolved.json); the seed follows NAME.

    python train.py OUTDIR NAME SIGNAL_SKIM BACKGROUND_SKIM feature,feature,... [EVAL_SKIM ...]

Issue 11 diagnostics (docs/features.md); run with PYTHONPATH=src from the repository root; RESULTS (default results)
is a finished default run, STUDY_DIR (default ../shared/reference/authors_ntuples) the study's ntuples.
"""
import os
STUDY = os.environ.get("STUDY_DIR", "../shared/reference/authors_ntuples")
import json, sys, subprocess, os
cfg = json.load(open(os.path.join(os.environ.get('RESULTS', 'results'), 'config/resolved.json')))
out, name, sig, bkg, feats = sys.argv[1:6]
evals = sys.argv[6:]
feats = feats.split(",")
nn = {k: v for k, v in cfg["nn"].items() if k != "networks"}
spec = dict(input="skims", analysis="soft_emu_nn_background", signal=["bp1"], background=["hf"], evaluate=[], features=feats)
if name.startswith("study"):
    spec = dict(input="study_ntuples", signal=[1], evaluate=[1,2,3,4,5,6], features=feats)
nn["networks"] = {name: spec}
settings = dict(seed=cfg["seed"], nn=nn, benchmarks=cfg["benchmarks"], samples={"study_ntuples": {"dir": "" + STUDY + "", "n_generated": 2000000}})
cmd = ["softdisplaced", "train", "--settings", json.dumps(settings), "--network", name, "--outdir", f"{out}/{name}", "--no-plots"]
if spec["input"] == "skims":
    cmd += ["--signal-skims", sig, "--background-skims", bkg]
    if evals: cmd += ["--eval-skims"] + evals
r = subprocess.run(cmd, capture_output=True, text=True)
if r.returncode: print(r.stderr[-3000:]); sys.exit(1)
m = json.load(open(f"{out}/{name}/metrics.json"))
print(f"{name}: auc {m['auc']}  sig_eff {m['sig_eff_at_cut']}  hf_eff {m['hf_eff_at_cut']:.3g} ({m.get('hf_n_pass')}/{m.get('hf_n_test')})  n_train {m['n_train_per_class']}")
