"""Pre-NN signal yields of large benchmark samples against the study's ntuples (issue 11 fidelity, docs/generators.md).

    PYTHONPATH=src python docs/fidelity_scripts/pythia8_fidelity.py WORKDIR [--overlay config/pythia8_fidelity.yaml]
        [--samples bp1_pythia8 ...] [--generate] [--chunks 0 1 2 3] [--out docs/fidelity_results/pythia8_fidelity.csv]

The samples (default: the Pythia 8 copies bp<id>_pythia8 of config/pythia8_fidelity.yaml) are generated chunk by
chunk (``--generate``: one ``softdisplaced generate`` process per chunk, niced, so that an interrupted run resumes
at the first missing chunk; the events are those the workflow makes for the same configuration: same settings,
seed streams per sample and chunk), processed with the soft_emu analysis, merged, and turned into pre-NN yields
with the workflow's own code (softdisplaced.inference.yields; and pooled over the benchmarks of one (m_c, dm) by
exact lifetime reweighting, softdisplaced.validation.generators.pooled_yields) and ratios to the study-ntuple
yields (softdisplaced.validation.generators.fidelity_yields). The table written to ``--out`` carries the events used, the
selected events per SR, the decay mode, seed, configuration, commit and this command: it is the committed
reference that the fidelity section of the validation report shows (validation.fidelity.pythia8_reference).
The same script measures the fast generator on large samples: ``--overlay none --samples bp2 bp5 ... --chunks 2 3``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from softdisplaced.atomic import write_json, write_text
from softdisplaced.config import load_config
from softdisplaced.generation import signal_decay_mode
from softdisplaced.inference import yields as Y
from softdisplaced.samples import build_samples
from softdisplaced.validation.generators import REFERENCE_COLUMNS, fidelity_yields, markdown_table, pooled_yields

ANALYSIS = "soft_emu"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workdir", type=Path)
    p.add_argument("--overlay", default="config/pythia8_fidelity.yaml", help="YAML on top of config/config.yaml, or none")
    p.add_argument("--samples", nargs="*", default=None, help="default: the Pythia 8 copies bp<id>_pythia8")
    p.add_argument("--chunks", nargs="*", type=int, default=None, help="default: 0 .. n_chunks - 1 of each sample")
    p.add_argument("--events-per-chunk", type=int, default=None, help="default: the sample's events_per_chunk")
    p.add_argument("--generate", action="store_true", help="generate the missing chunks (else: use those present)")
    p.add_argument("--out", type=Path, default=None, help="reference table (CSV; a .md beside it)")
    args = p.parse_args(argv)

    overlay = None if args.overlay in (None, "none") else yaml.safe_load(Path(args.overlay).read_text())
    cfg = load_config("config/config.yaml", overrides=overlay)
    samples = build_samples(cfg)
    names = args.samples or [n for n, s in samples.items() if s.get("validation_only") and s.get("benchmark")]
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    settings = work / "settings.json"
    write_json(settings, cfg)
    skims, used = [], {}
    for name in names:
        spec = samples[name]
        chunks = args.chunks if args.chunks is not None else list(range(spec["n_chunks"]))
        partials = []
        for c in chunks:
            ev = work / "events" / name / f"{c}.root"
            part = work / "partials" / ANALYSIS / name / f"{c}.h5"
            if not part.exists() and not ev.exists() and args.generate:
                ev.parent.mkdir(parents=True, exist_ok=True)
                t0 = time.time()
                cmd = ["nice", "-n", "10", "softdisplaced", "generate", "--settings", f"@{settings}", "--sample", name,
                       "--chunk", str(c), "--output", str(ev)]
                if args.events_per_chunk:
                    cmd += ["--n-events", str(args.events_per_chunk)]
                subprocess.run(cmd, check=True)
                print(f"{name} chunk {c}: generated in {time.time() - t0:.0f} s", flush=True)
            if not part.exists() and ev.exists():
                part.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["nice", "-n", "10", "softdisplaced", "process", "--settings", f"@{settings}",
                                "--sample", name, "--analysis", ANALYSIS, "--input", str(ev), "--output", str(part),
                                "--chunk", str(c)], check=True)
            if part.exists():
                partials.append(str(part))
        if not partials:
            print(f"{name}: no chunk available, left out", flush=True)
            continue
        out = {k: work / k / ANALYSIS / f"{name}{ext}" for k, ext in (("skims", ".h5"), ("cutflows", ".json"),
                                                                       ("hists", ".pkl"))}
        for f in out.values():
            f.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["softdisplaced", "merge", "--settings", f"@{settings}", "--sample", name, "--analysis",
                        ANALYSIS, "--inputs", *partials, "--skim", str(out["skims"]), "--cutflow",
                        str(out["cutflows"]), "--hists", str(out["hists"])], check=True)
        skims.append(str(out["skims"]))
        used[str(spec["benchmark"]), spec["source"]] = json.loads(out["cutflows"].read_text())

    lumi = [float(cfg["limits"].get("yield_lumis_fb", [140])[0])]
    rows = Y.fast_rows(cfg, skims, [], lumi, None)
    by_source: dict = {}
    for sk in skims:
        spec = samples[Path(sk).stem]
        by_source.setdefault(spec["source"], {})[int(spec["benchmark"])] = sk
    pooled = {(r["source"], r["benchmark"], r["sr"]): r for r in pooled_yields(cfg, by_source, lumi[0])}
    rows += list(pooled.values())
    rows += Y.study_ntuple_rows(cfg, lumi, None, cfg["samples"]["study_ntuples"]["dir"])
    Y.write_csv(work / "yields.csv", rows, Y.YIELD_COLUMNS)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = "PYTHONPATH=src python docs/fidelity_scripts/pythia8_fidelity.py " + " ".join(sys.argv[1:])
    table = []
    for r in fidelity_yields(rows):
        cf = used.get((r["benchmark"], r["source"]))
        if cf is None:
            continue
        n_sr = {s["name"]: s["raw"] for s in cf["signal_regions"]}
        n_gen, n_sel = cf["n_events_processed"], n_sr[f"SR_{r['sr']}"]
        if r["quantity"] == "yield_pre_nn_pooled":         # all pooled samples' events
            p = pooled[r["source"], r["benchmark"], r["sr"]]
            n_gen = sum(used[b.removeprefix("bp"), r["source"]]["n_events_processed"] for b in p["samples"].split("+"))
            n_sel = p["n_raw"]
        mode = signal_decay_mode(samples[cf["sample"]], cfg)
        table.append({**r, "n_generated": n_gen, "n_selected": n_sel,
                      "decay_mode": mode, "seed": cfg["seed"],
                      "config": "config/config.yaml" + (f" {args.overlay}" if overlay is not None else ""),
                      "commit": commit, "command": command})
    cols = [("quantity", "stage"), ("benchmark", "BP"), ("sr", "SR"), ("source", "generator"), ("project", "project"),
            ("study", "study ntuples"), ("ratio", "ratio"), ("ratio_err", "+-"), ("n_generated", "events"),
            ("n_selected", "selected in SR")]
    md = markdown_table(table, cols)
    print(md)
    if args.out is not None:
        Y.write_csv(args.out, table, REFERENCE_COLUMNS)
        write_text(args.out.with_suffix(".md"), f"Pre-NN yield / study-ntuple yield at {lumi[0]:g} fb^-1.\n\n"
                   f"Command: `{command}` (commit {commit}, seed {cfg['seed']}).\n\n" + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
