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

from softdisplaced.config import subset
from softdisplaced.samples import build_samples, signal_samples

SAMPLES = build_samples(config)
GENERATED = [s for s, spec in SAMPLES.items() if spec["source"] != "delphes"]
SIGNALS = signal_samples(SAMPLES)  # physics signal samples (not the Pythia 8 validation copies)


def _analyses():
    from softdisplaced.analyses import build_analyses

    return build_analyses(config)


ANALYSES = _analyses()
ANALYSIS_NAMES = list(ANALYSES)


def _networks():
    nets = config.get("nn", {}).get("networks", {})
    return {n: spec for n, spec in nets.items() if spec.get("enabled", True)}


NETWORKS = _networks()
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


RESOLVED_CONFIG = Path("results/config/resolved.json")


def _write_resolved_config():
    """The full validated configuration, for the report and provenance (rewritten only when it changes)."""
    from softdisplaced.atomic import write_text
    from softdisplaced.config import config_hash

    text = json.dumps(config, sort_keys=True, indent=1, default=str) + "\n"
    if not RESOLVED_CONFIG.exists() or RESOLVED_CONFIG.read_text() != text:
        write_text(RESOLVED_CONFIG, text)
    return config_hash(config)


CONFIG_HASH = _write_resolved_config()


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
