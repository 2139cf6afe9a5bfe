# Stage 4: heavy-flavour background (double-exponential fit, transfer factors),
# signal yields per SR, and the lifetime-reweighted signal on the c*tau grid.

BKG = config["background"]
NN_NET = BKG.get("nn_network", "bp1_vs_hf")
NN_ANA = BKG.get("nn_fraction_analysis", "soft_emu_loose")
SPECTRA_ANA = BKG.get("spectra_analysis", "soft_emu_loose")
YIELD_ANALYSES = [a for a in dict.fromkeys(config["limits"].get("scan_analyses", {"nn": "soft_emu"}).values())
                  if a in ANALYSES]
STUDY_NET = "study_ntuples" if "study_ntuples" in NETWORKS and STUDY_DIR is not None else None


def physics_settings(*sections):
    return settings_json(**{k: config[k] for k in sections if k in config})


def signal_skims(wildcards=None):
    return [skim(a, s) for a in YIELD_ANALYSES for s in SIGNALS]


# every other analysis with a background threshold (e.g. the threshold scan) gets its pre-NN yields too
THRESHOLD_ANALYSES = [a for a in config["background"].get("analysis_threshold_gev", {})
                      if a in ANALYSES and a not in YIELD_ANALYSES]


def pythia8_copy_skims(wildcards=None):
    """The Pythia 8 validation copies bp<id>_pythia8 (validation.pythia8_benchmarks): pre-NN yields only
    (source pythia8), which the fidelity section compares with the study's (config/pythia8_fidelity.yaml)."""
    from softdisplaced.validation.generators import benchmark_samples

    ana = config.get("validation", {}).get("analysis", "soft_emu")
    return [skim(ana, s) for s in benchmark_samples(SAMPLES) if SAMPLES[s].get("validation_only")]


def yield_skims(wildcards=None):
    return signal_skims() + [skim(a, s) for a in THRESHOLD_ANALYSES for s in SIGNALS] + pythia8_copy_skims()


def signal_scores(wildcards=None):
    if NN_NET not in SKIM_NETWORKS:
        return []
    return [scores(NN_NET, a, s) for a in YIELD_ANALYSES for s in SIGNALS]


def study_args():
    if STUDY_NET is None:
        return ""
    return f"--study-ntuples-dir {STUDY_DIR} --study-nn-metrics results/nn/{STUDY_NET}/metrics.json"


rule background:
    input:
        spectra=skim(SPECTRA_ANA, "hf"),
        hf_skim=skim(NN_ANA, "hf"),
        hf_scores=scores(NN_NET, NN_ANA, "hf") if NN_NET in SKIM_NETWORKS else [],
        metrics=f"results/nn/{NN_NET}/metrics.json" if NN_NET in NETWORKS else [],
        kappa_refs=[f for k, f in config["background"].get("kappa_reference_files", {}).items()
                    if k in config["background"].get("kappa_spread_sources", [])],
    output:
        tf="results/background/transfer_factors.csv",
        bkg="results/background/background.csv",
        fit="results/background/hf_fit.json",
        comparison="results/background/comparison.csv",
        fraction="results/background/nn_fraction.json",
    message: "{rule} (log: {log})"
    log:
        "results/logs/background.log",
    params:
        settings=lambda w: settings_json(background=config["background"], nn={"cut": config["nn"]["cut"]}),
        nn=lambda w, input: (f"--hf-skim {input.hf_skim} --hf-scores {input.hf_scores}" if input.hf_scores
                             else (f"--nn-metrics {input.metrics}" if input.metrics else "")),
    benchmark:
        "results/benchmarks/rules/background.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "softdisplaced background --settings {params.settings:q} --hf-spectra {input.spectra}"
        " {params.nn} --outdir results/background > {log} 2>&1"


YIELD_SECTIONS = ["benchmarks", "cross_sections", "samples", "background", "nn"]


def yields_settings():
    lim = {k: v for k, v in config["limits"].items() if k != "projection_lumis_fb"}
    nn = {k: v for k, v in config["nn"].items() if k != "networks"}
    # the validation keys that define the Pythia 8 copies bp<id>_pythia8 (their pre-NN yields, source pythia8)
    val = {k: v for k, v in config.get("validation", {}).items()
           if k in ("pythia8_benchmarks", "pythia8_events", "pythia8_chunks")}
    return settings_json(**{k: config[k] for k in YIELD_SECTIONS if k not in ("nn",)}, nn=nn, limits=lim,
                         validation=val)


rule yields:
    input:
        skims=yield_skims,
        scores=signal_scores,
        background="results/background/background.csv",
        study_metrics=[f"results/nn/{STUDY_NET}/metrics.json"] if STUDY_NET else [],
    output:
        csv="results/yields/yields.csv",
        md="results/yields/yields.md",
    message: "{rule} (log: {log})"
    log:
        "results/logs/yields.log",
    params:
        settings=lambda w: yields_settings(),
        study=study_args(),
        scores=lambda w, input: f"--scores {' '.join(input.scores)}" if input.scores else "",
    benchmark:
        "results/benchmarks/rules/yields.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "softdisplaced yields --settings {params.settings:q} --skims {input.skims} {params.scores}"
        " --background {input.background} {params.study} --out {output.csv} > {log} 2>&1"


rule lifetime_scan:
    input:
        skims=signal_skims,
        scores=signal_scores,
        study_metrics=[f"results/nn/{STUDY_NET}/metrics.json"] if STUDY_NET else [],
    output:
        "results/limits/signal_vs_ctau.csv",
    message: "{rule} (log: {log})"
    log:
        "results/logs/lifetime_scan.log",
    params:
        settings=lambda w: yields_settings(),
        study=study_args(),
        scores=lambda w, input: f"--scores {' '.join(input.scores)}" if input.scores else "",
    benchmark:
        "results/benchmarks/rules/lifetime_scan.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "softdisplaced lifetime-scan --settings {params.settings:q} --skims {input.skims} {params.scores}"
        " {params.study} --out {output} > {log} 2>&1"
