"""Event generation: the fast built-in generator and the dispatch to other backends.

Every backend implements ``generate_chunk(sample, settings, rng, n_events) -> ak.Array``
returning the truth event record of docs/contracts.md; ``softdisplaced generate``
passes it through :func:`softdisplaced.generation.detector.simulate` and
:func:`softdisplaced.generation.delphes_writer.write`.

* ``source: fast``   -> :func:`generate_chunk` of this package (signal / heavy flavour);
* ``source: pythia8`` -> ``softdisplaced.generation.pythia8.generate_chunk``;
* ``source: pythia8_stop`` -> ``softdisplaced.generation.stops.generate_chunk`` (long-lived top
  squarks, CMS's configuration; the fast generator makes charginos only);
* ``source: lhe`` -> ``softdisplaced.generation.lhe.generate_chunk``, ``hepmc`` ->
  ``softdisplaced.generation.hepmc.generate_chunk``; these file readers also take
  ``chunk=`` (the index of the input file) and ``n_events=None`` (every event of the file).
"""

from __future__ import annotations

import importlib
from typing import Mapping

import awkward as ak
import numpy as np

from ..config import deep_merge
from .defaults import with_defaults
from .heavyflavour import generate_heavy_flavour
from .signal import generate_signal

__all__ = ["generate_chunk", "fast_settings", "backend_for", "signal_decay_mode", "with_sample_settings", "BACKENDS"]

BACKENDS = {"fast": "softdisplaced.generation", "pythia8": "softdisplaced.generation.pythia8",
            "pythia8_stop": "softdisplaced.generation.stops",
            "lhe": "softdisplaced.generation.lhe", "hepmc": "softdisplaced.generation.hepmc"}
FILE_SOURCES = ("lhe", "hepmc")


def fast_settings(generation_cfg: Mapping | None) -> dict:
    """``generation.fast`` with the schema defaults filled in."""
    return with_defaults((generation_cfg or {}).get("fast", {}), "generation", "fast")


def signal_decay_mode(sample: Mapping, settings: Mapping) -> str:
    """The chargino decay mode a generator backend uses for ``sample``: ``democratic`` or ``emu``
    (forced e-mu) for generated signal, "" where the events decide (background, LHE / HepMC input); the
    sample's own generator settings count (:func:`with_sample_settings`, e.g. the Pythia 8 validation copies).
    It is stored in the event file and the skims, and sets the yields' flavour factor
    (:func:`softdisplaced.inference.yields.flavour_factor`)."""
    if sample.get("kind") != "signal":
        return ""
    gen = with_sample_settings(settings, sample).get("generation") or {}
    source = sample.get("source", "fast")
    if source == "fast":
        return fast_settings(gen)["mediator_decay"]["decay_mode"]
    if source == "pythia8":
        return with_defaults(gen.get("pythia8", {}), "generation", "pythia8")["signal"]["decay_mode"]
    return ""


def generate_chunk(sample: Mapping, settings: Mapping, rng: np.random.Generator, n_events: int) -> ak.Array:
    """Fast generator: ``sample['kind']`` signal (uses m_c, dm, ctau_cm) or background (b bbar)."""
    cfg = fast_settings(settings.get("generation"))
    kind = sample.get("kind")
    if kind == "signal":
        for key in ("m_c", "dm", "ctau_cm"):
            if sample.get(key) is None:
                raise ValueError(f"sample '{sample.get('name')}': signal needs '{key}'")
        return generate_signal(rng, int(n_events), float(sample["m_c"]), float(sample["dm"]),
                               float(sample["ctau_cm"]), cfg)
    if kind == "background":
        return generate_heavy_flavour(rng, int(n_events), cfg)
    raise ValueError(f"sample '{sample.get('name')}': the fast generator makes kind 'signal' or "
                     f"'background' (heavy flavour), not '{kind}'")


def with_sample_settings(settings: Mapping, sample: Mapping) -> dict:
    """``settings`` as the generator of ``sample`` sees them: the sample's own generator settings
    (``sample['generation']``, deep-merged into ``generation``: e.g. the study's HF composition of ``hf_study``,
    the decay mode of the Pythia 8 validation copies), and its own collision energy, if it has one
    (``sqrt_s_gev``, e.g. the 8 TeV copies of ``samples.sqrt_s_8tev``): ``generation.fast.sqrt_s_gev`` and
    ``.luminosity`` (the parton-luminosity model fitted at that energy) and ``generation.pythia8.ecm_gev``."""
    settings = dict(settings)
    if sample.get("generation"):
        settings["generation"] = deep_merge(settings.get("generation") or {}, sample["generation"])
    if sample.get("sqrt_s_gev") is None:
        return settings
    gen = dict(settings.get("generation") or {})
    fast = dict(gen.get("fast") or {}, sqrt_s_gev=float(sample["sqrt_s_gev"]))
    if sample.get("luminosity") is not None:
        fast["luminosity"] = dict(sample["luminosity"])
    elif sample.get("source", "fast") == "fast":
        raise ValueError(f"sample {sample.get('name')}: sqrt_s_gev without the luminosity model fitted at it")
    gen["fast"] = fast
    gen["pythia8"] = dict(gen.get("pythia8") or {}, ecm_gev=float(sample["sqrt_s_gev"]))
    return {**settings, "generation": gen}


def backend_for(source: str):
    """The module implementing ``generate_chunk`` for ``source`` (clear error if absent)."""
    try:
        modname = BACKENDS[source]
    except KeyError:
        raise ValueError(f"no generator for sample source '{source}' (known: {sorted(BACKENDS)}; "
                         "'delphes' samples are not generated)") from None
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name != modname:
            raise
        raise ValueError(f"generator backend for source '{source}' is not available: module {modname} "
                         f"is missing (it must define generate_chunk(sample, settings, rng, n_events))") from exc
    if not hasattr(mod, "generate_chunk"):
        raise ValueError(f"{modname} does not define generate_chunk(sample, settings, rng, n_events)")
    return mod
