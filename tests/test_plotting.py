import matplotlib

matplotlib.use("Agg")

import copy  # noqa: E402
import math  # noqa: E402
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
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

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


def test_plot_activation_twice_into_the_same_axes_compares_them():
    fig = plot_activation("shrink", shrink_width=0.5)
    single = [(line.get_label(), line.get_color()) for line in fig.axes[1].get_lines()]
    assert single[:2] == [("f_c (Eq. 1: distance to the flat set)", "C3"),
                          ("|f'| (for comparison)", "0.25")]
    assert plot_activation("satlinear", ax=fig.axes) is fig
    ax_f, ax_c = fig.axes
    (shrink_f,) = [line for line in ax_f.get_lines() if line.get_label() == "f of shrink"]
    (satlinear_f,) = [line for line in ax_f.get_lines() if line.get_label() == "f of satlinear"]
    assert to_rgba(shrink_f.get_color()) != to_rgba(satlinear_f.get_color())
    satlinear_c = [line for line in ax_c.get_lines() if "of satlinear" in line.get_label()]
    assert len(satlinear_c) == 2
    used_first = {to_rgba(colour) for _, colour in single[:2]} | {to_rgba(shrink_f.get_color())}
    assert all(to_rgba(line.get_color()) not in used_first for line in satlinear_c)
    assert ax_f.get_title() == "shrink, satlinear: activation f"
    f_labels = _line_labels(ax_f)
    assert "f of shrink" in f_labels and "f of satlinear" in f_labels
    c_labels = _line_labels(ax_c)
    assert c_labels == [  # the first one's curves are named once a second one is drawn
        "f_c of shrink (Eq. 1: distance to the flat set)", "|f'| of shrink (for comparison)",
        "flat set of shrink (f' = 0)", "f_c of satlinear (Eq. 1: distance to the flat set)",
        "|f'| of satlinear (for comparison)", "flat set of satlinear (f' = 0)",
    ]
    plot_activation("satlinear", ax=fig.axes)  # the same one again: nothing repeated
    assert _line_labels(ax_c) == c_labels and len(_line_labels(ax_f)) == 4


def test_plot_activation_twice_compares_activations_without_a_flat_set():
    fig = plot_activation("tanh")
    assert fig.axes[0].get_legend() is None
    plot_activation("sigmoid", ax=fig.axes)
    assert _line_labels(fig.axes[0]) == ["f of tanh", "f of sigmoid"]
    tanh_line, sigmoid_line = fig.axes[0].get_lines()[::2]  # a y = 0 line after each
    assert to_rgba(tanh_line.get_color()) != to_rgba(sigmoid_line.get_color())
    fig.axes[0].cla()
    fig.axes[1].cla()
    plot_activation("relu", ax=fig.axes)  # cleared: drawn as alone
    assert fig.axes[0].get_title() == "relu: activation f"
    assert _line_labels(fig.axes[1])[0].startswith("f_c (")


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


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_energy_x_train_columns_follow_the_fitted_order(library, toy_data):
    frames = pytest.importorskip(library)
    X = toy_data * [1.0, 0.2] + [0.3, -0.6]  # the two columns far apart
    frame = frames.DataFrame({"height": X[:, 0], "weight": X[:, 1]})
    model = SaturatingAutoEncoder(n_components=3, max_iter=1, random_state=0).fit(frame)
    swapped = frames.DataFrame({"weight": X[:, 1], "height": X[:, 0]})
    ax = plot_energy_landscape(model, swapped, resolution=4, show_bases=False).axes[0]
    (points,) = ax.collections
    np.testing.assert_array_equal(points.get_offsets(), X)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("height", "weight")
    other = frames.DataFrame({"height": X[:, 0], "mass": X[:, 1]})
    with pytest.raises(ValueError, match=r"feature names of X_train .* \['height', 'weight'\], "
                                         r"got \['height', 'mass'\]"):
        plot_energy_landscape(model, other, resolution=4)


def test_energy_axes_of_a_model_fitted_on_an_array_keep_generic_labels(toy_model, toy_data):
    ax = plot_energy_landscape(toy_model, toy_data, resolution=4).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x_1$", "$x_2$")


def test_energy_drawn_again_into_the_same_axes_updates_its_colour_bar(toy_model, toy_data):
    fig, ax = plt.subplots(layout="constrained")
    plot_energy_landscape(toy_model, toy_data, ax=ax, resolution=4)
    plot_energy_landscape(toy_model, toy_data, ax=ax, resolution=4, vmax=5.0)
    assert len(fig.axes) == 2
    colorbar = _images(ax)[-1].colorbar
    assert colorbar is not None and colorbar.ax is fig.axes[1]
    assert colorbar.ax.get_ylim() == pytest.approx((0.0, 5.0))
    assert colorbar.ax.get_ylabel() == "reconstruction energy"
    assert _images(ax)[0].colorbar is None
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["training data", "encoder vectors", "decoder vectors"]


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
    with pytest.raises(NotFittedError):
        plot_components(make_pipeline(StandardScaler(), SaturatingAutoEncoder()), (2, 2))


