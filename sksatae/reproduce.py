"""Reproduce the experiments of Goroshin & LeCun (2013) on bundled data.

``python -m sksatae reproduce`` runs Figures 1 to 6 of the paper on data that
ships with the package or is generated (the 2-D spiral of
:func:`~sksatae.datasets.make_manifold_2d`, natural image patches cut from
scikit-learn's sample photographs, scikit-learn's digits binarised as a
stand-in for binary MNIST; MNIST and CIFAR-10 only when their files are given),
adds Section 5.1's extension to differentiable activations (Figure 6, and the
energy landscape of Figure 2 for a SATAE-sigmoid), measures the paper's claims
as numbers, and writes the figures, ``metrics.json`` and a self-contained
``report.html`` into one folder.

Every claim is a measured number with a threshold fixed in :data:`CLAIM_THRESHOLDS`;
``metrics.json`` records the number, the threshold and whether the claim held.
See ``docs/reproduction.md`` for what was found and why.
"""

import copy
import html
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["run_reproduction", "filter_spread", "CLAIM_THRESHOLDS"]

ENERGY_THRESHOLD = 0.01
"""A point of the 2-D grid is "well reconstructed" when its energy is below this."""

CLAIM_THRESHOLDS = {
    "contraction_ratio": 0.75,
    "l1_identity_relative_error": 1e-6,
    "sparsity_monotone_tolerance": 0.005,
    "sparsity_total_drop": 0.5,
    "sparsity_regularised_drop": 0.75,
    "off_data_ratio_unregularised": 2.0,
    "off_data_ratio_growth": 1.5,
    "spread_ratio": 0.85,
    "bump_slope_at_top": 1e-6,
    "bump_plateau_fraction": 0.5,
}
"""The thresholds of the claims (see :func:`run_reproduction` for their use)."""

SETTINGS = {
    "full": {
        "seeds": (0, 1, 2),
        "toy_samples": 200,
        "toy_epochs": 30,
        "grid_resolution": 101,
        "figure2_alphas": (0.0, 0.02, 0.05, 0.1),
        "figure2_alpha_step": 0.01,
        "figure2_encoder_scale": 0.1,
        "figure2_sigmoid_alphas": (0.0, 0.05, 0.1, 0.15, 0.2),
        "figure3_alphas": (0.0, 0.05, 0.1, 0.2),
        "figure3_alpha_step": 0.05,
        "patches": 10000,
        "patch_seeds": (0, 1, 2),
        "shrink_alphas": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
        "shrink_first_epochs": 60,
        "shrink_stage_epochs": 40,
        "satlinear_patches": 5000,
        "satlinear_components": 300,
        "satlinear_alphas": (0.0, 0.01, 0.02, 0.05, 0.1),
        "satlinear_standardised_alphas": (0.0, 0.1, 0.3, 0.5),
        "satlinear_epochs": 30,
        "digits_epochs": 30,
        "external_samples": 5000,
        "external_epochs": 5,
    },
}
SETTINGS["quick"] = {
    **SETTINGS["full"],
    "grid_resolution": 61,
    "patch_seeds": (0,),
    "satlinear_patches": 2000,
    "satlinear_epochs": 10,
    "digits_epochs": 10,
    "external_samples": 2000,
    "external_epochs": 3,
}
"""Experiment sizes of the full run and of ``--quick``."""

_FIGURES = ("figure1_activations.png", "figure2_shrink_energy.png",
            "figure3_satlinear_energy.png", "figure4_patches.png", "figure5_alpha_path.png",
            "figure6_complementary.png", "figure2_sigmoid_energy.png")
_EXTERNAL_FIGURES = ("figure4_mnist.png", "figure4_cifar10.png", "figure5_cifar10.png")
_OUTPUTS = _FIGURES + _EXTERNAL_FIGURES + ("metrics.json", "report.html")
"""Every file a run can write: those an earlier run left are removed when a run starts."""


# ------------------------------------------------------------------ helpers


class _Progress:
    """One line per step on a stream, with the time since the run started."""

    def __init__(self, stream):
        self.stream = stream
        self.started = time.perf_counter()

    def elapsed(self):
        return time.perf_counter() - self.started

    def __call__(self, message):
        if self.stream is not None:
            print(f"[reproduce {self.elapsed():6.1f}s] {message}", file=self.stream, flush=True)


def _ratio(numerator, denominator):
    """``numerator / denominator`` as a float, or None where it is undefined or infinite."""
    if denominator == 0:
        return None
    ratio = float(numerator) / float(denominator)
    return ratio if math.isfinite(ratio) else None


def filter_spread(components, image_shape):
    """Mean spatial spread of image filters, in squared pixels.

    For one filter ``w`` shown as an image, let ``p = w**2 / sum(w**2)`` be
    its energy distribution over pixel positions ``(r, c)`` and ``(r0, c0)``
    the centre of mass of ``p``. The spread of the filter is the
    energy-weighted spatial variance ``sum p(r, c) ((r - r0)**2 + (c - c0)**2)``:
    small for a filter whose energy sits in a small blob, largest for one
    spread evenly over the image (about ``(h**2 + w**2 - 2) / 12``, 23.8 for
    12x12 tiles, whatever the signs). The return value is its mean over the
    filters.

    Parameters
    ----------
    components : array-like of shape (n_filters, height * width)
        One filter per row, row-major.
    image_shape : tuple of two ints
        ``(height, width)``.

    Returns
    -------
    spread : float
    """
    filters = np.asarray(components, dtype=np.float64)
    height, width = image_shape
    if filters.ndim != 2 or filters.shape[1] != height * width:
        raise ValueError(
            f"components must have shape (n_filters, {height * width}) for image_shape "
            f"{tuple(image_shape)}, got {filters.shape}."
        )
    weights = filters.reshape(-1, height, width) ** 2
    totals = weights.sum(axis=(1, 2), keepdims=True)
    if np.any(totals == 0):
        raise ValueError("components has an all-zero filter, whose spread is undefined.")
    weights = weights / totals
    rows, cols = np.indices((height, width))
    row_centre = (weights * rows).sum(axis=(1, 2))[:, None, None]
    col_centre = (weights * cols).sum(axis=(1, 2))[:, None, None]
    variance = (weights * ((rows - row_centre) ** 2 + (cols - col_centre) ** 2)).sum(axis=(1, 2))
    return float(variance.mean())


