"""Figures of Goroshin & LeCun (2013) for fitted saturating auto-encoders.

- :func:`plot_activation`: a nonlinearity, its complementary function and ``|f'|``
  (Figures 1 and 6);
- :func:`plot_energy_landscape`: the reconstruction energy of a 2-D model (Figures 2 and 3);
- :func:`plot_components`: the decoder basis as image tiles (Figure 4);
- :func:`plot_alpha_path`: one basis element as alpha grows (Figure 5).

matplotlib is an optional dependency, imported only when a function here is
called: ``pip install "sksatae[plot]"``.
"""

import math
import weakref
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from .activations import Shrink, get_activation

__all__ = ["plot_activation", "plot_energy_landscape", "plot_components", "plot_alpha_path"]

_INSTALL_HINT = 'pip install "sksatae[plot]"'


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"sksatae's plotting functions need matplotlib; install it with {_INSTALL_HINT}."
        ) from error
    return plt


def _check_axes(ax, count, name="ax"):
    """``ax`` as a list of ``count`` Axes, or a ValueError saying what was expected."""
    from matplotlib.axes import Axes

    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != count or not all(isinstance(one, Axes) for one in axes):
        raise ValueError(
            f"{name} must be {'an Axes' if count == 1 else f'a sequence of {count} Axes'}, "
            f"got {ax!r}."
        )
    return axes


def _is_real(value):
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_positive_int(value, name, minimum=1):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


_MIN_INCHES, _MAX_INCHES = 2.0, 12.0


def _figure_size(content_width, content_height, margin_width=0.0, margin_height=0.0):
    """A figure size in inches for content plus fixed margins, within
    ``[_MIN_INCHES, _MAX_INCHES]`` on both sides: content too large is scaled
    down keeping its aspect, a side too short is padded."""
    scale = min(1.0, (_MAX_INCHES - margin_width) / content_width,
                (_MAX_INCHES - margin_height) / content_height)
    return tuple(
        float(np.clip(content * scale + margin, _MIN_INCHES, _MAX_INCHES))
        for content, margin in ((content_width, margin_width), (content_height, margin_height))
    )


_COLORBARS = weakref.WeakSet()
"""The colour bars this module made: only those are reused, never one of the caller's."""


def _colorbar(fig, ax, image, label, **options):
    """A colour bar for ``image``; when ``ax`` already has one (the Axes is
    drawn into again) that one is updated rather than a second one added."""
    existing = next((old.colorbar for old in ax.images[:-1] if old.colorbar in _COLORBARS), None)
    if existing is None:
        colorbar = fig.colorbar(image, ax=ax, **options)
        _COLORBARS.add(colorbar)
    else:
        colorbar, previous = existing, existing.mappable
        previous.callbacks.disconnect(previous.colorbar_cid)
        previous.colorbar = previous.colorbar_cid = None
        image.colorbar = colorbar
        image.colorbar_cid = image.callbacks.connect("changed", colorbar.update_normal)
        colorbar.update_normal(image)
        if "ticks" in options:
            colorbar.set_ticks(options["ticks"])
    colorbar.set_label(label)
    return colorbar


def _legend(ax, **options):
    """A legend with one entry per label, so that drawing into the same Axes
    again does not repeat the entries."""
    entries = {}
    for handle, label in zip(*ax.get_legend_handles_labels()):
        entries.setdefault(label, handle)
    return ax.legend(list(entries.values()), list(entries), **options)


