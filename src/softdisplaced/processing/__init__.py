"""Stage 2, processing: the coffea processor, its features and analyses (selections from configuration), the displaced-lepton efficiency, the executors and the HDF5 skims (rules/process.smk)."""