def _grid(resolution):
    axis = np.linspace(-1.0, 1.0, resolution)
    xx, yy = np.meshgrid(axis, axis)
    return np.column_stack([xx.ravel(), yy.ravel()])


def _estimator(**params):
    from . import SaturatingAutoEncoder

    return SaturatingAutoEncoder(**params)


def _near_linear_start(estimator, X, scale):
    """``estimator`` trained at alpha=0 from a near-linear start.

    The start has encoder rows of norm ``scale`` (``init_scale``) and hidden
    biases of ``+-(shrink_width + 0.1)`` (random signs, in centred
    coordinates), so every shrink unit begins in its linear part and the
    unregularised model can learn to reconstruct the whole square. From the
    default start (unit-norm rows, zero biases) units whose pre-activation
    starts inside the shrink's dead zone get no gradient and stay there.
    The estimator has no parameter for initial biases, so they are set on a
    model initialised by one epoch with a negligible step (recorded in
    ``alpha_path_`` and ``loss_curve_``), and ``warm_start`` trains on from it.
    """
    start = copy.deepcopy(estimator).set_params(
        init_scale=scale, alpha=0.0, alpha_step=None, max_iter=1, learning_rate=1e-300)
    start.fit(X)
    signs = np.random.default_rng(estimator.random_state).choice([-1.0, 1.0],
                                                                 estimator.n_components)
    centred_bias = (estimator.shrink_width + 0.1) * signs
    start.intercept_hidden_ = centred_bias - start.encoder_weights_ @ X.mean(axis=0)
    start.set_params(alpha=0.0, alpha_step=estimator.alpha_step, max_iter=estimator.max_iter,
                     learning_rate=estimator.learning_rate, warm_start=True)
    return start.fit(X)


def _continue_to(base, alpha, X):
    """A copy of the fitted ``base`` trained on from its last alpha up to ``alpha``."""
    model = copy.deepcopy(base)
    if alpha > 0:
        model.set_params(warm_start=True, alpha=alpha)
        model.fit(X)
    return model


def _contraction(sweep, alphas, seeds):
    """Summarise a sweep: the largest alpha whose data energy stays below the
    threshold, and the ratio of low-energy fractions there to those at alpha=0."""
    fraction = np.array([[sweep[a][s]["low_energy_fraction"] for s in seeds] for a in alphas])
    data_energy = np.array([[sweep[a][s]["data_energy"] for s in seeds] for a in alphas])
    eligible = [i for i, a in enumerate(alphas) if a > 0 and data_energy[i].mean() < ENERGY_THRESHOLD]
    summary = {
        "alphas": list(alphas),
        "mean_low_energy_fraction": fraction.mean(axis=1).round(4).tolist(),
        "mean_data_energy": data_energy.mean(axis=1).round(5).tolist(),
        "per_seed_low_energy_fraction": fraction.round(4).tolist(),
    }
    if not eligible:
        summary.update(alpha=None, ratio=None, every_seed_smaller=False)
        return summary
    index = eligible[-1]
    summary.update(
        alpha=alphas[index],
        ratio=_ratio(fraction[index].mean(), fraction[0].mean()),
        every_seed_smaller=bool(np.all(fraction[index] < fraction[0])),
        data_energy_at_alpha=float(data_energy[index].mean()),
    )
    return summary


def _toy_sweep(X, grid, params, alphas, seeds, progress, label, encoder_scale=None):
    """Fit one model per seed at alpha=0, continue it to every alpha, measure."""
    sweep, models = {a: {} for a in alphas}, {a: {} for a in alphas}
    for seed in seeds:
        estimator = _estimator(random_state=seed, alpha=0.0, **params)
        if encoder_scale is None:
            base = estimator.fit(X)
        else:
            base = _near_linear_start(estimator, X, encoder_scale)
        for alpha in alphas:
            model = _continue_to(base, alpha, X)
            grid_energy = model.energy(grid)
            sweep[alpha][seed] = {
                "low_energy_fraction": float(np.mean(grid_energy < ENERGY_THRESHOLD)),
                "data_energy": float(model.energy(X).mean()),
            }
            models[alpha][seed] = model
    progress(f"{label}: {len(seeds)} seeds x {len(alphas)} alphas fitted")
    return sweep, models


# -------------------------------------------------------------- experiments


def _figure1(out, plotting, plt, progress):
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True)
    for column, name in enumerate(("shrink", "relu", "satlinear")):
        plotting.plot_activation(name, shrink_width=0.5, ax=axes[:, column])
        axes[0, column].set_title(f"{name}: f")
        axes[1, column].set_title(f"{name}: f_c (saturation penalty) and |f'|")
    _save_figure(plt, fig, out / "figure1_activations.png", dpi=90, title=(
        "Figure 1: nonlinearities f (top) and complementary functions f_c (bottom, |f'| "
        "dashed); shrink drawn with width 0.5"))
    progress("Figure 1 drawn")


def _gaussian_bump(z):
    return np.exp(-z ** 2 / 2)


def _gaussian_bump_slope(z):
    return -z * np.exp(-z ** 2 / 2)


def _figure6(out, plotting, plt, progress):
    """f, |f'| and Eq. 3's f_c for a Gaussian bump (non-monotonic), the sigmoid and tanh.

    Measured on the bump: ``|f'|`` at its top ``z = 0`` and at its largest
    (``z = +-1``), ``f_c`` at the top, at its largest, and its smallest value
    between the two maxima of ``|f'|`` (``|z| <= 1``, the top of the bump).
    """
    from .activations import TabulatedActivation

    bump = TabulatedActivation.from_function(_gaussian_bump, _gaussian_bump_slope,
                                             name="Gaussian bump",
                                             complementary="variation")
    z = np.linspace(-4.0, 4.0, 801)
    slope = np.abs(bump.derivative(z))
    penalty = bump.complementary(z)
    between_maxima = np.abs(z) <= 1.0
    top = np.zeros(1)
    measured = {
        "slope_at_top": float(np.abs(bump.derivative(top))[0]),
        "largest_slope": float(slope.max()),
        "penalty_at_top": float(bump.complementary(top)[0]),
        "smallest_penalty_on_top": float(penalty[between_maxima].min()),
        "largest_penalty": float(penalty.max()),
        "smoothing": bump.smoothing,
    }
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for column, activation in enumerate((bump, "sigmoid", "tanh")):
        plotting.plot_activation(activation, ax=axes[:, column], z_range=(-4, 4))
        name = axes[0, column].get_title().split(":")[0]
        axes[0, column].set_title(f"{name}: f")
        axes[1, column].set_title(f"{name}: f_c (Eq. 3) and |f'|")
    axes[1, 0].annotate("top of the bump:\n|f'| = 0, f_c\nstays high",
                        (0.05, measured["penalty_at_top"]), xytext=(2.55, 0.45), ha="center",
                        va="bottom", fontsize=8, arrowprops={"arrowstyle": "->"})
    _save_figure(plt, fig, out / "figure6_complementary.png", dpi=90, title=(
        f"Figure 6: Eq. 3's complementary function f_c = min(M+ f, M- f) (tau = "
        f"{bump.smoothing:g}) beside |f'|; left: the Gaussian bump exp(-z^2/2)"))
    progress("Figure 6 drawn")
    return measured