def plot_activation(activation, shrink_width=0.1, ax=None, z_range=(-2, 2)):
    """Plot a nonlinearity above its complementary function and ``|f'|`` (Figures 1 and 6).

    The top panel shows ``f(z)``. The bottom one shows the saturation
    penalty ``f_c(z)`` with ``|f'(z)|`` dashed for comparison: for the
    closed forms ``f_c`` is the distance to f's flat set (Eq. 1), for an
    activation without a flat region it is Section 5.1's Eq. 3, which
    plateaus where ``|f'|`` merely touches zero (at the top of a bump, say)
    and falls only where f stays flat over a stretch. The flat set
    (``f' = 0`` on an interval) is shaded in both panels when f has one.

    Parameters
    ----------
    activation : {"shrink", "relu", "satlinear", "sigmoid", "tanh"} or \
            :class:`~sksatae.activations.Activation`
        The nonlinearity, as in :class:`~sksatae.SaturatingAutoEncoder`,
        for instance ``TabulatedActivation.from_function(f)`` for any
        vectorised ``f``.

    shrink_width : float, default=0.1
        Half-width of the shrink's flat region, for the name ``"shrink"``
        (ignored otherwise).

    ax : pair of matplotlib Axes, default=None
        Axes for ``f`` and for ``f_c`` with ``|f'|``, in that order. None
        creates a figure with two stacked axes. Axes that already show an
        activation drawn by this function get the new one on top, to
        compare them: in the next colour of the property cycle, with the
        legends and the title naming each activation.

    z_range : tuple of two floats, default=(-2, 2)
        The interval of pre-activations ``z`` to plot.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the plots.

    Notes
    -----
    The curves are ``activation.function``, ``activation.complementary``
    and the absolute value of ``activation.derivative`` (0 on the closed
    flat set, the subgradient training uses) at 1001 points of ``z_range``;
    the shading covers the intervals of ``activation.flat_set``.
    """
    plt = _pyplot()
    if (
        len(np.shape(z_range)) != 1 or len(z_range) != 2
        or not all(_is_real(bound) for bound in z_range) or not z_range[0] < z_range[1]
    ):
        raise ValueError(f"z_range must be two finite numbers (low, high) with low < high, got {z_range!r}.")
    if not _is_real(shrink_width) or shrink_width < 0:
        raise ValueError(f"shrink_width must be a finite number >= 0, got {shrink_width!r}.")
    activation = get_activation(activation, shrink_width)
    if ax is not None:
        ax_f, ax_c = _check_axes(ax, 2)
    z = np.linspace(z_range[0], z_range[1], 1001)
    values = activation.function(z)
    penalty = activation.complementary(z)
    slope = np.abs(activation.derivative(z))
    flat_spans = _flat_spans(activation.flat_set, z_range)

    if ax is None:
        fig, (ax_f, ax_c) = plt.subplots(2, 1, sharex=True, figsize=(4.5, 5), layout="constrained")
    else:
        fig = ax_f.figure
    name, rule = activation.name, _complementary_rule(activation)
    # Activations drawn into these Axes before whose curves are still there.
    shown = [entry for entry in _ACTIVATIONS_SHOWN.get(ax_f, []) if entry[1][0][0] in ax_f.lines]
    key = (name, activation.width if isinstance(activation, Shrink) else None)
    same = [shown_name for shown_name, _, shown_key in shown if shown_key == key]
    if same:  # drawn again: the same labels, which the legends show once
        name = same[0]
    elif any(shown_key[0] == name for _, _, shown_key in shown):  # shrinks of other widths
        name = f"{name} (width {activation.width:g})"
    named = {
        "f": f"f of {name}",
        "f_c": f"f_c of {name} ({rule})",
        "slope": f"|f'| of {name} (for comparison)",
        "flat": f"flat set of {name} (f' = 0)",
    }
    if shown:  # a comparison: one colour per activation, each named in the legends
        labels = named
        colour = _OVERLAY_COLOURS[(len(shown) - 1) % len(_OVERLAY_COLOURS)]
        f_colour = penalty_colour = slope_colour = shade_colour = colour
        for _, relabel, _ in shown:
            for artist, label in relabel:
                artist.set_label(label)
    else:
        labels = {"f": "f", "f_c": f"f_c ({rule})", "slope": "|f'| (for comparison)",
                  "flat": "flat set of f (f' = 0)"}
        f_colour, penalty_colour, slope_colour, shade_colour = "C0", "C3", "0.25", "0.5"
    (f_line,) = ax_f.plot(z, values, color=f_colour, linewidth=2, label=labels["f"])
    (penalty_line,) = ax_c.plot(z, penalty, color=penalty_colour, linewidth=2,
                                label=labels["f_c"])
    (slope_line,) = ax_c.plot(z, slope, color=slope_colour, linewidth=1.2, linestyle="--",
                              label=labels["slope"])
    relabel = [(f_line, named["f"]), (penalty_line, named["f_c"]), (slope_line, named["slope"])]
    for axis in (ax_f, ax_c):
        for number, (start, stop) in enumerate(flat_spans):
            span = axis.axvspan(start, stop, color=shade_colour, alpha=0.2, linewidth=0,
                                label=None if number else labels["flat"])
            if not number:
                relabel.append((span, named["flat"]))
        axis.axhline(0, color="0.3", linewidth=0.6)
        axis.grid(True, alpha=0.3)
        axis.set_xlim(z_range)
    shown.append((name, relabel, key))
    _ACTIVATIONS_SHOWN[ax_f] = shown
    names = dict.fromkeys(shown_name for shown_name, _, _ in shown)
    ax_f.set_title(f"{', '.join(names)}: activation f")
    ax_f.set_ylabel("f(z)")
    if flat_spans or len(shown) > 1:
        _legend(ax_f, loc="upper left", fontsize="small")
    ax_c.set_title("penalty f_c and |f'|")
    ax_c.set_ylabel("f_c(z), |f'(z)|")
    ax_c.set_xlabel("pre-activation z")
    _legend(ax_c, loc="best", fontsize="x-small")
    return fig


