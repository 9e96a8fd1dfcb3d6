"""Property-based tests of input handling: every call either works and gives
finite results of the right shape and dtype, or raises a ValueError that names
the problem. Nothing else (no NaN, no other exception, no broken model).

Examples are drawn deterministically (``derandomize=True``) so that a run is
reproducible; shapes are small and training short, so the file stays fast.
"""

import itertools
import re
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from sksatae import DivergenceError, SaturatingAutoEncoder
from sksatae.activations import ACTIVATIONS

# Frames meet models fitted on arrays and the other way round; scikit-learn warns, rightly.
pytestmark = pytest.mark.filterwarnings(
    "ignore:X (has|does not have valid) feature names:UserWarning")

PROPERTY_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow])

DTYPES = ["float32", "float64", "int64", "bool"]
CONTAINERS = ["C", "Fortran", "strided", "read-only memmap", "pandas", "polars", "list"]
SCALES = [1e-30, 1e-3, 1.0, 1e3, 1e30]
OFFSETS = [0.0, 1.0, 1e30]

SCALE_ERROR = "too large for float|cannot resolve the data"
OVERFLOW_ERROR = "overflow float|beyond float32's range"


def beyond_the_dtype(values, dtype):
    """Whether the documented limits refuse training on ``values`` in ``dtype``:
    squares of centred values near overflow, or a mean more than about
    1/(1000 eps) times the spread (the activations' unit scale for constant data,
    rows all equal in ``dtype``)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        return False
    info = np.finfo(dtype)
    mean = values.mean(axis=0)
    with np.errstate(over="ignore"):
        centred = ((values - mean) ** 2).sum(axis=1)
        offset = np.sqrt(np.mean(mean**2))
    if not np.isfinite(centred).all() or np.sqrt(centred.max()) > 1e-3 * np.sqrt(info.max):
        return True
    spread = np.sqrt(centred.mean() / values.shape[1])
    rows = values.astype(dtype)
    if (rows == rows[0]).all():  # constant data, whatever the rounding of its mean
        spread = 0.0
    return bool(offset > (spread or 1.0) / (1e3 * info.eps))


def working_dtype(X):
    return np.float32 if expected_dtype(X) == np.float32 else np.float64


def assert_usable_or_overflow(model, X, beyond_float32):
    """``assert_usable``; for float32 input, when values ``beyond_float32`` were
    involved, a clear overflow error is allowed instead."""
    if working_dtype(X) == np.float32 and beyond_float32:
        try:
            assert_usable(model, X)
        except ValueError as error:
            assert re.search(OVERFLOW_ERROR, str(error)), str(error)
    else:
        assert_usable(model, X)


def huge(values, dtype):
    """Values whose codes or energies may overflow ``dtype`` at inference."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return finite.size > 0 and float(np.abs(finite).max()) > 1e-3 * np.sqrt(np.finfo(dtype).max)


INPUT_ERROR = {
    "nan": "NaN",
    "inf": "infinity",
    "-inf": "infinity",
    "no samples": "0 sample",
    "no features": "0 feature",
}

_file_numbers = itertools.count()


@pytest.fixture(scope="module")
def memmap_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("memmaps")


def base_values(seed, n_samples, n_features, scale, offset, defect):
    rng = np.random.default_rng(seed)
    if defect == "no samples":
        n_samples = 0
    if defect == "no features":
        n_features = 0
    values = offset + scale * rng.standard_normal((n_samples, n_features))
    if defect == "constant feature" and n_features:
        values[:, 0] = offset + scale
    elif defect == "all constant":
        values[...] = offset + scale
    elif defect in ("nan", "inf", "-inf") and values.size:
        values[rng.integers(n_samples), rng.integers(n_features)] = float(defect)
    return values


def as_dtype(values, dtype):
    if dtype == "bool":
        return values > np.nanmedian(values) if values.size else values.astype(bool)
    if dtype == "int64":
        return np.rint(values).astype(np.int64)
    return values.astype(dtype)


def wrap(X, container, folder, name):
    """``X`` in the given container; the array values are never changed."""
    if container == "Fortran":
        return np.asfortranarray(X)
    if container == "strided":
        wide = np.zeros((X.shape[0], 2 * X.shape[1]), dtype=X.dtype)
        wide[:, ::2] = X
        return wide[:, ::2]
    if container == "read-only memmap":
        if X.size == 0:
            return X
        path = folder / f"{name}-{next(_file_numbers)}.dat"
        writable = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
        writable[...] = X
        writable.flush()
        del writable
        return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)
    if container == "pandas":
        return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    if container == "polars":
        return pl.DataFrame({f"x{j}": X[:, j] for j in range(X.shape[1])})
    if container == "list":
        return X.tolist()
    return np.ascontiguousarray(X)


