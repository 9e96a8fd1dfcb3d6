"""Persistence: skops, pickle and joblib round trips of fitted estimators.

The estimators keep only ndarrays and plain scalars (a user's activation
function is kept as tables, never as a callable), so skops needs to trust
nothing but sksatae's own classes and a pickle refers to no numba object; a
pickle or joblib file loads in a fresh process and gives the same outputs.
"""

import copy
import io
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import skops.io as skops_io
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sksatae import SaturatingAutoEncoder, SATAEOutlierDetector
from sksatae.activations import TabulatedActivation

AUTOENCODER = "sksatae._autoencoder.SaturatingAutoEncoder"
DETECTOR = "sksatae._outlier.SATAEOutlierDetector"
TABULATED = "sksatae.activations.TabulatedActivation"
SMALL = dict(n_components=6, max_iter=3, random_state=0)


def _data():
    rng = np.random.RandomState(0)
    return rng.standard_normal((120, 5)), rng.standard_normal((30, 5))


def _fitted():
    """name -> (fitted estimator, the sksatae classes skops must be told to trust)."""
    X, _ = _data()
    return {
        "shrink": (
            SaturatingAutoEncoder(keep_stage_components=True, **SMALL).fit(X),
            [AUTOENCODER],
        ),
        "satlinear-tied": (SaturatingAutoEncoder(activation="satlinear", **SMALL).fit(X), [AUTOENCODER]),
        "sigmoid": (SaturatingAutoEncoder(activation="sigmoid", **SMALL).fit(X), [AUTOENCODER]),
        "user activation": (
            SaturatingAutoEncoder(activation=TabulatedActivation.from_function(
                lambda z: np.exp(-z**2 / 2), name="bump"), **SMALL).fit(X),
            [AUTOENCODER, TABULATED],
        ),
        "detector": (SATAEOutlierDetector(contamination=0.1, **SMALL).fit(X), [DETECTOR]),
        "pipeline": (
            make_pipeline(StandardScaler(), SATAEOutlierDetector(activation="relu", **SMALL)).fit(X),
            [DETECTOR],
        ),
    }


FITTED = _fitted()


def _outputs(estimator, X):
    """Every output that depends on the fitted state."""
    outputs = {"score_samples": estimator.score_samples(X)}
    if hasattr(estimator, "transform") and not hasattr(estimator, "steps"):
        outputs["transform"] = estimator.transform(X)
    if hasattr(estimator, "predict"):
        outputs["decision_function"] = estimator.decision_function(X)
        outputs["predict"] = estimator.predict(X)
    return outputs


def _assert_same_outputs(expected, actual):
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


@pytest.mark.parametrize("name", FITTED)
def test_skops_trusts_only_sksatae_classes_and_round_trips(name):
    estimator, own_classes = FITTED[name]
    _, X_new = _data()
    data = skops_io.dumps(estimator)
    assert sorted(skops_io.get_untrusted_types(data=data)) == own_classes
    loaded = skops_io.loads(data, trusted=own_classes)
    _assert_same_outputs(_outputs(estimator, X_new), _outputs(loaded, X_new))


def test_skops_file_round_trip(tmp_path):
    estimator, own_classes = FITTED["detector"]
    _, X_new = _data()
    path = tmp_path / "detector.skops"
    skops_io.dump(estimator, path)
    assert skops_io.get_untrusted_types(file=path) == own_classes
    loaded = skops_io.load(path, trusted=own_classes)
    _assert_same_outputs(_outputs(estimator, X_new), _outputs(loaded, X_new))
    assert loaded.offset_ == estimator.offset_
    np.testing.assert_array_equal(loaded.decision_scores_, estimator.decision_scores_)


@pytest.mark.parametrize("name", ["shrink", "satlinear-tied", "user activation", "detector"])
def test_loaded_model_continues_training_exactly(name):
    # The private training state (centring, update count) survives the trip.
    estimator, own_classes = FITTED[name]
    X, X_new = _data()
    loaded = skops_io.loads(skops_io.dumps(estimator), trusted=own_classes)
    original = copy.deepcopy(estimator).partial_fit(X_new)
    loaded.partial_fit(X_new)
    np.testing.assert_array_equal(loaded.components_, original.components_)
    np.testing.assert_array_equal(loaded.transform(X), original.transform(X))
    assert loaded.n_iter_ == original.n_iter_


class _RecordingUnpickler(pickle.Unpickler):
    """Records the module of every global (class or function) a pickle loads."""

    def __init__(self, file):
        super().__init__(file)
        self.modules = set()

    def find_class(self, module, name):
        self.modules.add(module)
        return super().find_class(module, name)


def _pickled_globals(data):
    unpickler = _RecordingUnpickler(io.BytesIO(data))
    unpickler.load()
    return unpickler.modules


@pytest.mark.parametrize("name", FITTED)
def test_pickle_refers_to_no_numba_object(name):
    estimator, _ = FITTED[name]
    modules = _pickled_globals(pickle.dumps(estimator))
    assert any(module.startswith("sksatae") for module in modules)
    assert not [module for module in modules if module.split(".")[0] == "numba"]
    assert {module.split(".")[0] for module in modules} <= {"sksatae", "sklearn", "numpy"}


def test_pickle_and_joblib_load_in_a_fresh_process(tmp_path):
    _, X_new = _data()
    np.save(tmp_path / "X_new.npy", X_new)
    for name, (estimator, _) in FITTED.items():
        with open(tmp_path / f"{name}.pkl", "wb") as file:
            pickle.dump(estimator, file)
        joblib.dump(estimator, tmp_path / f"{name}.joblib")

    script = textwrap.dedent(
        """
        import pickle, sys
        from pathlib import Path
        import joblib, numpy as np
        folder = Path(sys.argv[1])
        X_new = np.load(folder / "X_new.npy")
        for path in sorted(folder.glob("*.pkl")) + sorted(folder.glob("*.joblib")):
            if path.suffix == ".pkl":
                with open(path, "rb") as file:
                    estimator = pickle.load(file)
            else:
                estimator = joblib.load(path)
            outputs = {"score_samples": estimator.score_samples(X_new)}
            if hasattr(estimator, "transform") and not hasattr(estimator, "steps"):
                outputs["transform"] = estimator.transform(X_new)
            if hasattr(estimator, "predict"):
                outputs["decision_function"] = estimator.decision_function(X_new)
                outputs["predict"] = estimator.predict(X_new)
            np.savez(folder / (path.name + ".out.npz"), **outputs)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr

    for name, (estimator, _) in FITTED.items():
        expected = _outputs(estimator, X_new)
        for suffix in ("pkl", "joblib"):
            with np.load(tmp_path / f"{name}.{suffix}.out.npz") as saved:
                _assert_same_outputs(expected, dict(saved))