# Colours of a second, third, ... activation drawn into the same Axes: the
# property cycle without C0 and C3, the colours of the first one's f and f_c.
_OVERLAY_COLOURS = tuple(f"C{number}" for number in (1, 2, 4, 5, 6, 7, 8, 9))

# For each Axes of f that plot_activation drew into, one (name, [(artist, label
# naming the activation)], (activation name, shrink width or None)) per
# activation: the first one's curves are labelled without its name until a
# second one is drawn over it.
_ACTIVATIONS_SHOWN = weakref.WeakKeyDictionary()


def _flat_spans(flat_set, z_range):
    """The intervals of ``flat_set`` clipped to ``z_range``, those of positive width."""
    low, high = z_range
    spans = [(max(start, low), min(stop, high)) for start, stop in flat_set]
    return [(start, stop) for start, stop in spans if start < stop]


def _complementary_rule(activation):
    if getattr(activation, "complementary_form", "distance") == "variation":
        return "Eq. 3: min(M+, M-)"
    return "Eq. 1: distance to the flat set"


def _check_extent(extent):
    if len(np.shape(extent)) != 1 or len(extent) != 4 or not all(_is_real(v) for v in extent):
        raise ValueError(f"extent must be four finite numbers (x_min, x_max, y_min, y_max), got {extent!r}.")
    x_min, x_max, y_min, y_max = (float(v) for v in extent)
    if not (x_min < x_max and y_min < y_max):
        raise ValueError(f"extent must have x_min < x_max and y_min < y_max, got {extent!r}.")
    return x_min, x_max, y_min, y_max


def _pixel_centres(low, high, resolution):
    return low + (np.arange(resolution) + 0.5) * ((high - low) / resolution)


def _default_energy_title(estimator):
    details = []
    if isinstance(getattr(estimator, "activation", None), str):
        details.append(estimator.activation)
    alpha_path = getattr(estimator, "alpha_path_", None)
    if alpha_path is not None and len(alpha_path):
        details.append(f"alpha = {alpha_path[-1]:g}")
    return "Reconstruction energy" + (f" ({', '.join(details)})" if details else "")


