"""The 8 TeV wino-like chargino-pair cross sections of ``cross_sections.wino_table_8tev_fb``.

No 8 TeV table is in the project's reference material, so the table is derived from the 13 TeV
NLO+NLL table with Pythia 8's leading-order cross sections at both energies::

    sigma_8(m) = sigma_LO,8(m) x K_13(m),   K_13(m) = sigma_NLO+NLL,13(m) / sigma_LO,13(m),

(``SUSY:qqbar2chi+chi-`` on the project's SLHA spectrum, process level only, 20000 events per
point: statistical error ~0.4 %). K_13 is 1.30-1.37 over 100-1000 GeV; its change from 13 to
8 TeV is not known here and is covered by an extra 5 % added in quadrature to the 13 TeV
relative error. Reproduce with ``python -m softdisplaced.generation.xsec_transfer``.
"""

from __future__ import annotations

import math
import tempfile
from typing import Mapping, Sequence

__all__ = ["lo_cross_section_fb", "transfer_table"]

K_TRANSFER_REL_ERR = 0.05


def lo_cross_section_fb(m_c: float, ecm_gev: float, n_events: int = 20000, seed: int = 12345) -> float:
    """Pythia 8 LO sigma(q qbar -> chi+ chi-) in fb for a wino-like chargino of mass ``m_c``."""
    from . import pythia8 as p8

    settings = {"generation": {"pythia8": {
        "ecm_gev": float(ecm_gev), "mpi": False, "isr": False, "fsr": False, "hadronisation": False,
        "extra": ["PartonLevel:all = off", "HadronLevel:all = off", "ProcessLevel:resonanceDecays = off"]}}}
    sample = {"name": f"xs{m_c:g}", "kind": "signal", "source": "pythia8", "m_c": float(m_c), "dm": 20.0, "ctau_cm": 1.0}
    with tempfile.TemporaryDirectory() as tmp:
        py, _ = p8.make_pythia(sample, settings, seed, tmp)
    for _ in range(int(n_events)):
        py.next()
    return float(py.infoPython().sigmaGen()) * 1e12   # mb -> fb


def transfer_table(table13_fb: Mapping, masses: Sequence[float], ecm_gev: float = 8000.0,
                   n_events: int = 20000) -> dict[str, list[float]]:
    """``{mass: [sigma, err]}`` at ``ecm_gev`` from the 13 TeV table by the LO K-factor transfer."""
    t13 = {float(k): v for k, v in table13_fb.items()}
    out = {}
    for m in masses:
        s13, e13 = t13[float(m)]
        k13 = s13 / lo_cross_section_fb(m, 13000.0, n_events)
        s = lo_cross_section_fb(m, ecm_gev, n_events) * k13
        out[f"{m:g}"] = [float(f"{s:.4g}"), float(f"{s * math.hypot(e13 / s13, K_TRANSFER_REL_ERR):.3g}")]
    return out


if __name__ == "__main__":  # pragma: no cover
    import json

    from ..config import load_config

    cfg = load_config("config/config.yaml")
    ms = [100, 125, 150, 175, 200, 225, 250, 275, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000]
    print(json.dumps(transfer_table(cfg["cross_sections"]["wino_table_fb"], ms), indent=1))