def _sweep_plot(ax, summary, title):
    alphas = summary["alphas"]
    per_seed = np.array(summary["per_seed_low_energy_fraction"])
    for column in range(per_seed.shape[1]):
        ax.plot(alphas, per_seed[:, column], "o-", color="0.7", lw=1)
    ax.plot(alphas, summary["mean_low_energy_fraction"], "o-", color="k", lw=2, label="mean of seeds")
    ax.set_xlabel("alpha")
    ax.set_ylabel(f"fraction of square with E < {ENERGY_THRESHOLD}")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)


def _figure2(out, cfg, plotting, plt, progress):
    from .datasets import make_manifold_2d

    X = make_manifold_2d(cfg["toy_samples"], random_state=0)
    grid = _grid(cfg["grid_resolution"])
    alphas, seeds = cfg["figure2_alphas"], cfg["seeds"]
    params = dict(n_components=10, activation="shrink", alpha_step=cfg["figure2_alpha_step"],
                  max_iter=cfg["toy_epochs"])
    results = {}
    runs = (("near_linear_start", cfg["figure2_encoder_scale"],
             "near-linear start"),
            ("default_init", None, "default initialisation"))
    fig, axes = plt.subplots(2, len(alphas) + 1, figsize=(3.6 * (len(alphas) + 1), 7))
    for row, (key, scale, description) in enumerate(runs):
        sweep, models = _toy_sweep(X, grid, params, alphas, seeds, progress,
                                   f"Figure 2 shrink, {description}", encoder_scale=scale)
        summary = _contraction(sweep, alphas, seeds)
        results[key] = summary
        for column, alpha in enumerate(alphas):
            plotting.plot_energy_landscape(
                models[alpha][seeds[0]], X, resolution=cfg["grid_resolution"], ax=axes[row, column],
                vmax=0.1, title=f"alpha={alpha:g}, seed {seeds[0]}\n{description}")
        _sweep_plot(axes[row, -1], summary, f"{len(seeds)} seeds, {description}")
    _save_figure(plt, fig, out / "figure2_shrink_energy.png", dpi=80, title=(
        "Figure 2: SATAE-shrink, 10 basis vectors; energy E(x) (dark = low, clipped at 0.1)"))
    return results


def _figure2_sigmoid(out, cfg, plotting, plt, progress):
    """Figure 2's experiment with the sigmoid and Eq. 3's penalty (Section 5.1).

    The same spiral, 10 basis vectors, schedule and energy threshold as the
    shrink of Figure 2, from the estimator's default start: a sigmoid has no
    dead zone, and with zero biases every unit starts in its most linear part.
    """
    from .datasets import make_manifold_2d

    X = make_manifold_2d(cfg["toy_samples"], random_state=0)
    grid = _grid(cfg["grid_resolution"])
    alphas, seeds = cfg["figure2_sigmoid_alphas"], cfg["seeds"]
    params = dict(n_components=10, activation="sigmoid", alpha_step=cfg["figure2_alpha_step"],
                  max_iter=cfg["toy_epochs"])
    sweep, models = _toy_sweep(X, grid, params, alphas, seeds, progress, "Figure 2 sigmoid")
    summary = _contraction(sweep, alphas, seeds)
    fig, axes = plt.subplots(1, len(alphas) + 1, figsize=(3.6 * (len(alphas) + 1), 3.8))
    for column, alpha in enumerate(alphas):
        plotting.plot_energy_landscape(
            models[alpha][seeds[0]], X, resolution=cfg["grid_resolution"], ax=axes[column],
            vmax=0.1, show_bases=False, title=f"alpha={alpha:g}, seed {seeds[0]}")
    _sweep_plot(axes[-1], summary, f"{len(seeds)} seeds")
    _save_figure(plt, fig, out / "figure2_sigmoid_energy.png", dpi=80, title=(
        "Section 5.1 on Figure 2's data: SATAE-sigmoid, 10 basis vectors, penalty of Eq. 3; "
        "energy E(x) (dark = low, clipped at 0.1)"))
    return summary


def _figure3(out, cfg, plotting, plt, progress):
    from .datasets import make_manifold_2d

    X = make_manifold_2d(cfg["toy_samples"], random_state=0)
    grid = _grid(cfg["grid_resolution"])
    alphas, seeds = cfg["figure3_alphas"], cfg["seeds"]
    params = dict(n_components=2, activation="satlinear", tied_weights=False,
                  normalize_decoder_every=None, alpha_step=cfg["figure3_alpha_step"],
                  max_iter=cfg["toy_epochs"])
    sweep, models = _toy_sweep(X, grid, params, alphas, seeds, progress,
                               "Figure 3 saturated linear, untied")
    summary = _contraction(sweep, alphas, seeds)
    shown = summary["alpha"] if summary["alpha"] is not None else alphas[-1]
    fig, axes = plt.subplots(2, len(seeds) + 1, figsize=(3.6 * (len(seeds) + 1), 7))
    for row, alpha in enumerate((0.0, shown)):
        for column, seed in enumerate(seeds):
            plotting.plot_energy_landscape(models[alpha][seed], X, resolution=cfg["grid_resolution"],
                                           ax=axes[row, column], vmax=0.1,
                                           title=f"alpha={alpha:g}, seed {seed}")
    _sweep_plot(axes[0, -1], summary, f"{len(seeds)} seeds")
    axes[1, -1].axis("off")
    _save_figure(plt, fig, out / "figure3_satlinear_energy.png", dpi=80, title=(
        "Figure 3: SATAE-saturated-linear, 2 untied basis elements (encoder red, decoder "
        "green); top: no penalty, bottom: with penalty"))
    return summary