def plot_energy_landscape(estimator, X_train=None, extent=(-1, 1, -1, 1), resolution=200,
                          ax=None, vmax=None, show_bases=True, title=None):
    """Plot the reconstruction energy of a 2-D model over a grid (Figures 2 and 3).

    ``E(x) = estimator.energy(x)`` is evaluated at the centres of a
    ``resolution`` x ``resolution`` grid of pixels covering ``extent`` and
    shown as an image in which dark means low energy (well reconstructed),
    with a colour bar. A saturating auto-encoder should be dark only near
    its training data.

    Parameters
    ----------
    estimator : fitted SaturatingAutoEncoder
        A model fitted on 2 features (anything with ``energy`` and, for
        ``show_bases``, ``encoder_weights_`` and ``components_``).

    X_train : array-like of shape (n_samples, 2), default=None
        Training data, drawn as yellow points when given. A dataframe whose
        column names are those the model was fitted on, in any order, is
        drawn in the model's order; other column names raise a ValueError.

    extent : tuple of four floats, default=(-1, 1, -1, 1)
        The region ``(x_min, x_max, y_min, y_max)`` to draw.

    resolution : int, default=200
        Number of grid pixels along each axis (at least 2).

    ax : matplotlib Axes, default=None
        Axes to draw into; None creates a figure. Drawing into the same Axes
        again updates its colour bar rather than adding one.

    vmax : float, default=None
        The energy shown brightest; higher energies are clipped to it.
        None uses the largest energy on the grid. Pass the same value to
        compare several models on one scale.

    show_bases : bool, default=True
        Draw the encoder vectors (rows of ``encoder_weights_``) as red
        arrows and the decoder vectors (rows of ``components_``) as thinner
        green arrows on top, all **from the origin**. With tied weights
        each green arrow lies on its red one.

    title : str, default=None
        The axes title; None names the activation and the final alpha.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the plot. The axes are labelled with the
        estimator's ``feature_names_in_`` when it has them.
    """
    plt = _pyplot()
    check_is_fitted(estimator)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features != 2:
        raise ValueError(
            "plot_energy_landscape draws models of 2-D data only; the estimator was "
            f"fitted on {n_features} features."
        )
    x_min, x_max, y_min, y_max = _check_extent(extent)
    resolution = _check_positive_int(resolution, "resolution", minimum=2)
    if vmax is not None and (not _is_real(vmax) or vmax <= 0):
        raise ValueError(f"vmax must be None or a finite number > 0, got {vmax!r}.")
    names = getattr(estimator, "feature_names_in_", None)
    if X_train is not None:
        X_train = check_array(_in_fitted_column_order(X_train, names), input_name="X_train")
        if X_train.shape[1] != 2:
            raise ValueError(f"X_train must have 2 features, got {X_train.shape[1]}.")
    if show_bases and not all(hasattr(estimator, name) for name in ("encoder_weights_", "components_")):
        raise ValueError(
            "show_bases=True needs the estimator's encoder_weights_ and components_; "
            "pass show_bases=False for other estimators."
        )

    xx, yy = np.meshgrid(_pixel_centres(x_min, x_max, resolution),
                         _pixel_centres(y_min, y_max, resolution))
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    if names is not None:  # fitted on a frame: a plain array would draw a warning
        import pandas as pd

        grid = pd.DataFrame(grid, columns=names)
    energy = np.asarray(estimator.energy(grid), dtype=np.float64).reshape(resolution, resolution)

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.6, 4.6), layout="constrained")
    else:
        (ax,) = _check_axes(ax, 1)
        fig = ax.figure
    image = ax.imshow(energy, origin="lower", extent=(x_min, x_max, y_min, y_max),
                      cmap="magma", vmin=0.0, vmax=vmax, interpolation="nearest")
    _colorbar(fig, ax, image, "reconstruction energy")
    if X_train is not None:
        ax.scatter(X_train[:, 0], X_train[:, 1], s=8, c="yellow", edgecolors="black",
                   linewidths=0.3, label="training data", zorder=3)
    if show_bases:
        encoder = np.asarray(estimator.encoder_weights_, dtype=np.float64)
        decoder = np.asarray(estimator.components_, dtype=np.float64)
        origin = np.zeros(len(encoder))
        ax.quiver(origin, origin, encoder[:, 0], encoder[:, 1], color="red", angles="xy",
                  scale_units="xy", scale=1, width=0.012, label="encoder vectors", zorder=4)
        ax.quiver(origin, origin, decoder[:, 0], decoder[:, 1], color="limegreen", angles="xy",
                  scale_units="xy", scale=1, width=0.005, label="decoder vectors", zorder=5)
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_min, y_max)
    ax.set_xlabel("$x_1$" if names is None else str(names[0]))
    ax.set_ylabel("$x_2$" if names is None else str(names[1]))
    ax.set_title(_default_energy_title(estimator) if title is None else title)
    if X_train is not None or show_bases:
        _legend(ax, loc="upper right", fontsize="x-small", framealpha=0.8, markerscale=2)
    return fig


def _in_fitted_column_order(X, names):
    """``X`` with its named columns in the order of ``names``, the model's
    ``feature_names_in_``, or a ValueError when the names differ."""
    columns = getattr(X, "columns", None)
    if names is None or columns is None or not all(isinstance(c, str) for c in columns):
        return X
    columns, names = list(columns), [str(name) for name in names]
    if columns == names:
        return X
    if sorted(columns) == sorted(names):
        return X[names]
    raise ValueError(
        f"The feature names of X_train should match those the estimator was fitted on: "
        f"{names}, got {columns}."
    )


def _components_of(estimator_or_array):
    if hasattr(estimator_or_array, "fit"):
        check_is_fitted(estimator_or_array)
        if not hasattr(estimator_or_array, "components_"):
            hint = ("its last step, pipeline[-1]" if hasattr(estimator_or_array, "steps")
                    else "an estimator that has one")
            raise ValueError(
                f"{type(estimator_or_array).__name__} has no components_ to plot; pass {hint}, "
                "or the array of basis elements itself."
            )
    components = getattr(estimator_or_array, "components_", estimator_or_array)
    return check_array(components, input_name="components")


