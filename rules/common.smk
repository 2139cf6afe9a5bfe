# Shared definitions: the samples, analyses and networks of this configuration,
# and the settings each rule hands to its `softdisplaced` command.
#
# Each rule passes exactly the configuration it depends on as a JSON `params`
# value, so Snakemake's params rerun-trigger reruns a job when, and only when,
# a setting it uses changes.

import json
import re
import os
from pathlib import Path

from softdisplaced.atomic import remove_stale_temporaries, write_text
from softdisplaced.config import config_hash, subset
from softdisplaced.samples import build_samples, check_network_samples, signal_samples

SAMPLES = build_samples(config)
GENERATED = [s for s, spec in SAMPLES.items() if spec["source"] != "delphes"]
SIGNALS = signal_samples(SAMPLES)  # physics signal samples (not the Pythia 8 validation copies)


def _analyses():
    from softdisplaced.processing.analyses import build_analyses

    return build_analyses(config)


ANALYSES = _analyses()
ANALYSIS_NAMES = list(ANALYSES)


def _networks():
    nets = config.get("nn", {}).get("networks", {})
    return {n: spec for n, spec in nets.items() if spec.get("enabled", True)}


NETWORKS = _networks()
check_network_samples(NETWORKS, SAMPLES)
SKIM_NETWORKS = [n for n, s in NETWORKS.items() if s.get("input", "skims") == "skims"]


def study_ntuples_dir():
    st = config["samples"].get("study_ntuples", {})
    d = Path(st.get("dir", "../shared/reference/authors_ntuples"))
    enabled = st.get("enabled", "auto")
    if enabled is False:
        return None
    if not d.exists():
        if enabled is True:
            raise ValueError(f"samples.study_ntuples.dir: {d} does not exist (enabled: true)")
        print(f"softdisplaced: study ntuples not found at {d}: steps using the study's events are skipped")
        return None
    return d


STUDY_DIR = study_ntuples_dir()


# The full validated configuration, for the report and provenance. Written by the rule
# `resolved_config` (never at parse time: a dry run or a refused run changes nothing under
# results/); its params carry the whole configuration, so any change reruns it and, through it,
# the report and provenance.
RESOLVED_CONFIG = "results/config/resolved.json"
CONFIG_HASH = config_hash(config)


rule resolved_config:
    output:
        RESOLVED_CONFIG,
    message: "{rule} ({output})"
    params:
        settings=json.dumps(config, sort_keys=True, indent=1, default=str) + "\n",
    localrule: True
    run:
        write_text(output[0], params.settings)


# Remove the temporary files that jobs killed mid-write left under results/ (this hook runs
# only for a real run, after Snakemake has locked the directory, so no running job owns them).
onstart:
    for path in remove_stale_temporaries("results"):
        print(f"softdisplaced: removed the stale temporary {path} of an interrupted job")


def chunks(sample):
    spec = SAMPLES[sample]
    if spec["source"] == "delphes":
        return list(range(len(spec["files"])))
    return list(range(spec["n_chunks"]))


def settings_json(**sections):
    """JSON of the given sections, canonical (sorted keys) so params compare stably."""
    return json.dumps(sections, sort_keys=True, separators=(",", ":"), default=str)


def sample_spec(sample, keep_chunks=False):
    """The sample spec without the chunk count (adding chunks must not rerun old ones)."""
    spec = dict(SAMPLES[sample])
    if not keep_chunks:
        spec.pop("n_chunks", None)
    return spec


def skim(analysis, sample):
    return f"results/skims/{analysis}/{sample}.h5"


def scores(network, analysis, sample):
    return f"results/nn/{network}/scores/{analysis}/{sample}.h5"


wildcard_constraints:
    sample="|".join(map(re.escape, SAMPLES)) if SAMPLES else "NONE",
    chunk=r"\d+",
    analysis="|".join(map(re.escape, ANALYSIS_NAMES)) if ANALYSIS_NAMES else "NONE",
    network="|".join(map(re.escape, NETWORKS)) if NETWORKS else "NONE",


def all_targets():
    targets = ["results/paper/REPORT.md", "results/provenance.json"]
    if config.get("validation", {}).get("enabled", True):
        targets.append("results/validation/REPORT.md")
    return targets