def _patch_shrink_model(seed, max_iter):
    """The shrink model of the patch experiments, at alpha=0 (100 units)."""
    return _estimator(n_components=100, activation="shrink", alpha=0.0, alpha_step=None,
                      max_iter=max_iter, random_state=seed)


def _shrink_stages(X, seed, cfg, progress):
    """One seed's shrink model trained stage by stage, measured after each
    stage; returns the measurements, the model after the first stage and the
    final model."""
    from .activations import complementary_function

    model = _patch_shrink_model(seed, cfg["shrink_first_epochs"])
    stages, first_model = [], None
    for index, alpha in enumerate(cfg["shrink_alphas"]):
        if index:
            model.set_params(warm_start=True, alpha=alpha, max_iter=cfg["shrink_stage_epochs"])
        model.fit(X)
        codes = model.transform(X)
        pre_activation = X @ model.encoder_weights_.T + model.intercept_hidden_
        penalty = complementary_function("shrink", pre_activation, model.shrink_width).sum()
        l1 = np.abs(codes).sum()
        stages.append({
            "alpha": float(alpha),
            "nonzero_fraction": float(np.mean(codes != 0)),
            "spread": filter_spread(model.components_, (12, 12)),
            "data_energy": float(model.energy(X).mean()),
            "penalty_sum": float(penalty),
            "l1_sum": float(l1),
        })
        if index == 0:
            first_model = copy.deepcopy(model)
        progress(f"shrink on {len(X)} patches, seed {seed}: alpha={alpha:g}, non-zero codes "
                 f"{stages[-1]['nonzero_fraction']:.3f}, spread {stages[-1]['spread']:.2f}")
    return stages, first_model, model


def _shrink_on_patches(cfg, progress):
    """Shrink on natural patches, stage by stage, measuring codes after each stage.

    The controls (each seed's model trained as long without the penalty) are
    fitted in a second thread while the staged models train in this one: the
    kernels release the GIL, and at this size every fit keeps to one thread
    whether or not the other runs, so the measurements are those of fitting
    one after the other (bit for bit). The thread is a daemon, so that an
    interrupted run does not wait for its fit to end.
    """
    from .datasets import load_natural_patches

    X = load_natural_patches(12, cfg["patches"], random_state=0)
    total_epochs = (cfg["shrink_first_epochs"]
                    + cfg["shrink_stage_epochs"] * (len(cfg["shrink_alphas"]) - 1))
    seeds = cfg["patch_seeds"]
    spreads, errors, done = {}, {}, {seed: threading.Event() for seed in seeds}
    stop = threading.Event()

    def fit_controls():
        for seed in seeds:
            if stop.is_set():
                return
            try:
                control = _patch_shrink_model(seed, total_epochs).fit(X)
                spreads[seed] = filter_spread(control.components_, (12, 12))
            except BaseException as exc:  # raised in the main thread, which awaits it
                errors[seed] = exc
            finally:
                done[seed].set()

    threading.Thread(target=fit_controls, name="sksatae-control", daemon=True).start()
    per_seed, first_models, final_models, control_spreads = [], [], [], []
    try:
        for seed in seeds:
            stages, first_model, final_model = _shrink_stages(X, seed, cfg, progress)
            per_seed.append(stages)
            first_models.append(first_model)
            final_models.append(final_model)
            done[seed].wait()
            if seed in errors:
                raise errors[seed]
            control_spreads.append(spreads[seed])
            progress(f"shrink on patches without penalty for the same {total_epochs} epochs, "
                     f"seed {seed}: spread {control_spreads[-1]:.2f}")
    finally:
        stop.set()  # after an error, no further control starts
    random_filters = np.random.default_rng(0).standard_normal((100, 144))
    return (per_seed, first_models, final_models, control_spreads,
            filter_spread(random_filters, (12, 12)))


SATLINEAR_DATA_SCALE = 0.1
"""Pixel standard deviation of the patches given to the saturated-linear model of claim 5.

Tied saturated-linear units are linear only for pre-activations in (0, 1): an
identity-like basis can hold standardised patches (pixels spread over about
+-3) only in saturation. At this scale the data fits the linear region."""


def _satlinear_on_patches(cfg, progress, data_scale, alphas):
    """Saturated linear on natural patches: reconstruction of data and of random inputs.

    The random inputs are Gaussian with the mean and covariance of the data:
    off the data (they are not natural patches) but with the same second
    moments, so a linear auto-encoder reconstructs them exactly as well.
    """
    from .datasets import load_natural_patches

    X = data_scale * load_natural_patches(12, cfg["satlinear_patches"], random_state=1)
    rng = np.random.default_rng(0)
    mean = X.mean(axis=0)
    off_data = rng.multivariate_normal(mean, np.cov(X.T), size=len(X))
    scale = 0.5 * ((X - mean) ** 2).sum(axis=1).mean()
    model = _estimator(n_components=cfg["satlinear_components"], activation="satlinear",
                       alpha=0.0, alpha_step=None, max_iter=cfg["satlinear_epochs"],
                       keep_stage_components=True, random_state=0)
    stages = []
    for index, alpha in enumerate(alphas):
        if index:
            model.set_params(warm_start=True, alpha=alpha)
        model.fit(X)
        data_error = float(model.energy(X).mean() / scale)
        codes = model.transform(X)
        saturated = float(np.mean((codes <= 0) | (codes >= 1)))
        off_error = float(model.energy(off_data).mean() / scale)
        stages.append({"alpha": float(alpha), "data_relative_energy": data_error,
                       "off_data_relative_energy": off_error,
                       "ratio": _ratio(off_error, data_error),
                       "saturated_code_fraction": saturated})
        progress(f"saturated linear on {len(X)} patches (pixel std {data_scale:g}): alpha={alpha:g}, relative energy data "
                 f"{data_error:.3f}, random inputs {off_error:.3f}, saturated codes {saturated:.2f}")
    return model, stages


def _digits(cfg, progress):
    from .datasets import load_binary_digits

    X, _ = load_binary_digits(return_X_y=True)
    models = {}
    for activation, components in (("shrink", 100), ("satlinear", 300)):
        models[activation] = _estimator(
            n_components=components, activation=activation, alpha=0.5,
            max_iter=cfg["digits_epochs"], random_state=0).fit(X)
        progress(f"{activation} on binary digits fitted")
    return models