def _check_image_shape(image_shape, n_features):
    shape = tuple(np.ravel(np.asarray(image_shape, dtype=object)))
    valid = (
        len(shape) in (2, 3)
        and all(isinstance(n, Integral) and not isinstance(n, bool) and n >= 1 for n in shape)
        and (len(shape) == 2 or shape[2] == 3)
    )
    if not valid:
        raise ValueError(
            f"image_shape must be (height, width) for grayscale or (height, width, 3) "
            f"for RGB, got {image_shape!r}."
        )
    shape = tuple(int(n) for n in shape)
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape {shape} holds {math.prod(shape)} values but each basis "
            f"element has {n_features}."
        )
    return shape


def _check_channel_order(channel_order):
    if channel_order not in ("last", "first"):
        raise ValueError(f"channel_order must be 'last' or 'first', got {channel_order!r}.")


def _tile(vector, image_shape, channel_order):
    """One basis element as an image: grayscale scaled by its largest ``|value|``
    into ``[-1, 1]`` (0 stays mid-gray), RGB rescaled to ``[0, 1]``."""
    if len(image_shape) == 2:
        tile = vector.reshape(image_shape)
        peak = np.max(np.abs(tile))
        return tile / peak if peak > 0 else np.zeros(image_shape)
    height, width, _ = image_shape
    if channel_order == "first":
        tile = vector.reshape(3, height, width).transpose(1, 2, 0)
    else:
        tile = vector.reshape(image_shape)
    low, high = tile.min(), tile.max()
    return (tile - low) / (high - low) if high > low else np.full(image_shape, 0.5)


# Gaps between tiles and empty slots: a colour no tile can take, so that a
# tile at +1 (white) or -1 (black) stays apart from them.
_GAP_COLOUR = "#7fa7d4"


def _gray_colormap(plt):
    return plt.get_cmap("gray").with_extremes(bad=_GAP_COLOUR)


def _square_n_cols(n_tiles, tile_height, tile_width):
    """Tiles per row making a mosaic with one-pixel gaps closest to square in
    pixels; on a tie, the wider one."""
    def distance_to_square(n_cols):
        n_rows = math.ceil(n_tiles / n_cols)
        height = n_rows * (tile_height + 1) - 1
        width = n_cols * (tile_width + 1) - 1
        return round(abs(math.log(height / width)), 9), -n_cols

    return min(range(1, n_tiles + 1), key=distance_to_square)


