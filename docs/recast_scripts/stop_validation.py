"""Validation ratios of the stop recast from skims under OUTDIR/skims: python stop_validation.py OUTDIR [ctau0 list]."""
import json, sys, glob, copy, numpy as np
from softdisplaced.inference import recast as rc
from softdisplaced.inference.reweighting import ctau_grid
from softdisplaced.config import load_config
import yaml
cfg = load_config('config/config.yaml', overrides=yaml.safe_load(open('config/recast_stop.yaml')))
if len(sys.argv) > 2:
    cfg["samples"]["stops"]["ctau_cm"] = [float(x) for x in sys.argv[2].split(",")]
grid = ctau_grid(cfg["recast"]["stops"]["ctau_grid_cm"])
sk = glob.glob(sys.argv[1] + '/skims/*/*.h5')
counts = rc.stop_counts(cfg, sk, grid)
no = copy.deepcopy(cfg)
for e in no["recast"]["analyses"].values(): e["d0_efficiency"] = False
rows = rc.validation_rows(cfg, counts, grid, rc.stop_counts(no, sk, grid))
for r in rows:
    print(f"{r['analysis']:20s} {r['m_stop']:6g} {r['ctau_cm']:5g} {r['region']:10s} cms {r['cms']:6.2f} ours {r['ours']:7.3f} +- {r['ours_err']:6.3f} ratio {r['ratio']:5.2f} noeff {r['ratio_no_d0eff']:5.2f} {'T' if r['tested'] else ' '} {r['within_tolerance']} neff {r['n_eff']:.0f}")
