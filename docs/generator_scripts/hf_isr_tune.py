"""ISR recoil of Pythia 8 b bbar production, for the fast HF generator's ISR (docs/generator.md, "HF ISR").

    PYTHONPATH=src python docs/generator_scripts/hf_isr_tune.py N_EVENTS PTHAT_MIN [R0,POWER,R_MAX ...]

Pythia 8 (the project's tune, HardQCD:hardbbbar, pTHat > PTHAT_MIN; ISR on, FSR, MPI and hadronisation off, so
that the b bbar pair's transverse momentum is exactly the ISR recoil): quantiles of the pair pT in pTHat bins.
Also r = pair pT / pTHat. Each R0,POWER,R_MAX: the fast generator's model (generation.fast.heavy_flavour.isr),
pair pT = pTHat r with dN/dr^2 ∝ (r^2 + r0^2)^-power up to r_max, on Pythia's own pTHat values (the generator's
sampler), and the Kolmogorov-Smirnov distance to Pythia 8's pair pT.
"""
import sys

import numpy as np
import pythia8mc
from scipy.stats import ks_2samp

from softdisplaced.generation.signal import sample_isr_pt

n_events, pthat_min = int(sys.argv[1]), float(sys.argv[2])
p = pythia8mc.Pythia("", False)
for c in ("Print:quiet = on", "Beams:eCM = 13000.", "Tune:pp = 14", "HardQCD:hardbbbar = on",
          f"PhaseSpace:pTHatMin = {pthat_min}", "PartonLevel:MPI = off", "PartonLevel:FSR = off",
          "HadronLevel:all = off", "Random:setSeed = on", "Random:seed = 20261128"):
    p.readString(c)
p.init()
pair, pthat = [], []
for _ in range(n_events):
    if not p.next():
        continue
    ev = p.event
    px = py = 0.0
    for code in (5, -5):
        last = max(i for i in range(ev.size()) if ev[i].id() == code)
        px += ev[last].px()
        py += ev[last].py()
    pair.append(np.hypot(px, py))
    pthat.append(p.infoPython().pTHat())
pair, pthat = np.array(pair), np.array(pthat)
Q = [0.1, 0.25, 0.5, 0.75, 0.9]
fmt = lambda x: " ".join(f"{v:6.1f}" for v in np.quantile(x, Q)) + f"  mean {x.mean():5.1f}"
fmt2 = lambda x: " ".join(f"{v:6.3f}" for v in np.quantile(x, Q)) + f"  mean {x.mean():5.3f}"
print(f"Pythia 8, {len(pair)} events, pTHat > {pthat_min}: pair pT quantiles 10/25/50/75/90 %")
print(f"  all                 {fmt(pair)}")
for lo, hi in ((pthat_min, 25), (25, 40), (40, 1e9)):
    m = (pthat >= lo) & (pthat < hi)
    if m.sum() > 20:
        print(f"  pTHat [{lo:.0f}, {hi:.0f}) ({m.sum():5d}) {fmt(pair[m])}")
r = pair / pthat
print("  r = pair pT / pTHat:")
print(f"  all                 {fmt2(r)}")
for lo, hi in ((pthat_min, 25), (25, 40), (40, 70), (70, 1e9)):
    m = (pthat >= lo) & (pthat < hi)
    if m.sum() > 20:
        print(f"  pTHat [{lo:.0f}, {hi:.0f}) ({m.sum():5d}) {fmt2(r[m])}")
if len(sys.argv) == 3:   # grid fit of (r0, power) with r_max = 1.5 to Pythia's r
    from scipy.stats import kstest
    best = min(((kstest(r, lambda x, a=a, b=b: np.clip(1 - (a * a / (np.minimum(x, 1.5) ** 2 + a * a)) ** (b - 1), 0, 1)
                        / (1 - (a * a / (1.5 ** 2 + a * a)) ** (b - 1))).statistic, a, b)
                 for a in np.arange(0.2, 1.61, 0.05) for b in np.arange(1.3, 8.01, 0.1)))
    print(f"  best fit r0 {best[1]:.2f} power {best[2]:.1f} (r_max 1.5): KS {best[0]:.3f}")
rng = np.random.default_rng(1)
for arg in sys.argv[3:]:
    r0, power, r_max = map(float, arg.split(","))
    x = pthat * sample_isr_pt(rng, len(pthat), r0, power, r_max)   # the fast model: pair pT = pTHat r
    print(f"  fast r0 {r0} power {power} r_max {r_max}: pair pT {fmt(x)}  KS {ks_2samp(x, pair).statistic:.3f}")
