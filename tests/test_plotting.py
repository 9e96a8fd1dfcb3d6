import matplotlib

matplotlib.use("Agg")

import sys  # noqa: E402
import warnings  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402
from scipy.integrate import quad  # noqa: E402
from scipy.special import expit  # noqa: E402
from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from sksatae import SaturatingAutoEncoder  # noqa: E402
from sksatae.activations import Shrink, TabulatedActivation  # noqa: E402
from sksatae.datasets import make_manifold_2d  # noqa: E402
from sksatae.plotting import (  # noqa: E402
    plot_activation,
    plot_alpha_path,
    plot_components,
    plot_energy_landscape,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def toy_data():
    return make_manifold_2d(n_samples=60, noise=0.01, random_state=0)


@pytest.fixture(scope="module")
def toy_model(toy_data):
    return SaturatingAutoEncoder(n_components=4, alpha=0.2, max_iter=3, random_state=0).fit(toy_data)


@pytest.fixture(scope="module")
def staged_model():
    X = np.random.RandomState(0).normal(size=(40, 12))
    return SaturatingAutoEncoder(n_components=5, alpha=0.2, alpha_step=0.1, max_iter=2,
                                 keep_stage_components=True, random_state=0).fit(X)


def _images(ax):
    return [artist for artist in ax.get_children() if isinstance(artist, AxesImage)]


def _quivers(ax):
    return [artist for artist in ax.collections if isinstance(artist, Quiver)]


# ---------------------------------------------------------------- optional matplotlib


@pytest.mark.parametrize(
    "call",
    [
        lambda model: plot_activation("shrink"),
        lambda model: plot_energy_landscape(model),
        lambda model: plot_components(np.ones((2, 4)), (2, 2)),
        lambda model: plot_alpha_path(model, 0, (2, 2)),
    ],
    ids=["activation", "energy", "components", "alpha_path"],
)
def test_missing_matplotlib_names_the_extra(monkeypatch, toy_model, call):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "sksatae\[plot\]"'):
        call(toy_model)


# ---------------------------------------------------------------- plot_activation

_REFERENCE = {  # f, f_c, |f'| of the closed forms, with shrink width w
    "shrink": (
        lambda z, w: np.sign(z) * np.maximum(np.abs(z) - w, 0),
        lambda z, w: np.maximum(np.abs(z) - w, 0),
        lambda z, w: (np.abs(z) > w).astype(float),
    ),
    "relu": (
        lambda z, w: np.maximum(z, 0),
        lambda z, w: np.maximum(z, 0),
        lambda z, w: (z > 0).astype(float),
    ),
    "satlinear": (
        lambda z, w: np.clip(z, 0, 1),
        lambda z, w: np.where((z > 0) & (z < 1), np.minimum(z, 1 - z), 0),
        lambda z, w: ((z > 0) & (z < 1)).astype(float),
    ),
}


def _gaussian_bump(z):
    return np.exp(-z ** 2 / 2)


def _gaussian_bump_slope(z):
    return -z * np.exp(-z ** 2 / 2)


_SMOOTH = {  # f and f' of the activations without a flat region
    "sigmoid": (expit, lambda z: expit(z) * (1 - expit(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "Gaussian bump": (_gaussian_bump, _gaussian_bump_slope),
}


def _eq3_by_quadrature(slope, z, tau=1.0):
    """min(M+, M-) of Eq. 3 with weight l exp(-l / tau) / tau^2, by numerical integration:
    M+-(z) = int_0^inf |f'(z +- t)| exp(-t / tau) / tau dt."""
    def directional(sign):
        kink = [abs(z)] if z != 0 and np.sign(-z) == sign else None  # |f'| has a kink at 0
        value, _ = quad(lambda t: abs(slope(z + sign * t)) * np.exp(-t / tau) / tau, 0, 60 * tau,
                        points=kink, limit=200, epsabs=1e-12)
        return value

    return min(directional(1.0), directional(-1.0))


@pytest.fixture(scope="module")
def gaussian_bump():
    return TabulatedActivation.from_function(_gaussian_bump, name="Gaussian bump",
                                             complementary="variation")


def _line(ax, label_start):
    (line,) = [line for line in ax.get_lines() if line.get_label().startswith(label_start)]
    return line.get_xdata(), line.get_ydata()


def _shaded_spans(ax):
    return sorted((patch.get_x(), patch.get_x() + patch.get_width()) for patch in ax.patches)


@pytest.mark.parametrize("activation", ["shrink", "relu", "satlinear"])
def test_plot_activation_curves(activation):
    fig = plot_activation(activation, shrink_width=0.3, z_range=(-1.5, 2.5))
    assert isinstance(fig, Figure)
    ax_f, ax_c = fig.axes
    f, f_c, slope = _REFERENCE[activation]
    for ax, label, reference in ((ax_f, "f", f), (ax_c, "f_c", f_c), (ax_c, "|f'|", slope)):
        z, values = _line(ax, label)
        assert len(z) == 1001 and z[0] == -1.5 and z[-1] == 2.5
        np.testing.assert_allclose(values, reference(z, 0.3), atol=1e-12)
    for ax in (ax_f, ax_c):
        assert ax.get_title() and ax.get_ylabel()
    assert ax_c.get_xlabel()
    assert activation in ax_f.get_title()
    assert "Eq. 1" in _line_labels(ax_c)[0]


def _line_labels(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "Gaussian bump"])
def test_plot_activation_without_flat_region(name, gaussian_bump):
    activation = gaussian_bump if name == "Gaussian bump" else name
    fig = plot_activation(activation, z_range=(-4, 4))
    ax_f, ax_c = fig.axes
    f, slope = _SMOOTH[name]
    z, values = _line(ax_f, "f")
    np.testing.assert_allclose(values, f(z), atol=1e-9)
    z, drawn_slope = _line(ax_c, "|f'|")
    np.testing.assert_allclose(drawn_slope, np.abs(slope(z)), atol=1e-8)
    z, penalty = _line(ax_c, "f_c")
    sample = np.arange(0, 1001, 125)  # z = -4, -3, ..., 4
    expected = [_eq3_by_quadrature(slope, point) for point in z[sample]]
    np.testing.assert_allclose(penalty[sample], expected, atol=1e-6)
    assert name in ax_f.get_title()
    assert "Eq. 3" in _line_labels(ax_c)[0] and "|f'|" in _line_labels(ax_c)[1]
    assert _shaded_spans(ax_f) == _shaded_spans(ax_c) == []
    assert ax_f.get_legend() is None  # nothing to explain without a flat set


def test_plot_activation_shows_figure_6_contrast(gaussian_bump):
    # At the top of the bump |f'| vanishes while f_c only dips between its two humps.
    ax_c = plot_activation(gaussian_bump, z_range=(-4, 4)).axes[1]
    z, slope = _line(ax_c, "|f'|")
    _, penalty = _line(ax_c, "f_c")
    top = np.flatnonzero(z == 0)[0]
    assert slope[top] < 1e-12 and slope.max() == pytest.approx(np.exp(-0.5), rel=1e-5)
    between_humps = np.abs(z) <= 1
    assert penalty[between_humps].min() > 0.5 * penalty.max()


@pytest.mark.parametrize(
    "activation, shrink_width, spans",
    [
        ("shrink", 0.3, [(-0.3, 0.3)]),
        ("relu", 0.1, [(-2.0, 0.0)]),
        ("satlinear", 0.1, [(-2.0, 0.0), (1.0, 2.0)]),
        ("shrink", 0.0, []),  # a flat set of one point has nothing to shade
        ("shrink", 5.0, [(-2.0, 2.0)]),
    ],
)
def test_plot_activation_shades_the_flat_set(activation, shrink_width, spans):
    fig = plot_activation(activation, shrink_width=shrink_width)
    for ax in fig.axes:
        shaded = _shaded_spans(ax)
        assert len(shaded) == len(spans)
        np.testing.assert_allclose(np.reshape(shaded, (-1, 2)), np.reshape(spans, (-1, 2)),
                                   rtol=0, atol=1e-12)
    labels = _line_labels(fig.axes[1])
    assert ("flat set of f (f' = 0)" in labels) == bool(spans)
    assert (fig.axes[0].get_legend() is not None) == bool(spans)


def test_plot_activation_takes_activation_objects():
    fig = plot_activation(Shrink(0.4), shrink_width=0.1)  # the object's own width wins
    np.testing.assert_allclose(_shaded_spans(fig.axes[0]), [(-0.4, 0.4)])
    z, values = _line(fig.axes[1], "f_c")
    np.testing.assert_allclose(values, np.maximum(np.abs(z) - 0.4, 0))
    tabulated = TabulatedActivation.from_function(np.tanh, name="my tanh")
    assert "Eq. 3" in _line_labels(plot_activation(tabulated).axes[1])[0]
    assert "my tanh" in plot_activation(tabulated).axes[0].get_title()


def test_plot_activation_into_given_axes(gaussian_bump):
    fig, axes = plt.subplots(1, 2)
    assert plot_activation("relu", ax=axes) is fig
    assert all(len(ax.get_lines()) >= 1 for ax in axes)
    fig, axes = plt.subplots(2, 3)
    assert plot_activation(gaussian_bump, ax=axes[:, 1]) is fig
    assert [len(ax.get_lines()) for ax in axes.ravel()] == [0, 2, 0, 0, 3, 0]  # with y = 0 lines


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"activation": "softplus"}, ValueError, "activation must be one of"),
        ({"activation": np.tanh}, ValueError, "activation must be one of"),
        ({"activation": "relu", "z_range": (2, -2)}, ValueError, "z_range"),
        ({"activation": "relu", "z_range": (0, np.inf)}, ValueError, "z_range"),
        ({"activation": "relu", "z_range": 3}, ValueError, "z_range"),
        ({"activation": "shrink", "shrink_width": -1}, ValueError, "shrink_width"),
        ({"activation": "sigmoid", "shrink_width": np.nan}, ValueError, "shrink_width"),
    ],
)
def test_plot_activation_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot_activation(**kwargs)
    assert plt.get_fignums() == []