def _external_data(name, path, cfg):
    """MNIST (binarised) or CIFAR-10, subsampled and standardised, and its image shape.

    Read before the built-in experiments, so that a wrong folder fails at once
    with the loader's error rather than minutes later."""
    from sklearn.preprocessing import StandardScaler

    from .datasets import load_cifar10, load_mnist

    if name == "mnist":
        X, _ = load_mnist(path)
        shape = (28, 28)
        if X.shape[1] != shape[0] * shape[1]:
            # The experiment's sizes and Figure 4's panels are those of MNIST's images.
            raise ValueError(
                f"The MNIST images in {str(path)!r} have {X.shape[1]} pixels each, expected "
                f"28x28 = {shape[0] * shape[1]}."
            )
        X = (X > 0.5).astype(np.float64)
    else:
        X, _ = load_cifar10(path)
        shape = (32, 32, 3)
    X = X[np.random.default_rng(0).permutation(len(X))[: cfg["external_samples"]]]
    return StandardScaler().fit_transform(X), shape


def _external(name, X, cfg, progress):
    """Shrink and saturated linear on MNIST or CIFAR-10, if given."""
    models = {}
    for activation in ("shrink", "satlinear"):
        models[activation] = _estimator(
            n_components=100, activation=activation, alpha=0.5,
            max_iter=cfg["external_epochs"], keep_stage_components=True, random_state=0).fit(X)
        progress(f"{activation} on {name} ({len(X)} samples) fitted")
    return models


# ------------------------------------------------------------------- claims


def _claim(number, figure, statement, measured, threshold, held, details=None, kind="claim"):
    """One checked statement: a claim of the paper, or a ``kind="finding"`` of this
    reproduction (where the paper's effect does not appear, and why).

    A statement with an undefined measurement (None: a ratio to zero, or no
    alpha that qualifies) does not hold."""
    held = bool(held) and all(value is not None for value in measured.values())
    return {"id": number, "kind": kind, "figure": figure, "claim": statement,
            "measured": measured, "threshold": threshold, "held": held,
            "details": details or {}}


def summary(metrics):
    """How many of the paper's claims held, and how many findings were confirmed."""
    def count(kind):
        checked = [c for c in metrics["claims"] if c.get("kind", "claim") == kind]
        return sum(c["held"] for c in checked), len(checked)

    claims, findings = count("claim"), count("finding")
    return (f"{claims[0]} of {claims[1]} claims held, {findings[0]} of {findings[1]} findings "
            "confirmed")


def _save_figure(plt, fig, path, dpi, title, **title_options):
    fig.suptitle(title, **title_options)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _contraction_claim(number, figure, statement, sweep):
    """A claim judged like claim 1 on another sweep of energy landscapes."""
    return _claim(
        number, figure, statement,
        {"contraction_ratio": sweep["ratio"], "alpha": sweep["alpha"],
         "data_energy": sweep.get("data_energy_at_alpha")},
        f"as claim 1: ratio <= {CLAIM_THRESHOLDS['contraction_ratio']} and smaller for every seed",
        _contracted(sweep),
        {"sweep": sweep},
    )


def _contracted(summary):
    ratio = summary["ratio"]
    return (ratio is not None and ratio <= CLAIM_THRESHOLDS["contraction_ratio"]
            and summary["every_seed_smaller"])


