"""Hand-made Delphes-format ROOT files of known content (for tests).

Builds the layout of ``docs/contracts.md`` ("Delphes-format file") with uproot:
``X_size`` counters and ``X/X.Field`` branches, readable by the stock
``coffea.nanoevents.DelphesSchema``.  Every event is a plain dict, so a test
states exactly what is in the file::

    ev = make_event(electrons=[lepton(30, 0.1, 0.2, charge=-1, d0=0.3)],
                    muons=[lepton(25, -0.4, 2.5, charge=+1, d0=0.6)],
                    jets=[jet(40, 1.0, -1.0)], met=(20.0, 1.0), ht=95.0)
    write_delphes(tmp_path / "a.root", [ev])

Other engineers may reuse it (``from delphes_factory import ...`` inside ``tests/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import awkward as ak
import numpy as np
import uproot

LEPTON_FIELDS = ("PT", "Eta", "Phi", "T", "Charge", "D0", "DZ", "IsolationVar", "Particle")
JET_FIELDS = ("PT", "Eta", "Phi", "Mass", "NNeutrals")
PARTICLE_FIELDS = ("PID", "Status", "M1", "M2", "D1", "D2", "PT", "Eta", "Phi", "Mass", "Charge",
                   "X", "Y", "Z", "T", "Px", "Py", "Pz", "E", "CtauProper")
INT_FIELDS = {"Charge", "Particle", "PID", "Status", "M1", "M2", "D1", "D2", "NNeutrals"}


def lepton(pt, eta, phi, charge=-1, d0=0.5, iso=0.0, dz=0.0, t=0.0, particle=-1) -> dict:
    """One reconstructed electron or muon (pT GeV, d0 mm signed as in Delphes)."""
    return dict(PT=pt, Eta=eta, Phi=phi, T=t, Charge=charge, D0=d0, DZ=dz, IsolationVar=iso, Particle=particle)


def jet(pt, eta, phi, mass=5.0, nneutrals=0) -> dict:
    """One jet; ``nneutrals``: its neutral constituents (Delphes Jet.NNeutrals; > 0 = the study's card drops it)."""
    return dict(PT=pt, Eta=eta, Phi=phi, Mass=mass, NNeutrals=nneutrals)


def particle(pid, status=1, pt=10.0, eta=0.0, phi=0.0, mass=0.0, ctau=0.0, charge=0,
             x=0.0, y=0.0, z=0.0, t=0.0, m1=-1, m2=-1, d1=-1, d2=-1) -> dict:
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    e = float(np.sqrt(px * px + py * py + pz * pz + mass * mass))
    return dict(PID=pid, Status=status, M1=m1, M2=m2, D1=d1, D2=d2, PT=pt, Eta=eta, Phi=phi, Mass=mass,
                Charge=charge, X=x, Y=y, Z=z, T=t, Px=px, Py=py, Pz=pz, E=e, CtauProper=ctau)


def make_event(electrons=(), muons=(), jets=(), met=(0.0, 0.0), ht=None, weight=1.0, number=0,
               particles=None, mediators_ctau: Sequence[float] | None = None, ht_unique=None) -> dict:
    """One event.  ``ht`` defaults to the scalar sum of all object pT (as Delphes' ScalarHT),
    ``ht_unique`` (ScalarHT.HTUnique, the study card's HT of this project's files) to ``ht``.

    ``mediators_ctau=[ct1, ct2]`` adds two chargino (|PID| = 1000024, Status 22) particles
    with those proper decay lengths (mm) to the Particle collection.
    """
    electrons, muons, jets = list(electrons), list(muons), list(jets)
    if ht is None:
        ht = sum(o["PT"] for o in electrons + muons + jets)
    parts = list(particles or [])
    if mediators_ctau is not None:
        parts += [particle(1000024 * (1 if i == 0 else -1), status=22, pt=100.0, mass=220.0, ctau=c, charge=1)
                  for i, c in enumerate(mediators_ctau)]
    return dict(electrons=electrons, muons=muons, jets=jets, met=met, ht=ht,
                ht_unique=ht if ht_unique is None else ht_unique, weight=weight,
                number=number, particles=parts)


def _collection(rows: Iterable[list[dict]], fields: Sequence[str]) -> ak.Array:
    rows = list(rows)
    counts = np.array([len(r) for r in rows], dtype=np.int64)
    cols = {}
    for f in fields:
        dtype = np.int32 if f in INT_FIELDS else np.float32
        flat = np.array([o[f] for r in rows for o in r], dtype=dtype)
        cols[f] = ak.unflatten(flat, counts)
    return ak.zip(cols)


def write_delphes(path, events: Sequence[dict], *, treename: str = "Delphes", drop: Iterable[str] = (),
                  truth: bool = True, extra_events: int = 0, baskets: int = 1) -> Path:
    """Write ``events`` to ``path`` in Delphes format.

    ``drop``: branch names (``"Electron/Electron.D0"``) or whole collections (``"Jet"``) to omit;
    ``truth=False`` omits the Particle collection; ``treename`` lets a test write a file without
    a ``Delphes`` tree; ``baskets``: number of baskets per branch (the events written in that many
    equal parts), e.g. for a file that fails only part of the way through.
    """
    path = Path(path)
    drop = set(drop)
    n = len(events)
    colls = {
        "Electron": _collection((e["electrons"] for e in events), LEPTON_FIELDS),
        "Muon": _collection((e["muons"] for e in events), LEPTON_FIELDS),
        "Jet": _collection((e["jets"] for e in events), JET_FIELDS),
        "MissingET": _collection(([dict(MET=e["met"][0], Eta=0.0, Phi=e["met"][1])] for e in events),
                                 ("MET", "Eta", "Phi")),
        "ScalarHT": _collection(([dict(HT=e["ht"], HTUnique=e["ht_unique"])] for e in events), ("HT", "HTUnique")),
        "Event": ak.zip({
            "Number": ak.unflatten(np.array([e["number"] for e in events], dtype=np.int64), np.ones(n, np.int64)),
            "Weight": ak.unflatten(np.array([e["weight"] for e in events], dtype=np.float32), np.ones(n, np.int64)),
            "CrossSection": ak.unflatten(np.zeros(n, np.float32), np.ones(n, np.int64)),
        }),
    }
    if truth:
        colls["Particle"] = _collection((e["particles"] for e in events), PARTICLE_FIELDS)
    for name in list(colls):
        if name in drop:
            del colls[name]
            continue
        keep = [f for f in colls[name].fields if f"{name}/{name}.{f}" not in drop]
        colls[name] = colls[name][keep]
    with uproot.recreate(path) as fh:
        tree = fh.mktree(treename, {k: v.type.content for k, v in colls.items()},
                         counter_name=lambda c: c + "_size",
                         field_name=lambda outer, inner: f"{outer}/{outer}.{inner}")
        edges = np.linspace(0, n, max(1, int(baskets)) + 1).astype(int)
        for lo, hi in zip(edges[:-1], edges[1:]):
            if hi > lo:
                tree.extend({k: v[lo:hi] for k, v in colls.items()})
    return path


def simple_emu_event(pt_e=30.0, pt_mu=25.0, d0_e=0.5, d0_mu=0.5, eta_e=0.3, eta_mu=-0.5, phi_e=0.1,
                     phi_mu=2.5, q_e=-1, q_mu=+1, iso_e=0.0, iso_mu=0.0, number=0, weight=1.0,
                     jets=(), met=(30.0, -1.0), mediators_ctau=None) -> dict:
    """An event with one electron and one muon passing the study's selection by default."""
    return make_event(electrons=[lepton(pt_e, eta_e, phi_e, q_e, d0_e, iso_e)],
                      muons=[lepton(pt_mu, eta_mu, phi_mu, q_mu, d0_mu, iso_mu)],
                      jets=list(jets), met=met, weight=weight, number=number, mediators_ctau=mediators_ctau)
