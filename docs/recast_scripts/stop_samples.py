"""Generate stop samples (N events per mass [at the given c*tau_0 list]) and process them with the recast analyses.

    PYTHONPATH=src python docs/recast_scripts/stop_samples.py 5000 700,500,900 OUTDIR [1.0,0.1,10.0]
"""
import sys, time, json, yaml
from pathlib import Path
from softdisplaced.config import load_config
from softdisplaced.samples import build_samples
from softdisplaced.commands.generate import generate_file
from softdisplaced.processing.analyses import build_analyses
from softdisplaced.processing.skim import process_files

n = int(sys.argv[1]); masses = [float(m) for m in sys.argv[2].split(",")]; out = Path(sys.argv[3])
cfg = load_config('config/config.yaml', overrides=yaml.safe_load(open('config/recast_stop.yaml')))
cfg["samples"]["stops"]["masses"] = masses
cfg["samples"]["stops"]["events_per_chunk"] = n
cfg["samples"]["stops"]["n_chunks"] = 1
if len(sys.argv) > 4:
    cfg["samples"]["stops"]["ctau_cm"] = [float(x) for x in sys.argv[4].split(",")]
(out / "events").mkdir(parents=True, exist_ok=True)
json.dump(cfg, open(out / "settings.json", "w"))
names = ["cms_exo_16_022", "cms_exo_18_003", "cms_exo_18_003_2016"]
ana = {k: v for k, v in build_analyses(cfg, only_enabled=False).items() if k in names}
for s in build_samples(cfg).values():
    if s.get("model") != "stop":
        continue
    ev = out / "events" / f"{s['name']}.root"
    if not ev.exists():
        t = time.time()
        r = generate_file(cfg, s, 0, str(ev), n)
        print(s["name"], "generated", r["n_events"], f"{1e3 * r['generate_s'] / r['n_events']:.2f} ms/ev gen, "
              f"total {time.time() - t:.1f}s", flush=True)
    outs = [out / "skims" / a / f"{s['name']}.h5" for a in names]
    process_files([str(ev)], [str(o) for o in outs], analyses=ana, sample=s, efficiency=cfg["efficiency"],
                  processing=cfg["processing"], chunk=0, config_hash="x", package_versions={"x": "1"})
print("done")