def _claims(fig2, fig3, shrink_stages, control_spreads, random_spread, satlinear_stages,
            satlinear_standardised_stages, fig6, sigmoid):
    t = CLAIM_THRESHOLDS
    claims = []
    near_linear = fig2["near_linear_start"]
    claims.append(_claim(
        "1", "figure2_shrink_energy.png",
        "Figure 2 (shrink, 10 basis vectors, from a near-linear start: encoder rows of norm "
        f"{SETTINGS['full']['figure2_encoder_scale']:g}, every unit starting in the shrink's "
        "linear part): the penalty shrinks the well-reconstructed region while the data stays "
        "well reconstructed.",
        {"contraction_ratio": near_linear["ratio"], "alpha": near_linear["alpha"],
         "data_energy": near_linear.get("data_energy_at_alpha")},
        f"mean fraction of the square with E < {ENERGY_THRESHOLD} at the largest swept alpha whose "
        f"mean data energy is below {ENERGY_THRESHOLD}, divided by that at alpha=0, <= "
        f"{t['contraction_ratio']}, and smaller for every seed",
        _contracted(near_linear),
        {"near_linear_start": near_linear},
    ))
    default = fig2["default_init"]
    claims.append(_claim(
        "1b", "figure2_shrink_energy.png",
        "Finding: with the estimator's default initialisation (encoder = unit-norm decoder), "
        "the unregularised shrink model already has a small low-energy region and the "
        "penalty does not shrink it (see docs/reproduction.md).",
        {"contraction_ratio": default["ratio"], "alpha": default["alpha"],
         "unregularised_fraction": default["mean_low_energy_fraction"][0],
         "near_linear_unregularised_fraction": near_linear["mean_low_energy_fraction"][0]},
        f"contraction ratio > {t['contraction_ratio']} (no clear contraction) and the "
        "unregularised low-energy fraction below that of the near-linear start",
        default["ratio"] is not None and not _contracted(default)
        and default["mean_low_energy_fraction"][0] < near_linear["mean_low_energy_fraction"][0],
        {"default_init": default},
        kind="finding",
    ))
    claims.append(_contraction_claim(
        "2", "figure3_satlinear_energy.png",
        "Figure 3 (saturated linear, 2 untied basis elements, 3 seeds): the penalty shrinks the "
        "well-reconstructed region.", fig3))
    worst = max(abs(s["penalty_sum"] - s["l1_sum"]) / max(s["l1_sum"], 1e-300)
                for stages in shrink_stages for s in stages if s["alpha"] > 0)
    claims.append(_claim(
        "3", "-",
        "Section 3.2: for shrink, the saturation penalty of the codes is their L1 norm "
        "(sum f_c(z) = sum |h|).",
        {"max_relative_difference": worst},
        f"relative difference <= {t['l1_identity_relative_error']:g} at every stage",
        worst <= t["l1_identity_relative_error"],
    ))
    nonzero = np.array([[s["nonzero_fraction"] for s in stages] for stages in shrink_stages])
    mean_nonzero = nonzero.mean(axis=0)
    steps = np.diff(mean_nonzero)
    claims.append(_claim(
        "4", "figure4_patches.png",
        "Section 3.4: the fraction of non-zero codes falls as alpha rises along the schedule "
        "(shrink, natural patches).",
        {"mean_nonzero_fraction_by_alpha": mean_nonzero.round(4).tolist(),
         "largest_rise": float(steps.max()),
         # Every code zero from the first regularised stage on: fallen as far as it can.
         "final_over_first_regularised": (0.0 if mean_nonzero[-1] == 0 < mean_nonzero[0] else
                                          _ratio(mean_nonzero[-1], mean_nonzero[1]))},
        f"no rise larger than {t['sparsity_monotone_tolerance']} from one stage to the next, and "
        f"the last stage at most {t['sparsity_total_drop']} x the alpha=0 stage and at most "
        f"{t['sparsity_regularised_drop']} x the first regularised stage (the first step alone "
        "meets the former)",
        steps.max() <= t["sparsity_monotone_tolerance"]
        and mean_nonzero[-1] <= t["sparsity_total_drop"] * mean_nonzero[0]
        and mean_nonzero[-1] <= t["sparsity_regularised_drop"] * mean_nonzero[1],
        {"alphas": [s["alpha"] for s in shrink_stages[0]], "per_seed": nonzero.round(4).tolist()},
    ))
    unreg = satlinear_stages[0]
    defined = [s for s in satlinear_stages[1:] if s["ratio"] is not None]
    best = max(defined, key=lambda s: s["ratio"]) if defined else {"ratio": None, "alpha": None}
    claims.append(_claim(
        "5", "figure4_patches.png",
        "Section 3.3: unregularised saturated linear reconstructs random off-data inputs almost "
        f"as well as data; with the penalty it does not (patches at pixel std "
        f"{SATLINEAR_DATA_SCALE:g}, where the data fits the linear region).",
        {"unregularised_ratio": unreg["ratio"], "best_regularised_ratio": best["ratio"],
         "at_alpha": best["alpha"]},
        f"relative energy of random inputs (Gaussian with the data's covariance) over that of "
        f"the data: <= {t['off_data_ratio_unregularised']} without the penalty, and at least "
        f"{t['off_data_ratio_growth']} x larger at some swept alpha",
        unreg["ratio"] is not None and best["ratio"] is not None
        and unreg["ratio"] <= t["off_data_ratio_unregularised"]
        and best["ratio"] >= t["off_data_ratio_growth"] * unreg["ratio"],
        {"stages": satlinear_stages},
    ))
    standardised = satlinear_standardised_stages[0]
    claims.append(_claim(
        "5b", "-",
        "Finding: on standardised patches (pixel std 1) the unregularised tied saturated-linear "
        "model cannot be identity-like: most codes are saturated already at alpha=0, so it "
        "reconstructs the random inputs clearly worse than the data even without the penalty.",
        {"unregularised_ratio": standardised["ratio"],
         "unregularised_saturated_fraction": standardised["saturated_code_fraction"]},
        f"ratio > {t['off_data_ratio_unregularised']} and more than half of the codes "
        "saturated at alpha=0",
        standardised["ratio"] is not None
        and standardised["ratio"] > t["off_data_ratio_unregularised"]
        and standardised["saturated_code_fraction"] > 0.5,
        {"stages": satlinear_standardised_stages},
        kind="finding",
    ))
    spread_first = float(np.mean(control_spreads))
    spread_last = float(np.mean([stages[-1]["spread"] for stages in shrink_stages]))
    claims.append(_claim(
        "6", "figure4_patches.png",
        "Section 3.2: shrink filters on natural patches become localised with the penalty.",
        {"spread_without_penalty": spread_first, "spread_with_penalty": spread_last,
         "spread_random_filters": random_spread,
         "ratio_to_unregularised": _ratio(spread_last, spread_first),
         "ratio_to_random": _ratio(spread_last, random_spread)},
        f"spread with the penalty <= {t['spread_ratio']} x the spread without it and <= "
        f"{t['spread_ratio']} x that of random filters (spread: see filter_spread)",
        spread_last <= t["spread_ratio"] * spread_first
        and spread_last <= t["spread_ratio"] * random_spread,
    ))
    slope_at_top = _ratio(fig6["slope_at_top"], fig6["largest_slope"])
    plateau = _ratio(fig6["smallest_penalty_on_top"], fig6["largest_penalty"])
    claims.append(_claim(
        "7", "figure6_complementary.png",
        "Figure 6 (Section 5.1, Eq. 3): for a non-monotonic differentiable f (a Gaussian bump), "
        "|f'| vanishes at the top of the bump, where the complementary function stays high "
        "(it even peaks there).",
        {"slope_at_top_over_largest": slope_at_top,
         "penalty_at_top_over_largest": _ratio(fig6["penalty_at_top"],
                                               fig6["largest_penalty"]),
         "smallest_penalty_on_top_over_largest": plateau},
        f"|f'(0)| <= {t['bump_slope_at_top']:g} x the largest |f'|, and f_c >= "
        f"{t['bump_plateau_fraction']} x its largest value everywhere between the two maxima "
        "of |f'| (|z| <= 1)",
        slope_at_top is not None and plateau is not None
        and slope_at_top <= t["bump_slope_at_top"] and plateau >= t["bump_plateau_fraction"],
        {"figure6": fig6},
    ))
    claims.append(_contraction_claim(
        "8", "figure2_sigmoid_energy.png",
        "Section 5.1 on Figure 2's data: a SATAE-sigmoid (10 basis vectors, penalty of Eq. 3, "
        "default start) contracts its well-reconstructed region as alpha grows while the data "
        "stays well reconstructed, as the shrink of Figure 2 does.", sigmoid))
    return claims


# ------------------------------------------------------------------ figures


