# Stage 5: statistics. R95 and CLs (pyhf model, batched) versus c*tau for the NN
# and cut-based analyses, luminosity projections, the mass reach, and recasts
# of published CMS searches. Only `projections` depends on the luminosity list.

RECASTS = list(config["recast"].get("analyses", {}))


def recast_skims(wildcards=None):
    anas = {e.get("skim_analysis", name) for name, e in config["recast"].get("analyses", {}).items()}
    return [skim(a, s) for a in sorted(anas) if a in ANALYSES for s in SIGNALS]


rule recast:
    input:
        skims=recast_skims,
    output:
        s95=[f"results/recast/{name}_s95.csv" for name in RECASTS],
        summary="results/recast/s95_summary.json",
        bound_8tev="results/recast/cms_8tev_emu_ctau.csv" if "cms_8tev_emu" in RECASTS else [],
    log:
        "results/logs/recast.log",
    params:
        settings=lambda w: settings_json(
            **{k: config[k] for k in ("seed", "benchmarks", "cross_sections", "samples", "recast")},
            limits={k: v for k, v in config["limits"].items() if k != "projection_lumis_fb"},
        ),
    benchmark:
        "results/benchmarks/rules/recast.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "softdisplaced recast --settings {params.settings:q} --skims {input.skims}"
        " --outdir results/recast > {log} 2>&1"


rule projections:
    input:
        signal="results/limits/signal_vs_ctau.csv",
        background="results/background/background.csv",
        bound_8tev="results/recast/cms_8tev_emu_ctau.csv" if "cms_8tev_emu" in RECASTS else [],
    output:
        exclusion="results/limits/exclusion_ctau.csv",
        intervals="results/limits/excluded_intervals.json",
        mass_reach="results/limits/mass_reach.csv",
        summary="results/limits/mass_reach_summary.json",
    log:
        "results/logs/projections.log",
    params:
        settings=lambda w: physics_settings("seed", "background", "limits"),
        bound=lambda w, input: f"--bound-8tev {input.bound_8tev}" if input.bound_8tev else "",
    benchmark:
        "results/benchmarks/rules/projections.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "softdisplaced projections --settings {params.settings:q} --signal {input.signal}"
        " --background {input.background} {params.bound} --outdir results/limits > {log} 2>&1"
