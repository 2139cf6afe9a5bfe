"""R95 of the 8 TeV recast from a few samples (generate + process + recast), for the before/after note of docs/recast.md.

    PYTHONPATH=<checkout>/src python docs/recast_scripts/r95_8tev.py bp4,bp5,bp6 OUTDIR 100000            # main: before
    PYTHONPATH=src python docs/recast_scripts/r95_8tev.py bp4_8tev,bp5_8tev,bp6_8tev OUTDIR 100000     # after
"""
import sys, json
from pathlib import Path
import numpy as np
from softdisplaced.config import load_config
from softdisplaced.samples import build_samples
from softdisplaced.commands.generate import generate_file
from softdisplaced.processing.analyses import build_analyses
from softdisplaced.processing.skim import process_files
from softdisplaced.inference import recast as rc
import softdisplaced, h5py
repo = Path(softdisplaced.__file__).parents[2]
names, out, n = sys.argv[1].split(","), Path(sys.argv[2]), int(sys.argv[3])
cfg = load_config(repo / "config/config.yaml")
ana = {k: v for k, v in build_analyses(cfg, only_enabled=False).items() if k == "cms_8tev_emu"}
sks = []
for name in names:
    s = build_samples(cfg)[name]
    ev = out / f"{name}.root"
    if not ev.exists():
        generate_file(cfg, s, 0, str(ev), n)
    sk = out / "cms_8tev_emu" / f"{name}.h5"
    process_files([str(ev)], [str(sk)], analyses=ana, sample=s, efficiency=cfg["efficiency"],
                  processing=cfg["processing"], chunk=0, config_hash="x", package_versions={"x": "1"})
    sr = h5py.File(sk)["events/sr"][:]
    print(name, "xsec_fb", s["cross_section_fb"], "sqrt_s_gev", s.get("sqrt_s_gev", 13000), "ctau0", s["ctau_cm"],
          "selected per SR", [int((sr == k).sum()) for k in (1, 2, 3)], "of", n)
    sks.append(str(sk))
rows = rc.recast_ctau(cfg, "cms_8tev_emu", cfg["recast"]["analyses"]["cms_8tev_emu"], sks, [1.0, 10.0, 100.0], seed=1)
for r in rows:
    print(json.dumps({k: r[k] for k in ("m_c", "dm", "ctau_cm", "r95", "r95_exp", "mu95_obs", "mu95_exp", "s_total")}))
