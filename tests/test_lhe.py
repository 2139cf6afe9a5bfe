"""LHE showering through Pythia 8: real MadGraph Drell-Yan events give a Z peak and prompt leptons."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
ak = pytest.importorskip("awkward")

from softdisplaced.generation import lhe  # noqa: E402

pytestmark = pytest.mark.pythia


def _leptons(ev, ptmin=10.0):
    p = ev.particles
    lep = p[(p.status == 1) & ((abs(p.pid) == 11) | (abs(p.pid) == 13))]
    return lep[np.hypot(lep.px, lep.py) > ptmin]


def _mll_ossf(lep):
    two = lep[ak.num(lep) >= 2]
    a, b = two[:, 0], two[:, 1]
    ossf = a.pid == -b.pid
    m2 = (a.e + b.e) ** 2 - (a.px + b.px) ** 2 - (a.py + b.py) ** 2 - (a.pz + b.pz) ** 2
    return ak.to_numpy(np.sqrt(np.maximum(m2[ossf], 0)))


@pytest.fixture(scope="module")
def dy_events(reference_dir):
    path = reference_dir / "lhe" / "madgraph-2.2.1-Z-mlm.lhe.gz"
    sample = dict(name="dy", kind="other", source="lhe", files=[str(path)])
    return lhe.generate_chunk(sample, {}, np.random.default_rng(3), 300)


def test_lhe_z_peak(dy_events):
    assert len(dy_events) == 300
    m = _mll_ossf(_leptons(dy_events))
    assert len(m) > 200  # most events have an opposite-sign same-flavour pair
    bulk = m[(m > 60) & (m < 120)]
    assert len(bulk) > 0.8 * len(m)
    assert 80 < bulk.mean() < 100
    assert 88 < np.median(m) < 93


def test_lhe_leptons_are_prompt(dy_events):
    lep = _leptons(dy_events)
    pt = np.hypot(lep.px, lep.py)
    d0 = ak.to_numpy(ak.flatten(abs(lep.x * lep.py - lep.y * lep.px) / pt))
    assert len(d0) > 400
    assert np.mean(d0 < 0.1) > 0.95
    assert dy_events.mediators.fields and ak.all(ak.num(dy_events.mediators) == 0)
    assert np.all(ak.to_numpy(dy_events.weight) > 0)


def test_lhe_uncompressed_file_and_end_of_file(reference_dir, tmp_path):
    """An uncompressed copy works too, and asking for more events than the file holds returns all of them."""
    src = reference_dir / "lhe" / "powheg-box-v2-hvq.lhe"
    dst = tmp_path / "hvq.lhe"
    shutil.copy(src, dst)
    ev = lhe.generate_chunk(dict(name="tt", kind="other", source="lhe", files=[str(dst)]), {},
                            np.random.default_rng(1), 100)
    assert len(ev) == 6
    # this scikit-hep test file's events are gamma*/Z -> e+ e- (+ partons): the LHE electrons survive
    # the shower as final-state electrons of both charges in every event
    p = ev.particles
    fin = p[p.status == 1]
    assert ak.all(ak.any(fin.pid == 11, axis=1)) and ak.all(ak.any(fin.pid == -11, axis=1))
    # event weights are the LHE weights (XWGTUP column), sign and relative size kept
    xwgt = []
    lines = src.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "<event>":
            xwgt.append(float(lines[i + 1].split()[2]))
    w = ak.to_numpy(ev.weight)
    np.testing.assert_allclose(w / w[0], np.array(xwgt) / xwgt[0], rtol=1e-6)


def test_lhe_rejects_non_lhe_file(tmp_path):
    bad = tmp_path / "bad.lhe.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("this is not a Les Houches file\n")
    with pytest.raises(ValueError, match="Les Houches"):
        lhe.generate_chunk(dict(name="x", source="lhe", files=[str(bad)]), {}, np.random.default_rng(0), 5)
    with pytest.raises(FileNotFoundError):
        lhe.generate_chunk(dict(name="x", source="lhe", files=[str(tmp_path / "missing.lhe")]), {},
                           np.random.default_rng(0), 5)
