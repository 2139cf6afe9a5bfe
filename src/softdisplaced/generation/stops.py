"""Pythia 8 backend for the long-lived top-squark model of CMS-PAS-EXO-16-022 and CMS-EXO-18-003.

CMS's generator configuration (``../shared/reference/cms_exo_18_003_signal/``, copied to
``config/stops/``): stop pairs from ``SUSY:gg2squarkantisquark`` and
``SUSY:qqbar2squarkantisquark`` (``SUSY:idA = SUSY:idB = 1000006``), R-hadron formation
and decay (``RHadrons:allow``, ``RHadrons:allowDecay``, ``RHadrons:setMasses``), the
stop lifetime ``1000006:tau0 = c*tau_0`` in mm, and the SLHA template with the decay
table stop -> b e+, b mu+, b tau+ (1/3 each; "B-L" / RPV model). ``XXX`` in the
template is the stop mass and the ``DECAY 1000006`` width is filled with
``hbar c / (c tau_0)``.

Proper time: Pythia samples the stop's proper lifetime once (``tau`` of the stop
copies); the stop hadronises into an R-hadron that inherits that ``tau`` and decays
at ``vProd + tau * p / m`` of the R-hadron, handing its momentum back to a stop
(status -106) that decays at once (``tau = 0``) into b + lepton. The mediators of
the truth record (status 22) are therefore the stop R-hadrons (see :func:`stop_mediators`): their ``tau`` is the
stop's proper decay length (exponential with mean ``c*tau_0``, checked in
``tests/test_stops.py``), so :mod:`softdisplaced.inference.reweighting` applies unchanged and
one sample per mass serves every c*tau. ``delphes_writer`` recovers the same ``c*t``
from the R-hadron's momentum and its daughter stop's production vertex.

The fast generator stays chargino-only: stops are generated only here
(``source: pythia8_stop``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Mapping

import awkward as ak
import numpy as np

from . import pythia8 as p8
from .defaults import with_defaults
from .slha import width_from_ctau_mm

__all__ = ["STOP_ID", "STOP_RHADRON_IDS", "stops_settings", "stop_mediators", "slha_text", "pythia_settings", "make_pythia",
           "generate_chunk", "DEFAULT_TEMPLATE"]

log = logging.getLogger(__name__)

STOP_ID = 1000006
#: Pythia's stop R-hadrons (``RHadrons:allow = on``): mesons ~t qbar and baryons ~t qq.
STOP_RHADRON_IDS = (1000612, 1000622, 1000632, 1000642, 1000652, 1006113, 1006211, 1006213, 1006223,
                    1006311, 1006313, 1006321, 1006323, 1006333)
#: CMS's SLHA template (copied from the HEPData resources of CMS-EXO-18-003).
DEFAULT_TEMPLATE = "config/stops/DisplacedSUSY_stopToLB_M_XXX_YYYmm.slha"
_WIDTH_TOKEN = "1.97326971684839e-AAA"


def stops_settings(settings: Mapping | None) -> dict:
    """``generation.stops`` with the defaults of config/schema.yaml filled in."""
    return with_defaults(((settings or {}).get("generation") or {}).get("stops") or {}, "generation", "stops")


def stop_mediators(pid, status, first_daughter_id) -> np.ndarray:
    """The stop R-hadrons: they carry the stop's sampled proper lifetime. About 1 event in 1000 keeps an
    undecayed R-hadron (Pythia leaves it final, status 104, when its decay fails); it stays a mediator
    (no daughters: no leptons, c*t from ``tau``) so that the event still counts as generated."""
    return np.isin(np.abs(pid), STOP_RHADRON_IDS)


def _resolve(path: str) -> Path:
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    root = Path(__file__).resolve().parents[3] / p   # repository root (editable install / checkout)
    return root if root.exists() else p


def slha_text(mass_gev: float, ctau_mm: float, template: str = DEFAULT_TEMPLATE) -> str:
    """CMS's SLHA template with the stop mass and the total width for ``ctau_mm`` filled in."""
    path = _resolve(template)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"generation.stops.slha_template: cannot read {path}: {exc}") from None
    if "XXX" not in text or _WIDTH_TOKEN not in text:
        raise ValueError(f"{path}: not the CMS stop SLHA template (needs the tokens XXX and {_WIDTH_TOKEN})")
    if not mass_gev > 0:
        raise ValueError(f"stop mass must be positive, got {mass_gev}")
    return text.replace("XXX.00", f"{float(mass_gev):.2f}").replace("XXX", f"{float(mass_gev):g}") \
        .replace(_WIDTH_TOKEN, f"{width_from_ctau_mm(ctau_mm):.10e}")