@st.composite
def inputs(draw, defects, n_features=None):
    defect = draw(st.sampled_from(defects))
    dtypes = DTYPES[:2] if defect in ("nan", "inf", "-inf") else DTYPES
    dtype = draw(st.sampled_from(dtypes))
    limit = np.inf if dtype.startswith("float") else 1e4
    scale = draw(st.sampled_from([s for s in SCALES if s < limit]))
    offset = draw(st.sampled_from([o for o in OFFSETS if o < limit]))
    if n_features is None:
        n_features = draw(st.integers(1, 5))
    # One sample is drawn often: a one-row frame converts to an array whose row stride is
    # not its row length, while BLAS needs a leading dimension of at least a row.
    n_samples = draw(st.sampled_from([1, 2, 3, 7, 12]))
    values = base_values(draw(st.integers(0, 2**16)), n_samples, n_features, scale, offset,
                         defect)
    container = draw(st.sampled_from(CONTAINERS))
    if values.size == 0 and container in ("pandas", "polars", "list"):
        # A list with no rows carries no width, and scikit-learn's validation of a frame
        # without columns fails with an unrelated message ("at least one array or dtype").
        container = "C"
    return as_dtype(values, dtype), container, defect


@st.composite
def models(draw):
    learning_rate = draw(st.sampled_from(["auto", "auto", 1e-3, 0.05]))
    return SaturatingAutoEncoder(
        n_components=draw(st.integers(1, 4)),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        shrink_width=draw(st.sampled_from([0.0, 0.1, 1.0])),
        alpha=draw(st.sampled_from([0.0, 0.1, 1.0])),
        alpha_step=draw(st.sampled_from([None, 0.5])),
        max_iter=draw(st.integers(1, 2)),
        batch_size=draw(st.integers(1, 16)),
        learning_rate=learning_rate,
        tied_weights=draw(st.sampled_from(["auto", False, True])),
        init_scale=draw(st.sampled_from([0.1, 1.0])),
        shuffle=draw(st.booleans()),
        random_state=draw(st.integers(0, 3)),
    )


def expected_dtype(X):
    """float32 for float32 input, else float64; None where not checked: scikit-learn's
    validation turns a float32 polars frame into float64."""
    if isinstance(X, pl.DataFrame):
        return None
    return np.float32 if np.asarray(X).dtype == np.float32 else np.float64


def assert_dtype(array, dtype):
    assert dtype is None or array.dtype == dtype, (array.dtype, dtype)


def fitted_state(model):
    return {key: np.copy(value) for key, value in vars(model).items() if key.endswith("_")}


def assert_same_state(model, state):
    assert set(state) == {key for key in vars(model) if key.endswith("_")}
    for key, value in state.items():
        np.testing.assert_array_equal(getattr(model, key), value, err_msg=key)


def assert_usable(model, X):
    """Every inference method gives finite output of the right shape and dtype."""
    n_samples, n_components = np.asarray(X).shape[0], model.components_.shape[0]
    dtype = expected_dtype(X)
    for name in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_"):
        assert np.isfinite(getattr(model, name)).all(), name
    codes = model.transform(X)
    assert codes.shape == (n_samples, n_components)
    assert_dtype(codes, dtype)
    assert np.isfinite(codes).all()
    reconstruction = model.inverse_transform(codes)
    assert reconstruction.shape == (n_samples, model.n_features_in_)
    assert np.isfinite(reconstruction).all()
    energy = model.energy(X)
    assert energy.shape == (n_samples,)
    assert_dtype(energy, dtype)
    assert np.isfinite(energy).all() and (energy >= 0).all()
    np.testing.assert_array_equal(model.score_samples(X), -energy)


def assert_names_step_and_place(error):
    assert re.search(r"\(stage \d+, epoch \d+\) with learning_rate=", str(error)), str(error)


