"""softdisplaced: a reproducible workflow for the soft displaced e-mu search.

Stages (each a module named after what it does, each with a ``softdisplaced``
sub-command that the Snakemake rules call):

generation -> detector -> delphes_writer -> processing (coffea) -> skims (HDF5)
-> nn (Keras) -> background / yields / reweighting -> statistics / limits
-> recast -> report.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
