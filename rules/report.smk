# Stage 6: paper artifacts (tables 1-5, figures 2 and 4-10, HEPData, REPORT.md)
# and results/provenance.json. Figures and tables also appear in
# `snakemake --report` with the captions in workflow/report/.

from softdisplaced.report import FIGURE_FILES, TABLE_FILES, expected_outputs

def _caption(name):
    """Caption file of workflow/report/ (paths relative to this file, as `report()` resolves them)."""
    return f"../workflow/report/{name}.rst"


def _report_outputs():
    outs = []
    for path in expected_outputs(config, "results/paper"):
        p = Path(path)
        caption = None
        if p.parent.name == "figures" and p.suffix == ".png":
            name = next(n for n, stem in FIGURE_FILES.items() if stem == p.stem)
            caption, category = _caption(f"fig_{name}"), "Figures"
        elif p.parent.name == "tables" and p.suffix == ".csv":
            name = next(n for n, stems in TABLE_FILES.items() if p.stem in stems)
            caption, category = _caption(f"table_{name}"), "Tables"
        elif p.name == "REPORT.md":
            caption, category = _caption("report_md"), "Report"
        outs.append(report(path, caption=caption, category=category) if caption else path)
    return outs


def report_inputs(wildcards=None):
    ins = [
        "results/yields/yields.csv",
        "results/background/transfer_factors.csv",
        "results/background/background.csv",
        "results/background/hf_fit.json",
        "results/limits/exclusion_ctau.csv",
        "results/limits/excluded_intervals.json",
        "results/limits/mass_reach.csv",
        "results/recast/s95_summary.json",
        skim("soft_emu_loose", "hf"),
        skim("soft_emu", "hf"),
    ]
    ins += [skim(a, s) for a in ("soft_emu_loose", "soft_emu") for s in SIGNALS]
    for net in NETWORKS:
        ins += [f"results/nn/{net}/metrics.json", f"results/nn/{net}/roc.csv"]
    for net in SKIM_NETWORKS:
        ins += [scores(net, a, s) for a in score_analyses() for s in SIGNALS + ["hf"]]
    if config.get("validation", {}).get("enabled", True):
        ins.append("results/validation/REPORT.md")
    return ins


rule report:
    input:
        config=RESOLVED_CONFIG,
        inputs=report_inputs,
    output:
        _report_outputs(),
    log:
        "results/logs/report.log",
    params:
        config_hash=CONFIG_HASH,  # rerun trigger: any configuration change
    benchmark:
        "results/benchmarks/rules/report.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "softdisplaced report --settings @{input.config:q} --results-dir results --output-dir results/paper"
        " --provenance results/provenance.json > {log} 2>&1"


rule provenance:
    input:
        config=RESOLVED_CONFIG,
        report="results/paper/REPORT.md",
        inputs=report_inputs,
    output:
        report("results/provenance.json", caption=_caption("provenance"), category="Provenance"),
    log:
        "results/logs/provenance.log",
    params:
        config_hash=CONFIG_HASH,
        events=lambda w: " ".join(
            sorted({str(Path(f).parent) for s in SAMPLES.values() if s["source"] == "delphes" for f in s["files"]})
        ),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "softdisplaced provenance --settings @{input.config:q} --inputs {input.inputs} results/paper {params.events}"
        " --benchmarks results/benchmarks/rules --output {output} > {log} 2>&1"