@pytest.mark.parametrize("count", [1, 3])
def test_plot_activation_needs_two_axes(count):
    _, axes = plt.subplots(1, count, squeeze=False)
    with pytest.raises(ValueError, match="sequence of 2 Axes"):
        plot_activation("sigmoid", ax=axes[0] if count > 1 else axes[0, 0])
    assert all(ax.get_lines() == [] for ax in axes.ravel())


# ---------------------------------------------------------------- plot_energy_landscape


def test_energy_image_is_the_energy_on_the_grid(toy_model, toy_data):
    extent = (-1.0, 2.0, -0.5, 0.5)
    fig = plot_energy_landscape(toy_model, toy_data, extent=extent, resolution=7)
    assert isinstance(fig, Figure)
    ax, colorbar_ax = fig.axes
    (image,) = _images(ax)
    # Pixel centres of a 7x7 grid on the extent; row i is y_i (origin lower).
    x = -1.0 + (np.arange(7) + 0.5) * 3.0 / 7
    y = -0.5 + (np.arange(7) + 0.5) * 1.0 / 7
    expected = np.array([[toy_model.energy([[xj, yi]])[0] for xj in x] for yi in y])
    np.testing.assert_allclose(np.asarray(image.get_array()), expected, rtol=1e-12)
    assert image.origin == "lower"
    np.testing.assert_allclose(image.get_extent(), extent)
    assert image.get_clim() == (0.0, pytest.approx(expected.max()))
    assert colorbar_ax.get_ylabel() == "reconstruction energy"
    assert ax.get_xlabel() and ax.get_ylabel() and "shrink" in ax.get_title()
    assert ax.get_xlim() == pytest.approx((-1.0, 2.0))


