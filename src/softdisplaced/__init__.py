"""softdisplaced: a reproducible workflow for the soft displaced-lepton search.

The package mirrors the DAG (``rules/<stage>.smk``); each stage has ``softdisplaced``
sub-commands (``softdisplaced.commands``) that the Snakemake rules call:

* ``generation`` (rules/generate.smk): the fast generator, Pythia 8 / LHE / HepMC backends, the
  detector simulation, jet clustering and the Delphes-format writer;
* ``processing`` (rules/process.smk): the coffea processor, its features and analyses (selections
  from configuration), the displaced-lepton efficiency, executors and HDF5 skims;
* ``nn`` (rules/train.smk): the Keras classifier, its training, evaluation and NumPy scoring;
* ``inference`` (rules/yields.smk, rules/limits.smk): heavy-flavour background, yields, lifetime
  reweighting, statistics (R95, CLs with pyhf), limits and recasts;
* ``validation`` (rules/validate.smk): the study's ntuples and the generators compared;
* ``report`` (rules/report.smk): tables, figures, HEPData, REPORT.md and provenance.

Workflow-wide: ``config`` (schema validation, defaults), ``samples``, ``atomic`` (atomic writes),
``provenance``, ``cli``; ``benchmarks`` for ``make bench``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
