"""HepMC reader: a HepMC3 file written with pyhepmc comes back as the truth record, displaced vertices
giving the right d0."""

from __future__ import annotations

import numpy as np
import pytest

pyhepmc = pytest.importorskip("pyhepmc")
ak = pytest.importorskip("awkward")

from softdisplaced.generation import hepmc  # noqa: E402

M_C, M_0 = 220.0, 200.0


def _fv(px, py, pz, m):
    return pyhepmc.FourVector(px, py, pz, float(np.sqrt(px * px + py * py + pz * pz + m * m)))


def _make_event(i, decay_pos_mm, lepton_p, length_unit):
    evt = pyhepmc.GenEvent(pyhepmc.Units.GEV, length_unit)
    evt.event_number = i
    scale = 0.1 if length_unit == pyhepmc.Units.CM else 1.0
    p1 = pyhepmc.GenParticle(pyhepmc.FourVector(0, 0, 6500, 6500), 2212, 4)
    p2 = pyhepmc.GenParticle(pyhepmc.FourVector(0, 0, -6500, 6500), 2212, 4)
    chi_p = pyhepmc.GenParticle(_fv(60.0, 20.0, 30.0, M_C), 1000024, 2)
    chi_m = pyhepmc.GenParticle(_fv(-60.0, -20.0, -30.0, M_C), -1000024, 2)
    chi_p.generated_mass = M_C
    chi_m.generated_mass = M_C
    v0 = pyhepmc.GenVertex(pyhepmc.FourVector(0, 0, 0, 0))
    v0.add_particle_in(p1)
    v0.add_particle_in(p2)
    v0.add_particle_out(chi_p)
    v0.add_particle_out(chi_m)
    evt.add_vertex(v0)
    x, y, z = decay_pos_mm
    t = 0.0
    vd = pyhepmc.GenVertex(pyhepmc.FourVector(x * scale, y * scale, z * scale, t))
    vd.add_particle_in(chi_p)
    lpx, lpy, lpz = lepton_p
    e_plus = pyhepmc.GenParticle(_fv(lpx, lpy, lpz, 0.000511), -11, 1)
    n0 = pyhepmc.GenParticle(_fv(55.0, 15.0, 25.0, M_0), 1000022, 1)
    nu = pyhepmc.GenParticle(_fv(1.0, 1.0, 1.0, 0.0), 12, 1)
    for q in (n0, e_plus, nu):
        vd.add_particle_out(q)
    evt.add_vertex(vd)
    # the chi- decays promptly-ish at the origin + 1 um to a muon
    vm = pyhepmc.GenVertex(pyhepmc.FourVector(0.001 * scale, 0, 0, 0))
    vm.add_particle_in(chi_m)
    mu = pyhepmc.GenParticle(_fv(-10.0, 0.0, 2.0, 0.1057), 13, 1)
    n0b = pyhepmc.GenParticle(_fv(-50.0, -20.0, -32.0, M_0), 1000022, 1)
    vm.add_particle_out(n0b)
    vm.add_particle_out(mu)
    evt.add_vertex(vm)
    evt.weights = [0.5 + i]
    return evt


CASES = [((3.0, 4.0, 10.0), (8.0, 0.0, 5.0)),     # d0 = |x py - y px| / pT = |0 - 4*8| / 8 = 4 mm
         ((10.0, 0.0, -2.0), (0.0, 12.0, 1.0)),   # d0 = |10*12| / 12 = 10 mm
         ((0.5, 0.5, 0.0), (5.0, 5.0, 0.0))]      # radial momentum: d0 = 0


@pytest.mark.parametrize("unit", ["MM", "CM"])
def test_hepmc_roundtrip(tmp_path, unit):
    length_unit = getattr(pyhepmc.Units, unit)
    path = tmp_path / "events.hepmc3"
    with pyhepmc.open(path, "w") as f:
        for i, (pos, p) in enumerate(CASES):
            f.write(_make_event(i, pos, p, length_unit))
    ev = hepmc.read_hepmc(path)
    assert len(ev) == len(CASES)
    np.testing.assert_allclose(ak.to_numpy(ev.weight), [0.5, 1.5, 2.5])
    p = ev.particles
    assert ak.all(ak.num(p) == 9)
    for i, (pos, mom) in enumerate(CASES):
        pi = p[i]
        pid = ak.to_numpy(pi.pid)
        e = np.flatnonzero(pid == -11)[0]
        assert pi.status[e] == 1 and pi.charge[e] == 1
        np.testing.assert_allclose([pi.x[e], pi.y[e], pi.z[e]], pos, atol=1e-9)
        pt = np.hypot(pi.px[e], pi.py[e])
        d0 = abs(pi.x[e] * pi.py[e] - pi.y[e] * pi.px[e]) / pt
        expected = abs(pos[0] * mom[1] - pos[1] * mom[0]) / np.hypot(mom[0], mom[1])
        assert d0 == pytest.approx(expected, abs=1e-9)
        # topology: the e+ comes from the chi+ (status 22), whose daughters include it
        chi = pi.m1[e]
        assert pid[chi] == 1000024 and pi.status[chi] == 22
        assert pi.d1[chi] <= e <= pi.d2[chi]
        assert pi.m1[chi] >= 0 and pid[pi.m1[chi]] == 2212
        # muon at 1 um: prompt
        mu = np.flatnonzero(pid == 13)[0]
        assert pi.x[mu] == pytest.approx(0.001) and pi.charge[mu] == -1
        # mediators: decay vertex, proper decay length = flight * m / p
        med = ev.mediators[i]
        assert len(med) == 2
        k = int(np.flatnonzero(ak.to_numpy(med.pid) == 1000024)[0])
        np.testing.assert_allclose([med.decay_x[k], med.decay_y[k], med.decay_z[k]], pos, atol=1e-9)
        pabs = np.sqrt(60.0 ** 2 + 20.0 ** 2 + 30.0 ** 2)
        assert med.proper_ct_mm[k] == pytest.approx(np.linalg.norm(pos) * M_C / pabs, rel=1e-9)


def test_hepmc_missing_and_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        hepmc.read_hepmc(tmp_path / "nope.hepmc")
    bad = tmp_path / "bad.hepmc"
    bad.write_text("garbage\n")
    with pytest.raises(ValueError):
        hepmc.read_hepmc(bad)
