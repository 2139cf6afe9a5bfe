"""Jet clustering for the detector simulation: fastjet, with two exact short-cuts.

``cluster(px, py, pz, e, counts, jet_cfg)`` clusters the particles of each event
(flat arrays grouped by event, ``counts`` per event) with a generalised-kT
algorithm (anti-kT, kT or Cambridge/Aachen, radius R, E-scheme) and returns the
inclusive jets above ``pt_min_gev`` as flat ``(px, py, pz, e)`` arrays with
their counts per event, in no particular order within an event. With ``tags``
(an integer array, one row of counts per particle), it also returns, per jet, the
sum of the tags of its constituents (exact in both paths: the group members in the
short-cut, fastjet's ``constituent_index`` otherwise); the detector counts the
neutral and charged constituents of each jet this way (Delphes ``Jet.NNeutrals``,
``Jet.NCharged``).

The clustering is fastjet's (``fastjet.ClusterSequence`` on the whole chunk).
Two classes of events have a result that does not depend on the clustering
sequence, and are computed directly (both are exact, not approximations):

1. *Too little pT*: a jet's pT never exceeds the scalar pT sum of the event's
   particles, so an event whose sum is below ``pt_min_gev`` has no jet.
2. *Separated groups* (:func:`separated_groups`): link particles closer than R
   in (rapidity, phi) and take the connected groups. If every group fits in a
   (y, phi) box with a diagonal shorter than R, and the boxes of different groups
   are at least R apart, every group is one jet (the sum of its particles) for
   every generalised-kT algorithm. Proof: an E-scheme sum of particles lies in the
   (y, phi) box of its constituents (its rapidity is a weighted log-mean of
   theirs, its azimuth inside their arc), so at every step two pseudojets of one
   group are closer than R and two of different groups are not. For Delta R_ij < R,
   d_ij = min(kt_i^2p, kt_j^2p) Delta R_ij^2 / R^2 < min(d_iB, d_jB): a group with
   two pseudojets always has a pair distance below its beam distances, so it is
   merged down to one pseudojet before that becomes a jet, and pseudojets of
   different groups are never merged (fastjet merges only pairs with
   Delta R^2 < R^2). The boxes use fastjet's rapidity and azimuth, with a relative
   safety margin of 1e-9 on the distances.

``tests/test_jets.py`` checks that the result equals fastjet's on every event of
signal, heavy-flavour and random samples, for the three algorithms.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["cluster", "fastjet_rapidity", "separated_groups", "ALGORITHMS"]

ALGORITHMS = {"antikt": "antikt_algorithm", "kt": "kt_algorithm", "cambridge": "cambridge_algorithm"}
_MARGIN = 1e-9
_MAX_GROUPED = 8  # events with more particles go to fastjet directly


def fastjet_rapidity(px, py, pz, e):
    """Rapidity as fastjet's PseudoJet computes it (massless-or-heavier effective mass)."""
    kt2 = px * px + py * py
    m2 = (e + pz) * (e - pz) - kt2
    e_plus_pz = e + np.abs(pz)
    with np.errstate(divide="ignore"):
        rap = 0.5 * np.log((kt2 + np.maximum(m2, 0.0)) / (e_plus_pz * e_plus_pz))
    return np.where(pz > 0, -rap, rap)


def _wrap(dphi):
    return dphi - (2.0 * np.pi) * np.round(dphi * (0.5 / np.pi))


