"""ISR tune of the fast generator against Pythia 8 (docs/generator.md, "ISR tune against Pythia 8").

    PYTHONPATH=src python docs/generator_scripts/isr_tune.py PYTHIA8_BP1.root PT0,POWER [PT0,POWER ...]

Pythia 8: the chi+ chi- pair pT (last chi+ and chi- copies of the Particle record) and MissingET.MET of the
first 12 000 events of a bp1 Delphes file written by the project's pythia8 backend. Fast generator: 5e4 bp1
events (seed 1, chunk 0) per (pT0, power), MET with the perfect and the card's energy flow; KS = scipy's
two-sample Kolmogorov-Smirnov distance.
"""
import sys

import awkward as ak
import numpy as np
import uproot
from scipy.stats import ks_2samp

from softdisplaced.benchmarks.generation import SAMPLES
from softdisplaced.generation import detector, generate_chunk
from softdisplaced.samples import rng_for


def q(x):
    return "mean %.1f median %.1f q25 %.1f q75 %.1f q90 %.1f" % (x.mean(), np.median(x), *np.quantile(x, [.25, .75, .9]))


a = uproot.open(sys.argv[1])["Delphes"].arrays(["Particle/Particle.PID", "Particle/Particle.PT", "Particle/Particle.Phi",
                                                "MissingET/MissingET.MET"], entry_stop=12000)
pid, pt, phi = a["Particle/Particle.PID"], a["Particle/Particle.PT"], a["Particle/Particle.Phi"]
idx = ak.local_index(pid)
px, py = np.zeros(len(pid)), np.zeros(len(pid))
for code in (1000024, -1000024):
    last = ak.singletons(ak.max(ak.where(pid == code, idx, -1), axis=1))
    px += ak.to_numpy(pt[last][:, 0] * np.cos(phi[last][:, 0]))
    py += ak.to_numpy(pt[last][:, 0] * np.sin(phi[last][:, 0]))
py8 = {"pair_pt": np.hypot(px, py), "met": ak.to_numpy(ak.flatten(a["MissingET/MissingET.MET"]))}
print("Pythia 8", len(px), "pair pT", q(py8["pair_pt"]), "| MET", q(py8["met"]))
for pt0, power in (tuple(map(float, arg.split(","))) for arg in sys.argv[2:]):
    settings = {"seed": 1, "generation": {"fast": {"isr": {"pt0_gev": pt0, "power": power}}}, "detector": {}}
    truth = generate_chunk(SAMPLES["signal_bp1"], settings, rng_for(1, "bp1", 0), 50_000)
    m = truth["mediators"]
    pair = np.hypot(ak.to_numpy(ak.sum(m.px, axis=1)), ak.to_numpy(ak.sum(m.py, axis=1)))
    print(f"pT0 {pt0} power {power}: pair pT {q(pair)} KS {ks_2samp(pair, py8['pair_pt']).statistic:.3f}")
    for on in (False, True):
        reco = detector.simulate(truth, {"energy_flow": {"enabled": on}}, rng_for(1, "bp1", 0, "detector"))
        met = ak.to_numpy(ak.flatten(reco["MissingET"].MET)).astype(float)
        print(f"    MET (energy flow {on}): {q(met)} KS {ks_2samp(met, py8['met']).statistic:.3f}")
