"""Samples of the workflow, derived from the configuration.

One place decides which samples exist, their generator, chunking, physics
parameters, cross section and random seeds; the Snakefile and every stage use
it, so that names stay consistent across the DAG.

Sample names: ``bp<id>`` (benchmarks), ``hf`` (heavy-flavour background),
``m<m_c>`` (mass scan at fixed dm), and the user's external samples.
"""

from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

__all__ = ["build_samples", "cross_section_fb", "chunk_seed", "rng_for", "signal_samples"]


def cross_section_fb(cfg: Mapping, m_c: float) -> tuple[float, float, str]:
    """(sigma, error, label) in fb for a wino-like chargino pair of mass ``m_c``.

    ``cross_sections.source = study`` takes the study's fixed value where the
    mass is listed, else the table; the table is interpolated log-linearly
    (linear in log sigma), and extrapolation outside it is an error.
    """
    xs = cfg["cross_sections"]
    fixed = {float(k): v for k, v in xs.get("study_fixed_fb", {}).items()}
    if xs.get("source", "study") == "study" and float(m_c) in fixed:
        s, e = fixed[float(m_c)]
        return float(s), float(e), "study_fixed"
    table = sorted((float(k), v) for k, v in xs["wino_table_fb"].items())
    masses = np.array([m for m, _ in table])
    sig = np.array([v[0] for _, v in table], dtype=float)
    err = np.array([v[1] for _, v in table], dtype=float)
    if not masses[0] <= m_c <= masses[-1]:
        raise ValueError(
            f"cross_sections.wino_table_fb: mass {m_c} GeV outside the table range "
            f"[{masses[0]:g}, {masses[-1]:g}] GeV; extend the table or give the value in study_fixed_fb")
    s = float(np.exp(np.interp(m_c, masses, np.log(sig))))
    rel = float(np.interp(m_c, masses, err / sig))
    return s, s * rel, "wino_table_loglinear"


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def chunk_seed(master_seed: int, sample: str, chunk: int, stream: str = "generate") -> np.random.SeedSequence:
    """Independent seed sequence for (sample, chunk, stream), stable across Python runs."""
    return np.random.SeedSequence([int(master_seed), _stable_int(sample), int(chunk), _stable_int(stream)])


def rng_for(master_seed: int, sample: str, chunk: int = 0, stream: str = "generate") -> np.random.Generator:
    return np.random.default_rng(chunk_seed(master_seed, sample, chunk, stream))


def build_samples(cfg: Mapping) -> dict[str, dict]:
    """Ordered mapping ``name -> sample spec`` from the configuration."""
    out: dict[str, dict] = {}
    scfg = cfg["samples"]
    sig = scfg["signal"]
    chosen = sig.get("benchmarks")  # null: all; an empty list is refused at validation
    if chosen is not None and not chosen:
        raise ValueError("samples.signal.benchmarks: an empty list selects no benchmark (leave it out for all)")
    only = set([b["id"] for b in cfg["benchmarks"]] if chosen is None else chosen)
    for b in cfg["benchmarks"]:
        if b["id"] not in only:
            continue
        s, e, label = cross_section_fb(cfg, b["m_c"])
        out[f"bp{b['id']}"] = dict(
            name=f"bp{b['id']}", kind="signal", source=sig.get("generator", "fast"), benchmark=b["id"],
            m_c=b["m_c"], dm=b["dm"], ctau_cm=b["ctau_cm"], br_ll=b["br_ll"],
            cross_section_fb=s, cross_section_err_fb=e, cross_section_source=label,
            n_chunks=sig.get("n_chunks", 1), events_per_chunk=sig.get("events_per_chunk", 100000), files=[])
    hf = scfg["hf"]
    if hf.get("enabled", True):
        out["hf"] = dict(name="hf", kind="background", source=hf.get("generator", "fast"), benchmark=None,
                         cross_section_fb=None, cross_section_err_fb=None, cross_section_source=None,
                         n_chunks=hf.get("n_chunks", 1), events_per_chunk=hf.get("events_per_chunk", 200000),
                         files=[])
    ms = scfg.get("mass_scan", {})
    if ms.get("enabled", False):
        for m in ms.get("masses", []):
            name = f"m{int(m) if float(m).is_integer() else m}"
            if ms["dm"] >= m:
                raise ValueError(f"samples.mass_scan: dm = {ms['dm']} must be below m_c = {m}")
            s, e, label = cross_section_fb(cfg, m)
            out[name] = dict(
                name=name, kind="signal", source=ms.get("generator", "fast"), benchmark=None,
                m_c=float(m), dm=ms["dm"], ctau_cm=ms["ctau_cm"], br_ll=ms["br_ll"],
                cross_section_fb=s, cross_section_err_fb=e, cross_section_source=label,
                n_chunks=ms.get("n_chunks", 1), events_per_chunk=ms.get("events_per_chunk", 50000), files=[])
    for pt in scfg.get("extra_signal", []):
        s, e, label = cross_section_fb(cfg, pt["m_c"])
        out[pt["name"]] = dict(
            name=pt["name"], kind="signal", source=sig.get("generator", "fast"), benchmark=None,
            m_c=pt["m_c"], dm=pt["dm"], ctau_cm=pt["ctau_cm"], br_ll=pt["br_ll"],
            cross_section_fb=s, cross_section_err_fb=e, cross_section_source=label,
            n_chunks=sig.get("n_chunks", 1), events_per_chunk=sig.get("events_per_chunk", 100000), files=[])
    val = cfg.get("validation", {}) or {}
    for bid in val.get("pythia8_benchmarks", []) or []:
        base = f"bp{bid}"
        if base not in out:
            raise ValueError(f"validation.pythia8_benchmarks: benchmark {bid} is not among the generated benchmarks")
        spec = dict(out[base])
        spec.update(name=f"{base}_pythia8", source="pythia8", validation_only=True,
                    events_per_chunk=val.get("pythia8_events", 20000), n_chunks=val.get("pythia8_chunks", 1))
        out[spec["name"]] = spec
    for ext in scfg.get("external", []):
        spec = dict(ext)
        spec.update(source=ext["type"], benchmark=None,
                    kind={"background": "background"}.get(ext["kind"], ext["kind"]),
                    n_chunks=len(ext["files"]) if ext["type"] != "delphes" else 0,
                    events_per_chunk=None,
                    cross_section_err_fb=None,
                    cross_section_source="external" if "cross_section_fb" in ext else None)
        spec.setdefault("cross_section_fb", None)
        if spec["name"] in out:
            raise ValueError(f"samples.external: name '{spec['name']}' clashes with a built-in sample")
        out[spec["name"]] = spec
    return out


def signal_samples(samples: Mapping[str, dict], include_validation: bool = False) -> list[str]:
    """Signal sample names; the Pythia 8 validation copies only when asked."""
    return [n for n, s in samples.items()
            if s["kind"] == "signal" and (include_validation or not s.get("validation_only"))]