def test_energy_overlays_data_and_bases(toy_model, toy_data):
    fig = plot_energy_landscape(toy_model, toy_data, resolution=5)
    ax = fig.axes[0]
    (points,) = [c for c in ax.collections if not isinstance(c, Quiver)]
    np.testing.assert_array_equal(points.get_offsets(), toy_data)
    assert np.allclose(points.get_facecolor()[0], to_rgba("yellow"))
    encoder, decoder = _quivers(ax)
    for quiver, weights, colour in ((encoder, toy_model.encoder_weights_, "red"),
                                    (decoder, toy_model.components_, "limegreen")):
        assert quiver.N == toy_model.n_components
        np.testing.assert_allclose(quiver.U, weights[:, 0])
        np.testing.assert_allclose(quiver.V, weights[:, 1])
        np.testing.assert_array_equal(quiver.X, 0.0)
        assert np.allclose(quiver.get_facecolor()[0], to_rgba(colour))
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["training data", "encoder vectors", "decoder vectors"]


def test_energy_options(toy_model):
    _, ax = plt.subplots()
    fig = plot_energy_landscape(toy_model, ax=ax, resolution=4, vmax=2.5, show_bases=False,
                                title="my title")
    assert fig is ax.figure
    assert _quivers(ax) == [] and ax.get_legend() is None
    (image,) = _images(ax)
    assert image.get_clim() == (0.0, 2.5)
    assert ax.get_title() == "my title"


