"""Samples of the workflow, derived from the configuration.

One place decides which samples exist, their generator, chunking, physics
parameters, cross section and random seeds; the Snakefile and every stage use
it, so that names stay consistent across the DAG.

Sample names: ``bp<id>`` (benchmarks), ``hf`` (heavy-flavour background), ``hf_study`` (heavy flavour
of the study's composition, for the study-compatible network), ``m<m_c>`` (mass scan at fixed dm), the
copies ``<name>_8tev`` and ``bp<id>_pythia8``, and the user's external samples. A spec's ``generation``
holds its own generator settings, merged into ``generation`` for it alone
(:func:`softdisplaced.generation.with_sample_settings`).
"""

from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

__all__ = ["build_samples", "check_network_samples", "cross_section_fb", "stop_cross_section_fb",
           "table_cross_section_fb", "chunk_seed", "rng_for", "signal_samples"]


def table_cross_section_fb(table_fb: Mapping, mass: float, name: str) -> tuple[float, float]:
    """(sigma, error) from ``{mass: [sigma, err]}``, log-linear in sigma (linear in the relative error);
    outside the table is an error naming the configuration key ``name``."""
    table = sorted((float(k), v) for k, v in table_fb.items())
    masses = np.array([m for m, _ in table])
    sig = np.array([v[0] for _, v in table], dtype=float)
    err = np.array([v[1] for _, v in table], dtype=float)
    if not masses[0] <= mass <= masses[-1]:
        raise ValueError(
            f"{name}: mass {mass} GeV outside the table range [{masses[0]:g}, {masses[-1]:g}] GeV; extend the table")
    s = float(np.exp(np.interp(mass, masses, np.log(sig))))
    rel = float(np.interp(mass, masses, err / sig))
    return s, s * rel


def cross_section_fb(cfg: Mapping, m_c: float, sqrt_s_tev: float = 13) -> tuple[float, float, str]:
    """(sigma, error, label) in fb for a wino-like chargino pair of mass ``m_c``.

    ``cross_sections.source = study`` takes the study's fixed value where the
    mass is listed, else the table; the table is interpolated log-linearly
    (linear in log sigma), and extrapolation outside it is an error. At
    ``sqrt_s_tev = 8`` the 8 TeV table ``cross_sections.wino_table_8tev_fb`` is used.
    """
    xs = cfg["cross_sections"]
    if float(sqrt_s_tev) == 8:
        if "wino_table_8tev_fb" not in xs:
            raise ValueError("cross_sections.wino_table_8tev_fb: needed for 8 TeV samples and recasts")
        return (*table_cross_section_fb(xs["wino_table_8tev_fb"], m_c, "cross_sections.wino_table_8tev_fb"),
                "wino_table_8tev_loglinear")
    if float(sqrt_s_tev) != 13:
        raise ValueError(f"no wino cross-section table at sqrt(s) = {sqrt_s_tev} TeV (13 and 8 are configured)")
    fixed = {float(k): v for k, v in xs.get("study_fixed_fb", {}).items()}
    if xs.get("source", "study") == "study" and float(m_c) in fixed:
        s, e = fixed[float(m_c)]
        return float(s), float(e), "study_fixed"
    return (*table_cross_section_fb(xs["wino_table_fb"], m_c, "cross_sections.wino_table_fb "
                                    "(or give the value in study_fixed_fb)"), "wino_table_loglinear")


