"""Configuration: schema validation with specific errors, defaults, hashing, cross sections."""

from __future__ import annotations

import copy

import pytest
import yaml

from softdisplaced.config import ConfigError, config_hash, load_config, validate_config
from softdisplaced.samples import build_samples, chunk_seed, cross_section_fb


def _raw(repo_root):
    with open(repo_root / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


def _check(cfg, repo_root):
    return validate_config(cfg, repo_root / "config" / "schema.yaml", source="test.yaml")


@pytest.mark.parametrize("config_name", ["config.yaml"])
def test_shipped_configs_are_valid(repo_root, config_name):
    cfg = load_config(repo_root / "config" / config_name)
    assert cfg["seed"] >= 0
    assert len(cfg["benchmarks"]) == 7


def test_paper_config_is_valid_on_top_of_default(repo_root):
    from softdisplaced.config import deep_merge

    base = _raw(repo_root)
    with open(repo_root / "config" / "paper.yaml") as fh:
        paper = yaml.safe_load(fh)
    cfg = _check(deep_merge(base, paper), repo_root)
    samples = build_samples(cfg)
    # full statistics: more signal events than the fast default
    assert samples["bp1"]["events_per_chunk"] * samples["bp1"]["n_chunks"] >= 1_000_000


def test_error_names_key_and_rule(repo_root):
    cfg = _raw(repo_root)
    cfg["benchmarks"][2]["br_ll"] = 1.7
    with pytest.raises(ConfigError) as exc:
        _check(cfg, repo_root)
    msg = str(exc.value)
    assert "benchmarks[2].br_ll" in msg
    assert "maximum" in msg
    assert "test.yaml" in msg


def test_error_for_wrong_type_and_unknown_key(repo_root):
    cfg = _raw(repo_root)
    cfg["samples"]["signal"]["n_chunks"] = "two"
    cfg["benchmarks"][0]["mass"] = 100
    with pytest.raises(ConfigError) as exc:
        _check(cfg, repo_root)
    msg = str(exc.value)
    assert "samples.signal.n_chunks" in msg and "'type'" in msg
    assert "benchmarks[0]" in msg and "additionalProperties" in msg


def test_error_for_bad_enum(repo_root):
    cfg = _raw(repo_root)
    cfg["cross_sections"]["source"] = "lo"
    with pytest.raises(ConfigError, match=r"cross_sections\.source.*enum"):
        _check(cfg, repo_root)


def test_semantic_error_dm_above_mass(repo_root):
    cfg = _raw(repo_root)
    cfg["benchmarks"][0]["dm"] = 400
    with pytest.raises(ConfigError, match=r"benchmarks\[0\].*dm = 400"):
        _check(cfg, repo_root)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_defaults_are_filled(repo_root):
    cfg = _raw(repo_root)
    del cfg["generation"]["fast"]["mediator_decay"]["decay_mode"]
    _check(cfg, repo_root)
    assert cfg["generation"]["fast"]["mediator_decay"]["decay_mode"] == "democratic"


def test_config_hash_is_order_independent_and_sensitive(repo_root):
    cfg = _raw(repo_root)
    shuffled = dict(reversed(list(copy.deepcopy(cfg).items())))
    assert config_hash(cfg) == config_hash(shuffled)
    cfg2 = copy.deepcopy(cfg)
    cfg2["seed"] += 1
    assert config_hash(cfg) != config_hash(cfg2)


def test_cross_section_study_vs_table(default_config):
    cfg = copy.deepcopy(default_config)
    s, e, label = cross_section_fb(cfg, 220)
    assert (s, e, label) == (903.0, 54.0, "study_fixed")
    cfg["cross_sections"]["source"] = "wino_table"
    s, e, label = cross_section_fb(cfg, 220)
    # log-linear between 200 (902.57) and 225 (579.56): the published ~633 fb at 220 GeV
    expected = 902.57 * (579.56 / 902.57) ** (20 / 25)
    assert s == pytest.approx(expected, rel=1e-12)
    assert 625 < s < 645
    assert label == "wino_table_loglinear"
    # table nodes are reproduced exactly
    assert cross_section_fb(cfg, 300)[0] == pytest.approx(190.16)
    with pytest.raises(ValueError, match="outside the table"):
        cross_section_fb(cfg, 2000)


def test_samples_and_seeds(default_config):
    from softdisplaced.samples import signal_samples

    samples = build_samples(default_config)
    assert [f"bp{i}" for i in range(1, 8)] == [s for s in signal_samples(samples) if s.startswith("bp")]
    # the Pythia 8 validation copy of benchmark 1 exists, with its own generator
    assert samples["bp1_pythia8"]["source"] == "pythia8"
    assert samples["bp1_pythia8"]["m_c"] == samples["bp1"]["m_c"]
    assert samples["hf"]["kind"] == "background"
    a = chunk_seed(1, "bp1", 0).generate_state(4)
    b = chunk_seed(1, "bp1", 1).generate_state(4)
    c = chunk_seed(1, "bp2", 0).generate_state(4)
    assert (a == chunk_seed(1, "bp1", 0).generate_state(4)).all()
    assert not (a == b).all() and not (a == c).all()


def test_sample_generation_settings_are_validated_at_load(repo_root):
    """A sample's own generator settings (samples.hf_study.generation) are checked with the generator's schema
    when the configuration is read, the error naming the sample key and the generator key."""
    bad = {"samples": {"hf_study": {"generation": {"fast": {"heavy_flavour": {"second_b_semileptonic_fraction": 2}}}}}}
    with pytest.raises(ConfigError, match=r"(?s)samples.hf_study.generation.*generation.fast.heavy_flavour."
                                          r"second_b_semileptonic_fraction"):
        load_config(repo_root / "config" / "config.yaml", overrides=bad)


def test_networks_must_train_on_samples_of_the_configuration(default_config):
    """The study-compatible network trains on hf_study: disabling that sample is a clear error naming the
    network and the sample, not a missing input of the workflow."""
    from softdisplaced.samples import check_network_samples

    cfg = copy.deepcopy(default_config)
    networks = cfg["nn"]["networks"]
    assert networks["bp1_vs_hf_study_jets"]["background"] == ["hf_study"]
    check_network_samples(networks, build_samples(cfg))
    cfg["samples"]["hf_study"]["enabled"] = False
    with pytest.raises(ValueError, match=r"nn.networks.bp1_vs_hf_study_jets.background: hf_study is not a sample"):
        check_network_samples(networks, build_samples(cfg))
