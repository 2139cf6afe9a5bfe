"""Reading the study's ntuples (reference data) and a short training on them."""

import numpy as np
import pytest
import uproot

from softdisplaced.nn import FEATURES
from softdisplaced.nn.data import read_study_ntuple


def test_sr_assignment_matches_the_sr_trees(reference_dir):
    path = reference_dir / "authors_ntuples" / "BP_200_20_200.root"
    d = read_study_ntuple(path, "signal", name="bp6", key="6")
    with uproot.open(path) as fh:
        n = fh["varTree"].num_entries
        counts = {i: fh[f"varTree_SR{i}"].num_entries for i in (1, 2, 3)}
        d0e = fh["varTree"]["D0El"].array(library="np")
        d0m = fh["varTree"]["D0Mu"].array(library="np")
    assert d.X.shape == (n, 9)
    assert {i: int((d.sr == i).sum()) for i in (1, 2, 3)} == counts
    # SR III: both 1 mm < d0 < 10 cm (spec section 3), from the tree's own d0
    sr3 = d.sr == 3
    assert np.all((np.abs(d0e[sr3]) > 1) & (np.abs(d0m[sr3]) > 1))
    assert np.all((d.weight >= 0) & (d.weight <= 1))


def test_background_file_has_4108_events_and_no_weights(reference_dir):
    d = read_study_ntuple(reference_dir / "authors_ntuples" / "background.root", "background", name="hf", key="hf")
    assert len(d) == 4108 and np.all(d.weight == 1) and np.all(d.sr == 0)
    assert np.isfinite(d.X).all()


def test_short_training_on_study_ntuples(reference_dir, tmp_path):
    pytest.importorskip("keras")
    from nn_toys import settings

    from softdisplaced.nn.training import train

    s = settings({"study_ntuples": {"input": "study_ntuples", "signal": [1], "evaluate": [1, 6]}},
                 epochs=3, max_train_per_class=1000)
    s["samples"] = {"study_ntuples": {"dir": str(reference_dir / "authors_ntuples")}}
    m = train(s, "study_ntuples", tmp_path, make_plots=False)
    assert m["input"] == "study_ntuples" and set(m["auc"]) == {"1", "6"}
    assert m["auc"]["1"] > 0.8                    # the study's features do separate signal from HF
    assert m["n_test_per_class"]["background"] == round(0.2 * 4108)
    assert m["features"] == list(FEATURES)
