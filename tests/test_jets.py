"""Jet clustering: the exact short-cuts of softdisplaced.generation.jets give fastjet's jets on every event."""

import numpy as np
import pytest

from softdisplaced.generation import detector, jets
from softdisplaced.generation import generate_chunk
from softdisplaced.samples import rng_for


def _fastjet_only(px, py, pz, e, counts, cfg, tags=None):
    offsets = np.concatenate([[0], np.cumsum(counts)])
    jev, p4 = jets._fastjet(px, py, pz, e, offsets, np.arange(len(counts)), cfg, tags)
    return np.bincount(jev, minlength=len(counts)), p4


def _sorted(jc, p4):
    ev = np.repeat(np.arange(len(jc)), jc)
    pt = np.hypot(p4[:, 0], p4[:, 1])
    return p4[np.lexsort((-pt, ev))]


def _assert_same_as_fastjet(px, py, pz, e, counts, cfg, tags=None):
    """Compare (momenta, and the constituent tag sums when ``tags`` is given), and check that
    both the short-cut and fastjet handled some of the events."""
    to_fastjet = []
    original = jets._fastjet
    jets._fastjet = lambda *a: (to_fastjet.append(len(a[5])), original(*a))[1]
    try:
        jc, jpx, jpy, jpz, je, *sums = jets.cluster(px, py, pz, e, counts, cfg, tags)
    finally:
        jets._fastjet = original
    assert 0 < sum(to_fastjet) < len(counts)
    jc_ref, p4_ref = _fastjet_only(px, py, pz, e, counts, cfg,
                                   None if tags is None else np.asarray(tags).reshape(len(px), -1))
    np.testing.assert_array_equal(jc, jc_ref)
    ours = np.stack([jpx, jpy, jpz, je], axis=1)
    if tags is not None:
        assert sums[0].dtype == np.int64
        ours = np.concatenate([ours, sums[0]], axis=1)
    ours, ref = _sorted(jc, ours), _sorted(jc_ref, p4_ref)
    np.testing.assert_allclose(ours[:, :4], ref[:, :4], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(ours[:, 4:], ref[:, 4:])
    return jc


def _random_events(n_events, seed):
    """Events of 1-10 massless or pion-mass particles around 1-3 axes with spreads from 0.01 to 0.6."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 11, n_events)
    n = counts.sum()
    ev = np.repeat(np.arange(n_events), counts)
    n_axes = rng.integers(1, 4, n_events)
    axis = rng.integers(0, 3, n) % n_axes[ev]
    eta_axis = rng.uniform(-3, 3, (n_events, 3))
    phi_axis = rng.uniform(-np.pi, np.pi, (n_events, 3))
    spread = rng.choice([0.01, 0.05, 0.15, 0.3, 0.6], n_events)
    eta = eta_axis[ev, axis] + rng.normal(0, 1, n) * spread[ev]
    phi = phi_axis[ev, axis] + rng.normal(0, 1, n) * spread[ev]
    pt = rng.exponential(15.0, n) + 0.5
    mass = np.where(rng.random(n) < 0.5, 0.0, 0.13957)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px * px + py * py + pz * pz + mass * mass)
    return px, py, pz, e, counts


@pytest.mark.parametrize("algorithm", ["antikt", "kt", "cambridge"])
@pytest.mark.parametrize("r", [0.4, 1.0])
def test_short_cuts_equal_fastjet_on_random_events(algorithm, r):
    cfg = {"algorithm": algorithm, "r": r, "pt_min_gev": 10.0}
    jc = _assert_same_as_fastjet(*_random_events(4000, seed=7), cfg)
    assert jc.sum() > 1000


@pytest.mark.parametrize("algorithm", ["antikt", "kt"])
def test_constituent_counts_equal_in_short_cut_and_fastjet(algorithm):
    """Per-jet counts of tagged constituents (the detector's NNeutrals / NCharged) are the same
    whichever path clusters the event, and they are the constituents: the counts of all jets of
    an event never exceed the event's tagged inputs, and the two kinds add up to the total."""
    px, py, pz, e, counts = _random_events(4000, seed=11)
    rng = np.random.default_rng(5)
    neutral = rng.random(len(px)) < 0.4
    tags = np.stack([neutral, ~neutral, np.ones(len(px), dtype=bool)], axis=1).astype(np.int64)
    cfg = {"algorithm": algorithm, "r": 0.5, "pt_min_gev": 10.0}
    jc = _assert_same_as_fastjet(px, py, pz, e, counts, cfg, tags)
    jc, *_, sums = jets.cluster(px, py, pz, e, counts, cfg, tags)
    jev = np.repeat(np.arange(len(counts)), jc)
    np.testing.assert_array_equal(sums[:, 0] + sums[:, 1], sums[:, 2])
    per_event = np.stack([np.bincount(jev, weights=sums[:, i], minlength=len(counts)) for i in range(3)], axis=1)
    ev = np.repeat(np.arange(len(counts)), counts)
    inputs = np.stack([np.bincount(ev, weights=tags[:, i], minlength=len(counts)) for i in range(3)], axis=1)
    assert np.all(per_event <= inputs)
    assert 0 < sums[:, 0].sum() < sums[:, 2].sum()
    # one-dimensional tags give a single column
    assert jets.cluster(px, py, pz, e, counts, cfg, neutral.astype(int))[5].shape == (jc.sum(), 1)


@pytest.mark.parametrize("sample", [
    {"name": "bp1", "kind": "signal", "source": "fast", "m_c": 324.0, "dm": 20.0, "ctau_cm": 2.0},
    {"name": "hf", "kind": "background", "source": "fast"},
])
def test_short_cuts_equal_fastjet_on_generated_events(sample):
    """The detector's jet inputs of fast-generator events (captured from detector.simulate). HF without its
    ISR jet and soft activity (generation.fast.heavy_flavour.isr, soft_activity): with them every HF event has
    more than the short-cuts' 8 inputs and goes to fastjet, and the short-cuts would not be exercised."""
    off = {"soft_activity": {"enabled": False}, "isr": {"enabled": False}}
    gen = {"fast": {"heavy_flavour": off}} if sample["name"] == "hf" else {}
    truth = generate_chunk(sample, {"seed": 3, "generation": gen, "detector": {}}, rng_for(3, sample["name"], 0), 3000)
    captured = {}
    original = jets.cluster

    def capture(px, py, pz, e, counts, cfg, tags=None):
        captured.update(args=(px, py, pz, e, counts), cfg=cfg, tags=tags)
        return original(px, py, pz, e, counts, cfg, tags)

    jets.cluster = capture
    try:
        detector.simulate(truth, {}, rng_for(3, sample["name"], 0, "detector"))
    finally:
        jets.cluster = original
    assert _assert_same_as_fastjet(*captured["args"], captured["cfg"], captured["tags"]).sum() > 100


def _event(*particles):
    """One event from (pt, y, phi) massless particles."""
    pt, y, phi = (np.array(v, dtype=float) for v in zip(*particles))
    px, py, pz, e = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(y), pt * np.cosh(y)
    return px[None], py[None], pz[None], e[None]


def test_separated_groups_two_particles_merge_below_r_and_stay_apart_above():
    ok, p4, is_jet = jets.separated_groups(*_event((30, 0.0, 0.0), (20, 0.39, 0.0)), 0.4)
    assert ok[0] and is_jet[0].sum() == 1
    np.testing.assert_allclose(p4[0, 0, 0], 50.0)
    ok, p4, is_jet = jets.separated_groups(*_event((30, 0.0, 0.0), (20, 0.41, 0.0)), 0.4)
    assert ok[0] and is_jet[0].sum() == 2


def test_separated_groups_refuses_chains_and_near_boxes():
    # a chain 0.3 apart: linked as one group, but wider than R -> left to fastjet
    ok, _, _ = jets.separated_groups(*_event((30, 0.0, 0.0), (20, 0.3, 0.0), (10, 0.6, 0.0)), 0.4)
    assert not ok[0]
    # two groups not linked (every particle pair >= R apart) whose boxes are closer than R
    ok, _, _ = jets.separated_groups(*_event((30, 0.0, 0.0), (30, 0.3, 0.0), (10, 0.15, 0.38)), 0.4)
    assert not ok[0]


def test_separated_groups_handle_the_phi_wrap():
    ok, p4, is_jet = jets.separated_groups(*_event((30, 0.0, np.pi - 0.1), (20, 0.0, -np.pi + 0.1)), 0.4)
    assert ok[0] and is_jet[0].sum() == 1
    np.testing.assert_allclose(np.hypot(p4[0, 0, 0], p4[0, 0, 1]), np.sqrt(30 ** 2 + 20 ** 2 + 2 * 30 * 20 * np.cos(0.2)))


def test_fastjet_rapidity_matches_pseudojet():
    import fastjet

    rng = np.random.default_rng(1)
    px, py, pz = rng.normal(0, 20, (3, 50))
    e = np.sqrt(px ** 2 + py ** 2 + pz ** 2 + rng.choice([0.0, 0.02, 25.0], 50))
    ours = jets.fastjet_rapidity(px, py, pz, e)
    ref = [fastjet.PseudoJet(*map(float, v)).rap() for v in zip(px, py, pz, e)]
    np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=1e-13)