def stop_cross_section_fb(cfg: Mapping, m_stop: float) -> tuple[float, float, str]:
    """(sigma, error, label) in fb for top-squark pair production at 13 TeV (``cross_sections.stop_pair``:
    the NLO+NLL values the CMS analyses normalised to, or the NNLO+NNLL table)."""
    sp = cfg["cross_sections"].get("stop_pair")
    if not sp:
        raise ValueError("cross_sections.stop_pair: needed for top-squark samples and recasts")
    order = sp.get("order", "nlo_nll")
    key = {"nlo_nll": "nlo_nll_fb", "nnlo_nnll": "nnlo_nnll_fb"}.get(order)
    if key is None or key not in sp:
        raise ValueError(f"cross_sections.stop_pair.order: {order!r} has no table (nlo_nll_fb, nnlo_nnll_fb)")
    return (*table_cross_section_fb(sp[key], m_stop, f"cross_sections.stop_pair.{key}"), f"stop_pair_{order}")


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def chunk_seed(master_seed: int, sample: str, chunk: int, stream: str = "generate") -> np.random.SeedSequence:
    """Independent seed sequence for (sample, chunk, stream), stable across Python runs."""
    return np.random.SeedSequence([int(master_seed), _stable_int(sample), int(chunk), _stable_int(stream)])


def rng_for(master_seed: int, sample: str, chunk: int = 0, stream: str = "generate") -> np.random.Generator:
    return np.random.default_rng(chunk_seed(master_seed, sample, chunk, stream))


def build_samples(cfg: Mapping) -> dict[str, dict]:
    """Ordered mapping ``name -> sample spec`` from the configuration."""
    from softdisplaced.config import with_defaults

    out: dict[str, dict] = {}
    # a stage may hand a partial configuration: the schema is the one source of the defaults
    full = with_defaults({"samples": cfg["samples"], "validation": cfg.get("validation") or {}})
    scfg = full["samples"]
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
            name=f"bp{b['id']}", kind="signal", source=sig["generator"], benchmark=b["id"],
            m_c=b["m_c"], dm=b["dm"], ctau_cm=b["ctau_cm"], br_ll=b["br_ll"],
            cross_section_fb=s, cross_section_err_fb=e, cross_section_source=label,
            n_chunks=sig["n_chunks"], events_per_chunk=sig["events_per_chunk"], files=[])
    for name in ("hf", "hf_study"):   # the physical HF mixture; the study's composition (both B semi-leptonic)
        hf = scfg[name]
        if hf["enabled"]:
            out[name] = dict(name=name, kind="background", source=hf["generator"], benchmark=None,
                             cross_section_fb=None, cross_section_err_fb=None, cross_section_source=None,
                             n_chunks=hf["n_chunks"], events_per_chunk=hf["events_per_chunk"], files=[],
                             **({"generation": dict(hf["generation"])} if hf.get("generation") else {}))
    ms = scfg.get("mass_scan") or {}          # optional sections: their defaults are filled when present
    if ms.get("enabled"):
        for m in ms.get("masses", []):
            name = f"m{int(m) if float(m).is_integer() else m}"
            if ms["dm"] >= m:
                raise ValueError(f"samples.mass_scan: dm = {ms['dm']} must be below m_c = {m}")
            s, e, label = cross_section_fb(cfg, m)
            out[name] = dict(
                name=name, kind="signal", source=ms["generator"], benchmark=None,
                m_c=float(m), dm=ms["dm"], ctau_cm=ms["ctau_cm"], br_ll=ms["br_ll"],
                cross_section_fb=s, cross_section_err_fb=e, cross_section_source=label,
                n_chunks=ms["n_chunks"], events_per_chunk=ms["events_per_chunk"], files=[])
    for pt in scfg["extra_signal"]:
        s, e, label = cross_section_fb(cfg, pt["m_c"])
        out[pt["name"]] = dict(
            name=pt["name"], kind="signal", source=sig["generator"], benchmark=None,
            m_c=pt["m_c"], dm=pt["dm"], ctau_cm=pt["ctau_cm"], br_ll=pt["br_ll"],
            cross_section_fb=s, cross_section_err_fb=e, cross_section_source=label,
            n_chunks=sig["n_chunks"], events_per_chunk=sig["events_per_chunk"], files=[])
    st = scfg.get("stops") or {}
    if st.get("enabled"):              # long-lived top squarks (generation.stops)
        ctaus = st["ctau_cm"] if isinstance(st["ctau_cm"], (list, tuple)) else [st["ctau_cm"]]
        for m in st.get("masses", []):
            s, e, label = stop_cross_section_fb(cfg, float(m))
            for j, ct in enumerate(ctaus):        # stop<m>; further generated lifetimes stop<m>_ct<c*tau>
                name = f"stop{float(m):g}" + ("" if j == 0 else f"_ct{float(ct):g}".replace(".", "p"))
                out[name] = dict(
                    name=name, kind="signal", model="stop", source="pythia8_stop", benchmark=None,
                    m_stop=float(m), m_c=float(m), dm=None, ctau_cm=float(ct), br_ll=1.0,
                    cross_section_fb=s, cross_section_err_fb=e, cross_section_source=label,
                    n_chunks=st["n_chunks"], events_per_chunk=st["events_per_chunk"], files=[])
    s8 = scfg.get("sqrt_s_8tev") or {}
    if s8.get("enabled"):              # copies of chargino samples at 8 TeV (the 8 TeV recast)
        for base in s8.get("samples", []):       # those present (samples.signal.benchmarks may restrict them)
            if base not in out:
                continue
            if out[base]["kind"] != "signal" or out[base].get("model", "chargino") != "chargino":
                raise ValueError(f"samples.sqrt_s_8tev.samples: {base!r} is not a chargino signal sample")
            spec = dict(out[base])
            s, e, label = cross_section_fb(cfg, spec["m_c"], 8)
            spec.update(name=f"{base}_8tev", sqrt_s_tev=8.0, sqrt_s_gev=float(s8["sqrt_s_gev"]),
                        luminosity=dict(s8["luminosity"]), source=s8.get("generator", spec["source"]),
                        cross_section_fb=s, cross_section_err_fb=e, cross_section_source=label,
                        n_chunks=s8["n_chunks"], events_per_chunk=s8["events_per_chunk"])
            out[spec["name"]] = spec
    val = full["validation"]
    for bid in val["pythia8_benchmarks"]:
        base = f"bp{bid}"
        if base not in out:
            raise ValueError(f"validation.pythia8_benchmarks: benchmark {bid} is not among the generated benchmarks")
        spec = dict(out[base])
        spec.update(name=f"{base}_pythia8", source="pythia8", validation_only=True,
                    events_per_chunk=val["pythia8_events"], n_chunks=val["pythia8_chunks"],
                    generation={"pythia8": {"signal": {"decay_mode": val["pythia8_decay_mode"]}}})
        out[spec["name"]] = spec
    for ext in scfg["external"]:
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