def plot_components(estimator_or_array, image_shape, n_cols=None, max_components=100, ax=None,
                    title=None, order=None, channel_order="last"):
    """Plot decoder basis elements as a mosaic of image tiles (Figure 4).

    Each tile is contrast-normalised on its own: a grayscale tile is divided
    by its largest absolute value, so it spans ``[-1, 1]`` with 0 drawn
    mid-gray (black negative, white positive); an RGB tile is rescaled to
    ``[0, 1]`` by its own minimum and maximum. Tiles are separated by
    one-pixel gaps, drawn light blue in grayscale, as are empty slots, and
    transparent in RGB.

    Parameters
    ----------
    estimator_or_array : fitted estimator or array-like of shape (n_components, n_features)
        An estimator with ``components_`` (one basis element per row), or
        such an array. For a pipeline, pass its last step.

    image_shape : tuple of int
        ``(height, width)`` for grayscale or ``(height, width, 3)`` for RGB;
        its product must equal ``n_features``.

    n_cols : int, default=None
        Tiles per row; None makes the mosaic about square in pixels, taking
        the shape of the tiles into account.

    max_components : int, default=100
        Largest number of tiles drawn: the first ones in ``order``.

    ax : matplotlib Axes, default=None
        Axes to draw the mosaic into; None creates a figure, at most 12
        inches on a side. Drawing into the same Axes again updates its
        colour bar rather than adding one.

    title : str, default=None
        The axes title; None says how many elements are shown.

    order : array-like of int, default=None
        Indices of the basis elements in the order to draw them (for
        instance sorted by how often each unit is active); None draws them
        in index order.

    channel_order : {"last", "first"}, default="last"
        Layout of an RGB basis element's values: ``"last"`` for
        ``(height, width, 3)`` row-major, ``"first"`` for CIFAR-10's
        channel-major layout (all red values, then green, then blue, as
        returned by :func:`sksatae.datasets.load_cifar10`). Ignored for
        grayscale.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the plot.
    """
    plt = _pyplot()
    components = _components_of(estimator_or_array)
    n_components, n_features = components.shape
    image_shape = _check_image_shape(image_shape, n_features)
    _check_channel_order(channel_order)
    max_components = _check_positive_int(max_components, "max_components")
    if order is None:
        indices = np.arange(n_components)
    else:
        indices = np.asarray(order)
        if (indices.ndim != 1 or indices.size == 0 or indices.dtype.kind not in "iu"
                or indices.min() < 0 or indices.max() >= n_components):
            raise ValueError(
                f"order must be a non-empty sequence of indices in [0, {n_components}), "
                f"got {order!r}."
            )
    indices = indices[:max_components]
    n_tiles = len(indices)
    height, width = image_shape[:2]
    if n_cols is None:
        n_cols = _square_n_cols(n_tiles, height, width)
    n_cols = min(_check_positive_int(n_cols, "n_cols"), n_tiles)
    n_rows = math.ceil(n_tiles / n_cols)

    rgb = len(image_shape) == 3
    mosaic_shape = (n_rows * (height + 1) - 1, n_cols * (width + 1) - 1)
    # Gaps are NaN (drawn in _GAP_COLOUR) in grayscale, transparent in RGBA.
    mosaic = np.zeros(mosaic_shape + (4,)) if rgb else np.full(mosaic_shape, np.nan)
    for position, index in enumerate(indices):
        row, col = divmod(position, n_cols)
        top, left = row * (height + 1), col * (width + 1)
        tile = _tile(components[index], image_shape, channel_order)
        if rgb:
            mosaic[top:top + height, left:left + width, :3] = tile
            mosaic[top:top + height, left:left + width, 3] = 1.0
        else:
            mosaic[top:top + height, left:left + width] = tile

    if ax is None:
        aspect = mosaic_shape[0] / mosaic_shape[1]
        # Margins for the title and, in grayscale, the colour bar; at least 4
        # inches wide, so that a narrow mosaic's title still fits.
        width_inches, height_inches = _figure_size(6.0, 6.0 * aspect, 0.0 if rgb else 0.8, 0.6)
        figsize = (max(width_inches, 4.0), height_inches)
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        (ax,) = _check_axes(ax, 1)
        fig = ax.figure
    if rgb:
        ax.imshow(mosaic, interpolation="nearest")
    else:
        image = ax.imshow(mosaic, cmap=_gray_colormap(plt), vmin=-1, vmax=1, interpolation="nearest")
        _colorbar(fig, ax, image, "weight / largest |weight| of its tile", shrink=0.8,
                  ticks=[-1, 0, 1])
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        title = f"Decoder basis elements ({n_tiles} of {n_components})"
    ax.set_title(title)
    return fig


