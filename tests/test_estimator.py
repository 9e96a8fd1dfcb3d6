"""Behaviour of SaturatingAutoEncoder as users meet it."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sksatae import DivergenceError, SATAEOutlierDetector, SaturatingAutoEncoder
from sksatae._autoencoder import (_alpha_schedule, _appended, _centred_squared_norms,
                                  _continued_rng)
from sksatae.activations import (
    ACTIVATIONS,
    CLOSED_FORMS,
    activation_function,
    complementary_function,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def small_model(**params):
    defaults = dict(n_components=16, max_iter=5, random_state=0)
    return SaturatingAutoEncoder(**{**defaults, **params})


# ------------------------------------------------------------------ schedule

@pytest.mark.parametrize(
    "start, stop, step, expected",
    [
        (None, 0.3, 0.1, [0.0, 0.1, 0.2, 0.3]),
        (None, 0.25, 0.1, [0.0, 0.1, 0.2, 0.25]),
        (None, 1.0, 0.1, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
        (None, 0.05, 0.1, [0.0, 0.05]),
        (None, 0.0, 0.1, [0.0]),
        (None, 0.3, None, [0.3]),
        (0.1, 0.3, 0.1, [0.2, 0.3]),
        (0.3, 0.3, 0.1, [0.3]),
        (0.5, 0.2, 0.1, [0.2]),
    ],
)
def test_alpha_schedule(start, stop, step, expected):
    assert _alpha_schedule(start, stop, step) == pytest.approx(expected, abs=1e-12)
    assert _alpha_schedule(start, stop, step)[-1] == stop


@pytest.mark.parametrize("alpha, alpha_step", [(1e300, 0.1), (1.0, 1e-7), (10.0, 1e-308)])
def test_a_schedule_of_too_many_stages_is_refused_at_once(alpha, alpha_step):
    # alpha=1e300 passed parameter validation, then built a list of 1e301 stages.
    model = SaturatingAutoEncoder(2, alpha=alpha, alpha_step=alpha_step)
    with pytest.raises(ValueError, match="stages of max_iter epochs each, more than 10000"):
        model.fit(SMALL_DATA)
    assert _fitted_state(model) == {}
    assert len(_alpha_schedule(None, 999.9, 0.1)) == 10000  # the most accepted


def test_fit_runs_the_schedule_and_records_it(digits):
    X, _ = digits
    model = small_model(alpha=0.2, max_iter=3, keep_stage_components=True).fit(X)
    np.testing.assert_allclose(model.alpha_path_, [0.0, 0.1, 0.2])
    assert model.n_iter_ == 9 and model.loss_curve_.shape == (9,)
    assert model.stage_components_.shape == (3, 16, 64)
    np.testing.assert_array_equal(model.stage_components_[-1], model.components_)


def test_warm_start_continues_the_schedule(digits):
    X, _ = digits
    model = small_model(alpha=0.1, max_iter=2, keep_stage_components=True).fit(X)
    before = model.components_.copy()
    model.set_params(alpha=0.3, warm_start=True).fit(X)
    np.testing.assert_allclose(model.alpha_path_, [0.0, 0.1, 0.2, 0.3])
    assert model.n_iter_ == 8 and model.stage_components_.shape[0] == 4
    np.testing.assert_array_equal(model.stage_components_[1], before)
    cold = small_model(alpha=0.3, max_iter=2).fit(X)
    assert not np.allclose(cold.components_, model.components_)


# ------------------------------------------------------------------ training

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_training_lowers_the_loss(digits, activation):
    X, _ = digits
    # A sigmoid's slope is at most 1/4, so at the same step its encoder moves 16 times slower.
    ratio = 0.7 if activation in CLOSED_FORMS else 0.8
    model = small_model(activation=activation, alpha=0.1, alpha_step=None, max_iter=10).fit(X)
    assert model.loss_curve_[-1] < ratio * model.loss_curve_[0]
    untrained_energy = small_model(activation=activation, max_iter=1, learning_rate=1e-12).fit(X)
    assert model.energy(X).mean() < ratio * untrained_energy.energy(X).mean()


def test_same_random_state_gives_identical_components(digits):
    X, _ = digits
    a = small_model(alpha=0.2).fit(X)
    b = small_model(alpha=0.2).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    c = small_model(alpha=0.2, random_state=1).fit(X)
    assert not np.allclose(a.components_, c.components_)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float32_and_float64_fits_agree(digits, activation):
    X, _ = digits
    params = dict(activation=activation, alpha=0.1, max_iter=3)
    m64 = small_model(**params).fit(X)
    m32 = small_model(**params).fit(X.astype(np.float32))
    assert m32.components_.dtype == np.float32 and m64.components_.dtype == np.float64
    assert m32.transform(X.astype(np.float32)).dtype == np.float32
    assert m32.energy(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(m32.components_, m64.components_, atol=2e-3)
    np.testing.assert_allclose(m32.energy(X), m64.energy(X), rtol=2e-3, atol=1e-3)


def test_decoder_is_unit_norm_after_reprojection(digits):
    X, _ = digits
    # "auto" re-projects every 10 samples: every update at batch 10, every 5th at batch 2.
    for batch_size, n_samples in ((10, 1000), (2, 1000)):
        model = small_model(activation="relu", batch_size=batch_size, max_iter=1,
                            alpha_step=None).fit(X[:n_samples])
        np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, rtol=1e-12)
    drifted = small_model(activation="relu", batch_size=2, max_iter=1, alpha_step=None).fit(X[:998])
    assert not np.allclose(np.linalg.norm(drifted.components_, axis=1), 1.0)
    tied = small_model(activation="satlinear", max_iter=1, alpha_step=None).fit(X)
    assert tied.encoder_weights_ is tied.components_
    assert not np.allclose(np.linalg.norm(tied.components_, axis=1), 1.0)


def test_large_alpha_schedule_finishes_with_the_auto_step():
    """The schedule up to a strong penalty on a small, heavy-tailed data set: the
    "auto" step (halved where a stage diverges) carries it to the end."""
    X, y = load_digits(return_X_y=True)
    ones = X[y == 1][np.random.RandomState(0).permutation(182)[:91]]
    X = StandardScaler().fit_transform(ones)
    for seed in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = SaturatingAutoEncoder(32, activation="shrink", alpha=3.0,
                                          random_state=seed).fit(X)
        assert np.isfinite(model.loss_curve_).all() and model.alpha_path_[-1] == 3.0
        mean = X.mean(axis=0)
        auto_step = model._resolve_learning_rate(X, mean, _centred_squared_norms(X, mean))
        assert model.learning_rate_ >= auto_step / 4


def test_auto_learning_rate_is_the_papers_step_on_standardised_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 50))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = SaturatingAutoEncoder(n_components=20, batch_size=1, max_iter=1, alpha_step=None)
    squared_norms = (X**2).sum(axis=1)
    expected = min(0.05 / 50, 0.5 / squared_norms.max())
    assert model.fit(X).learning_rate_ == pytest.approx(expected, rel=1e-9)
    assert 0.05 / 50 / expected < 1.3  # on gaussian data the paper's 0.05/d is what binds
    assert SaturatingAutoEncoder(learning_rate=0.003, max_iter=1).fit(X[:50]).learning_rate_ == 0.003


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("n_features", [2, 144, 3072])
def test_default_step_is_stable_at_any_dimension(activation, n_features):
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((300, 8))
    X = np.tanh(latent @ rng.standard_normal((8, n_features)))
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    model = SaturatingAutoEncoder(n_components=10, activation=activation, alpha=0.1, max_iter=5,
                                  random_state=0).fit(X)
    assert np.all(np.isfinite(model.loss_curve_))
    assert model.loss_curve_[-1] < model.loss_curve_[0]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_large_offset_changes_nothing(digits, activation):
    """SGD runs on centred data; the intercepts absorb the offset exactly."""
    X, _ = digits
    model = small_model(activation=activation, max_iter=3).fit(X)
    shifted = small_model(activation=activation, max_iter=3).fit(X + 100.0)
    np.testing.assert_allclose(shifted.components_, model.components_, atol=1e-8)
    np.testing.assert_allclose(shifted.energy(X + 100.0), model.energy(X), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(shifted.intercept_visible_, model.intercept_visible_ + 100.0)


# ------------------------------------------------------------------ inference

@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("tied", [False, True])
def test_energy_transform_and_inverse_transform_are_consistent(digits, activation, tied):
    X, _ = digits
    model = small_model(activation=activation, tied_weights=tied, alpha=0.2).fit(X)
    codes = model.transform(X)
    z = X @ model.encoder_weights_.T + model.intercept_hidden_
    np.testing.assert_allclose(codes, activation_function(activation, z, 0.1), atol=1e-12)
    recon = model.inverse_transform(codes)
    np.testing.assert_allclose(recon, codes @ model.components_ + model.intercept_visible_)
    np.testing.assert_allclose(model.energy(X), 0.5 * ((X - recon) ** 2).sum(axis=1), rtol=1e-10)
    np.testing.assert_array_equal(model.score_samples(X), -model.energy(X))
    assert model.score(X) == pytest.approx(-model.energy(X).mean())


def test_loss_curve_is_eq2_loss(digits):
    X, _ = digits
    model = small_model(alpha=0.3, alpha_step=None, max_iter=1, learning_rate=1e-12).fit(X)
    z = X @ model.encoder_weights_.T + model.intercept_hidden_
    eq2 = model.energy(X) + 0.3 * complementary_function("shrink", z, 0.1).sum(axis=1)
    assert model.loss_curve_[0] == pytest.approx(eq2.mean(), rel=1e-6)


def test_fitted_arrays_made_read_only_still_transform(digits):
    X, _ = digits
    model = small_model().fit(X)
    expected = model.transform(X)
    for name in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_"):
        getattr(model, name).setflags(write=False)
    X_ro = X.copy()
    X_ro.setflags(write=False)
    np.testing.assert_array_equal(model.transform(X_ro), expected)
    assert np.isfinite(model.energy(X_ro)).all()


def test_partial_fit_one_pass_at_final_alpha(digits):
    X, _ = digits
    model = SaturatingAutoEncoder(n_components=16, alpha=0.2, batch_size=10, random_state=0)
    for block in np.array_split(X, 4):
        assert model.partial_fit(block, y=np.zeros(len(block))) is model
    assert model.n_iter_ == 4
    np.testing.assert_allclose(model.alpha_path_, [0.2] * 4)
    first_rate = model.learning_rate_
    model.partial_fit(X[:5])
    assert model.learning_rate_ == first_rate
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :10])


def _fresh_continued_rng(seed, salt):
    return np.random.RandomState(np.random.SeedSequence([seed, salt]).generate_state(1)[0])


def test_later_partial_fit_calls_shuffle_as_freshly_seeded_generators_would():
    # Each thread reseeds a generator of its own: the streams must be those of new
    # generators, whatever another thread draws in between.
    import threading
    draws = {}

    def draw(name, seed):
        draws[name] = []
        for salt in range(3):
            rng = _continued_rng(seed, salt)
            first = rng.permutation(50)
            barrier.wait()  # the other thread reseeds its own generator here
            draws[name].append((first, rng.permutation(50)))

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=draw, args=(name, seed))
               for name, seed in (("a", 0), ("b", 7))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, seed in (("a", 0), ("b", 7)):
        for salt, (first, second) in enumerate(draws[name]):
            expected = _fresh_continued_rng(seed, salt)
            np.testing.assert_array_equal(first, expected.permutation(50))
            np.testing.assert_array_equal(second, expected.permutation(50))
    assert not np.array_equal(draws["a"][0][0], draws["a"][1][0])
    shared = np.random.RandomState(3)
    assert _continued_rng(shared, 1) is shared


def test_histories_grow_in_place_and_never_change_an_array_handed_out():
    history, seen, buffers = np.zeros(0), [], set()
    for i in range(1000):
        history = _appended(history, [float(i)] * (1 + i % 3))
        seen.append(history)
        buffers.add(id(history.base))
    expected = np.concatenate([[float(i)] * (1 + i % 3) for i in range(1000)])
    np.testing.assert_array_equal(history, expected)
    for view in seen:  # every earlier view still holds what it held
        np.testing.assert_array_equal(view, expected[:len(view)])
    assert len(buffers) <= 10  # 2,000 values: the buffer doubles as it fills
    assert len(pickle.dumps(history)) < 1.2 * history.nbytes + 500

    # A list, as a history set by hand may be:
    np.testing.assert_array_equal(_appended([1, 2], [3.0]), [1.0, 2.0, 3.0])
    shared = _appended(np.zeros(0), [1.0, 2.0])
    first, second = _appended(shared, [3.0]), _appended(shared, [4.0])
    np.testing.assert_array_equal(first, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(second, [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(shared, [1.0, 2.0])


def test_snapshot_histories_grow_in_place_by_a_quarter():
    history, seen, buffers = np.zeros((0, 2, 3), np.float32), [], set()
    for i in range(200):
        history = _appended(history, np.full((1 + i % 2, 2, 3), i), np.float32)
        seen.append(history)
        buffers.add(id(history.base))
    expected = np.concatenate([np.full((1 + i % 2, 2, 3), i, np.float32) for i in range(200)])
    assert history.dtype == np.float32 and history.shape == (300, 2, 3)
    np.testing.assert_array_equal(history, expected)
    for view in seen:
        np.testing.assert_array_equal(view, expected[:len(view)])
    assert len(buffers) <= 25  # 300 snapshots, a quarter more room each time
    assert len(history.base) <= 1 + 1.3 * history.size + 6
    assert len(pickle.dumps(history)) < 1.2 * history.nbytes + 500


def test_partial_fit_snapshots_every_call_without_copying_the_earlier_ones(digits):
    X, _ = digits
    model = SaturatingAutoEncoder(n_components=8, batch_size=50, keep_stage_components=True,
                                  random_state=0)
    decoders, stages = [], []
    for start in range(0, 1500, 100):
        model.partial_fit(X[start:start + 100])
        decoders.append(model.components_.copy())
        stages.append(model.stage_components_)
    np.testing.assert_array_equal(model.stage_components_, decoders)
    for i, stage in enumerate(stages):  # arrays handed out never change
        np.testing.assert_array_equal(stage, decoders[:i + 1])
    in_place = sum(np.shares_memory(a, b) for a, b in zip(stages[1:], stages[2:]))
    assert in_place >= 7  # of 13 calls: the others moved the snapshots to more room


def test_partial_fit_of_a_shallow_copy_leaves_the_originals_history_alone(digits):
    import copy
    X, _ = digits
    model = SaturatingAutoEncoder(n_components=8, alpha=0.2, batch_size=10, random_state=0)
    model.partial_fit(X[:200]).partial_fit(X[200:400])
    twin = copy.copy(model)
    model.partial_fit(X[400:600])
    losses, alphas = model.loss_curve_.copy(), model.alpha_path_.copy()
    twin.partial_fit(X[600:800])
    np.testing.assert_array_equal(model.loss_curve_, losses)
    np.testing.assert_array_equal(model.alpha_path_, alphas)
    assert len(twin.loss_curve_) == 3
    np.testing.assert_array_equal(twin.loss_curve_[:2], losses[:2])


def test_feature_names_and_pandas_output(digits):
    import pandas as pd
    X, _ = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    model = small_model(max_iter=1).set_output(transform="pandas").fit(frame)
    out = model.transform(frame)
    assert list(out.columns) == [f"saturatingautoencoder{i}" for i in range(16)]
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    np.testing.assert_array_equal(model.get_feature_names_out(), out.columns)


# ------------------------------------------------------------- in pipelines

def test_pipeline_features_beat_chance_and_raw_linear_on_few_components(digits):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe = make_pipeline(StandardScaler(), SaturatingAutoEncoder(n_components=64, activation="relu",
                                                                 random_state=0),
                         LogisticRegression(max_iter=3000))
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.93


def test_grid_search_over_alpha_and_activation():
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipe = make_pipeline(StandardScaler(), small_model(n_components=32, max_iter=3),
                         LogisticRegression(max_iter=2000))
    grid = {"saturatingautoencoder__alpha": [0.05, 0.2],
            "saturatingautoencoder__activation": ["shrink", "satlinear"]}
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=2, error_score="raise").fit(X, y)
    assert search.cv_results_["mean_test_score"].min() > 0.8
    assert search.best_params_["saturatingautoencoder__alpha"] in (0.05, 0.2)


# ---------------------------------------------------------- errors and state

@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), "infinity"),
        (np.empty((0, 3)), "0 sample"),
        (np.arange(5.0), "2D array"),
        (np.array([["a", "b"], ["c", "d"]]), "string|could not convert"),
    ],
)
def test_bad_input_gets_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        SaturatingAutoEncoder(n_components=2).fit(bad)


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "energy", "score_samples"])
def test_every_inference_method_names_the_input_with_nan(method):
    model = SaturatingAutoEncoder(n_components=4, max_iter=1, random_state=0).fit(
        np.random.default_rng(0).standard_normal((20, 4)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        getattr(model, method)(np.array([[0.0, np.nan, 1.0, 2.0]]))


SMALL_DATA = np.random.default_rng(0).standard_normal((20, 4))


@pytest.mark.parametrize("X, message", [
    ((SMALL_DATA * 1e30).astype(np.float32), "from its mean, too large for float32: their squares"),
    (SMALL_DATA * 1e200, "too large for float64"),
    ((SMALL_DATA + 1e5).astype(np.float32), "times its spread"),
    ((SMALL_DATA + 1e30).astype(np.float32), "cannot resolve"),  # constant in float32
    (SMALL_DATA + 1e14, "cannot resolve"),
])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_data_the_dtype_cannot_train_on_is_refused(X, message, method):
    model = SaturatingAutoEncoder(3, max_iter=1, random_state=0)
    with pytest.raises(ValueError, match=message):
        getattr(model, method)(X)
    assert _fitted_state(model) == {}


def test_offsets_the_dtype_resolves_are_trained():
    for X in ((SMALL_DATA + 1e3).astype(np.float32), SMALL_DATA + 1e9):
        model = SaturatingAutoEncoder(3, max_iter=2, random_state=0).fit(X)
        assert np.isfinite(model.energy(X)).all() and np.isfinite(model.transform(X)).all()


def test_later_partial_fit_data_is_checked_against_the_first_centring():
    model = SaturatingAutoEncoder(3, random_state=0).partial_fit(SMALL_DATA.astype(np.float32))
    before = model.components_.copy()
    with pytest.raises(ValueError, match="too large for float32"):
        model.partial_fit((SMALL_DATA * 1e30).astype(np.float32))
    np.testing.assert_array_equal(model.components_, before)


def test_inference_refuses_what_overflows_the_dtype():
    model = SaturatingAutoEncoder(3, max_iter=1, random_state=0).fit(SMALL_DATA.astype(np.float32))
    huge = (SMALL_DATA * 1e30).astype(np.float32)
    with pytest.raises(ValueError, match="energies overflow float32.*pass float64 input"):
        model.energy(huge)
    with pytest.raises(ValueError, match="energies overflow float32"):
        model.score_samples(huge)
    assert np.isfinite(model.energy(huge.astype(np.float64))).all()  # float64 copes
    beyond_float64 = SaturatingAutoEncoder(3, max_iter=1, random_state=0).fit(SMALL_DATA)
    with pytest.raises(ValueError, match=r"energies overflow float64 .*\); rescale X"):
        beyond_float64.energy(SMALL_DATA * 1e155)
    model.encoder_weights_ = model.encoder_weights_ * 1e30
    with pytest.raises(ValueError, match="codes overflow float32"):
        model.transform((SMALL_DATA * 1e10).astype(np.float32))
    assert np.isfinite(model.transform(SMALL_DATA * 1e10)).all()
    # Codes that are each finite but whose sum overflows are no error.
    relu = SaturatingAutoEncoder(3, activation="relu", max_iter=1, random_state=0)
    relu.fit(SMALL_DATA.astype(np.float32))
    relu.encoder_weights_ = np.abs(relu.encoder_weights_) * 1e30
    codes = relu.transform((np.abs(SMALL_DATA) * 1e7).astype(np.float32))
    assert np.isfinite(codes).all() and codes.astype(np.float64).sum() > np.finfo(np.float32).max
    big = SaturatingAutoEncoder(3, max_iter=1, random_state=0).fit(SMALL_DATA)
    big.intercept_visible_ = big.intercept_visible_ + 1e40
    small = SMALL_DATA.astype(np.float32)
    for method in ("energy", "score_samples"):
        with pytest.raises(ValueError, match="reach 1e\\+40, beyond float32's range"):
            getattr(big, method)(small)
    with pytest.raises(ValueError, match="reach 1e\\+40, beyond float32's range"):
        big.inverse_transform(big.transform(SMALL_DATA).astype(np.float32))
    assert np.isfinite(big.energy(SMALL_DATA)).all()
    # transform uses only the encoder's parameters, which fit float32.
    np.testing.assert_allclose(big.transform(small), big.transform(SMALL_DATA), rtol=1e-5,
                               atol=1e-6)
    big.intercept_hidden_ = big.intercept_hidden_ - 1e40
    with pytest.raises(ValueError, match="reach 1e\\+40, beyond float32's range"):
        big.transform(small)
    # A NaN in X is the input's own problem, named before the weights' (float64 input
    # would not help).
    with_nan = small.copy()
    with_nan[-1, 0] = np.nan
    for method in ("transform", "energy", "score_samples"):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            getattr(big, method)(with_nan)


def test_frame_without_columns_names_the_problem():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match="0 feature"):
        SaturatingAutoEncoder(2).fit(pd.DataFrame(index=range(3)))


def test_continuing_training_cannot_change_the_number_of_components(digits):
    X, _ = digits
    model = small_model(max_iter=1).fit(X)
    before = model.components_.copy()
    model.set_params(n_components=8, warm_start=True)
    for method in (model.fit, model.partial_fit):
        with pytest.raises(ValueError, match="n_components=8 differs"):
            method(X)
    np.testing.assert_array_equal(model.components_, before)
    assert model.transform(X).shape == (len(X), 16)  # the fitted size, whatever the parameter
    assert model.inverse_transform(model.transform(X)).shape == X.shape


def test_wrong_number_of_features_at_transform(digits):
    X, _ = digits
    model = small_model(max_iter=1).fit(X)
    for method in (model.transform, model.energy, model.score_samples):
        with pytest.raises(ValueError, match="64 features"):
            method(X[:, :10])
    with pytest.raises(ValueError, match="n_components=16"):
        model.inverse_transform(np.zeros((3, 5)))


def test_sparse_input_is_refused():
    from scipy import sparse
    with pytest.raises(TypeError, match="[Ss]parse"):
        SaturatingAutoEncoder(n_components=2).fit(sparse.random(10, 4, density=0.5, format="csr"))


@pytest.mark.parametrize(
    "params",
    [dict(n_components=0), dict(activation="softsign"), dict(alpha=-1.0), dict(alpha_step=0.0),
     dict(learning_rate=0.0), dict(learning_rate="fast"), dict(batch_size=0), dict(max_iter=0),
     dict(tied_weights="yes"), dict(normalize_decoder_every=0), dict(shrink_width=-0.1),
     dict(n_threads=0), dict(init_scale=0.0)],
)
def test_invalid_parameters(params):
    with pytest.raises(InvalidParameterError):
        SaturatingAutoEncoder(**params).fit(np.ones((4, 2)))


def test_divergence_names_the_learning_rate_and_keeps_no_broken_state(digits):
    X, _ = digits
    with pytest.raises(DivergenceError, match="learning_rate=1e\\+04"):
        small_model(learning_rate=1e4).fit(X)
    fresh = small_model(learning_rate=1e4)
    with pytest.raises(ValueError, match=r"\(stage 1, epoch 1\) with learning_rate") as caught:
        fresh.fit(X)  # caught as the ValueError it also is
    assert isinstance(caught.value, (DivergenceError, FloatingPointError))
    assert not hasattr(fresh, "components_")

    fitted = small_model().fit(X)
    before = {k: np.copy(v) for k, v in vars(fitted).items() if k.endswith("_")}
    fitted.set_params(learning_rate=1e4, warm_start=True)
    with pytest.raises(DivergenceError):
        fitted.fit(X)
    with pytest.raises(DivergenceError):
        fitted.partial_fit(X)
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(fitted, key), value)


def _fitted_state(model):
    return {key: np.copy(value) for key, value in vars(model).items() if key.endswith("_")}


def _refit_failures(n_features=3):
    X = np.random.default_rng(2).standard_normal((20, n_features))
    return [
        (dict(learning_rate=1e4), X, DivergenceError),
        ({}, np.where(X > 1, np.nan, X), "NaN"),
        ({}, X * 1e200, "too large for float64"),
    ]


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")  # arrays after a frame
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_failed_fit_leaves_the_fitted_model_as_it_was(method):
    # Validation records the new input's width and column names before training can
    # fail; left beside the old weights they made transform accept 3 columns of a
    # 5-feature model and quietly use the first 3 columns of its weights.
    pd = pytest.importorskip("pandas")
    X5 = pd.DataFrame(np.random.default_rng(1).standard_normal((20, 5)), columns=list("abcde"))
    # fit starts afresh on data of any width; partial_fit continues on the same width.
    for params, X, error in _refit_failures(3 if method == "fit" else 5):
        model = SaturatingAutoEncoder(3, max_iter=2, random_state=0).fit(X5)
        before, codes = _fitted_state(model), model.transform(X5)
        model.set_params(**params)
        with pytest.raises(error if isinstance(error, type) else ValueError,
                           match=None if isinstance(error, type) else error):
            getattr(model, method)(X)
        after = _fitted_state(model)
        assert after.keys() == before.keys()
        for key, value in before.items():
            np.testing.assert_array_equal(after[key], value, err_msg=key)
        np.testing.assert_array_equal(model.transform(X5), codes)
        with pytest.raises(ValueError, match="3 features"):
            model.transform(SMALL_DATA[:, :3])


@pytest.mark.parametrize("estimator", [SaturatingAutoEncoder, SATAEOutlierDetector])
def test_a_failed_first_fit_leaves_the_estimator_unfitted(estimator):
    for params, X, error in _refit_failures():
        model = estimator(n_components=3, max_iter=2, random_state=0, **params)
        with pytest.raises(ValueError):  # DivergenceError is one too
            model.fit(X)
        assert _fitted_state(model) == {}
        for method in ("transform", "score_samples", "energy"):
            with pytest.raises(NotFittedError):
                getattr(model, method)(X)


def test_a_detector_whose_threshold_fails_keeps_its_previous_fit(monkeypatch):
    detector = SATAEOutlierDetector(n_components=3, max_iter=2, random_state=0).fit(SMALL_DATA)
    before = _fitted_state(detector)

    def failing_threshold(self, X):
        raise MemoryError("no memory for the energies")

    monkeypatch.setattr(SATAEOutlierDetector, "_set_threshold", failing_threshold)
    for method in ("fit", "partial_fit"):
        with pytest.raises(MemoryError):
            getattr(detector, method)(SMALL_DATA[::-1] * 2)
        for key, value in before.items():
            np.testing.assert_array_equal(getattr(detector, key), value, err_msg=key)


@pytest.mark.parametrize("X", [
    np.full((50, 4), 0.1),
    np.repeat([[1.76, 0.4, 0.98]], 3, axis=0),
    np.full((13, 5), 1e5 / 3),
])
@pytest.mark.parametrize("estimator", [SaturatingAutoEncoder, SATAEOutlierDetector])
def test_constant_data_is_trained_even_where_its_mean_is_rounded(X, estimator):
    # The mean of identical rows, rounded, leaves a "spread" of about eps times the
    # offset, which the offset test took for data the dtype cannot resolve.
    assert (X - X.mean(axis=0)).any()  # the case: a rounded mean
    model = estimator(n_components=3, max_iter=2, random_state=0).fit(X)
    assert np.isfinite(model.transform(X)).all() and np.isfinite(model.energy(X)).all()
    # Rows that differ, by less than the dtype resolves around their offset, are refused.
    nearly = X.copy()
    nearly[0] = np.nextafter(X[0], np.inf)
    with pytest.raises(ValueError, match="cannot resolve"):
        estimator(n_components=3, max_iter=2, random_state=0).fit(nearly)


@pytest.mark.parametrize("first, later", [(np.float64, np.float32), (np.float32, np.float64)])
def test_continued_training_keeps_the_models_dtype(first, later):
    # A batch of another dtype must not convert the model (float64 to float32 would lose
    # its precision for good); the batch is converted instead.
    model = SaturatingAutoEncoder(3, max_iter=2, random_state=0).fit(SMALL_DATA.astype(first))
    model.partial_fit(SMALL_DATA.astype(later))
    assert model.components_.dtype == first and model.encoder_weights_.dtype == first
    assert model.intercept_hidden_.dtype == first and model.intercept_visible_.dtype == first
    model.set_params(warm_start=True).fit(SMALL_DATA.astype(later))
    assert model.components_.dtype == first
    assert model.transform(SMALL_DATA.astype(later)).dtype == later  # inference follows X


@pytest.mark.parametrize("change", [dict(activation="satlinear"), dict(tied_weights=True)])
def test_continued_training_cannot_tie_or_untie_the_fitted_weights(change):
    # tied_weights="auto" follows the activation: changing either between calls would
    # have dropped the fitted encoder and gone on with a tied model.
    model = SaturatingAutoEncoder(3, max_iter=2, random_state=0).fit(SMALL_DATA)
    before = _fitted_state(model)
    model.set_params(**change)
    for method in ("partial_fit", "fit"):
        model.set_params(warm_start=True)
        with pytest.raises(ValueError, match="cannot tie or untie"):
            getattr(model, method)(SMALL_DATA)
        for key, value in before.items():
            np.testing.assert_array_equal(getattr(model, key), value, err_msg=key)
    model.set_params(tied_weights=False).partial_fit(SMALL_DATA)  # untied, as fitted
    assert model.encoder_weights_ is not model.components_
    # An untied model whose encoder and decoder are equal (constant data moves neither
    # from their equal start at init_scale=1) is still untied.
    constant = SaturatingAutoEncoder(3, max_iter=1, normalize_decoder_every=None,
                                     random_state=0).fit(np.ones((10, 4)))
    assert np.array_equal(constant.encoder_weights_, constant.components_)
    constant.partial_fit(np.ones((10, 4)))
    assert constant.encoder_weights_ is not constant.components_


def test_a_tied_model_stored_by_joblib_continues_training_tied(tmp_path):
    # joblib stores the two names of a tied model's one array as two equal arrays.
    import joblib

    model = SaturatingAutoEncoder(3, activation="satlinear", max_iter=2, random_state=0)
    model.fit(SMALL_DATA)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert loaded.encoder_weights_ is not loaded.components_
    loaded.partial_fit(SMALL_DATA)
    model.partial_fit(SMALL_DATA)
    assert loaded.encoder_weights_ is loaded.components_
    np.testing.assert_array_equal(loaded.components_, model.components_)


def test_continued_float32_training_does_not_drift_the_intercepts():
    # Into training the intercepts move to centred coordinates by W^e s in float64, and
    # back by the same product: made in float32 on the way back, each call moved them
    # by the same rounding (3e-5 a call here, 6e-3 after 200 calls).
    X = (np.random.default_rng(0).standard_normal((50, 6)) + 100).astype(np.float32)
    model = SaturatingAutoEncoder(4, learning_rate=1e-30, max_iter=1, random_state=0)
    first = model.partial_fit(X).intercept_hidden_.copy()  # a step of 1e-30 moves nothing
    for _ in range(20):
        model.partial_fit(X)
    np.testing.assert_array_equal(model.intercept_hidden_, first)


def test_float32_of_either_byte_order_is_trained_in_float32():
    native = SMALL_DATA.astype(np.float32)
    swapped = native.astype(native.dtype.newbyteorder())
    assert swapped.dtype != np.float32 and np.array_equal(swapped, native)
    model = SaturatingAutoEncoder(3, max_iter=2, random_state=0).fit(swapped)
    reference = SaturatingAutoEncoder(3, max_iter=2, random_state=0).fit(native)
    assert model.components_.dtype == np.float32
    np.testing.assert_array_equal(model.components_, reference.components_)
    assert model.transform(swapped).dtype == np.float32


def test_detector_imports_without_docstrings():
    # python -OO strips docstrings; the detector's is filled in from the auto-encoder's.
    done = subprocess.run([sys.executable, "-OO", "-c",
                           "from sksatae import SATAEOutlierDetector; print('imported')"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr


def test_divergence_is_caught_before_the_loss_overflows():
    from sksatae.datasets import make_manifold_2d

    X = make_manifold_2d(200, random_state=0)
    model = SaturatingAutoEncoder(n_components=10, alpha=0.0, alpha_step=None, learning_rate=0.5,
                                  random_state=1)  # the loss passes 1e4 in the first epoch
    with pytest.raises(DivergenceError, match="loss reached"):
        model.fit(X)
    assert not hasattr(model, "components_")


def test_auto_step_is_halved_and_the_stage_restarted_on_divergence(monkeypatch):
    from sksatae.datasets import make_manifold_2d

    X = make_manifold_2d(200, random_state=0)
    params = dict(n_components=10, alpha=0.02, alpha_step=0.01, max_iter=5, random_state=1)
    # An "auto" step that is too large for this data (a float 0.5 diverges, see above).
    monkeypatch.setattr(SaturatingAutoEncoder, "_resolve_learning_rate", lambda self, X, s, norms: 0.5)
    with pytest.warns(ConvergenceWarning, match="restarting the stage with half the step"):
        model = SaturatingAutoEncoder(**params).fit(X)
    assert model.learning_rate_ <= 0.25
    assert model.n_iter_ == 15 and len(model.loss_curve_) == 15
    assert np.isfinite(model.loss_curve_).all() and model.energy(X).mean() < 0.05


def test_warm_started_fit_keeps_the_halvings_of_the_auto_step(monkeypatch):
    from sksatae.datasets import make_manifold_2d

    X = make_manifold_2d(200, random_state=0)
    monkeypatch.setattr(SaturatingAutoEncoder, "_resolve_learning_rate", lambda self, X, s, norms: 0.5)
    model = SaturatingAutoEncoder(10, alpha=0.02, alpha_step=0.01, max_iter=5, random_state=1,
                                  warm_start=True)
    with pytest.warns(ConvergenceWarning, match="half the step"):
        model.fit(X)
    halved = model.learning_rate_
    assert halved <= 0.25
    # Continuing the schedule on the same data starts from the step that worked: no stage of
    # it diverges again at the full step and is run twice.
    model.set_params(alpha=0.04)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X)
    assert model.learning_rate_ == halved
    assert model.n_iter_ == 25 and len(model.loss_curve_) == 25


def test_a_far_sample_in_the_last_update_is_not_taken_for_divergence():
    # The call's last update is measured on one row of its batch; a sample far from the
    # others (its loss 2e4 times the mean) at that row was taken for a blow-up.
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20000, 5))
    X[18000] = 1e3 / np.sqrt(5)  # the first row of the last batch of 2000
    params = dict(n_components=4, activation="satlinear", alpha=0.1, alpha_step=None, max_iter=1,
                  batch_size=2000, shuffle=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for learning_rate in (5e-6, "auto"):
            model = SaturatingAutoEncoder(learning_rate=learning_rate, **params).fit(X)
            assert np.isfinite(model.loss_curve_).all()


@pytest.mark.parametrize("learning_rate", ["auto", 0.05])
def test_continued_training_on_rows_at_the_centre_is_not_taken_for_divergence(learning_rate):
    # Rows at the training mean (mean-imputed records) have a baseline of 0 around it: any
    # loss of the fitted model exceeded a limit of 0 at alpha=0.
    X = StandardScaler().fit_transform(np.random.RandomState(0).standard_normal((200, 6)))
    params = dict(n_components=4, alpha=0.0, max_iter=5, learning_rate=learning_rate,
                  random_state=0)
    model = SaturatingAutoEncoder(**params).fit(X)
    assert model.energy(X.mean(axis=0, keepdims=True))[0] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.partial_fit(np.tile(X.mean(axis=0), (3, 1)))
        model.partial_fit(X.mean(axis=0) + 1e-4 * np.random.RandomState(1).standard_normal((3, 6)))
        warm = SaturatingAutoEncoder(warm_start=True, **params).fit(X).fit(np.ones((5, 6)))
    assert model.n_iter_ == 7 and warm.n_iter_ == 10


def test_training_warnings_name_the_callers_line(monkeypatch):
    from sksatae import _autoencoder

    real_run, calls = _autoencoder.run_in_parts, []

    def third_epoch_blows_up(kernel, arguments, n_parts, before=None):
        parts = real_run(kernel, arguments, n_parts, before)
        calls.append(1)
        return [(1e30, *part[1:]) for part in parts] if len(calls) == 3 else parts

    monkeypatch.setattr(_autoencoder, "run_in_parts", third_epoch_blows_up)
    fits = [lambda: SaturatingAutoEncoder(3, max_iter=2, random_state=0).fit(SMALL_DATA),
            lambda: SaturatingAutoEncoder(3, max_iter=2, random_state=0).fit_transform(SMALL_DATA),
            lambda: SATAEOutlierDetector(3, max_iter=2, random_state=0).fit(SMALL_DATA)]
    for fit in fits:
        calls.clear()
        with pytest.warns(ConvergenceWarning, match="half the step") as caught:
            fit()
        assert {record.filename for record in caught} == {__file__}


def test_keyboard_interrupt_keeps_last_completed_epoch(digits, monkeypatch):
    from sksatae import _kernels

    X, _ = digits
    real_epoch, calls = _kernels.sgd_epoch, []

    def interrupted_epoch(*args):
        calls.append(1)
        if len(calls) == 5:  # the second epoch of the second stage
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(_kernels, "sgd_epoch", interrupted_epoch)
    with pytest.warns(UserWarning, match="interrupted") as caught:
        model = small_model(alpha=0.2, max_iter=3, keep_stage_components=True).fit(X)
    assert [record.filename for record in caught] == [__file__]
    assert model.n_iter_ == 4
    np.testing.assert_allclose(model.alpha_path_, [0.0, 0.1])
    assert model.stage_components_.shape[0] == 2
    assert np.isfinite(model.transform(X)).all()


def test_keyboard_interrupt_after_a_restarted_stage_keeps_the_stages_start(digits, monkeypatch):
    # Interrupted before the restarted stage completes an epoch, the model must not keep
    # the weights of the abandoned attempt beside attributes that stop before it.
    from sksatae import _kernels

    X, _ = digits
    real_epoch = _kernels.sgd_epoch

    def scripted(plan):
        calls = []

        def epoch(*args):
            calls.append(1)
            if plan.get(len(calls)) == "interrupt":
                raise KeyboardInterrupt
            outcome = real_epoch(*args)
            if plan.get(len(calls)) == "diverge":
                return (np.inf, *outcome[1:])
            return outcome
        return epoch

    def fit(plan):
        monkeypatch.setattr(_kernels, "sgd_epoch", scripted(plan))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return small_model(alpha=0.2, max_iter=3, keep_stage_components=True).fit(X)

    # Epochs 4 to 6 are the second stage: the third diverges, the retry is interrupted.
    model = fit({6: "diverge", 7: "interrupt"})
    reference = fit({4: "interrupt"})  # interrupted at the start of the second stage
    assert model.n_iter_ == 3 and model._update_count == reference._update_count
    np.testing.assert_array_equal(model.alpha_path_, [0.0])
    for key in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_",
                "loss_curve_", "stage_components_"):
        np.testing.assert_array_equal(getattr(model, key), getattr(reference, key), err_msg=key)


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_verbose_zero_is_silent_and_verbose_reports_progress(digits, capsys, monkeypatch,
                                                             tqdm_installed):
    if not tqdm_installed:
        monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails as if not installed
    else:
        import tqdm  # noqa: F401  (a test dependency)
    X, _ = digits
    small_model(max_iter=2, verbose=0).fit(X)
    assert capsys.readouterr().err == ""
    small_model(max_iter=2, alpha=0.1, verbose=1).fit(X)
    err = capsys.readouterr().err
    assert "stage 2/2" in err and "loss=" in err and "alpha=0.1" in err
    small_model(max_iter=2, alpha=0.1, verbose=2).fit(X)
    assert capsys.readouterr().err.count("epoch ") == 4


# ------------------------------------------------------------- persistence

def test_pickle_round_trip_in_a_fresh_process(digits, tmp_path):
    X, _ = digits
    model = small_model(alpha=0.2).fit(X)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    np.save(tmp_path / "X.npy", X[:50])
    code = (
        "import pickle, numpy as np, sys;"
        f"m = pickle.loads(open(r'{path}', 'rb').read());"
        f"np.save(r'{tmp_path / 'out.npy'}', m.transform(np.load(r'{tmp_path / 'X.npy'}')))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), model.transform(X[:50]))
    assert all(type(v).__module__ in ("builtins", "numpy") for v in vars(model).values())


@pytest.mark.parametrize("tied", [False, True])
def test_init_scale_sets_the_initial_encoder_norm(tied):
    X = np.random.default_rng(0).standard_normal((40, 6))
    model = SaturatingAutoEncoder(n_components=4, init_scale=0.1, tied_weights=tied, max_iter=1,
                                  alpha_step=None, learning_rate=1e-300).fit(X)
    np.testing.assert_allclose(np.linalg.norm(model.encoder_weights_, axis=1), 0.1)
    expected_decoder_norm = 0.1 if tied else 1.0
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), expected_decoder_norm)


def test_divergence_with_the_auto_step_advises_what_is_left_to_change(monkeypatch):
    # The advice to use learning_rate="auto" is no help to a model that uses it.
    monkeypatch.setattr(SaturatingAutoEncoder, "_resolve_learning_rate",
                        lambda self, X, shift, norms: 1e8)
    model = SaturatingAutoEncoder(3, max_iter=1, alpha_step=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(DivergenceError, match="halved 6 times") as caught:
            model.fit(SMALL_DATA)
    assert "learning_rate='auto'" not in str(caught.value)
    assert "init_scale" in str(caught.value) and "scale needs" not in str(caught.value)
    monkeypatch.undo()
    model.fit(SMALL_DATA)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(DivergenceError, match="data of a larger scale needs a smaller step"):
            model.partial_fit(SMALL_DATA * 1e5)


def test_partial_fit_restarts_from_the_fitted_model_when_its_auto_step_diverges():
    import copy

    from sksatae.datasets import make_manifold_2d

    X = make_manifold_2d(200, random_state=0)
    model = SaturatingAutoEncoder(10, alpha=0.02, alpha_step=None, shuffle=False, random_state=1)
    model.partial_fit(X)
    twin = copy.deepcopy(model)
    model.learning_rate_ = 4.0  # 1 and more diverge on this data at batch size 10
    with pytest.warns(ConvergenceWarning, match="restarting the stage with half the step"):
        model.partial_fit(X)
    assert model.learning_rate_ <= 0.5
    # The restart began from the fitted model: the same call at the final step gives the same.
    twin.learning_rate_ = model.learning_rate_
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        twin.partial_fit(X)
    for name in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_",
                 "loss_curve_"):
        np.testing.assert_array_equal(getattr(model, name), getattr(twin, name))