def check_network_samples(networks: Mapping[str, Mapping], samples: Mapping[str, dict]) -> None:
    """Every sample a skim network (``nn.networks``, schema defaults filled) trains on is a sample of the
    configuration: a clear error naming the network and the sample (e.g. ``hf_study`` disabled), not a missing
    input of the workflow."""
    for net, spec in networks.items():
        if spec.get("input", "skims") != "skims" or not spec.get("enabled", True):
            continue
        for role in ("signal", "background"):
            missing = [str(s) for s in spec.get(role, []) if str(s) not in samples]
            if missing:
                raise ValueError(f"nn.networks.{net}.{role}: {', '.join(missing)} is not a sample of this configuration "
                                 f"(enabled samples: {', '.join(samples)}); enable it under samples or train on another")


def signal_samples(samples: Mapping[str, dict], include_validation: bool = False, model: str = "chargino",
                   sqrt_s_tev: float | None = 13) -> list[str]:
    """Signal sample names of ``model`` (chargino | stop) at ``sqrt_s_tev`` (None: any energy); the
    Pythia 8 validation copies only when asked."""
    return [n for n, s in samples.items()
            if s["kind"] == "signal" and (include_validation or not s.get("validation_only"))
            and s.get("model", "chargino") == model
            and (sqrt_s_tev is None or float(s.get("sqrt_s_tev", 13)) == float(sqrt_s_tev))]