def _figure4(out, patches_first, patches_final, satlinear, digits, shrink_alpha, satlinear_alpha,
             plotting, plt):
    fig, axes = plt.subplots(2, 3, figsize=(14, 9.5))
    plotting.plot_components(patches_first, (12, 12), ax=axes[0, 0],
                             title="(c) shrink, natural patches, alpha=0")
    plotting.plot_components(patches_final, (12, 12), ax=axes[0, 1],
                             title=f"(c) shrink, natural patches, alpha={shrink_alpha:g}")
    stages = satlinear.stage_components_
    most_changed = np.argsort(np.abs(stages[-1] - stages[0]).sum(axis=1))[::-1]
    plotting.plot_components(satlinear, (12, 12), ax=axes[0, 2], order=most_changed,
                             title=f"(d) saturated linear, patches at pixel std "
                                   f"{SATLINEAR_DATA_SCALE:g}, alpha={satlinear_alpha:g}\n"
                                   f"(100 of {len(most_changed)}, most changed by the penalty first)")
    plotting.plot_components(digits["shrink"], (8, 8), ax=axes[1, 0],
                             title="(a) shrink, binary digits, alpha=0.5")
    plotting.plot_components(digits["satlinear"], (8, 8), ax=axes[1, 1],
                             title="(b) saturated linear, binary digits, alpha=0.5")
    axes[1, 2].axis("off")
    _save_figure(plt, fig, out / "figure4_patches.png", dpi=80, title=(
        "Figure 4: decoder basis elements (each tile scaled on its own; gray = 0)"))


def _figure5(out, model, plotting, plt, name="figure5_alpha_path.png", image_shape=(12, 12),
             channel_order="last"):
    stages = model.stage_components_
    change = np.abs(stages[-1] - stages[0]).sum(axis=1)
    # Elements that end as a near-constant tile change most and show nothing of
    # the shapes the paper's figure follows: left out.
    final = stages[-1]
    cosine_to_constant = np.abs(final.sum(axis=1)) / (
        np.linalg.norm(final, axis=1) * np.sqrt(final.shape[1]) + 1e-300)
    change[cosine_to_constant > 0.5] = -np.inf
    chosen = np.argsort(change)[::-1][:2]
    n_stages = stages.shape[0]
    fig, axes = plt.subplots(2, n_stages, figsize=(1.6 * n_stages, 3.8), squeeze=False)
    for row, index in enumerate(chosen):
        plotting.plot_alpha_path(model, int(index), image_shape, ax=axes[row],
                                 channel_order=channel_order)
    _save_figure(plt, fig, out / name, dpi=90, fontsize=9, title=(
        "Figure 5: two saturated-linear filters as alpha grows "
        f"({', '.join(f'{a:g}' for a in model.alpha_path_)}), warm-started stage by stage"))