def plot_alpha_path(estimator, index, image_shape, ax=None, channel_order="last", n_cols=None):
    """Plot one basis element at the end of each alpha stage (Figure 5).

    Needs the snapshots ``stage_components_`` that the estimator keeps when
    fitted with ``keep_stage_components=True``, and shows the stages that have
    one. Tiles are contrast-normalised
    each on its own, as in :func:`plot_components`, so they show how the
    element's shape changes as the saturation strength grows. Each tile is
    titled with its alpha, and also with its stage ``k`` (the position in
    ``alpha_path_``) when several stages share an alpha, as after
    ``partial_fit``.

    Parameters
    ----------
    estimator : fitted SaturatingAutoEncoder
        Fitted with ``keep_stage_components=True``.

    index : int
        Which basis element (row of ``components_``) to follow.

    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, 3)``, as in
        :func:`plot_components`.

    ax : sequence of matplotlib Axes, default=None
        One Axes per stage, for instance a row of a grid of subplots; None
        creates a figure, at most 12 inches on a side, with the tiles in
        rows of ``n_cols``.

    channel_order : {"last", "first"}, default="last"
        Layout of RGB values, as in :func:`plot_components`.

    n_cols : int, default=None
        At most this many tiles per row of the figure created when ``ax`` is
        None, in rows made as even as they can be (5 stages with
        ``n_cols=4`` make rows of 3 and 2); None picks the number that draws
        the tiles largest within the figure's bounds, in as few rows as
        possible. Ignored when ``ax`` is given.

    Returns
    -------
    fig : matplotlib Figure
        The figure holding the plots.
    """
    plt = _pyplot()
    check_is_fitted(estimator)
    stages = getattr(estimator, "stage_components_", None)
    if stages is None:
        raise ValueError(
            "plot_alpha_path needs the basis at the end of each alpha stage, "
            "stage_components_: fit the estimator with keep_stage_components=True."
        )
    kept = ~np.isnan(stages).all(axis=(1, 2))  # NaN: run before snapshots were kept
    if not kept.any():
        raise ValueError("stage_components_ holds no snapshot: every stage ran before "
                         "keep_stage_components was set.")
    alphas, stages = np.asarray(estimator.alpha_path_)[kept], stages[kept]
    n_stages, n_components, n_features = stages.shape
    if not isinstance(index, Integral) or isinstance(index, bool) or not 0 <= index < n_components:
        raise ValueError(f"index must be an int in [0, {n_components}), got {index!r}.")
    image_shape = _check_image_shape(image_shape, n_features)
    _check_channel_order(channel_order)
    if n_cols is not None:
        n_cols = _check_positive_int(n_cols, "n_cols")

    repeated = len(np.unique(alphas)) < n_stages
    titles = [f"stage {stage}\nalpha = {alpha:g}" if repeated else f"alpha = {alpha:g}"
              for stage, alpha in zip(np.flatnonzero(kept), alphas)]
    title_options = {}
    if ax is None:
        height, width = image_shape[:2]
        n_rows, n_cols, figsize, tile_width = _alpha_path_layout(
            n_stages, min(max(height / width, 0.25), 4.0), 2 if repeated else 1, n_cols)
        fig, grid = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False,
                                 layout="constrained")
        axes = list(grid.ravel())
        for unused in axes[n_stages:]:
            unused.remove()
        axes = axes[:n_stages]
        # Wrapped onto two lines where one would not fit the figure's width.
        separator = " " if figsize[0] >= 5.0 else "\n"
        fig.suptitle(f"Basis element {index}{separator}at the end of each alpha stage")
        from matplotlib.font_manager import FontProperties

        # Small tiles get smaller titles, so that neighbouring ones do not overlap.
        longest = max(len(line) for title in titles for line in title.split("\n"))
        default = FontProperties(size=plt.rcParams["axes.titlesize"]).get_size_in_points()
        title_options["fontsize"] = min(default, 72 * tile_width / (0.6 * longest))
    else:
        axes = _check_axes(ax, n_stages)
        fig = axes[0].figure
    gray = _gray_colormap(plt)
    for axis, title, basis in zip(axes, titles, stages):
        tile = _tile(np.asarray(basis[index], dtype=np.float64), image_shape, channel_order)
        if len(image_shape) == 3:
            axis.imshow(tile, interpolation="nearest")
        else:
            axis.imshow(tile, cmap=gray, vmin=-1, vmax=1, interpolation="nearest")
        axis.set_title(title, **title_options)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0].set_ylabel(f"element {index}")
    return fig


def _alpha_path_layout(n_stages, tile_aspect, title_lines, n_cols=None):
    """Rows, columns, figure size and tile width (inches) of a grid of
    ``n_stages`` tiles; None columns draws the tiles largest (up to 1.5
    inches wide) within the figure's bounds, in as few rows as possible."""
    row_margin = 0.25 + 0.2 * title_lines  # the tiles' titles
    margin_width, margin_height = 0.4, 0.6  # the row label, the suptitle

    def tile_width(n_cols):
        n_rows = math.ceil(n_stages / n_cols)
        return min(1.5, (_MAX_INCHES - margin_width) / n_cols,
                   (_MAX_INCHES - margin_height - row_margin * n_rows) / (n_rows * tile_aspect))

    if n_cols is None:
        n_cols = max(range(1, n_stages + 1), key=lambda n: (round(tile_width(n), 6), n))
    n_rows = math.ceil(n_stages / min(n_cols, n_stages))
    n_cols = math.ceil(n_stages / n_rows)  # rows as even as they can be
    width = max(tile_width(n_cols), 0.1)
    figsize = (float(np.clip(margin_width + width * n_cols, 3.2, _MAX_INCHES)),
               float(np.clip(margin_height + n_rows * (width * tile_aspect + row_margin),
                             _MIN_INCHES, _MAX_INCHES)))
    return n_rows, n_cols, figsize, width
