# Stage 2: the coffea processor. One job per (sample, chunk) runs every
# configured analysis on the chunk (the file is read once); `merge` then
# concatenates a sample's chunks into results/skims/<analysis>/<sample>.h5.
# Adding chunks therefore processes only the new chunks (and re-merges).


def events_file(wildcards):
    spec = SAMPLES[wildcards.sample]
    if spec["source"] == "delphes":
        return spec["files"][int(wildcards.chunk)]
    return f"results/events/{wildcards.sample}/{wildcards.chunk}.root"


def process_settings(sample):
    return settings_json(
        sample=sample_spec(sample),
        analyses={a: ANALYSES[a] for a in ANALYSIS_NAMES},
        efficiency=config["efficiency"],
        processing=config["processing"],
    )


rule process:
    input:
        events_file,
    output:
        expand("results/partials/{analysis}/{{sample}}/{{chunk}}.h5", analysis=ANALYSIS_NAMES),
    message: "{rule} {wildcards} (log: {log})"
    log:
        "results/logs/process/{sample}/{chunk}.log",
    params:
        settings=lambda w: process_settings(w.sample),
        analyses=ANALYSIS_NAMES,
    benchmark:
        "results/benchmarks/rules/process/{sample}_{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "softdisplaced process --settings {params.settings:q} --sample {wildcards.sample}"
        " --analysis {params.analyses} --input {input} --output {output} > {log} 2>&1"


rule merge:
    input:
        lambda w: [f"results/partials/{a}/{w.sample}/{c}.h5" for a in ANALYSIS_NAMES for c in chunks(w.sample)],
    output:
        skims=expand("results/skims/{analysis}/{{sample}}.h5", analysis=ANALYSIS_NAMES),
        cutflows=expand("results/cutflows/{analysis}/{{sample}}.json", analysis=ANALYSIS_NAMES),
        hists=expand("results/hists/{analysis}/{{sample}}.pkl", analysis=ANALYSIS_NAMES),
    message: "{rule} {wildcards} (log: {log})"
    log:
        "results/logs/merge/{sample}.log",
    params:
        settings=lambda w: process_settings(w.sample),
        analyses=ANALYSIS_NAMES,
        partials_dir="results/partials",
    benchmark:
        "results/benchmarks/rules/merge/{sample}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "softdisplaced merge --settings {params.settings:q} --sample {wildcards.sample}"
        " --analysis {params.analyses} --partials-dir {params.partials_dir}"
        " --skim {output.skims} --cutflow {output.cutflows} --hists {output.hists} > {log} 2>&1"
