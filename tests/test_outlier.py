"""SATAEOutlierDetector: scikit-learn's outlier contract, PyOD-style attributes,
the thresholds, and detection quality on generated data."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sksatae import SaturatingAutoEncoder, SATAEOutlierDetector
from sksatae.activations import ACTIVATIONS, CLOSED_FORMS

FAST = dict(n_components=8, max_iter=10, random_state=0)


def _plane_data(n_inliers, n_outliers, seed):
    """Inliers near a 2-D plane in 10-D; outliers spread over the whole box.

    Returns ``X`` and ``is_inlier`` (1 for inliers, 0 for outliers), shuffled.
    """
    basis = np.linalg.qr(np.random.RandomState(42).standard_normal((10, 2)))[0].T
    rng = np.random.RandomState(seed)
    inliers = rng.standard_normal((n_inliers, 2)) @ basis * 2.0
    inliers += 0.05 * rng.standard_normal(inliers.shape)
    outliers = rng.uniform(-3.0, 3.0, size=(n_outliers, 10))
    X = np.vstack([inliers, outliers])
    is_inlier = np.r_[np.ones(n_inliers, int), np.zeros(n_outliers, int)]
    order = rng.permutation(len(X))
    return X[order], is_inlier[order]


@pytest.fixture(scope="module")
def plane():
    X_train, _ = _plane_data(400, 0, seed=0)
    X_test, is_inlier = _plane_data(200, 50, seed=1)
    return X_train, X_test, is_inlier


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_outliers_rank_below_inliers(plane, activation):
    X_train, X_test, is_inlier = plane
    detector = SATAEOutlierDetector(activation=activation, **FAST).fit(X_train)
    assert roc_auc_score(is_inlier, detector.score_samples(X_test)) > 0.95
    assert roc_auc_score(is_inlier, detector.decision_function(X_test)) > 0.95


@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_auto_threshold_separates_generated_outliers(plane, activation):
    X_train, X_test, is_inlier = plane
    detector = SATAEOutlierDetector(activation=activation, **FAST).fit(X_train)
    flagged = detector.predict(X_test) == -1
    assert flagged[is_inlier == 0].mean() >= 0.95
    # The rule flags the far tail of the inliers' skewed energies too: a few
    # percent, up to about 15% for the tied saturated-linear model here.
    assert flagged[is_inlier == 1].mean() <= 0.2


def test_auto_threshold_is_not_masked_by_training_outliers():
    # 10% outliers in the training set: median and MAD hardly move, so the
    # outliers stay above the threshold.
    X, is_inlier = _plane_data(360, 40, seed=2)
    detector = SATAEOutlierDetector(**FAST).fit(X)
    flagged = detector.predict(X) == -1
    assert flagged[is_inlier == 0].mean() >= 0.95
    assert flagged[is_inlier == 1].mean() <= 0.1


def test_auto_threshold_is_the_hampel_identifier(plane):
    X_train, _, _ = plane
    detector = SATAEOutlierDetector(**FAST).fit(X_train)
    energies = SaturatingAutoEncoder(**FAST).fit(X_train).energy(X_train)
    median = np.median(energies)
    threshold = median + 3 * 1.4826 * np.median(np.abs(energies - median))
    assert detector.threshold_ == pytest.approx(threshold, rel=1e-12)
    assert detector.offset_ == pytest.approx(-threshold, rel=1e-12)


@pytest.mark.parametrize("n_repeats", [400, 800])
def test_auto_threshold_counts_repeated_rows_once(n_repeats):
    # A point in the middle of the data repeated in half or more of the training rows (a
    # sensor idling at one reading): counted as often as it occurs, it made the MAD 0 and
    # flagged every other training row.
    rng = np.random.RandomState(0)
    mixing = np.array([[1.0, 0.9], [0.0, 0.3]])
    clean = rng.standard_normal((400, 2)) @ mixing
    X = np.vstack([clean, np.zeros((n_repeats, 2))])
    detector = SATAEOutlierDetector(n_components=4, max_iter=5, random_state=0).fit(X)
    assert (detector.predict(clean) == -1).mean() <= 0.1
    assert (detector.predict(rng.standard_normal((200, 2)) @ mixing) == -1).mean() <= 0.1
    distinct = np.unique(detector.decision_scores_)
    assert len(distinct) <= 401  # the repeated rows share one energy
    median = np.median(distinct)
    threshold = median + 3 * 1.4826 * np.median(np.abs(distinct - median))
    assert detector.threshold_ == pytest.approx(threshold, rel=1e-12)


def test_distinct_energies_merge_only_values_within_a_few_ulps_of_the_one_kept():
    from sksatae._outlier import _distinct

    ulp_steps = np.float32(1.0) + np.arange(57) * np.finfo(np.float32).eps  # 1 ulp apart
    kept = _distinct(ulp_steps.astype(np.float32))
    assert 11 <= len(kept) <= 15  # one per 5 values, not one for the whole run
    assert np.diff(kept).min() > 4 * np.finfo(np.float32).eps
    assert len(_distinct(np.array([2.0, 2.0, 1.0, 2.0]))) == 2
    assert len(_distinct(np.array([3.0]))) == 1


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.1, 0.25, 0.5])
@pytest.mark.parametrize("n_samples", [200, 333])
def test_float_contamination_flags_that_fraction_of_training_samples(contamination, n_samples):
    X, _ = _plane_data(n_samples, 0, seed=3)
    detector = SATAEOutlierDetector(contamination=contamination, **FAST)
    labels = detector.fit_predict(X)
    assert abs((labels == -1).sum() - contamination * n_samples) <= 1
    np.testing.assert_array_equal(detector.predict(X), labels)


def test_decision_function_is_shifted_score_samples(plane):
    X_train, X_test, _ = plane
    detector = SATAEOutlierDetector(contamination=0.1, **FAST).fit(X_train)
    for X in (X_train, X_test):
        scores = detector.score_samples(X)
        decision = detector.decision_function(X)
        np.testing.assert_array_equal(decision, scores - detector.offset_)
        np.testing.assert_array_equal(detector.predict(X), np.where(decision < 0, -1, 1))


def test_predict_returns_plus_and_minus_one_integers(plane):
    X_train, X_test, _ = plane
    labels = SATAEOutlierDetector(**FAST).fit(X_train).predict(X_test)
    assert labels.dtype.kind == "i"
    assert labels.shape == (len(X_test),)
    assert set(np.unique(labels)) == {-1, 1}


def test_sign_conventions(plane):
    X_train, X_test, _ = plane
    detector = SATAEOutlierDetector(contamination=0.1, **FAST).fit(X_train)
    energy = detector.energy(X_test)
    # scikit-learn's sign: higher score_samples / decision_function = more normal.
    np.testing.assert_array_equal(detector.score_samples(X_test), -energy)
    # PyOD's sign: decision_scores_ are training energies, outliers lie above threshold_.
    np.testing.assert_array_equal(detector.decision_scores_, detector.energy(X_train))
    assert detector.threshold_ == -detector.offset_
    np.testing.assert_array_equal(detector.predict(X_test) == -1, energy > detector.threshold_)
    assert isinstance(detector.offset_, float) and isinstance(detector.threshold_, float)


def test_detector_fits_the_same_model_as_the_auto_encoder(plane):
    X_train, X_test, _ = plane
    detector = SATAEOutlierDetector(activation="relu", **FAST).fit(X_train)
    model = SaturatingAutoEncoder(activation="relu", **FAST).fit(X_train)
    np.testing.assert_array_equal(detector.components_, model.components_)
    np.testing.assert_array_equal(detector.transform(X_test), model.transform(X_test))


def test_partial_fit_sets_the_threshold_from_the_batch(plane):
    X_train, X_test, _ = plane
    detector = SATAEOutlierDetector(contamination=0.1, **FAST)
    detector.partial_fit(X_train[:200]).partial_fit(X_train[200:])
    np.testing.assert_array_equal(detector.decision_scores_, detector.energy(X_train[200:]))
    assert abs((detector.predict(X_train[200:]) == -1).sum() - 20) <= 1
    assert detector.predict(X_test).shape == (len(X_test),)


def test_float32_input_keeps_float32_scores(plane):
    X_train, X_test, _ = plane
    detector = SATAEOutlierDetector(**FAST).fit(X_train.astype(np.float32))
    assert detector.score_samples(X_test.astype(np.float32)).dtype == np.float32
    assert detector.decision_function(X_test.astype(np.float32)).dtype == np.float32
    assert detector.decision_scores_.dtype == np.float32


@pytest.mark.parametrize("contamination", [0.0, -0.1, 0.51, 1.0, "high", None])
def test_invalid_contamination_is_refused(plane, contamination):
    X_train, _, _ = plane
    detector = SATAEOutlierDetector(contamination=contamination, **FAST)
    with pytest.raises(InvalidParameterError, match="contamination"):
        detector.fit(X_train)
    assert not hasattr(detector, "components_")


def test_estimator_type_and_tags():
    from sklearn.base import is_outlier_detector
    from sklearn.utils import get_tags

    detector = SATAEOutlierDetector()
    assert is_outlier_detector(detector)
    tags = get_tags(detector)
    assert tags.estimator_type == "outlier_detector"
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    assert not tags.input_tags.sparse


@parametrize_with_checks([SATAEOutlierDetector(activation=activation) for activation in ACTIVATIONS])
def test_sklearn_compatible_outlier_detector(estimator, check):
    check(estimator)


def test_detector_takes_every_parameter_of_the_auto_encoder():
    from sksatae import SaturatingAutoEncoder

    base = set(SaturatingAutoEncoder().get_params())
    detector = set(SATAEOutlierDetector().get_params())
    assert detector == base | {"contamination", "validation_fraction"}


def test_validation_fraction_sets_the_threshold_from_samples_not_trained_on():
    # 91 standardised images of one digit: the threshold set from the training energies
    # flagged most new images of that digit, the model having fitted its own samples.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    train, new = train_test_split(X[y == 3], test_size=0.5, random_state=0)
    scaler = StandardScaler().fit(train)
    train, new, others = (scaler.transform(part) for part in (train, new, X[y != 3][:300]))
    flagged = {}
    for fraction in (None, 0.3):
        detector = SATAEOutlierDetector(random_state=0, validation_fraction=fraction).fit(train)
        assert detector.decision_scores_.shape == (len(train),)
        np.testing.assert_allclose(detector.decision_scores_, detector.energy(train))
        flagged[fraction] = (detector.predict(new) == -1).mean()
        assert (detector.predict(others) == -1).mean() >= 0.9
    assert flagged[0.3] <= 0.3 and flagged[0.3] < flagged[None] / 2


def test_validation_fraction_keeps_a_frames_feature_names():
    import pandas as pd

    X, _ = _plane_data(200, 0, seed=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    detector = SATAEOutlierDetector(validation_fraction=0.25, **FAST).fit(frame)
    assert list(detector.feature_names_in_) == list(frame.columns)
    assert detector.predict(frame).shape == (200,)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_invalid_validation_fraction_is_refused(fraction):
    with pytest.raises(InvalidParameterError, match="validation_fraction"):
        SATAEOutlierDetector(validation_fraction=fraction).fit(np.zeros((10, 2)))