def test_energy_tied_weights_draw_both_sets(toy_data):
    model = SaturatingAutoEncoder(n_components=2, activation="satlinear", alpha=0.1, max_iter=2,
                                  random_state=0).fit(toy_data)
    ax = plot_energy_landscape(model, resolution=4).axes[0]
    encoder, decoder = _quivers(ax)
    np.testing.assert_array_equal(encoder.U, decoder.U)
    assert encoder.N == decoder.N == 2


def test_energy_rejects_other_dimensions():
    model = SaturatingAutoEncoder(n_components=2, max_iter=1, random_state=0)
    model.fit(np.random.RandomState(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="2-D data only.*3 features"):
        plot_energy_landscape(model)


def test_energy_needs_a_fitted_model():
    with pytest.raises(NotFittedError):
        plot_energy_landscape(SaturatingAutoEncoder())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"extent": (1, -1, -1, 1)}, "x_min < x_max"),
        ({"extent": (-1, 1, -1)}, "four finite numbers"),
        ({"resolution": 1}, "resolution must be an int >= 2"),
        ({"resolution": 5.0}, "resolution must be an int"),
        ({"vmax": 0}, "vmax"),
        ({"X_train": np.zeros((4, 3))}, "X_train must have 2 features"),
        ({"X_train": np.full((4, 2), np.nan)}, "NaN"),
        ({"ax": "not axes"}, "ax must be an Axes"),
    ],
)
def test_energy_bad_arguments(toy_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_energy_landscape(toy_model, **kwargs)


def test_energy_show_bases_needs_weights(toy_model):
    class EnergyOnly(BaseEstimator):
        n_features_in_ = 2

        def fit(self, X):
            return self

        def energy(self, X):
            return np.sum(np.asarray(X) ** 2, axis=1)

        def __sklearn_is_fitted__(self):
            return True

    with pytest.raises(ValueError, match="show_bases=False"):
        plot_energy_landscape(EnergyOnly())
    ax = plot_energy_landscape(EnergyOnly(), resolution=2, extent=(0, 2, 0, 2),
                               show_bases=False).axes[0]
    np.testing.assert_allclose(_images(ax)[0].get_array(), [[0.5, 2.5], [2.5, 4.5]])


# ---------------------------------------------------------------- plot_components


def _tile_at(mosaic, position, n_cols, shape):
    row, col = divmod(position, n_cols)
    top, left = row * (shape[0] + 1), col * (shape[1] + 1)
    return mosaic[top:top + shape[0], left:left + shape[1]]


def test_components_grayscale_tiles():
    components = np.random.RandomState(0).normal(size=(7, 6))
    components[4] = 0.0
    fig = plot_components(components, (2, 3))
    assert isinstance(fig, Figure)
    ax, colorbar_ax = fig.axes
    (image,) = _images(ax)
    mosaic = np.ma.filled(image.get_array(), np.nan)
    # 7 tiles, 3 per row: 3 rows of 2x3 tiles and one-pixel gaps.
    assert mosaic.shape == (3 * 3 - 1, 3 * 4 - 1)
    for k in range(7):
        peak = np.abs(components[k]).max()
        expected = components[k].reshape(2, 3) / peak if peak else np.zeros((2, 3))
        np.testing.assert_allclose(_tile_at(mosaic, k, 3, (2, 3)), expected)
    assert np.isnan(mosaic[2, :]).all() and np.isnan(mosaic[:, 3]).all()
    assert np.isnan(_tile_at(mosaic, 8, 3, (2, 3))).all()  # the unused ninth slot
    assert image.get_clim() == (-1.0, 1.0)
    assert colorbar_ax.get_ylabel()
    assert ax.get_title() == "Decoder basis elements (7 of 7)"


def test_components_of_an_estimator_order_and_limits(staged_model):
    fig = plot_components(staged_model, (3, 4), n_cols=2, max_components=3, order=[4, 0, 2, 1],
                          title="three")
    ax = fig.axes[0]
    mosaic = np.ma.filled(_images(ax)[0].get_array(), np.nan)
    assert mosaic.shape == (2 * 4 - 1, 2 * 5 - 1)
    for position, k in enumerate([4, 0, 2]):
        element = staged_model.components_[k].reshape(3, 4)
        np.testing.assert_allclose(_tile_at(mosaic, position, 2, (3, 4)),
                                   element / np.abs(element).max())
    assert ax.get_title() == "three"


def test_components_rgb_channel_orders():
    rng = np.random.RandomState(1)
    channel_last = rng.uniform(-2, 3, size=(3, 2, 4, 3))
    channel_last[2] = 0.7
    channel_first = channel_last.transpose(0, 3, 1, 2).reshape(3, -1)
    fig_last = plot_components(channel_last.reshape(3, -1), (2, 4, 3), n_cols=3)
    fig_first = plot_components(channel_first, (2, 4, 3), n_cols=3, channel_order="first")
    assert len(fig_last.axes) == 1  # no colour bar for RGB
    mosaic_last = np.asarray(_images(fig_last.axes[0])[0].get_array())
    mosaic_first = np.asarray(_images(fig_first.axes[0])[0].get_array())
    np.testing.assert_array_equal(mosaic_last, mosaic_first)
    assert mosaic_last.shape == (2, 3 * 5 - 1, 4)
    for k in range(2):
        tile = _tile_at(mosaic_last, k, 3, (2, 4))
        low, high = channel_last[k].min(), channel_last[k].max()
        np.testing.assert_allclose(tile[..., :3], (channel_last[k] - low) / (high - low))
        np.testing.assert_array_equal(tile[..., 3], 1.0)
    np.testing.assert_array_equal(_tile_at(mosaic_last, 2, 3, (2, 4))[..., :3], 0.5)
    np.testing.assert_array_equal(mosaic_last[:, 4, 3], 0.0)  # transparent gap


def test_components_into_given_axes():
    fig, ax = plt.subplots()
    assert plot_components(np.eye(4), (2, 2), ax=ax) is fig


def test_components_needs_a_fitted_estimator():
    with pytest.raises(NotFittedError):
        plot_components(SaturatingAutoEncoder(), (2, 2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_shape": (2, 3)}, r"holds 6 values but each basis element has 4"),
        ({"image_shape": (2, 2, 1)}, r"\(height, width, 3\)"),
        ({"image_shape": (4,)}, r"\(height, width\)"),
        ({"image_shape": (2, 2.0)}, r"\(height, width\)"),
        ({"channel_order": "middle"}, "channel_order"),
        ({"max_components": 0}, "max_components"),
        ({"n_cols": 0}, "n_cols"),
        ({"order": [0, 3]}, r"order must be .* \[0, 3\)"),
        ({"order": []}, "order"),
        ({"order": [0.5]}, "order"),
        ({"ax": [1, 2]}, "ax must be an Axes"),
    ],
)
def test_components_bad_arguments(kwargs, match):
    arguments = {"estimator_or_array": np.ones((3, 4)), "image_shape": (2, 2), **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_components(**arguments)


def test_components_rejects_non_finite():
    with pytest.raises(ValueError, match="NaN"):
        plot_components(np.full((2, 4), np.nan), (2, 2))


# ---------------------------------------------------------------- plot_alpha_path


def test_alpha_path_tiles(staged_model):
    fig = plot_alpha_path(staged_model, 3, (4, 3))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 == len(staged_model.alpha_path_)
    for ax, alpha, stage in zip(fig.axes, staged_model.alpha_path_, staged_model.stage_components_):
        (image,) = _images(ax)
        element = stage[3].reshape(4, 3)
        np.testing.assert_allclose(image.get_array(), element / np.abs(element).max())
        assert ax.get_title() == f"alpha = {alpha:g}"
    assert [ax.get_title() for ax in fig.axes] == ["alpha = 0", "alpha = 0.1", "alpha = 0.2"]
    assert "3" in fig.get_suptitle()


def test_alpha_path_rgb_and_given_axes():
    X = np.random.RandomState(0).normal(size=(30, 12))
    model = SaturatingAutoEncoder(n_components=2, alpha=0.1, max_iter=1,
                                  keep_stage_components=True, random_state=0).fit(X)
    fig, axes = plt.subplots(2, 1)
    assert plot_alpha_path(model, 1, (2, 2, 3), ax=axes, channel_order="first") is fig
    for ax, stage in zip(axes, model.stage_components_):
        tile = stage[1].reshape(3, 2, 2).transpose(1, 2, 0)
        expected = (tile - tile.min()) / (tile.max() - tile.min())
        np.testing.assert_allclose(_images(ax)[0].get_array(), expected)


def test_alpha_path_of_a_model_that_kept_snapshots_only_later():
    # Stages run before keep_stage_components was set have no snapshot: their tiles were
    # shown under the alphas of the first stages.
    X = np.random.RandomState(0).normal(size=(30, 4))
    model = SaturatingAutoEncoder(n_components=2, alpha=0.1, max_iter=1, random_state=0).fit(X)
    model.set_params(keep_stage_components=True, warm_start=True, alpha=0.3).fit(X)
    np.testing.assert_allclose(model.alpha_path_, [0.0, 0.1, 0.2, 0.3])
    assert model.stage_components_.shape == (4, 2, 4)
    assert np.isnan(model.stage_components_[:2]).all()
    np.testing.assert_array_equal(model.stage_components_[-1], model.components_)
    fig = plot_alpha_path(model, 0, (2, 2))
    assert [ax.get_title() for ax in fig.axes] == ["alpha = 0.2", "alpha = 0.3"]
    model.partial_fit(X)
    assert model.stage_components_.shape == (5, 2, 4)


def test_energy_landscape_of_a_model_fitted_on_a_frame_draws_no_warning(toy_data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(toy_data, columns=["u", "v"])
    model = SaturatingAutoEncoder(n_components=3, max_iter=1, random_state=0).fit(frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_energy_landscape(model, resolution=8)
    assert [str(warning.message) for warning in caught] == []
    (image,) = _images(fig.axes[0])
    assert image.get_array().shape == (8, 8)


def test_alpha_path_needs_stage_components(toy_model):
    with pytest.raises(ValueError, match="keep_stage_components=True"):
        plot_alpha_path(toy_model, 0, (2, 1))


def test_alpha_path_needs_a_fitted_model():
    with pytest.raises(NotFittedError):
        plot_alpha_path(SaturatingAutoEncoder(keep_stage_components=True), 0, (2, 2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"index": 5}, r"index must be an int in \[0, 5\)"),
        ({"index": -1}, "index"),
        ({"index": 1.0}, "index"),
        ({"image_shape": (3, 3)}, "holds 9 values"),
        ({"channel_order": "rgb"}, "channel_order"),
    ],
)
def test_alpha_path_bad_arguments(staged_model, kwargs, match):
    arguments = {"index": 0, "image_shape": (3, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_alpha_path(staged_model, **arguments)


def test_alpha_path_wrong_number_of_axes(staged_model):
    _, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="sequence of 3 Axes"):
        plot_alpha_path(staged_model, 0, (3, 4), ax=axes)


# ---------------------------------------------------------------- rendering


def test_every_figure_renders_to_png(tmp_path, toy_model, toy_data, staged_model):
    figures = [
        plot_activation("satlinear"),
        plot_activation("tanh"),
        plot_energy_landscape(toy_model, toy_data, resolution=20),
        plot_components(staged_model, (3, 4)),
        plot_alpha_path(staged_model, 0, (3, 4)),
    ]
    for number, fig in enumerate(figures):
        path = tmp_path / f"figure_{number}.png"
        fig.savefig(path, dpi=40)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