def separated_groups(px, py, pz, e, r: float, tags=None):
    """Events of equal multiplicity N given as ``(m, N)`` arrays: returns ``(ok, jets, is_jet)``.

    ``ok`` (m,) marks the events whose particles form separated groups (module
    docstring); ``jets`` (m, N, 4 + k) holds the (px, py, pz, e) sum of each group, followed
    by the sums of the ``k`` columns of ``tags`` (m, N, k) when given, in the slot of its first
    particle and zeros elsewhere; ``is_jet`` (m, N) marks those slots."""
    m, n = px.shape
    r2 = r * r
    y = fastjet_rapidity(px, py, pz, e)
    phi = np.arctan2(py, px)
    dy = y[:, :, None] - y[:, None, :]
    dphi = _wrap(phi[:, :, None] - phi[:, None, :])          # phi_i - phi_j
    linked = dy * dy + dphi * dphi < r2
    # connected groups: transitive closure of the link matrix (N <= 8: three squarings)
    reach = linked.astype(np.uint8)
    for _ in range(int(np.ceil(np.log2(max(n, 2))))):
        reach = (np.matmul(reach, reach) > 0).astype(np.uint8)
    label = np.argmax(reach, axis=2)                          # first member = group anchor
    anchor = label == np.arange(n)[None, :]                   # (m, N): slot a anchors a group
    # group boxes (rapidity range, azimuth range relative to the anchor) and 4-momentum sums,
    # accumulated particle by particle into the anchor's slot
    rows = np.arange(m)
    y_lo, y_hi = np.full((m, n), np.inf), np.full((m, n), -np.inf)
    p_lo, p_hi = np.full((m, n), np.inf), np.full((m, n), -np.inf)
    extra = () if tags is None else np.moveaxis(np.asarray(tags, dtype=np.float64).reshape(m, n, -1), 2, 0)
    p4 = np.stack([px, py, pz, e, *extra], axis=2)            # (m, N, 4 + k)
    jets = np.zeros((m * n, p4.shape[2]))
    for i in range(n):
        a = label[:, i]
        flat = rows * n + a
        rel = dphi[rows, i, a]                                # phi_i - phi_anchor
        y_lo[rows, a] = np.minimum(y_lo[rows, a], y[:, i])
        y_hi[rows, a] = np.maximum(y_hi[rows, a], y[:, i])
        p_lo[rows, a] = np.minimum(p_lo[rows, a], rel)
        p_hi[rows, a] = np.maximum(p_hi[rows, a], rel)
        jets[flat] += p4[:, i]
    jets = jets.reshape(m, n, p4.shape[2])
    with np.errstate(invalid="ignore"):
        diag2 = np.where(anchor, (y_hi - y_lo) ** 2 + (p_hi - p_lo) ** 2, 0.0)
        narrow = np.all(diag2 < r2 * (1.0 - _MARGIN), axis=1)
        # distances between the boxes of two groups (centres and half-widths), where there are two
        apart = np.ones(m, dtype=bool)
        multi = np.nonzero(anchor.sum(axis=1) > 1)[0]
        if len(multi):
            yl, yu, pl, pu, an = y_lo[multi], y_hi[multi], p_lo[multi], p_hi[multi], anchor[multi]
            yc, yh = 0.5 * (yl + yu), 0.5 * (yu - yl)
            pc, ph = phi[multi] + 0.5 * (pl + pu), 0.5 * (pu - pl)
            gap_y = np.maximum(np.abs(yc[:, :, None] - yc[:, None, :]) - (yh[:, :, None] + yh[:, None, :]), 0.0)
            gap_p = np.maximum(np.abs(_wrap(pc[:, :, None] - pc[:, None, :])) - (ph[:, :, None] + ph[:, None, :]), 0.0)
            pair = an[:, :, None] & an[:, None, :] & ~np.eye(n, dtype=bool)[None]
            apart[multi] = np.all(np.where(pair, gap_y * gap_y + gap_p * gap_p >= r2 * (1.0 + _MARGIN), True),
                                  axis=(1, 2))
    finite = np.all(np.isfinite(y) & (px * px + py * py > 0), axis=1)
    ok = narrow & apart & finite
    return ok, jets, anchor


