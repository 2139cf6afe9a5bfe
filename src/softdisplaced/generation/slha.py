"""SLHA spectrum for a wino-like chargino / neutralino pair with a long lifetime.

Pythia 8 needs more than the two masses to give ``SUSY:qqbar2chi+chi-`` a
non-zero cross section (see ``../shared/spec/VERIFIED-FACTS.md``): every SUSY
particle gets a mass (everything except chi+_1 and chi0_1 decoupled, by default
at 10 TeV), the mixing matrices are written explicitly (wino-like: chi0_1 is the
neutral wino, N12 = 1; chi+_1 is the charged wino, U11 = V11 = 1), together with
``ALPHA``, ``HMIX``, ``STOPMIX``, ``SBOTMIX`` and ``STAUMIX``.

The chargino lifetime comes from the ``DECAY 1000024`` total width,
``Gamma = hbar c / (c tau)``; its channels are the three-body decays
``chi+ -> chi0_1 e+ nu_e`` and ``chi+ -> chi0_1 mu+ nu_mu`` (configurable
branching fractions; which ones are switched on in a run is decided by the
generator's ``onMode`` settings, not by this file).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

__all__ = ["HBARC_GEV_MM", "width_from_ctau_mm", "ctau_mm_from_width", "slha_text", "write_slha", "parse_slha"]

#: hbar * c in GeV * mm (CODATA 2018: 197.3269804 MeV fm).
HBARC_GEV_MM = 1.973269804e-13

#: SUSY particles that get a mass in the MASS block (PDG ids).
_SQUARKS = [1000001, 1000002, 1000003, 1000004, 1000005, 1000006,
            2000001, 2000002, 2000003, 2000004, 2000005, 2000006]
_SLEPTONS = [1000011, 1000012, 1000013, 1000014, 1000015, 1000016, 2000011, 2000013, 2000015]
_GAUGINOS_DECOUPLED = [1000021, 1000023, 1000025, 1000035, 1000037]


def width_from_ctau_mm(ctau_mm: float) -> float:
    """Total width in GeV for a proper decay length c*tau in mm."""
    if not ctau_mm > 0:
        raise ValueError(f"c*tau must be positive, got {ctau_mm} mm")
    return HBARC_GEV_MM / float(ctau_mm)


def ctau_mm_from_width(width_gev: float) -> float:
    if not width_gev > 0:
        raise ValueError(f"width must be positive, got {width_gev} GeV")
    return HBARC_GEV_MM / float(width_gev)


def slha_text(m_c: float, dm: float, ctau_mm: float, *, decoupled_mass: float = 10000.0,
              br_e: float = 0.5, br_mu: float = 0.5, tan_beta: float = 10.0) -> str:
    """SLHA1 spectrum + decay table for chi+_1 (mass ``m_c``) and chi0_1 (``m_c - dm``).

    ``br_e`` + ``br_mu`` must be 1 (the width is the total width of the two channels).
    """
    m_c, dm, ctau_mm = float(m_c), float(dm), float(ctau_mm)
    if not m_c > 0 or not 0 < dm < m_c:
        raise ValueError(f"need 0 < dm < m_c, got m_c = {m_c}, dm = {dm}")
    if not math.isclose(br_e + br_mu, 1.0, rel_tol=1e-9) or br_e < 0 or br_mu < 0:
        raise ValueError(f"chargino branching fractions must be >= 0 and sum to 1, got e {br_e}, mu {br_mu}")
    if decoupled_mass <= m_c:
        raise ValueError(f"decoupled_mass = {decoupled_mass} GeV must exceed m_c = {m_c} GeV")
    m_n1 = m_c - dm
    width = width_from_ctau_mm(ctau_mm)
    M = decoupled_mass
    lines = [
        "# SLHA spectrum written by softdisplaced.generation.slha",
        f"# wino-like chi+_1 = {m_c:g} GeV, chi0_1 = {m_n1:g} GeV, c*tau(chi+_1) = {ctau_mm:g} mm;",
        f"# all other SUSY particles decoupled at {M:g} GeV",
        "BLOCK MODSEL",
        "    1    0   # general MSSM",
        "BLOCK SMINPUTS",
        "    1    1.27934000E+02   # alpha_em^-1(M_Z) MSbar",
        "    2    1.16637000E-05   # G_F",
        "    3    1.18000000E-01   # alpha_s(M_Z) MSbar",
        "    4    9.11876000E+01   # M_Z pole",
        "    5    4.18000000E+00   # m_b(m_b) MSbar",
        "    6    1.73000000E+02   # m_top pole",
        "    7    1.77686000E+00   # m_tau pole",
        "BLOCK MINPAR",
        f"    3    {tan_beta:.8E}   # tan beta",
        "BLOCK MASS",
        "        25    1.25000000E+02   # h0",
        f"        35    {M:.8E}   # H0",
        f"        36    {M:.8E}   # A0",
        f"        37    {M:.8E}   # H+",
    ]
    for pid in _SQUARKS + _SLEPTONS + [1000021]:
        lines.append(f"   {pid:8d}    {M:.8E}")
    lines.append(f"   {1000022:8d}    {m_n1:.8E}   # chi0_1 (wino)")
    for pid in (1000023, 1000025, 1000035):
        lines.append(f"   {pid:8d}    {M:.8E}")
    lines.append(f"   {1000024:8d}    {m_c:.8E}   # chi+_1 (wino)")
    lines.append(f"   {1000037:8d}    {M:.8E}")
    lines += [
        "BLOCK NMIX   # chi0_1 = wino, chi0_2 = bino, chi0_3,4 = higgsinos",
        "  1  1    0.00000000E+00",
        "  1  2    1.00000000E+00",
        "  1  3    0.00000000E+00",
        "  1  4    0.00000000E+00",
        "  2  1    1.00000000E+00",
        "  2  2    0.00000000E+00",
        "  2  3    0.00000000E+00",
        "  2  4    0.00000000E+00",
        "  3  1    0.00000000E+00",
        "  3  2    0.00000000E+00",
        "  3  3    7.07106781E-01",
        "  3  4   -7.07106781E-01",
        "  4  1    0.00000000E+00",
        "  4  2    0.00000000E+00",
        "  4  3    7.07106781E-01",
        "  4  4    7.07106781E-01",
        "BLOCK UMIX   # chi+_1 = charged wino",
        "  1  1    1.00000000E+00",
        "  1  2    0.00000000E+00",
        "  2  1    0.00000000E+00",
        "  2  2    1.00000000E+00",
        "BLOCK VMIX",
        "  1  1    1.00000000E+00",
        "  1  2    0.00000000E+00",
        "  2  1    0.00000000E+00",
        "  2  2    1.00000000E+00",
        "BLOCK ALPHA",
        f"   {-math.atan(1.0 / tan_beta):.8E}   # Higgs mixing angle alpha (decoupling limit: beta - pi/2)",
        f"BLOCK HMIX Q= {M:.8E}",
        f"    1    {M:.8E}   # mu",
        f"    2    {tan_beta:.8E}   # tan beta",
        "    3    2.46000000E+02   # v",
        f"    4    {M * M:.8E}   # m_A^2",
    ]
    for block in ("STOPMIX", "SBOTMIX", "STAUMIX"):
        lines += [f"BLOCK {block}",
                  "  1  1    1.00000000E+00", "  1  2    0.00000000E+00",
                  "  2  1    0.00000000E+00", "  2  2    1.00000000E+00"]
    lines += [
        f"DECAY   1000024    {width:.8E}   # chi+_1: c*tau = {ctau_mm:g} mm",
        "#          BR         NDA      ID1       ID2       ID3",
    ]
    if br_e > 0:
        lines.append(f"     {br_e:.8E}    3    1000022       -11        12   # chi0_1 e+ nu_e")
    if br_mu > 0:
        lines.append(f"     {br_mu:.8E}    3    1000022       -13        14   # chi0_1 mu+ nu_mu")
    lines.append(f"DECAY   1000022    {0.0:.8E}   # chi0_1 stable")
    return "\n".join(lines) + "\n"


def write_slha(path: str | os.PathLike, m_c: float, dm: float, ctau_mm: float, **kwargs) -> Path:
    """Write :func:`slha_text` to ``path`` (atomically) and return the path."""
    from ..atomic import write_text

    return write_text(path, slha_text(m_c, dm, ctau_mm, **kwargs))


def parse_slha(text: str) -> dict:
    """Minimal SLHA reader (for tests and checks): ``{'MASS': {pid: m}, 'DECAY': {pid: (width, [(br, ids)])},
    '<BLOCK>': {tuple(indices): value}}``."""
    out: dict = {"DECAY": {}}
    block = None
    decay_pid = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tok = line.split()
        head = tok[0].upper()
        if head == "BLOCK":
            block, decay_pid = tok[1].upper(), None
            out.setdefault(block, {})
            continue
        if head == "DECAY":
            block, decay_pid = None, int(tok[1])
            out["DECAY"][decay_pid] = (float(tok[2]), [])
            continue
        if decay_pid is not None:
            nda = int(tok[1])
            out["DECAY"][decay_pid][1].append((float(tok[0]), tuple(int(t) for t in tok[2:2 + nda])))
        elif block == "MASS":
            out["MASS"][int(tok[0])] = float(tok[1])
        elif block is not None:
            nums = [float(t) for t in tok]
            key = tuple(int(v) for v in nums[:-1])
            out[block][key] = nums[-1]
    return out


def spec_from_sample(sample: Mapping, settings: Mapping | None = None) -> dict:
    """(m_c, dm, c*tau in mm) of a signal sample spec."""
    return {"m_c": float(sample["m_c"]), "dm": float(sample["dm"]), "ctau_mm": 10.0 * float(sample["ctau_cm"])}