def fit_or_clear_error(method, X, defect, learning_rate, beyond=False):
    """Call ``method(X)``; return True if it worked. A failure must be the
    expected ValueError (or, with a fixed learning_rate, DivergenceError);
    data ``beyond`` what the dtype trains on must be refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            method(X)
    except DivergenceError as error:  # a ValueError too: caught first
        assert learning_rate != "auto", f"the auto step diverged: {error}"
        assert_names_step_and_place(error)
        return False
    except ValueError as error:
        if defect not in INPUT_ERROR and beyond:
            assert re.search(SCALE_ERROR, str(error)), str(error)
            return False
        assert defect in INPUT_ERROR, f"unexpected ValueError: {error}"
        assert re.search(INPUT_ERROR[defect], str(error)), str(error)
        return False
    assert defect not in INPUT_ERROR, f"{defect} input was accepted"
    assert not beyond, "data beyond what the dtype trains on was accepted"
    return True


@settings(max_examples=500, **PROPERTY_SETTINGS)
@given(model=models(), data=inputs(defects=["none", "none", "constant feature", "all constant",
                                            "nan", "inf", "-inf", "no samples", "no features"]))
def test_fit_and_inference_work_or_fail_clearly(memmap_folder, model, data):
    values, container, defect = data
    X = wrap(values, container, memmap_folder, "fit")
    beyond = beyond_the_dtype(values, working_dtype(X))
    if not fit_or_clear_error(model.fit, X, defect, model.learning_rate, beyond):
        assert not hasattr(model, "components_")  # a failed first fit leaves it unfitted
    else:
        assert_usable(model, X)
        assert np.isfinite(model.loss_curve_).all()
        assert_dtype(model.components_, expected_dtype(X))
        # The container and memory layout change nothing: the same values as a C-ordered
        # array give the same model and the same outputs, bit for bit.
        plain = values.astype(np.float64) if container in ("polars", "list") else values
        reference = clone(model).fit(plain)
        np.testing.assert_array_equal(model.components_, reference.components_)
        np.testing.assert_array_equal(model.transform(X), model.transform(plain))
        np.testing.assert_array_equal(model.energy(X), model.energy(plain))


def fit_quietly(model, X, method="fit"):
    """Fit, or return None when a fixed step diverges or the data is beyond the
    dtype (both covered by the first test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            return getattr(model, method)(X)
        except DivergenceError:
            assert model.learning_rate != "auto"
            return None
        except ValueError as error:
            assert beyond_the_dtype(X, working_dtype(X)), str(error)
            return None


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(model=models(), train=inputs(defects=["none"]), data=st.data())
def test_inference_on_new_input_works_or_fails_clearly(memmap_folder, model, train, data):
    train_values, _, _ = train
    assume(fit_quietly(model, train_values) is not None)
    values, container, defect = data.draw(inputs(
        defects=["none", "constant feature", "nan", "inf", "-inf", "no samples"],
        n_features=train_values.shape[1]))
    X = wrap(values, container, memmap_folder, "inference")
    state = fitted_state(model)
    if defect in INPUT_ERROR:
        for method in (model.transform, model.energy, model.score_samples):
            with pytest.raises(ValueError, match=INPUT_ERROR[defect]):
                method(X)
    else:
        assert_usable_or_overflow(model, X, huge(values, np.float32)
                                  or huge(train_values, np.float32))
    assert_same_state(model, state)


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(model=models(), first=inputs(defects=["none"]), data=st.data(),
       wrong_width=st.booleans(), diverging_step=st.booleans())
def test_a_failing_partial_fit_leaves_the_model_as_it_was(memmap_folder, model, first, data,
                                                         wrong_width, diverging_step):
    first_values, _, _ = first
    assume(fit_quietly(model, first_values, "partial_fit") is not None)
    n_features = first_values.shape[1] + wrong_width
    values, container, defect = data.draw(inputs(
        defects=["none", "constant feature", "nan", "inf", "no samples"], n_features=n_features))
    if diverging_step:
        model.set_params(learning_rate=1e6)
    state = fitted_state(model)
    X = wrap(values, container, memmap_folder, "partial_fit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(X)
    except DivergenceError as error:  # a ValueError too: caught first
        # Without the diverging step, data on another scale than the first call's can
        # still make the step fixed by that call diverge.
        assert_names_step_and_place(error)
        assert_same_state(model, state)
    except ValueError as error:
        # Two defects (a wrong width and NaN, say): either may be reported.
        expected = "|".join(filter(None, [INPUT_ERROR.get(defect), "features" if wrong_width
                                          else None])) or SCALE_ERROR
        assert re.search(expected, str(error)), str(error)
        assert_same_state(model, state)
    else:
        assert defect not in INPUT_ERROR and not wrong_width
        assert model.n_iter_ == state["n_iter_"] + 1
    # Trained on values beyond float32's range (a polars frame arrives as float64), the
    # model may no longer fit float32 input.
    assert_usable_or_overflow(model, first_values, huge(values, np.float32))


@pytest.mark.parametrize("format", ["csr", "csc", "coo"])
@pytest.mark.parametrize("method", ["fit", "partial_fit", "transform", "energy"])
def test_sparse_input_is_refused_by_name(method, format):
    X = np.random.default_rng(0).standard_normal((6, 3))
    model = SaturatingAutoEncoder(n_components=2, max_iter=1, random_state=0)
    if method in ("transform", "energy"):
        model.fit(X)
    state = fitted_state(model)
    # scikit-learn's convention for dense-only estimators is a TypeError.
    with pytest.raises((TypeError, ValueError), match="[Ss]parse"):
        getattr(model, method)(sparse.random(6, 3, density=0.5, format=format, random_state=0))
    assert_same_state(model, state)


@pytest.mark.parametrize("value, message", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_inverse_transform_refuses_codes_that_are_not_finite(value, message):
    model = SaturatingAutoEncoder(n_components=2, max_iter=1, random_state=0)
    model.fit(np.random.default_rng(0).standard_normal((6, 3)))
    codes = np.zeros((4, 2))
    codes[1, 1] = value
    with pytest.raises(ValueError, match=message):
        model.inverse_transform(codes)
