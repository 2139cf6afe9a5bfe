# Stage 6: paper artifacts (tables 1-5, figures 2 and 4-10, HEPData, REPORT.md)
# and results/provenance.json. Figures and tables also appear in
# `snakemake --report` with the captions in workflow/report/.

from softdisplaced.report import FIGURE_FILES, TABLE_FILES, expected_outputs

_CAPTIONS = {**{f"fig{stem.split('_', 1)[0][3:]}_{stem.split('_', 1)[1]}": f"fig_{name}"
                for name, stem in FIGURE_FILES.items()}}


def _report_outputs():
    outs = []
    for path in expected_outputs(config, "results/paper"):
        p = Path(path)
        caption = None
        if p.parent.name == "figures" and p.suffix == ".png":
            name = next(n for n, stem in FIGURE_FILES.items() if stem == p.stem)
            caption, category = f"workflow/report/fig_{name}.rst", "Figures"
        elif p.parent.name == "tables" and p.suffix == ".csv":
            name = next(n for n, stems in TABLE_FILES.items() if p.stem in stems)
            caption, category = f"workflow/report/table_{name}.rst", "Tables"
        elif p.name == "REPORT.md":
            caption, category = "workflow/report/report_md.rst", "Report"
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
        report_inputs,
    output:
        _report_outputs(),
    message: "{rule} (log: {log})"
    log:
        "results/logs/report.log",
    params:
        settings=f"@{RESOLVED_CONFIG}",
        config_hash=CONFIG_HASH,  # rerun trigger: any configuration change
    benchmark:
        "results/benchmarks/rules/report.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "softdisplaced report --settings {params.settings:q} --results-dir results --output-dir results/paper"
        " --provenance results/provenance.json > {log} 2>&1"


rule provenance:
    input:
        report="results/paper/REPORT.md",
        inputs=report_inputs,
    output:
        report("results/provenance.json", caption="workflow/report/provenance.rst", category="Provenance"),
    message: "{rule} (log: {log})"
    log:
        "results/logs/provenance.log",
    params:
        settings=f"@{RESOLVED_CONFIG}",
        config_hash=CONFIG_HASH,
        events=lambda w: " ".join(
            sorted({str(Path(f).parent) for s in SAMPLES.values() if s["source"] == "delphes" for f in s["files"]})
        ),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "softdisplaced provenance --settings {params.settings:q} --inputs {input.inputs} results/paper {params.events}"
        " --benchmarks results/benchmarks/rules --output {output} > {log} 2>&1"
