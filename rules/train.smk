# Stage 3: the neural-network discriminant. `train` per network; `evaluate` (one job per
# network: every signal sample) and `evaluate_background` (one job per network and background
# sample) write the companion score files (skims are never rewritten), with NumPy from the
# exported weights (mlp.json): no TensorFlow start-up.


def _net_samples(network):
    spec = NETWORKS[network]
    return [str(s) for s in list(spec.get("signal", [])) + list(spec.get("evaluate", []))]


def nn_settings(network, samples=()):
    """Only what this network depends on: adding a benchmark does not retrain it.
    ``samples``: the scored samples, whose (m_c, dm) a parameterised network is evaluated at."""
    used = set(_net_samples(network))
    bms = [b for b in config["benchmarks"] if f"bp{b['id']}" in used or str(b["id"]) in used]
    out = dict(
        seed=config["seed"],
        nn={**{k: v for k, v in config["nn"].items() if k != "networks"}, "networks": {network: NETWORKS[network]}},
        benchmarks=bms,
        samples={"study_ntuples": config["samples"].get("study_ntuples", {})},
    )
    if samples:
        out["sample_params"] = {s: {"m_c": SAMPLES[s].get("m_c"), "dm": SAMPLES[s].get("dm")} for s in samples}
    return settings_json(**out)


def train_files(network):
    spec = NETWORKS[network]
    if spec.get("input", "skims") == "study_ntuples":
        if STUDY_DIR is None:
            raise ValueError(f"nn.networks.{network} needs the study's ntuples (samples.study_ntuples.dir)")
        st = config["nn"].get("study_ntuples", {})
        ids = [str(i) for i in list(spec.get("signal", [])) + list(spec.get("evaluate", []))]
        files = [st["files"][i] for i in dict.fromkeys(ids)] + [st.get("background_file", "background.root")]
        return {"study": [str(STUDY_DIR / f) for f in files]}
    ana = spec.get("analysis", "soft_emu_loose")
    return {
        "signal": [skim(ana, s) for s in spec.get("signal", [])],
        "background": [skim(ana, s) for s in spec.get("background", ["hf"])],
        "evaluate": [skim(ana, s) for s in spec.get("evaluate", []) if s in SAMPLES],
    }


def train_args(network):
    f = train_files(network)
    if "study" in f:
        return ""
    out = f"--signal-skims {' '.join(f['signal'])} --background-skims {' '.join(f['background'])}"
    if f["evaluate"]:
        out += f" --eval-skims {' '.join(f['evaluate'])}"
    return out


rule train:
    input:
        lambda w: [p for files in train_files(w.network).values() for p in files],
    output:
        model="results/nn/{network}/model.keras",
        scaler="results/nn/{network}/scaler.json",
        history="results/nn/{network}/history.json",
        metrics="results/nn/{network}/metrics.json",
        roc="results/nn/{network}/roc.csv",
        info="results/nn/{network}/model_info.json",
        mlp="results/nn/{network}/mlp.json",
    message: "{rule} {wildcards} (log: {log})"
    log:
        "results/logs/train/{network}.log",
    params:
        settings=lambda w: nn_settings(w.network),
        files=lambda w: train_args(w.network),
        outdir=lambda w: f"results/nn/{w.network}",
    benchmark:
        "results/benchmarks/rules/train/{network}.tsv"
    # TensorFlow sizes its own thread pools; declaring 1 lets a training share a 2-core machine with the
    # other jobs (with 2 it waited for both cores to be idle); the Slurm profile asks for 2 (set-threads)
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
        # GPU: see workflow/profiles/slurm (gpu resource) and docs/nn.md
    shell:
        "softdisplaced train --settings {params.settings:q} --network {wildcards.network}"
        " --outdir {params.outdir} {params.files} > {log} 2>&1"


def score_analyses():
    return [a for a in config["nn"].get("score_analyses", ["soft_emu", "soft_emu_loose"]) if a in ANALYSES]


# The samples that get scores: the physics signals, scored by one `evaluate` job per network,
# and the backgrounds the networks train on, one `evaluate_background` job per (network, sample),
# so that adding a benchmark rescores the signals but leaves the HF scores (and the background
# model built on them) alone.
SCORE_BACKGROUNDS = [b for b in dict.fromkeys(str(b) for n in SKIM_NETWORKS
                                              for b in NETWORKS[n].get("background", ["hf"]))
                     if b in SAMPLES and b not in SIGNALS]


def score_pairs(samples):
    """(skim, score file name under scores/) of ``samples`` x the scored analyses, in one fixed order."""
    return [(skim(a, s), f"{a}/{s}.h5") for s in samples for a in score_analyses()]


EVALUATE_SHELL = ("softdisplaced evaluate --settings {params.settings:q} --network {wildcards.network}"
                  " --model-dir results/nn/{wildcards.network} --skim {input.skims} --output {output} > {log} 2>&1")


rule evaluate:
    input:
        mlp="results/nn/{network}/mlp.json",
        info="results/nn/{network}/model_info.json",
        skims=[sk for sk, _ in score_pairs(SIGNALS)],
    output:
        [f"results/nn/{{network}}/scores/{name}" for _, name in score_pairs(SIGNALS)],
    message: "{rule} {wildcards} (log: {log})"
    log:
        "results/logs/evaluate/{network}.log",
    params:
        settings=lambda w: nn_settings(w.network, SIGNALS),
    benchmark:
        "results/benchmarks/rules/evaluate/{network}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        EVALUATE_SHELL


rule evaluate_background:
    input:
        mlp="results/nn/{network}/mlp.json",
        info="results/nn/{network}/model_info.json",
        skims=lambda w: [sk for sk, _ in score_pairs([w.sample])],
    output:
        [f"results/nn/{{network}}/scores/{a}/{{sample}}.h5" for a in score_analyses()],
    wildcard_constraints:
        sample="|".join(map(re.escape, SCORE_BACKGROUNDS)) if SCORE_BACKGROUNDS else "NONE",
    message: "{rule} {wildcards} (log: {log})"
    log:
        "results/logs/evaluate/{network}/{sample}.log",
    params:
        settings=lambda w: nn_settings(w.network),
    benchmark:
        "results/benchmarks/rules/evaluate_background/{network}_{sample}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        EVALUATE_SHELL
