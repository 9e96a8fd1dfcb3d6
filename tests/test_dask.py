"""Scaling out with Dask: incremental training over a chunked array with
dask-ml's Incremental, block-wise inference, and grid search on the Dask
joblib backend. Everything runs on an in-process cluster (no network)."""

import re

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import dask.array as da
from dask_ml.wrappers import Incremental
from distributed import Client, get_task_stream

from sksatae import SaturatingAutoEncoder, SATAEOutlierDetector

SMALL = dict(n_components=4, max_iter=3, random_state=0)
N_SAMPLES, N_FEATURES, BLOCK = 400, 6, 100


@pytest.fixture(scope="module")
def client():
    with Client(processes=False, n_workers=1, threads_per_worker=2,
                dashboard_address=None) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    X = np.random.RandomState(0).standard_normal((N_SAMPLES, N_FEATURES))
    return X, da.from_array(X, chunks=(BLOCK, N_FEATURES))


def _blocks(X):
    return [X[start:start + BLOCK] for start in range(0, len(X), BLOCK)]


def test_incremental_fit_is_partial_fit_over_the_blocks(client, data):
    X, X_dask = data
    incremental = Incremental(SaturatingAutoEncoder(**SMALL), shuffle_blocks=False).fit(X_dask)
    reference = SaturatingAutoEncoder(**SMALL)
    for block in _blocks(X):
        reference.partial_fit(block)
    fitted = incremental.estimator_
    assert fitted.n_iter_ == N_SAMPLES // BLOCK
    np.testing.assert_array_equal(fitted.components_, reference.components_)
    np.testing.assert_array_equal(fitted.intercept_hidden_, reference.intercept_hidden_)
    np.testing.assert_array_equal(incremental.components_, reference.components_)


def test_incremental_passes_with_alpha_raised_between_them(client, data):
    # The recipe of docs/scaling.md: the alpha schedule is fit-only, so raise
    # alpha on the fitted estimator between passes.
    _, X_dask = data
    incremental = Incremental(SaturatingAutoEncoder(alpha=0.0, **SMALL), random_state=0)
    for alpha in (0.0, 0.1, 0.2):
        if hasattr(incremental, "estimator_"):
            incremental.estimator_.set_params(alpha=alpha)
        incremental.partial_fit(X_dask)
    n_blocks = N_SAMPLES // BLOCK
    np.testing.assert_array_equal(incremental.estimator_.alpha_path_,
                                  np.repeat([0.0, 0.1, 0.2], n_blocks))
    assert incremental.estimator_.n_iter_ == 3 * n_blocks
    assert np.isfinite(incremental.estimator_.loss_curve_).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blockwise_transform_and_score_samples(client, data, dtype):
    X, _ = data
    X = X.astype(dtype)
    X_dask = da.from_array(X, chunks=(BLOCK, N_FEATURES))
    model = SaturatingAutoEncoder(**SMALL).fit(X)

    codes = X_dask.map_blocks(model.transform, chunks=(X_dask.chunks[0], (model.n_components,)),
                              dtype=X.dtype)
    scores = X_dask.map_blocks(model.score_samples, drop_axis=1, dtype=X.dtype)
    assert codes.shape == (N_SAMPLES, model.n_components) and codes.dtype == dtype
    assert scores.shape == (N_SAMPLES,) and scores.dtype == dtype

    codes_computed, scores_computed = da.compute(codes, scores)
    assert codes_computed.shape == codes.shape and scores_computed.shape == scores.shape
    np.testing.assert_allclose(codes_computed, model.transform(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scores_computed, model.score_samples(X), rtol=1e-6, atol=1e-6)


def test_incremental_detector_predicts_blockwise(client, data):
    X, X_dask = data
    incremental = Incremental(SATAEOutlierDetector(contamination=0.1, **SMALL),
                              shuffle_blocks=False).fit(X_dask)
    detector = incremental.estimator_
    labels = incremental.predict(X_dask)
    assert labels.shape == (N_SAMPLES,)
    np.testing.assert_array_equal(labels.compute(), detector.predict(X))
    # partial_fit sets the threshold from the last block it saw.
    np.testing.assert_array_equal(detector.decision_scores_, detector.energy(X[-BLOCK:]))
    decision = X_dask.map_blocks(detector.decision_function, drop_axis=1, dtype=X.dtype)
    np.testing.assert_allclose(decision.compute(), detector.decision_function(X), rtol=1e-12)


def test_incremental_transform_values(client, data):
    # ParallelPostFit.transform gives the right values; its lazy shape is
    # not checked here (see docs/scaling.md).
    X, X_dask = data
    incremental = Incremental(SaturatingAutoEncoder(**SMALL), shuffle_blocks=False).fit(X_dask)
    codes = incremental.transform(X_dask).compute()
    np.testing.assert_allclose(codes, incremental.estimator_.transform(X), rtol=1e-12)


def test_grid_search_on_the_dask_joblib_backend(client, data):
    X, _ = data
    grid = {"alpha": [0.0, 0.3], "activation": ["shrink", "relu"]}
    search = GridSearchCV(SaturatingAutoEncoder(alpha_step=None, **SMALL), grid, cv=2, n_jobs=2)
    with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        search.fit(X)
    # joblib sends the fits to the cluster in batches named after their size.
    batch_sizes = [re.search(r"_fit_and_score_(\d+)_calls", task["key"]) for task in tasks.data]
    n_fits_on_cluster = sum(int(match.group(1)) for match in batch_sizes if match)
    assert n_fits_on_cluster == len(search.cv_results_["params"]) * 2
    serial = GridSearchCV(SaturatingAutoEncoder(alpha_step=None, **SMALL), grid, cv=2).fit(X)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], rtol=1e-10)
    assert search.best_params_ == serial.best_params_
    assert search.best_estimator_.n_iter_ >= 1
