# Stage 1: events. One job per (sample, chunk), each with its own seeded
# random stream; output in Delphes format. User Delphes files skip this stage.


rule generate:
    output:
        "results/events/{sample}/{chunk}.root",
    message: "{rule} {wildcards} (log: {log})"
    log:
        "results/logs/generate/{sample}/{chunk}.log",
    params:
        settings=lambda w: settings_json(
            seed=config["seed"],
            sample=sample_spec(w.sample),
            generation=config["generation"],
            detector=config["detector"],
        ),
    benchmark:
        "results/benchmarks/rules/generate/{sample}_{chunk}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "softdisplaced generate --settings {params.settings:q} --sample {wildcards.sample}"
        " --chunk {wildcards.chunk} --output {output} > {log} 2>&1"