def test_components_of_a_fitted_estimator_without_components():
    X = np.random.RandomState(0).normal(size=(20, 4))
    pipeline = make_pipeline(StandardScaler(),
                             SaturatingAutoEncoder(n_components=2, max_iter=1, random_state=0))
    pipeline.fit(X)
    with pytest.raises(ValueError, match=r"Pipeline has no components_ .* pipeline\[-1\]"):
        plot_components(pipeline, (2, 2))
    with pytest.raises(ValueError, match="StandardScaler has no components_"):
        plot_components(StandardScaler().fit(X), (2, 2))
    fig = plot_components(pipeline[-1], (2, 2))
    assert _images(fig.axes[0])[0].get_array().shape == (2, 5)


def test_components_gaps_are_apart_from_every_tile_colour():
    components = np.random.RandomState(0).normal(size=(3, 16))
    components[1] = 1.0  # all +1 (white) after normalisation
    components[2] = -3.0  # all -1 (black)
    fig = plot_components(components, (4, 4), n_cols=2)
    ax = fig.axes[0]
    (image,) = _images(ax)
    mosaic = image.get_array()
    colours = image.to_rgba(mosaic)
    gaps = np.ma.getmaskarray(mosaic)
    assert gaps[4, :].all() and gaps[:, 4].all() and gaps[5:, 5:].all()  # and the empty slot
    gap_colour = colours[4, 0]
    assert (colours[gaps] == gap_colour).all()
    assert len(set(np.round(gap_colour[:3], 3))) > 1  # not on the gray ramp
    white, black = colours[0, 5], colours[5, 0]  # tiles 1 and 2
    assert tuple(white) == (1, 1, 1, 1) and tuple(black[:3]) == (0, 0, 0)
    tiles = colours[~gaps]
    assert not (tiles == gap_colour).all(axis=1).any()
    # The rendered figure shows the gap colour around the white tile.
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].reshape(-1, 3)
    drawn = np.round(np.asarray(gap_colour[:3]) * 255)
    assert (np.abs(pixels - drawn).max(axis=1) <= 1).sum() > 100


@pytest.mark.parametrize(
    "n_tiles, tile_shape",
    [(100, (1, 64)), (16, (32, 2)), (16, (8, 8)), (7, (2, 3)), (30, (3, 20)), (1, (5, 5))],
)
def test_components_default_columns_make_a_square_mosaic(n_tiles, tile_shape):
    components = np.random.RandomState(0).normal(size=(n_tiles, math.prod(tile_shape)))
    fig = plot_components(components, tile_shape)
    height, width = _images(fig.axes[0])[0].get_array().shape
    assert 0.5 <= height / width <= 2.0
    assert all(2.0 <= side <= 12.0 for side in fig.get_size_inches())


def test_components_square_tiles_keep_the_square_root_rule():
    for n_tiles, n_cols in ((2, 2), (3, 2), (5, 3), (7, 3), (10, 4), (16, 4), (100, 10)):
        fig = plot_components(np.ones((n_tiles, 4)), (2, 2))
        assert _images(fig.axes[0])[0].get_array().shape[1] == 3 * n_cols - 1
        plt.close(fig)


def test_components_figure_size_is_capped():
    fig = plot_components(np.random.RandomState(0).normal(size=(100, 64)), (8, 8), n_cols=1)
    width, height = fig.get_size_inches()
    assert height == 12.0 and 2.0 <= width <= 12.0
    fig = plot_components(np.ones((100, 64)), (1, 64), n_cols=100)
    assert all(2.0 <= side <= 12.0 for side in fig.get_size_inches())


def test_components_drawn_again_into_the_same_axes_updates_its_colour_bar():
    fig, ax = plt.subplots(layout="constrained")
    rng = np.random.RandomState(0)
    plot_components(rng.normal(size=(4, 16)), (4, 4), ax=ax)
    plot_components(rng.normal(size=(4, 16)), (4, 4), ax=ax)
    assert len(fig.axes) == 2
    colorbar = _images(ax)[-1].colorbar
    assert colorbar.ax is fig.axes[1]
    np.testing.assert_allclose(colorbar.get_ticks(), [-1, 0, 1])
    assert colorbar.ax.get_ylabel()


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


def test_alpha_path_tells_stages_with_the_same_alpha_apart():
    X = np.random.RandomState(0).normal(size=(30, 4))
    model = SaturatingAutoEncoder(n_components=2, alpha=0.1, max_iter=1,
                                  keep_stage_components=True, random_state=0).fit(X)
    model.partial_fit(X)
    model.partial_fit(X)
    np.testing.assert_allclose(model.alpha_path_, [0.0, 0.1, 0.1, 0.1])
    fig = plot_alpha_path(model, 0, (2, 2))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["stage 0\nalpha = 0", "stage 1\nalpha = 0.1", "stage 2\nalpha = 0.1",
                      "stage 3\nalpha = 0.1"]
    fig, axes = plt.subplots(1, 4)
    plot_alpha_path(model, 0, (2, 2), ax=axes)
    assert [ax.get_title() for ax in axes] == titles


