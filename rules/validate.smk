# Validation of the generators: fast generator and Pythia 8 against the
# study's own events (features, d0, SR fractions, selection efficiency).


def validation_inputs(wildcards=None):
    val = config.get("validation", {})
    ana = val.get("analysis", "soft_emu")
    fast = {}
    pythia = {}
    for spec in SAMPLES.values():
        bid = spec.get("benchmark")
        if bid is None:
            continue
        if spec["source"] == "pythia8" and spec.get("validation_only"):
            pythia[bid] = skim(ana, spec["name"])
        elif spec["source"] == "fast":
            fast[bid] = skim(ana, spec["name"])
    return fast, pythia


def _pairs(d):
    return " ".join(f"{k}={v}" for k, v in sorted(d.items()))


rule validate:
    input:
        fast=lambda w: list(validation_inputs()[0].values()),
        pythia8=lambda w: list(validation_inputs()[1].values()),
    output:
        report="results/validation/REPORT.md",
        table="results/validation/comparison.csv",
        efficiencies="results/validation/efficiencies.csv",
        summary="results/validation/summary.json",
    message: "{rule} (log: {log})"
    log:
        "results/logs/validate.log",
    params:
        settings=lambda w: settings_json(validation=config.get("validation", {}), samples=config["samples"]),
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
        " --fast {params.fast} --pythia8 {params.pythia8} {params.study} > {log} 2>&1"