def cluster(px, py, pz, e, counts, jet_cfg: Mapping, tags=None):
    """Inclusive jets (pT >= ``pt_min_gev``) of each event; returns ``(jet_counts, jpx, jpy, jpz, je)``,
    and with ``tags`` a sixth entry: the (n_jets, k) int64 sums of the constituents' tags.

    ``px, py, pz, e``: flat float64 arrays of the clustering inputs grouped by event;
    ``counts``: inputs per event; ``jet_cfg``: ``{algorithm, r, pt_min_gev}``;
    ``tags``: optional (n_inputs,) or (n_inputs, k) non-negative integer counts per input."""
    counts = np.asarray(counts, dtype=np.int64)
    n_events = len(counts)
    if tags is not None:
        tags = np.asarray(tags, dtype=np.float64)   # summed with the momenta (exact below 2^53)
        tags = tags[:, None] if tags.ndim == 1 else tags
    k = 0 if tags is None else tags.shape[1]
    pt_min, r = float(jet_cfg["pt_min_gev"]), float(jet_cfg["r"])
    offsets = np.zeros(n_events + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    ev = np.repeat(np.arange(n_events), counts)
    pt = np.sqrt(px * px + py * py)
    need = np.bincount(ev, weights=pt, minlength=n_events) >= pt_min   # short-cut 1
    done = np.zeros(n_events, dtype=bool)
    pieces = []                                                # (event index, (k, 4) jets)
    for n in range(1, _MAX_GROUPED + 1):                      # short-cut 2
        evs = np.nonzero(need & (counts == n))[0]
        if len(evs) == 0:
            continue
        idx = offsets[evs][:, None] + np.arange(n)[None, :]
        ok, jets, is_jet = separated_groups(px[idx], py[idx], pz[idx], e[idx], r,
                                            None if tags is None else tags[idx])
        jpt2 = jets[:, :, 0] ** 2 + jets[:, :, 1] ** 2
        keep = is_jet & ok[:, None] & (jpt2 >= pt_min * pt_min)
        pieces.append((np.broadcast_to(evs[:, None], keep.shape)[keep], jets[keep]))
        done[evs[ok]] = True
    rest = np.nonzero(need & ~done)[0]
    if len(rest):
        pieces.append(_fastjet(px, py, pz, e, offsets, rest, jet_cfg, tags))
    if not pieces:
        pieces.append((np.zeros(0, dtype=np.int64), np.zeros((0, 4 + k))))
    jev = np.concatenate([p[0] for p in pieces])
    p4 = np.concatenate([p[1] for p in pieces])
    order = np.argsort(jev, kind="stable")
    jev, p4 = jev[order], p4[order]
    out = (np.bincount(jev, minlength=n_events), p4[:, 0], p4[:, 1], p4[:, 2], p4[:, 3])
    # tag sums are integers below 2^53: exact in float64
    return out if tags is None else out + (np.rint(p4[:, 4:]).astype(np.int64),)


def _fastjet(px, py, pz, e, offsets, events, jet_cfg, tags=None):
    """fastjet on the given events; returns (event index per jet, (n_jets, 4 + k) jets and tag sums)."""
    import awkward as ak
    import fastjet

    counts = offsets[events + 1] - offsets[events]
    idx = np.repeat(offsets[events] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    sub_off = np.zeros(len(events) + 1, dtype=np.int64)
    np.cumsum(counts, out=sub_off[1:])
    content = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(a[idx], dtype=np.float64)) for a in (px, py, pz, e)],
        ["px", "py", "pz", "E"], parameters={"__record__": "Momentum4D"})
    arr = ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(sub_off), content))
    jdef = fastjet.JetDefinition(getattr(fastjet, ALGORITHMS[jet_cfg["algorithm"]]), float(jet_cfg["r"]))
    seq = fastjet.ClusterSequence(arr, jdef)
    min_pt = float(jet_cfg["pt_min_gev"])
    jets = seq.inclusive_jets(min_pt=min_pt)
    jc = ak.to_numpy(ak.num(jets))
    flat = ak.flatten(jets)
    p4 = np.stack([ak.to_numpy(flat[f]).astype(np.float64) for f in ("px", "py", "pz", "E")], axis=1)
    if tags is not None:
        # constituents of the same jets, in the same order (indices within the event's inputs)
        const = seq.constituent_index(min_pt=min_pt)
        if not np.array_equal(ak.to_numpy(ak.num(const)), jc):
            raise RuntimeError("fastjet: constituent_index and inclusive_jets disagree on the jets per event")
        per_jet = ak.flatten(const)
        n_const = ak.to_numpy(ak.num(per_jet))
        local = ak.to_numpy(ak.flatten(per_jet)).astype(np.int64)
        ev_of_const = np.repeat(np.repeat(np.arange(len(events)), jc), n_const)
        jet_of_const = np.repeat(np.arange(len(n_const)), n_const)
        t = tags[idx[sub_off[ev_of_const] + local]]
        sums = [np.bincount(jet_of_const, weights=t[:, i], minlength=len(n_const)) for i in range(t.shape[1])]
        p4 = np.column_stack([p4, *sums])
    return np.repeat(events, jc), p4