def pythia_settings(sample: Mapping, settings: Mapping | None, seed: int, slha_path: str) -> list[str]:
    """Pythia commands of a stop sample: the project's common commands (tune, shower switches,
    seed), ``Beams:eCM`` of ``generation.pythia8`` and CMS's process and R-hadron settings."""
    cfg = p8.pythia8_settings(settings)
    stops = stops_settings(settings)
    ctau_mm = 10.0 * float(sample["ctau_cm"])
    cmds = p8.common_commands(cfg, seed) + [
        f"Beams:eCM = {float(cfg['ecm_gev'])}",
        f"SLHA:file = {slha_path}", "SLHA:verbose = 0",
        "SUSY:all = off", "SUSY:gg2squarkantisquark = on", "SUSY:qqbar2squarkantisquark = on",
        f"SUSY:idA = {STOP_ID}", f"SUSY:idB = {STOP_ID}",
        "RHadrons:allow = on", "RHadrons:allowDecay = on", "RHadrons:setMasses = on",
        f"{STOP_ID}:tau0 = {ctau_mm:.10g}",
        "ParticleDecays:limitTau0 = off",
    ]
    return cmds + list(stops["extra"]) + list(cfg.get("extra", []))


def make_pythia(sample: Mapping, settings: Mapping | None, seed: int, workdir: str | os.PathLike):
    """An initialised ``pythia8mc.Pythia`` for a stop sample (mass ``m_stop``, ``ctau_cm``)."""
    import pythia8mc

    slha_path = str(Path(workdir) / f"{sample.get('name', 'stop')}.slha")
    Path(slha_path).write_text(slha_text(sample["m_stop"], 10.0 * float(sample["ctau_cm"]),
                                         stops_settings(settings)["slha_template"]))
    cmds = pythia_settings(sample, settings, seed, slha_path)
    pythia = pythia8mc.Pythia("", False)
    for c in cmds:
        if not pythia.readString(c):
            raise ValueError(f"sample {sample.get('name')}: Pythia rejected the command {c!r}")
    if not pythia.init():
        raise RuntimeError(f"sample {sample.get('name')}: Pythia initialisation failed (commands: {cmds})")
    tau0 = pythia.particleData.tau0(STOP_ID)
    if not np.isclose(tau0, 10.0 * float(sample["ctau_cm"]), rtol=1e-6):
        raise RuntimeError(f"Pythia's stop c*tau = {tau0} mm differs from the requested {10 * sample['ctau_cm']} mm")
    return pythia, {"commands": cmds, "slha": slha_path}


def generate_chunk(sample: Mapping, settings: Mapping | None, rng: np.random.Generator,
                   n_events: int) -> ak.Array:
    """``n_events`` stop-pair events (truth event record, mediators = the two stop R-hadrons)."""
    if sample.get("kind") != "signal" or sample.get("m_stop") is None:
        raise ValueError(f"sample {sample.get('name')}: the stop generator needs a signal sample with m_stop")
    n_events = int(n_events)
    if n_events <= 0:
        raise ValueError(f"n_events must be positive, got {n_events}")
    cfg = p8.pythia8_settings(settings)
    seed = p8.pythia_seed(rng)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sd_stops_") as tmp:
        pythia, _ = make_pythia(sample, settings, seed, tmp)
    t1 = time.perf_counter()
    events = p8.generate_events(pythia, n_events, batch_size=int(cfg["batch_size"]), mediators=stop_mediators)
    t2 = time.perf_counter()
    nmed = ak.to_numpy(ak.num(events.mediators, axis=1))
    if np.any(nmed != 2):
        raise RuntimeError(f"sample {sample.get('name')}: {int(np.sum(nmed != 2))} events without exactly two "
                           "stop R-hadrons (R-hadron settings lost?)")
    p = events.particles
    undecayed = int(ak.sum((p.status == 22) & (p.d1 < 0)))
    if undecayed:
        log.warning("stops %s: %d of %d R-hadrons left undecayed by Pythia (no leptons from them)",
                    sample.get("name"), undecayed, 2 * len(events))
    log.info("stops %s: %d events, seed %d, init %.1f s, %.2f ms/event, LO sigmaGen %.4g pb",
             sample.get("name"), len(events), seed, t1 - t0, 1e3 * (t2 - t1) / max(len(events), 1),
             float(events.cross_section_pb[0]))
    return events
