"""Vectorised kinematics helpers of the fast generator and the detector."""

import numpy as np
import pytest

from softdisplaced.generation.detector import order_in_events
from softdisplaced.generation.kinematics import (_dalitz_energies, _me_max, _me_weight, boost, cos_sin, cosh_sinh,
                                                 four_vector, isotropic_directions, orthonormal_basis, pt_eta_phi)
from softdisplaced.generation.record import ParticleTable, build_events

RNG = np.random.default_rng(11)


def test_cos_sin_and_cosh_sinh_match_numpy():
    phi = np.concatenate([RNG.uniform(-20, 20, 10000), [0.0, np.pi, -np.pi, 1e-9, -1e-9]])
    c, s = cos_sin(phi)
    np.testing.assert_allclose(c, np.cos(phi), atol=1e-15)
    np.testing.assert_allclose(s, np.sin(phi), atol=2e-8)
    y = RNG.uniform(-8, 8, 10000)
    ch, sh = cosh_sinh(y)
    np.testing.assert_allclose(ch, np.cosh(y), rtol=1e-14)
    np.testing.assert_allclose(sh, np.sinh(y), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pt_eta_phi_matches_hypot_arcsinh_arctan2(dtype):
    px, py, pz = (RNG.normal(0, 30, 10000).astype(dtype) for _ in range(3))
    px[:3], py[:3], pz[:3] = 0, 0, np.array([5, -5, 0], dtype)
    pt, eta, phi = pt_eta_phi(px, py, pz)
    assert pt.dtype == eta.dtype == phi.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(pt, np.hypot(px, py), rtol=tol)
    np.testing.assert_allclose(eta[3:], np.arcsinh(pz[3:] / pt[3:]), rtol=tol, atol=tol)
    np.testing.assert_array_equal(eta[:3], np.array([999.9, -999.9, 999.9], dtype))  # Delphes convention
    np.testing.assert_array_equal(phi, np.arctan2(py, px))


def test_orthonormal_basis_is_orthonormal_for_every_direction():
    n = np.concatenate([isotropic_directions(RNG, 10000), [[0, 0, 1.0], [0, 0, -1.0], [1.0, 0, 0]]])
    e1, e2 = orthonormal_basis(n)
    for a, b in ((e1, n), (e2, n), (e1, e2)):
        np.testing.assert_allclose(np.sum(a * b, axis=1), 0.0, atol=1e-15)
    for a in (e1, e2):
        np.testing.assert_allclose(np.sum(a * a, axis=1), 1.0, rtol=1e-15)


def test_boost_preserves_mass_and_takes_rest_frame_to_parent():
    parent = four_vector(RNG.normal(0, 300, (1000, 3)), 324.0)
    at_rest = np.tile([324.0, 0.0, 0.0, 0.0], (1000, 1))
    np.testing.assert_allclose(boost(at_rest, parent), parent, rtol=1e-12, atol=1e-9)
    p = four_vector(RNG.normal(0, 10, (1000, 3)), 0.1056584)
    b = boost(p, parent)
    np.testing.assert_allclose(b[:, 0] ** 2 - np.sum(b[:, 1:] ** 2, axis=1), 0.1056584 ** 2, rtol=1e-6)


def test_matrix_element_bound_holds_over_the_dalitz_region():
    for M, m0, ml, o_l, o_r in ((324.0, 304.0, 0.000511, 1.0, 1.0), (700.0, 680.0, 0.105, 1.0, 1.0),
                                (5.279, 1.865, 0.000511, 0.0, 1.0)):
        bound = _me_max(M, m0, ml, o_l, o_r, 80.379, 2.085, False)
        s1 = RNG.uniform(ml ** 2, (M - m0) ** 2, 400000)
        s2 = RNG.uniform((m0 + ml) ** 2, M ** 2, 400000)
        e_l, e_nu, _, _, cos = _dalitz_energies(M, m0, ml, s1, s2)
        w = _me_weight(M, m0, ml, e_l, e_nu, s1, o_l, o_r, 80.379, 2.085)[np.abs(cos) <= 1]
        assert w.max() <= bound < 1.05 * w.max()


def test_order_in_events_sorts_by_event_then_decreasing_pt():
    ev = np.sort(RNG.integers(0, 300, 1000))
    pt = RNG.exponential(10, 1000)
    np.testing.assert_array_equal(order_in_events(ev, pt), np.lexsort((-pt, ev)))
    np.testing.assert_array_equal(order_in_events(np.arange(5), pt[:5]), np.arange(5))


def test_particle_table_templates_and_columns():
    tab = ParticleTable(4, 3)
    p4 = np.arange(16, dtype=float).reshape(4, 4)
    tab.set(0, pid=11, status=1, p4=p4, mass=0.0005, vertex=(1.0, 2.0, 3.0, 4.0), charge=-1.0, m1=2)
    tab.set(1, pid=np.array([12, 14, 12, 14]), status=1, p4=p4 * 2)
    tab.set(2, pid=24, status=2, d1=0, d2=1)
    parts = build_events(tab, 1.0)["particles"]
    np.testing.assert_array_equal(parts.pid.to_list(), [[11, 12, 24], [11, 14, 24], [11, 12, 24], [11, 14, 24]])
    np.testing.assert_array_equal(parts.px.to_numpy()[:, :2], np.stack([p4[:, 1], 2 * p4[:, 1]], axis=1))
    np.testing.assert_array_equal(parts.m1.to_numpy(), np.tile([2, -1, -1], (4, 1)))
    np.testing.assert_array_equal(parts.d2.to_numpy(), np.tile([-1, -1, 1], (4, 1)))
    np.testing.assert_array_equal(parts.x.to_numpy(), np.tile([1.0, 0.0, 0.0], (4, 1)))
    with pytest.raises(ValueError, match="shape"):
        ParticleTable(4, 1).set(0, pid=np.arange(3), status=1)
