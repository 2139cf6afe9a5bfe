# Stage 5: statistics. R95 and CLs (pyhf model, batched) versus c*tau for the NN
# and cut-based analyses, luminosity projections, the mass reach, and recasts
# of published CMS searches. Only `projections` depends on the luminosity list.

RECASTS = list(config["recast"].get("analyses", {}))
# the 8 TeV curve needs the 8 TeV samples (samples.sqrt_s_8tev)
HAS_8TEV = "cms_8tev_emu" in RECASTS and bool(signal_samples(SAMPLES, sqrt_s_tev=8))


def recast_skim_analyses(names):
    """Skim analyses of the recasts ``names`` (every era of each)."""
    from softdisplaced.inference.recast import eras

    ras = config["recast"].get("analyses", {})
    return sorted({a for n in names for a, _ in eras(n, ras[n])} & set(ANALYSES))


def recast_skims(wildcards=None):
    # chargino signal at 13 and 8 TeV (recast.analyses.<name>.sqrt_s_tev picks the samples)
    sigs = signal_samples(SAMPLES, sqrt_s_tev=None)
    return [skim(a, s) for a in recast_skim_analyses(RECASTS) for s in sigs]


STOPS = signal_samples(SAMPLES, model="stop")
STOP_RECASTS = config["recast"].get("stops", {}).get("analyses", [])


rule recast_stop:
    """Long-lived top-squark recast (config/recast_stop.yaml; not part of the default target)."""
    input:
        skims=lambda w: [skim(a, s) for a in recast_skim_analyses(STOP_RECASTS) for s in STOPS],
    output:
        limits="results/recast_stop/limits.csv",
        mass_limits="results/recast_stop/mass_limits.csv",
        validation="results/validation/RECAST.md",
    log:
        "results/logs/recast_stop.log",
    params:
        settings=lambda w: settings_json(
            **{k: config[k] for k in ("seed", "benchmarks", "cross_sections", "samples", "recast")},
            limits={k: v for k, v in config["limits"].items() if k != "projection_lumis_fb"},
        ),
    benchmark:
        "results/benchmarks/rules/recast_stop.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "softdisplaced recast-stops --settings {params.settings:q} --skims {input.skims}"
        " --outdir results/recast_stop --validation-dir results/validation > {log} 2>&1"


rule recast:
    # the longest job near the end of the DAG (recast -> exclusion_table -> report): start it first when ready
    priority: 10
    input:
        skims=recast_skims,
    output:
        s95=[f"results/recast/{name}_s95.csv" for name in RECASTS],
        summary="results/recast/s95_summary.json",
        bound_8tev="results/recast/cms_8tev_emu_ctau.csv" if HAS_8TEV else [],
    message: "{rule} (log: {log})"
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
    # needs no recast: the recast's 8 TeV rows join its table in `exclusion_table`, so both run side by side
    priority: 10
    input:
        signal="results/limits/signal_vs_ctau.csv",
        background="results/background/background.csv",
    output:
        table="results/limits/projection_ctau.csv",
        intervals="results/limits/excluded_intervals.json",
        mass_reach="results/limits/mass_reach.csv",
        summary="results/limits/mass_reach_summary.json",
    message: "{rule} (log: {log})"
    log:
        "results/logs/projections.log",
    params:
        settings=lambda w: physics_settings("seed", "background", "limits"),
    benchmark:
        "results/benchmarks/rules/projections.tsv"
    threads: 1  # one process (numpy); 2 would keep it waiting for an idle pair of cores
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "softdisplaced projections --settings {params.settings:q} --signal {input.signal}"
        " --background {input.background} --outdir results/limits --table projection_ctau.csv > {log} 2>&1"


rule exclusion_table:
    """exclusion_ctau.csv: the projections' table and the recast's R95 vs c*tau of the 8 TeV search (in-process)."""
    input:
        scan="results/limits/projection_ctau.csv",
        bound_8tev="results/recast/cms_8tev_emu_ctau.csv" if HAS_8TEV else [],
    output:
        exclusion="results/limits/exclusion_ctau.csv",
    message: "{rule} ({output})"
    localrule: True
    run:
        from softdisplaced.inference.limits import join_exclusion_table

        join_exclusion_table(input.scan, [input.bound_8tev] if input.bound_8tev else [], output.exclusion)
