"""Neural-network discriminant of the soft displaced e-mu search (spec section 4).

Modules:

* :mod:`.model`        -- the Keras network built from ``nn.model`` config, determinism, device
* :mod:`.data`         -- training/evaluation data from HDF5 skims or from the study's ntuples
* :mod:`.training`     -- split, class balance, signal subsets, fit, outputs of ``softdisplaced train``
* :mod:`.evaluation`   -- ROC, AUC (+ error), efficiencies at the cut with binomial errors, KS test
* :mod:`.parameterised`-- parameter inputs (dm, m_c) for the parameterised network
* :mod:`.plots`        -- discriminant and ROC figures (CMS style, PDF + PNG)
* :mod:`.scoring`      -- NN scores for one skim (``softdisplaced evaluate``)

TensorFlow is imported lazily (inside functions) so that importing this package is cheap.
"""

FEATURES = (
    "YDelpObj", "HtJet", "dRLL", "MtLeadLepMET", "YUserObj",
    "dPhiLepMETSelObj", "Sphericity", "alphaT", "Spherocity",
)

__all__ = ["FEATURES"]