def _rendered_extent(fig, artist):
    return artist.get_window_extent(fig.canvas.get_renderer())


@pytest.mark.parametrize("alpha_step", [None, 0.1])
def test_alpha_path_suptitle_fits_the_figure(alpha_step):
    X = np.random.RandomState(0).normal(size=(30, 4))
    model = SaturatingAutoEncoder(n_components=2, alpha=0.1, alpha_step=alpha_step, max_iter=1,
                                  keep_stage_components=True, random_state=0).fit(X)
    fig = plot_alpha_path(model, 0, (2, 2))
    fig.canvas.draw()
    (suptitle,) = [text for text in fig.texts if text.get_text() == fig.get_suptitle()]
    extent = _rendered_extent(fig, suptitle)
    assert 0 <= extent.x0 and extent.x1 <= fig.bbox.width
    assert "Basis element 0" in fig.get_suptitle()


def _model_with_stages(staged_model, n_stages):
    model = copy.copy(staged_model)
    model.alpha_path_ = np.round(0.1 * np.arange(n_stages), 10)
    model.stage_components_ = np.random.RandomState(0).normal(size=(n_stages, 5, 12))
    return model


@pytest.mark.parametrize("n_stages", [9, 21, 101])
def test_alpha_path_wraps_many_stages_into_rows(staged_model, n_stages):
    fig = plot_alpha_path(_model_with_stages(staged_model, n_stages), 0, (3, 4))
    assert len(fig.axes) == n_stages
    assert all(2.0 <= side <= 12.0 for side in fig.get_size_inches())
    n_rows, n_cols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    assert n_rows > 1 and n_rows * n_cols >= n_stages > (n_rows - 1) * n_cols
    rows = {ax.get_subplotspec().rowspan.start for ax in fig.axes}
    assert rows == set(range(n_rows))
    fig.canvas.draw()
    titles = [_rendered_extent(fig, ax.title) for ax in fig.axes]
    for left, right in zip(titles, titles[1:]):
        if left.y0 == right.y0:  # neighbours in one row do not overlap
            assert left.x1 <= right.x0


def test_alpha_path_n_cols(staged_model):
    model = _model_with_stages(staged_model, 5)
    fig = plot_alpha_path(model, 1, (3, 4), n_cols=4)
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 3)
    assert len(fig.axes) == 5  # the unused sixth slot is removed
    fig = plot_alpha_path(model, 1, (3, 4), n_cols=2)
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (3, 2)
    assert len(fig.axes) == 5
    fig = plot_alpha_path(model, 1, (3, 4), n_cols=10)
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (1, 5)
    with pytest.raises(ValueError, match="n_cols must be an int >= 1"):
        plot_alpha_path(model, 1, (3, 4), n_cols=0)


def test_alpha_path_into_rows_of_given_axes(staged_model):
    # As the reproduction's Figure 5: one row of axes per element.
    fig, axes = plt.subplots(2, 3)
    for row, index in enumerate((0, 4)):
        assert plot_alpha_path(staged_model, index, (3, 4), ax=axes[row]) is fig
    assert len(fig.axes) == 6
    for row, index in enumerate((0, 4)):
        for ax, stage in zip(axes[row], staged_model.stage_components_):
            element = stage[index].reshape(3, 4)
            np.testing.assert_allclose(_images(ax)[0].get_array(), element / np.abs(element).max())
        assert axes[row, 0].get_ylabel() == f"element {index}"


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


def test_a_colour_bar_of_the_callers_is_never_taken_over():
    fig, (left, right) = plt.subplots(1, 2)
    image = left.imshow(np.arange(9.0).reshape(3, 3))
    right.imshow(np.arange(9.0).reshape(3, 3))
    callers = fig.colorbar(image, ax=[left, right], label="the caller's data")
    plot_components(np.random.RandomState(0).standard_normal((6, 16)), (4, 4), ax=left)
    assert callers.ax.get_ylabel() == "the caller's data" and image.colorbar is callers
    assert callers.mappable is image
    plt.close(fig)


def test_two_activations_of_one_name_are_told_apart_in_the_legends():
    fig = plot_activation("shrink", shrink_width=0.1)
    ax_f, ax_c = fig.axes[:2]
    plot_activation("shrink", shrink_width=0.5, ax=(ax_f, ax_c))
    labels = [text.get_text() for text in ax_f.get_legend().get_texts()]
    assert "f of shrink" in labels and "f of shrink (width 0.5)" in labels
    plt.close(fig)
