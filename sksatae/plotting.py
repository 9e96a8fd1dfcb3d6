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
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from .activations import get_activation

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
        creates a figure with two stacked axes.

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
    ax_f.plot(z, values, color="C0", linewidth=2, label="f")
    ax_c.plot(z, penalty, color="C3", linewidth=2,
              label=f"f_c ({_complementary_rule(activation)})")
    ax_c.plot(z, slope, color="0.25", linewidth=1.2, linestyle="--", label="|f'| (for comparison)")
    for axis in (ax_f, ax_c):
        for number, (start, stop) in enumerate(flat_spans):
            axis.axvspan(start, stop, color="0.5", alpha=0.2, linewidth=0,
                         label=None if number else "flat set of f (f' = 0)")
        axis.axhline(0, color="0.3", linewidth=0.6)
        axis.grid(True, alpha=0.3)
        axis.set_xlim(z_range)
    ax_f.set_title(f"{activation.name}: activation f")
    ax_f.set_ylabel("f(z)")
    if flat_spans:
        ax_f.legend(loc="upper left", fontsize="small")
    ax_c.set_title("penalty f_c and |f'|")
    ax_c.set_ylabel("f_c(z), |f'(z)|")
    ax_c.set_xlabel("pre-activation z")
    ax_c.legend(loc="best", fontsize="x-small")
    return fig


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
        Training data, drawn as yellow points when given.

    extent : tuple of four floats, default=(-1, 1, -1, 1)
        The region ``(x_min, x_max, y_min, y_max)`` to draw.

    resolution : int, default=200
        Number of grid pixels along each axis (at least 2).

    ax : matplotlib Axes, default=None
        Axes to draw into; None creates a figure.

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
        The figure holding the plot.
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
    if X_train is not None:
        X_train = check_array(X_train, input_name="X_train")
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
    names = getattr(estimator, "feature_names_in_", None)
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
    fig.colorbar(image, ax=ax, label="reconstruction energy")
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
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(_default_energy_title(estimator) if title is None else title)
    if X_train is not None or show_bases:
        ax.legend(loc="upper right", fontsize="x-small", framealpha=0.8, markerscale=2)
    return fig


def _components_of(estimator_or_array):
    if hasattr(estimator_or_array, "fit"):
        check_is_fitted(estimator_or_array, "components_")
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


def _gray_colormap(plt):
    return plt.get_cmap("gray").with_extremes(bad="white")


def plot_components(estimator_or_array, image_shape, n_cols=None, max_components=100, ax=None,
                    title=None, order=None, channel_order="last"):
    """Plot decoder basis elements as a mosaic of image tiles (Figure 4).

    Each tile is contrast-normalised on its own: a grayscale tile is divided
    by its largest absolute value, so it spans ``[-1, 1]`` with 0 drawn
    mid-gray (black negative, white positive); an RGB tile is rescaled to
    ``[0, 1]`` by its own minimum and maximum. Tiles are separated by
    one-pixel gaps.

    Parameters
    ----------
    estimator_or_array : fitted estimator or array-like of shape (n_components, n_features)
        An estimator with ``components_`` (one basis element per row), or
        such an array.

    image_shape : tuple of int
        ``(height, width)`` for grayscale or ``(height, width, 3)`` for RGB;
        its product must equal ``n_features``.

    n_cols : int, default=None
        Tiles per row; None makes the mosaic about square.

    max_components : int, default=100
        Largest number of tiles drawn: the first ones in ``order``.

    ax : matplotlib Axes, default=None
        Axes to draw the mosaic into; None creates a figure.

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
    n_cols = math.ceil(math.sqrt(n_tiles)) if n_cols is None else _check_positive_int(n_cols, "n_cols")
    n_cols = min(n_cols, n_tiles)
    n_rows = math.ceil(n_tiles / n_cols)

    height, width = image_shape[:2]
    rgb = len(image_shape) == 3
    mosaic_shape = (n_rows * (height + 1) - 1, n_cols * (width + 1) - 1)
    # Gaps are NaN (drawn white) in grayscale, transparent in RGBA.
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
        width_inches = 6.0 if rgb else 6.8
        fig, ax = plt.subplots(figsize=(width_inches, 6.0 * aspect + 0.6), layout="constrained")
    else:
        (ax,) = _check_axes(ax, 1)
        fig = ax.figure
    if rgb:
        ax.imshow(mosaic, interpolation="nearest")
    else:
        image = ax.imshow(mosaic, cmap=_gray_colormap(plt), vmin=-1, vmax=1, interpolation="nearest")
        colorbar = fig.colorbar(image, ax=ax, shrink=0.8, ticks=[-1, 0, 1])
        colorbar.set_label("weight / largest |weight| of its tile")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is None:
        title = f"Decoder basis elements ({n_tiles} of {n_components})"
    ax.set_title(title)
    return fig


def plot_alpha_path(estimator, index, image_shape, ax=None, channel_order="last"):
    """Plot one basis element at the end of each alpha stage (Figure 5).

    Needs the snapshots ``stage_components_`` that the estimator keeps when
    fitted with ``keep_stage_components=True``, and shows the stages that have
    one. Tiles are contrast-normalised
    each on its own, as in :func:`plot_components`, so they show how the
    element's shape changes as the saturation strength grows.

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
        One Axes per stage; None creates a figure with the tiles in a row.

    channel_order : {"last", "first"}, default="last"
        Layout of RGB values, as in :func:`plot_components`.

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

    if ax is None:
        fig, axes = plt.subplots(1, n_stages, figsize=(0.4 + 1.5 * n_stages, 2.3),
                                 squeeze=False, layout="constrained")
        axes = list(axes[0])
        fig.suptitle(f"Basis element {index} at the end of each alpha stage")
    else:
        axes = _check_axes(ax, n_stages)
        fig = axes[0].figure
    gray = _gray_colormap(plt)
    for axis, alpha, basis in zip(axes, alphas, stages):
        tile = _tile(np.asarray(basis[index], dtype=np.float64), image_shape, channel_order)
        if len(image_shape) == 3:
            axis.imshow(tile, interpolation="nearest")
        else:
            axis.imshow(tile, cmap=gray, vmin=-1, vmax=1, interpolation="nearest")
        axis.set_title(f"alpha = {alpha:g}")
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0].set_ylabel(f"element {index}")
    return fig
