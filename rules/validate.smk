# Validation of the generators: fast generator and Pythia 8 against the
# study's own events (features, d0, SR fractions, selection efficiency).

from softdisplaced.validation.generators import benchmark_samples


def validation_inputs(wildcards=None):
    val = config.get("validation", {})
    ana = val.get("analysis", "soft_emu")
    fast = {}
    pythia = {}
    for spec in (SAMPLES[n] for n in benchmark_samples(SAMPLES)):   # 13 TeV only (not the *_8tev copies)
        bid = spec["benchmark"]
        if spec["source"] == "pythia8" and spec.get("validation_only"):
            pythia[bid] = skim(ana, spec["name"])
        elif spec["source"] == "fast":
            fast[bid] = skim(ana, spec["name"])
    return fast, pythia


def _pairs(d):
    return " ".join(f"{k}={v}" for k, v in sorted(d.items()))


def fidelity_inputs(wildcards=None):
    """Inputs of the fidelity section: yields, the networks' metrics (validation.fidelity.nn_networks, one per
    HtJet definition, against the study-ntuple network), transfer factors, cutflows."""
    ana = config.get("validation", {}).get("analysis", "soft_emu")
    nets = [n for n in config.get("validation", {}).get("fidelity", {}).get("nn_networks", []) if n in SKIM_NETWORKS]
    out = {"yields": "results/yields/yields.csv", "transfer_factors": "results/background/transfer_factors.csv"}
    # the committed measurements (docs/fidelity_results/: Pythia 8 and fast with large samples), shown with their
    # provenance; copies of the workflow without docs/ leave them out
    refs = [p for p in config.get("validation", {}).get("fidelity", {}).get("references", []) if Path(p).is_file()]
    if refs:
        out["references"] = " ".join(refs)
    if nets and STUDY_NET is not None:
        out.update(nn_metrics=" ".join(f"results/nn/{n}/metrics.json" for n in nets),
                   study_nn_metrics=f"results/nn/{STUDY_NET}/metrics.json")
        # the post-NN yields of the networks other than background.nn_network (yields.csv has that one's)
        fast = validation_inputs()[0].values()
        post = [scores(n, ana, Path(p).stem) for n in nets if n != NN_NET for p in fast]
        if post:
            out["post_nn_scores"] = " ".join(post)
    cutflows = {}
    for name in benchmark_samples(SAMPLES):   # 13 TeV only (not the *_8tev copies)
        spec = SAMPLES[name]
        cutflows[f"{spec['benchmark']}:{spec['source']}"] = f"results/cutflows/{ana}/{name}.json"
    return out, cutflows


def _fidelity_args(wildcards=None):
    files, cutflows = fidelity_inputs()
    args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(files.items()))
    return args + (" --cutflows " + " ".join(f"{k}={v}" for k, v in sorted(cutflows.items())) if cutflows else "")


rule validate:
    input:
        fast=lambda w: list(validation_inputs()[0].values()),
        pythia8=lambda w: list(validation_inputs()[1].values()),
        fidelity=lambda w: [p for v in fidelity_inputs()[0].values() for p in v.split()] + list(fidelity_inputs()[1].values()),
    output:
        report="results/validation/REPORT.md",
        table="results/validation/comparison.csv",
        efficiencies="results/validation/efficiencies.csv",
        summary="results/validation/summary.json",
    message: "{rule} (log: {log})"
    log:
        "results/logs/validate.log",
    params:
        settings=lambda w: settings_json(validation=config.get("validation", {}), samples=config["samples"],
                                         background={"published_kappa": config["background"].get("published_kappa", {}),
                                                     "nn_network": NN_NET},
                                         nn={"cut": config["nn"]["cut"]},
                                         benchmarks=config["benchmarks"], cross_sections=config["cross_sections"]),
        fidelity=_fidelity_args,
        fast=lambda w: _pairs(validation_inputs()[0]),
        pythia8=lambda w: _pairs(validation_inputs()[1]),
        study=lambda w: f"--study-dir {STUDY_DIR}" if STUDY_DIR else "",
    benchmark:
        "results/benchmarks/rules/validate.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "softdisplaced validate --settings {params.settings:q} --output-dir results/validation"
        " --fast {params.fast} --pythia8 {params.pythia8} {params.study} {params.fidelity} > {log} 2>&1"