def _write_report(out, metrics):
    rows = []
    for claim in metrics["claims"]:
        measured = ", ".join(f"{key} = {_fmt(value)}" for key, value in claim["measured"].items())
        image = (f'<img src="{html.escape(claim["figure"])}" width="480">'
                 if claim["figure"].endswith(".png") else "")
        verdict = "held" if claim["held"] else "did not hold"
        colour = "#1a7f37" if claim["held"] else "#b42318"
        rows.append(
            f"<tr><td>{html.escape(claim['id'])}</td><td>{html.escape(claim['claim'])}</td>"
            f"<td>{html.escape(measured)}</td><td>{html.escape(claim['threshold'])}</td>"
            f"<td style='color:{colour};font-weight:bold'>{verdict}</td><td>{image}</td></tr>"
        )
    figures = "".join(
        f'<h2>{html.escape(name)}</h2><img src="{html.escape(name)}" style="max-width:100%">'
        for name in metrics["figures"]
    )
    skipped = "".join(f"<li>{html.escape(line)}</li>" for line in metrics["skipped"])
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>sksatae: reproduction of Goroshin &amp; LeCun (2013)</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:6px;vertical-align:top;font-size:14px}}</style></head>
<body><h1>Saturating Auto-Encoders: reproduction on bundled data</h1>
<p>Mode: {html.escape(metrics['mode'])}; run time {metrics['runtime_s']:.1f} s.
{html.escape(summary(metrics))}.
Numbers are in <a href="metrics.json">metrics.json</a>.</p>
<table><tr><th>#</th><th>Claim</th><th>Measured</th><th>Threshold</th><th>Outcome</th><th>Figure</th></tr>
{''.join(rows)}</table>
<h2>Skipped</h2><ul>{skipped or '<li>nothing</li>'}</ul>
{figures}
</body></html>
"""
    (out / "report.html").write_text(page, encoding="utf-8")


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


# --------------------------------------------------------------------- main


def run_reproduction(out="reproduce_out", *, quick=False, mnist=None, cifar10=None,
                     stream="stderr"):
    """Run the paper's experiments, write figures, ``metrics.json`` and ``report.html``.

    Claims measured (thresholds in :data:`CLAIM_THRESHOLDS`):

    1. Figure 2: shrink, 10 basis vectors on the 2-D spiral, swept over alpha
       with 3 seeds. The fraction of the ``[-1, 1]^2`` grid with energy below
       0.01, at the largest swept alpha whose mean data energy stays below
       0.01, over the same fraction at alpha=0. 1b records the same with the
       estimator's default initialisation, which does not contract.
    2. Figure 3: the same for saturated linear with 2 untied basis elements.
    3. Shrink on natural patches: ``sum f_c(z)`` equals ``sum |h|``.
    4. The fraction of non-zero shrink codes along the alpha schedule.
    5. Saturated linear on natural patches scaled to pixel standard deviation
       :data:`SATLINEAR_DATA_SCALE`: relative reconstruction energy of random
       inputs with the data's covariance over that of the data. 5b records
       the same on standardised patches, where most codes saturate already
       without the penalty.
    6. The spatial spread (:func:`filter_spread`) of shrink filters with the
       penalty, of filters trained as long without it, and of random filters.
    7. Figure 6: for a Gaussian bump tabulated with Eq. 3's penalty, ``|f'|``
       at the top of the bump relative to its largest value, and the smallest
       ``f_c`` between the two maxima of ``|f'|`` relative to its largest.
    8. Claim 1's measurement for a SATAE-sigmoid (Eq. 3's penalty) from the
       estimator's default start.

    A measurement that is undefined (a ratio whose denominator is zero) is
    None, written as ``null`` in ``metrics.json``, and a claim with such a
    measurement does not hold.

    Parameters
    ----------
    out : str or path-like, default="reproduce_out"
        Output folder, created if needed. Once the data sets given are read,
        the files that a run writes (every figure a run can draw, including
        those of MNIST and CIFAR-10, ``metrics.json`` and ``report.html``) are
        deleted from it, so that it never mixes the outputs of two runs: a run
        that stops early leaves no report, and a run without ``cifar10`` no
        CIFAR-10 figures. Other files in it are left alone.
    quick : bool, default=False
        Smaller experiments (about a third of the full run's time).
    mnist, cifar10 : str or path-like, default=None
        Folders holding MNIST's IDX files and CIFAR-10's python batches; their
        Figure 4 panels are skipped when not given. They are read (with
        :func:`~sksatae.datasets.load_mnist` and
        :func:`~sksatae.datasets.load_cifar10`) before any experiment runs,
        so a wrong folder or file fails at once, with the loader's error.
        MNIST's images must be 28x28.
    stream : file-like, "stderr" or None, default="stderr"
        Where progress lines go: ``"stderr"`` is :data:`sys.stderr` as it is
        when the function is called (so that
        :func:`contextlib.redirect_stderr` applies), None is silent.

    Returns
    -------
    metrics : dict
        What ``metrics.json`` holds.

    Raises
    ------
    ValueError
        When ``out`` is an empty path, or the MNIST images are not 28x28.
    NotADirectoryError
        When ``out`` is a file.
    """
    if isinstance(stream, str):
        if stream != "stderr":
            raise ValueError(
                f"stream must be a file-like object, 'stderr' or None, got {stream!r}.")
        stream = sys.stderr
    progress = _Progress(stream)
    return _run(*_prepare(out, quick, mnist, cifar10), progress)


def _prepare(out, quick, mnist, cifar10):
    """All that a user's input can make fail, done before any experiment: check
    ``out`` and read the data sets given. Then create the output folder and delete
    the outputs an earlier run left there. Returns what :func:`_run` takes first."""
    import matplotlib

    matplotlib.use("Agg")  # before anything is read or deleted: every figure needs it
    if os.fspath(out) == "":
        raise ValueError("out must name a folder, got an empty string.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out must be a folder, but {str(out)!r} is a file.")
    cfg = SETTINGS["quick" if quick else "full"]
    external = {name: _external_data(name, path, cfg)
                for name, path in (("mnist", mnist), ("cifar10", cifar10)) if path is not None}
    out.mkdir(parents=True, exist_ok=True)
    for name in _OUTPUTS:
        path = out / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    return out, quick, cfg, external


def _run(out, quick, cfg, external, progress):
    """The experiments, the figures, ``metrics.json`` and ``report.html``."""
    import matplotlib.pyplot as plt

    from . import plotting

    progress(f"writing into {out.resolve()} ({'quick' if quick else 'full'} run)")
    for name, (X, _) in external.items():
        progress(f"{name} read: {len(X)} samples kept")

    _figure1(out, plotting, plt, progress)
    fig2 = _figure2(out, cfg, plotting, plt, progress)
    fig3 = _figure3(out, cfg, plotting, plt, progress)
    fig6 = _figure6(out, plotting, plt, progress)
    sigmoid = _figure2_sigmoid(out, cfg, plotting, plt, progress)
    shrink_stages, first_models, final_models, control_spreads, random_spread = \
        _shrink_on_patches(cfg, progress)
    satlinear_model, satlinear_stages = _satlinear_on_patches(
        cfg, progress, SATLINEAR_DATA_SCALE, cfg["satlinear_alphas"])
    _, satlinear_standardised_stages = _satlinear_on_patches(
        cfg, progress, 1.0, cfg["satlinear_standardised_alphas"])
    digits = _digits(cfg, progress)
    _figure4(out, first_models[0], final_models[0], satlinear_model, digits,
             cfg["shrink_alphas"][-1], cfg["satlinear_alphas"][-1], plotting, plt)
    _figure5(out, satlinear_model, plotting, plt)
    progress("Figures 4 and 5 drawn")
    figures = list(_FIGURES)

    skipped = []
    for name, shape_note in (("mnist", "MNIST"), ("cifar10", "CIFAR-10")):
        if name not in external:
            skipped.append(f"Figure 4 {shape_note} panels: no --{name} folder given (nothing is "
                           "downloaded; binary digits and natural patches stand in).")
            progress(skipped[-1])
            continue
        X, shape = external.pop(name)
        models = _external(name, X, cfg, progress)
        fig, axes = plt.subplots(1, 2, figsize=(12, 6))
        for ax, (activation, model) in zip(axes, models.items()):
            plotting.plot_components(model, shape, ax=ax, title=f"{activation}, {shape_note}, alpha=0.5",
                                     channel_order="first" if name == "cifar10" else "last")
        fig.suptitle(f"Figure 4: decoder basis elements learned on {shape_note} "
                     f"({len(models['shrink'].alpha_path_)} alpha stages)")
        fig.tight_layout(rect=(0, 0, 1, 0.94))
        fig.savefig(out / f"figure4_{name}.png", dpi=80)
        plt.close(fig)
        figures.append(f"figure4_{name}.png")
        if name == "cifar10":
            _figure5(out, models["satlinear"], plotting, plt, "figure5_cifar10.png", (32, 32, 3),
                     channel_order="first")
            figures.append("figure5_cifar10.png")

    claims = _claims(fig2, fig3, shrink_stages, control_spreads, random_spread,
                     satlinear_stages, satlinear_standardised_stages, fig6, sigmoid)
    metrics = {
        "mode": "quick" if quick else "full",
        "settings": {key: list(value) if isinstance(value, tuple) else value
                     for key, value in cfg.items()},
        "energy_threshold": ENERGY_THRESHOLD,
        "thresholds": CLAIM_THRESHOLDS,
        "claims": claims,
        "experiments": {
            "figure2": fig2,
            "figure3": fig3,
            "figure6": fig6,
            "figure2_sigmoid": sigmoid,
            "shrink_patches_stages": shrink_stages,
            "satlinear_patches_stages": satlinear_stages,
            "satlinear_standardised_patches_stages": satlinear_standardised_stages,
            "random_filter_spread": random_spread,
            "unregularised_control_spreads": control_spreads,
        },
        "figures": figures,
        "skipped": skipped,
        "runtime_s": progress.elapsed(),
    }
    metrics = _finite_or_none(metrics)
    (out / "metrics.json").write_text(
        json.dumps(metrics, indent=2, allow_nan=False, default=_json_default), encoding="utf-8")
    _write_report(out, metrics)
    for claim in claims:
        progress(f"claim {claim['id']}: {'held' if claim['held'] else 'DID NOT HOLD'} "
                 f"({_fmt(list(claim['measured'].values()))})")
    progress(f"done: {out / 'report.html'}")
    return metrics


def _finite_or_none(value):
    """``value`` with every non-finite number replaced by None: JSON has no inf or NaN."""
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    return value


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
