"""The SaturatingAutoEncoder estimator: parameters, validation, the alpha
schedule and the epoch loop. The numerical work is in ``_kernels``."""

import functools
import math
import os
import sys
import threading
import time
import warnings
from numbers import Integral, Real

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite, check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _kernels
from ._blas import gemm_address, warm_up_work_buffer
from ._parts import aligned_copy, run_in_parts
from ._scratch import Scratch, kept_for
from ._threads import ThreadChoice, limit_in_force
from ._progress import TrainingProgress
from .activations import (ACTIVATIONS, Activation, RectifiedLinear, SaturatedLinear, Shrink,
                          get_activation)

PAPER_LEARNING_RATE = 0.05
"""The paper's constant SGD step, for a loss averaged over input dimensions."""

_LINEAR_SCALING_CAP = 10
"""Batch size beyond which the "auto" step stops growing (see ``learning_rate``)."""

_BLOW_UP_FACTOR = 1e4
"""An epoch loss this many times the loss of outputting the mean (plus the
penalty of unit-norm codes, and the loss of units resting at z = 0) means SGD
has diverged, even while still finite."""

_MAX_STEP_HALVINGS = 6
"""How often an "auto" step is halved, restarting the stage, before giving up."""

_SWAPPED_FLOAT32 = np.dtype(np.float32).newbyteorder()
"""float32 in the byte order other than this machine's (big-endian here)."""

MAX_STAGES = 10_000
"""The most stages an alpha schedule may have (``alpha_step``)."""

_PAPER_SAMPLES_PER_PROJECTION = 10
"""The paper re-projects the decoder every 10 per-sample SGD updates."""

_MAX_SAMPLE_STEP = 0.5
"""Bound on ``step * ||x - mean||^2`` for any one sample's share of an "auto" step."""

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIPPED_BY_WARNINGS = (
    os.path.join(_PACKAGE_DIR, "_autoencoder.py"), os.path.join(_PACKAGE_DIR, "_outlier.py"),
    os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep)
"""The estimators' modules and scikit-learn's package (whose wrappers, such as
``_fit_context`` and ``set_output``'s, stand between a fit and its caller)."""

_ENCODER_WEIGHTS = ("encoder_weights_", "intercept_hidden_")
_DECODER_WEIGHTS = ("components_", "intercept_visible_")


class DivergenceError(FloatingPointError, ValueError):
    """Raised when SGD diverges: the loss or the weights stopped being finite,
    or the loss grew far beyond that of a model that outputs the mean.

    A ``ValueError`` too: a fixed ``learning_rate`` too large for the data is a
    bad parameter value, and code that handles scikit-learn's input errors
    (``except ValueError``) handles this one as well."""


def restored_on_error(method):
    """``method`` (a fit), with the estimator's attributes put back as they
    were if it raises. Validation records the new input's width and column
    names before training can fail, and a model must not be left with them
    beside weights fitted to other data."""
    @functools.wraps(method)
    def method_restored_on_error(self, *args, **kwargs):
        saved = dict(vars(self))
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            raise
    return method_restored_on_error


class SaturatingAutoEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Saturating Auto-Encoder (SATAE).

    A one-hidden-layer auto-encoder ``G(x) = W^d F(W^e x + b^e) + b^d`` whose
    activation ``f`` has flat (zero-gradient) regions, trained to minimise,
    summed over samples (Eq. 2 of Goroshin & LeCun, 2013)::

        1/2 ||x - G(x)||^2 + alpha * sum_i f_c(W^e_i x + b^e_i)

    where the complementary function ``f_c`` is the distance of a unit's
    pre-activation to the flat set of ``f``. The penalty pushes units into
    saturation, which raises the reconstruction energy away from the data.
    Training is plain minibatch SGD in compiled kernels, with ``alpha`` raised
    progressively from 0 and every stage warm-started from the previous one.

    The model works best on standardised data (zero mean, unit variance per
    feature), as in the paper; see :class:`~sklearn.preprocessing.StandardScaler`.

    Parameters
    ----------
    n_components : int, default=100
        Number of hidden units (basis elements).

    activation : {"shrink", "relu", "satlinear", "sigmoid", "tanh"} or \
            :class:`~sksatae.activations.Activation`, default="shrink"
        The nonlinearity ``f``:

        - ``"shrink"``: ``sign(z) max(|z| - shrink_width, 0)``; ``f_c`` is
          ``|shrink(z)|``, an L1 penalty on the codes.
        - ``"relu"``: ``max(z, 0)``; ``f_c(z) = max(z, 0)``.
        - ``"satlinear"``: ``min(max(z, 0), 1)``; ``f_c`` is the tent
          ``min(z, 1 - z)`` on ``(0, 1)`` and 0 elsewhere.
        - ``"sigmoid"``, ``"tanh"``: no flat region; ``f_c`` is Section 5.1's
          Eq. 3, ``min(M+ f, M- f)``, the smaller of the averages of ``|f'|``
          to the right and to the left (see :mod:`sksatae.activations`).
        - an :class:`~sksatae.activations.Activation`, for instance
          ``TabulatedActivation.from_function(my_f)`` for any vectorised
          function.

        At kinks the subgradient is 0: on the closed flat set, and at the
        tent's peak ``z = 1/2``.

    shrink_width : float, default=0.1
        The half-width lambda of the shrink's flat region ``[-lambda, lambda]``.
        Ignored by the other activations.

    alpha : float, default=0.1
        The final saturation strength of Eq. 2 (``>= 0``).

    alpha_step : float or None, default=0.1
        Progressive schedule (Section 4): stages use
        ``alpha = 0, alpha_step, 2 * alpha_step, ...`` and end exactly at
        ``alpha``, each warm-started from the previous one. None trains at
        ``alpha`` directly. At most 10,000 stages: a larger ``alpha /
        alpha_step`` is refused.

    max_iter : int, default=30
        Epochs (passes over the data) at each alpha stage (the paper's 30).

    batch_size : int, default=10
        Minibatch size. Each step follows the gradient of the minibatch mean
        of the per-sample loss. Capped at the number of samples. With
        ``batch_size=1`` (the paper's plain SGD) training makes no BLAS calls:
        a kernel of its own updates the weights row by row, in fewer passes
        over them than the matrix products would make, and with more than one
        thread each thread updates its share of the units (see
        ``n_threads``).

    learning_rate : "auto" or float, default="auto"
        Constant SGD step. ``"auto"`` is ``b * min(0.05 / mean_i ||x_i - m||^2,
        0.5 / max_i ||x_i - m||^2, 0.05) / max(1, n_components / n_features)``
        with ``m`` the mean sample and ``b = min(batch_size, n_samples, 10)``,
        from the data of ``fit`` or of the first ``partial_fit`` (later
        ``partial_fit`` calls keep that step, also when they have more rows, and
        a warm-started ``fit`` derives it again from its data, halved as often as
        the model's step has been halved before). On standardised data the first denominator
        is ``n_features``, so with ``batch_size=1`` the step is the paper's 0.05
        applied to a loss averaged over input dimensions (Torch's mean squared
        error), while the objective stays exactly Eq. 2 and ``alpha`` keeps the
        paper's meaning. The second term keeps any single sample's share of a
        step stable when a few samples have a much larger norm than the rest
        (standardised near-constant features do that). The third bounds the
        steps of the intercepts, whose curvature does not shrink with the data's
        scale. An over-complete basis multiplies the curvature by about
        ``n_components / n_features``, hence the divisor. The step grows linearly
        with the batch size up to 10, as that many per-sample steps would move.
        The rule depends only on the data's scale, so it is stable on data of
        any dimension, scale or offset. Training can still become unstable at
        a large ``alpha`` once the learned basis has many similar elements; an
        "auto" step is then halved and the stage restarted from its beginning,
        with a :class:`~sklearn.exceptions.ConvergenceWarning` (at most 6
        times). A float is used as given, and divergence raises
        :class:`DivergenceError`. The step used last is stored in
        ``learning_rate_``.

    tied_weights : "auto" or bool, default="auto"
        Whether the encoder is the decoder's transpose (``W^e = W^d^T``).
        ``"auto"`` ties them for ``"satlinear"`` only, as in the paper.

    normalize_decoder_every : "auto", int or None, default="auto"
        Project the decoder basis elements (rows of ``components_``) to unit
        norm after every this many SGD updates, which removes the scale
        ambiguity between encoder and decoder under an L1-type penalty.
        ``"auto"`` re-projects untied weights every ``max(1, round(10 /
        batch_size))`` updates, about every 10 samples as in the paper (and
        after every update from ``batch_size=15``; the paper's SGD updates
        were per sample; letting minibatches drift for 10 updates
        between projections makes SGD unstable at large ``alpha``), and never
        re-projects tied ones: the paper re-projects its untied shrink and
        rectified-linear models and not its tied saturated-linear ones. Tied
        weights have no such ambiguity (scaling them changes the
        reconstruction), and re-projecting an over-complete tied basis fights
        the reconstruction term. None never re-projects.

    init_scale : float, default=1.0
        Norm of each initial encoder row. Both bases start from the same random
        unit-norm directions (the encoder as a copy of the decoder basis); this
        scales the encoder's copy (and so the tied matrix, when weights are
        tied). For relu and satlinear a small value (say 0.1) starts the
        model close to a linear auto-encoder, the unregularised reference of
        the paper's energy landscapes (Figures 2 and 3); for shrink, with zero
        biases, it starts most units inside the flat region, where they get
        no gradient (73% of the codes of standardised digits at 0.1, against
        9% at 1.0).

    keep_stage_components : bool, default=False
        Keep a copy of the decoder basis at the end of every alpha stage in
        ``stage_components_`` (for instance to follow one filter as alpha
        grows, as in Figure 5 of the paper). Each ``partial_fit`` call is a
        stage: the snapshots grow by one decoder per call.

    n_threads : "auto", "timed" or int, default="auto"
        Upper bound on the threads used by ``fit`` and ``partial_fit``. An
        epoch with more than one thread runs in as many parts, one thread
        each, which split every step's products and its elementwise work
        between them (each part needs products of at least 2**19
        multiply-adds, and a core of its own: no more parts than the cores
        the process may use). ``"auto"`` uses one thread unless a step's matrix
        products reach 2**20 multiply-adds each (``batch_size * n_features *
        n_components``), and the current BLAS limit above: a rule on sizes
        only, so that a given ``random_state`` gives the same model bit for
        bit on a given machine and limit, whatever the load. At
        ``batch_size=1`` training makes no matrix products; there ``"auto"``
        uses one thread below 2**17 weights (``n_features * n_components``),
        each part updating the rows of at least 2**16, and ``"timed"`` times
        parts of at least 2**12 from 2**13 weights.
        ``"timed"`` times an epoch with the current limit and one with a
        single thread (after a first epoch, not timed, that loads the compiled
        kernel), keeps the faster (more threads only if at least 10%
        faster) and times the other again every 16 epochs (``partial_fit``
        calls count as epochs), in parts of at least 2**16 multiply-adds;
        products below 2**17 multiply-adds use one thread untimed. It is
        faster on a free core, but parts sum some
        figures in another order than one thread does, so ``"timed"`` fits
        can differ in their last bits from run to run. An integer allows at
        most that many threads. None of them takes more threads than the
        cores the process may use (its CPU affinity, and a container's CPU
        quota, as :func:`joblib.cpu_count` counts them), or than the
        current BLAS limit (for instance the one set by
        :class:`~threadpoolctl.threadpool_limits` or by joblib workers), the
        smallest over the BLAS libraries loaded: a ``threadpool_limits``
        entered before ``import sksatae`` reaches NumPy's BLAS only, and
        ``fit``, ``transform`` and ``score_samples`` then apply it to SciPy's,
        which they call, as well. The limit is process-wide: fits running at once
        in several threads share it, the smallest of their limits applying
        while they overlap, and an epoch takes no more threads than those
        that the epochs of the others leave.

    shuffle : bool, default=True
        Whether to visit the samples in a new random order every epoch.

    random_state : int, RandomState instance or None, default=None
        Controls the initial weights and the shuffling. Pass an int for
        reproducible results.

    verbose : int, default=0
        0 prints nothing. 1 shows a progress bar over all epochs with the
        current stage, alpha and loss (with tqdm, when it is installed; without
        it, one line per alpha stage). 2 and above print one line per epoch.
        Everything goes to standard error.

    warm_start : bool, default=False
        When True and the estimator is already fitted, ``fit`` starts from the
        fitted weights and continues the schedule from the last alpha reached
        (``alpha_path_[-1] + alpha_step, ...`` up to ``alpha``; a single stage at
        ``alpha`` if that is not larger).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The decoder basis: row ``k`` is basis element ``k`` (column ``k`` of
        ``W^d``), what the paper's Figure 4 shows.

    encoder_weights_ : ndarray of shape (n_components, n_features)
        ``W^e``. The same array as ``components_`` when weights are tied.

    intercept_hidden_ : ndarray of shape (n_components,)
        The encoder bias ``b^e``.

    intercept_visible_ : ndarray of shape (n_features,)
        The decoder bias ``b^d``.

    learning_rate_ : float
        The SGD step at the end of the last call to ``fit`` or ``partial_fit``:
        ``learning_rate`` when it is a number; with "auto", the step resolved
        from the data by ``fit`` or by the first ``partial_fit`` (which later
        ``partial_fit`` calls continue with), halved once for every restarted
        stage.

    n_iter_ : int
        Epochs run since the model was last fitted from scratch: over all
        stages, and over the ``partial_fit`` calls and warm-started fits
        that continued it.

    loss_curve_ : ndarray of shape (``n_iter_``,)
        Mean per-sample loss (Eq. 2, at the stage's alpha) of each epoch,
        measured on each minibatch before its update.

    alpha_path_ : ndarray of shape (n_stages,)
        The alpha of each stage run, in order.

    stage_components_ : ndarray of shape (n_stages, n_components, n_features)
        ``components_`` at the end of each stage of ``alpha_path_``. Only when
        ``keep_stage_components=True``; NaN for the stages a continued model
        ran before it was set.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    See Also
    --------
    sklearn.neural_network.BernoulliRBM : Restricted Boltzmann machine features.
    sklearn.decomposition.MiniBatchDictionaryLearning : Sparse coding.
    sklearn.decomposition.PCA : Linear auto-encoder with orthogonal basis.

    Notes
    -----
    Float32 input is trained and transformed in float32, float64 in float64
    (polars frames arrive as float64: scikit-learn's validation converts them
    so). Training that continues a fitted model (``partial_fit`` after the
    first call, ``warm_start``) keeps the model's dtype and converts ``X`` to
    it. Data whose squares overflow the working dtype, or whose mean dwarfs
    its spread beyond what the dtype resolves (in float32, about 8000 times),
    is refused with a ValueError that says so; so are inputs whose codes or
    energies would overflow it.
    Sparse input is refused (the kernels are dense); densify it first.

    Training state is kept exactly when an error interrupts it: when ``fit``
    or ``partial_fit`` raises (:class:`DivergenceError` if SGD diverges, a
    ValueError for data it cannot train on), the estimator is left as it was
    before the call, unfitted or with its previous fitted state. A
    ``KeyboardInterrupt`` stops training cleanly: the estimator keeps the
    weights of the last completed epoch and a warning says so.

    References
    ----------
    R. Goroshin and Y. LeCun. Saturating Auto-Encoders. International
    Conference on Learning Representations (ICLR), 2013. arXiv:1301.3577.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sksatae import SaturatingAutoEncoder
    >>> X = StandardScaler().fit_transform(load_digits().data)
    >>> model = SaturatingAutoEncoder(n_components=32, alpha=0.2, max_iter=5,
    ...                               random_state=0).fit(X)
    >>> model.transform(X).shape
    (1797, 32)
    >>> model.alpha_path_
    array([0. , 0.1, 0.2])
    >>> energy = model.energy(X)  # per-sample reconstruction energy
    >>> bool((model.score_samples(X) == -energy).all())
    True
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS)), Activation],
        "shrink_width": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "alpha_step": [Interval(Real, 0, None, closed="neither"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "tied_weights": [StrOptions({"auto"}), "boolean"],
        "normalize_decoder_every": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        "keep_stage_components": ["boolean"],
        "n_threads": [StrOptions({"auto", "timed"}), Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        n_components=100,
        *,
        activation="shrink",
        shrink_width=0.1,
        alpha=0.1,
        alpha_step=0.1,
        max_iter=30,
        batch_size=10,
        learning_rate="auto",
        tied_weights="auto",
        normalize_decoder_every="auto",
        init_scale=1.0,
        keep_stage_components=False,
        n_threads="auto",
        shuffle=True,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.n_components = n_components
        self.activation = activation
        self.shrink_width = shrink_width
        self.alpha = alpha
        self.alpha_step = alpha_step
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.tied_weights = tied_weights
        self.normalize_decoder_every = normalize_decoder_every
        self.init_scale = init_scale
        self.keep_stage_components = keep_stage_components
        self.n_threads = n_threads
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit

    @restored_on_error
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to ``X`` over the whole alpha schedule.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        continuing = self.warm_start and hasattr(self, "components_")
        X = self._validated(X, reset=not continuing, continuing=continuing)
        shift = _finite_mean(X, type(self).__name__)
        learning_rate = self._resolve_learning_rate(X, shift, _checked_squared_norms(X, shift))
        if continuing and self.learning_rate == "auto":  # the halvings were needed once already
            learning_rate /= 2 ** getattr(self, "_step_halvings", 0)
        start = self.alpha_path_[-1] if continuing else None
        stages = _alpha_schedule(start, self.alpha, self.alpha_step)
        rng = check_random_state(self.random_state)
        self._train(X, shift, learning_rate, stages, self.max_iter, rng, continuing, Scratch())
        return self

    @restored_on_error
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run one pass of SGD over ``X`` at the final ``alpha`` (no schedule).

        The first call initialises the model; it fixes the centring used by SGD
        and, with ``learning_rate="auto"``, the step, from this first ``X``
        (``fit`` fixes them when it ran first). Like ``fit``, it changes the
        estimator: no other thread may use the estimator while it runs (its
        inference methods may serve many threads at once between calls).
        Between calls, the calling thread keeps the epoch's buffers and the
        weight arrays that the call replaced, for the next call (weights that
        anything else still references are never reused; see "Between calls"
        in ``docs/scaling.md``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense).
        y : Ignored
            Not used (dask-ml's ``Incremental`` passes a placeholder).

        Returns
        -------
        self : object
            The updated estimator.
        """
        first_pass = not hasattr(self, "components_")
        X = self._validated(X, reset=first_pass, continuing=not first_pass)
        if first_pass:  # later calls: a NaN or inf in X shows as a loss that is not finite
            shift = _finite_mean(X, type(self).__name__)
            learning_rate = self._resolve_learning_rate(X, shift, _checked_squared_norms(X, shift))
            rng = check_random_state(self.random_state)
        else:
            shift = self._shift
            learning_rate = (self.learning_rate_ if self.learning_rate == "auto"
                             else float(self.learning_rate))
            rng = _continued_rng(self.random_state, self.n_iter_)
        self._train(X, shift, learning_rate, [float(self.alpha)], 1, rng, not first_pass,
                    kept_for(self))
        return self

    def _resolve_learning_rate(self, X, shift, squared_norms):
        if self.learning_rate != "auto":
            return float(self.learning_rate)
        mean_norm, max_norm = float(squared_norms.mean()), float(squared_norms.max())
        if not mean_norm > 1e-12 * X.shape[1]:
            mean_norm = max_norm = float(X.shape[1])
        batch = min(self.batch_size, X.shape[0], _LINEAR_SCALING_CAP)
        overcompleteness = max(1.0, self.n_components / X.shape[1])
        per_sample = min(PAPER_LEARNING_RATE / mean_norm, _MAX_SAMPLE_STEP / max_norm,
                         PAPER_LEARNING_RATE)
        return batch * per_sample / overcompleteness

    def _activation(self):
        return get_activation(self.activation, self.shrink_width)

    def _resolved_tied(self):
        if self.tied_weights == "auto":
            return isinstance(self._activation(), SaturatedLinear)
        return bool(self.tied_weights)

    def _resolved_normalize_every(self, batch_size):
        if self.normalize_decoder_every == "auto":
            if self._resolved_tied():
                return 0
            return max(1, round(_PAPER_SAMPLES_PER_PROJECTION / batch_size))
        return self.normalize_decoder_every or 0

    def _initial_parameters(self, n_features, dtype, rng, tied):
        decoder = rng.standard_normal((self.n_components, n_features))
        decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
        if tied:
            encoder = decoder = aligned_copy(self.init_scale * decoder, dtype)
        else:
            encoder = aligned_copy(self.init_scale * decoder, dtype)
            decoder = aligned_copy(decoder, dtype)
        return [
            encoder,
            np.zeros(self.n_components, dtype),
            decoder,
            np.zeros(n_features, dtype),
        ]

    def _fitted_parameters_centred(self, shift, dtype, tied, scratch):
        """Copies of the fitted parameters, re-expressed for data ``x - shift``."""
        decoder = scratch.copy(self.components_, dtype)
        encoder = decoder if tied else scratch.copy(self.encoder_weights_, dtype)
        encoder_bias = self.intercept_hidden_ + _matvec(self.encoder_weights_, shift)
        decoder_bias = self.intercept_visible_ - shift
        return [encoder, encoder_bias.astype(dtype), decoder, decoder_bias.astype(dtype)]

    def _train(self, X, shift, learning_rate, stages, epochs, rng, continuing, scratch):
        tied = self._resolved_tied()
        dtype = X.dtype
        if continuing:
            if self.components_.shape[0] != self.n_components:
                raise ValueError(
                    f"n_components={self.n_components} differs from the "
                    f"{self.components_.shape[0]} components of the fitted model; warm_start and "
                    "partial_fit continue training the fitted model and cannot change its size.")
            # Recorded, not read from the arrays: joblib stores the two names of a tied
            # model's one array as two arrays, and an untied model's may be equal.
            fitted_tied = getattr(self, "_tied_weights", self.encoder_weights_ is self.components_)
            if tied != fitted_tied:
                raise ValueError(
                    f"tied_weights={self.tied_weights!r} with activation={self.activation!r} "
                    f"means {'tied' if tied else 'untied'} weights, but the fitted model's are "
                    f"{'tied' if fitted_tied else 'untied'}; warm_start and partial_fit continue "
                    "training the fitted model and cannot tie or untie its weights.")
            params = self._fitted_parameters_centred(shift, dtype, tied, scratch)
            update_count = self._update_count
        else:
            params = self._initial_parameters(X.shape[1], dtype, rng, tied)
            update_count = 0
        activation = self._activation()
        # The penalty of units with pre-activations in [-1, 1], and the loss of units resting
        # at z = 0 (a sigmoid outputs 1/2): part of the divergence test's reference, so that
        # a model that has learnt nothing is never taken for a diverged one, even on constant
        # data (Eq. 3 penalties are positive everywhere).
        # Evaluated in the data's dtype: in float64, a float32 fit would compile the
        # float64 response loop for these two figures (0.3 s of its start-up).
        resting_penalty = float(
            activation.complementary(np.linspace(-1.0, 1.0, 21, dtype=dtype)).max())
        resting_loss = 0.5 * (self.n_components * float(
            activation.function(np.zeros(1, dtype))[0])) ** 2
        kernel_activation = activation.kernel_spec()
        batch_size = min(self.batch_size, X.shape[0])
        normalize_every = self._resolved_normalize_every(batch_size)
        address = gemm_address(dtype)
        order = np.arange(X.shape[0])
        shift_x = shift.astype(dtype)

        losses, stage_snapshots = [], []
        completed = (params, update_count, 0, 0)  # state after the last finished epoch
        progress = TrainingProgress(self.verbose, len(stages), epochs, type(self).__name__)
        halvings, baseline = 0, None
        # A continued model's loss is measured against the data that started it as well:
        # rows of this call at the centre (mean-imputed records) have a baseline of 0.
        started_at = getattr(self, "_started_baseline", 0.0) if continuing else 0.0

        def blow_up_limit(reference, alpha):
            reference = max(reference, started_at)
            with np.errstate(invalid="ignore"):  # inf in X: NaN, a blow-up
                return _BLOW_UP_FACTOR * (
                    reference + resting_loss
                    + alpha * self.n_components * (np.sqrt(2 * reference) + resting_penalty))
        # Copies of the weights cost as much as a short partial_fit's epoch at thousands of
        # features: only those that a restart, an interruption or stage_components_ can need.
        restartable = self.learning_rate == "auto"
        timings = dict(getattr(self, "_thread_timings", {})) if continuing else {}
        # The single-sample kernel only for batch_size=1: a one-row partial_fit at a larger
        # batch size takes the minibatch kernel, which every such fit has compiled.
        single_sample = self.batch_size == 1
        threads = ThreadChoice(self.n_threads, batch_size, X.shape[1], self.n_components, timings,
                               calls_blas=not single_sample)
        # What the buffers' shapes depend on: the batch's rows, the last batch's.
        workspace_key = (single_sample, X.shape[1], self.n_components, dtype, batch_size,
                         X.shape[0] % batch_size)

        def workspace(n_parts):
            return scratch.workspace(workspace_key, n_parts, lambda: (
                _kernels.single_sample_workspace(X.shape[1], len(params[0]), dtype, n_parts)
                if single_sample else _kernels.epoch_workspace(
                    *X.shape, len(params[0]), batch_size, dtype, n_parts)))
        try:
            for stage_index, stage_alpha in enumerate(stages):
                # None: the fitted model itself, rebuilt on a restart.
                saved = (_copy(params, tied) if restartable
                         and not (continuing and stage_index == 0) else None)
                stage_start = (saved, update_count, len(losses), completed)
                epoch = 0
                while epoch < epochs:
                    if self.shuffle:
                        order = rng.permutation(X.shape[0])
                    encoder, encoder_bias, decoder, decoder_bias = params
                    n_threads = threads.next_epoch(X.shape[0])
                    with threads.epoch(n_threads) as (n_parts, used):
                        if not single_sample:
                            warm_up_work_buffer(address, dtype)
                        started = time.perf_counter()
                        common = (X, order, shift_x, encoder, encoder_bias, decoder,
                                  decoder_bias, kernel_activation, float(stage_alpha),
                                  float(learning_rate))
                        settings = (normalize_every, update_count, baseline is None,
                                    workspace(n_parts))
                        if single_sample:
                            parts = run_in_parts(_kernels.sgd_epoch_single_sample,
                                                 (*common, *settings), n_parts)
                        else:
                            parts = run_in_parts(_kernels.sgd_epoch, (address, *common, *settings),
                                                 n_parts,
                                                 lambda: warm_up_work_buffer(address, dtype))
                        outcome = (parts[0][0], sum(part[1] for part in parts), *parts[0][2:])
                        loss_sum, square_sum, n_seen, update_count, finite = outcome
                        threads.record(used, time.perf_counter() - started, n_seen)
                    loss = loss_sum / n_seen
                    if baseline is None:  # the loss of a model that outputs the centre
                        baseline = 0.5 * square_sum / n_seen
                    blown_up = not loss <= blow_up_limit(baseline, stage_alpha)
                    if finite and stage_index == len(stages) - 1 and epoch == epochs - 1:
                        # No later batch measures the call's last update: measure it on a
                        # sample of its batch (one row: a blow-up shows on any of them),
                        # against that row's own scale where it is far from the others.
                        row = X[order[(n_seen - 1) // batch_size * batch_size]] - shift_x
                        row_baseline = 0.5 * float(np.dot(row, row))
                        blown_up |= not _batch_loss(row[None], params, activation, stage_alpha) \
                            <= blow_up_limit(max(baseline, row_baseline), stage_alpha)
                    if blown_up or not (finite and all(_finite(p) for p in params)):
                        if continuing:  # data unlike the first call's may be the cause
                            _finite_absolute_sum(X, type(self).__name__)
                            _checked_squared_norms(X, shift)
                        where = (f"alpha={stage_alpha:g} (stage {stage_index + 1}, epoch "
                                 f"{epoch + 1}) with learning_rate={learning_rate:.4g}: the loss "
                                 f"reached {loss:.3g}, against {baseline:.3g} for a model that "
                                 "outputs the mean")
                        if self.learning_rate != "auto" or halvings == _MAX_STEP_HALVINGS:
                            raise DivergenceError(
                                f"SGD diverged at {where}. {self._divergence_advice(continuing)}"
                                " The estimator was left as it was before this call.")
                        halvings += 1
                        learning_rate /= 2
                        warnings.warn(f"SGD diverged at {where}; restarting the stage with "
                                      f"half the step, {learning_rate:.4g}.",
                                      ConvergenceWarning, stacklevel=_caller_level())
                        saved, update_count, n_losses, completed = stage_start
                        params = (_copy(saved, tied) if saved is not None else
                                  self._fitted_parameters_centred(shift, dtype, tied, scratch))
                        del losses[n_losses:]
                        epoch = 0
                        continue
                    losses.append(loss)
                    last = stage_index == len(stages) - 1 and epoch == epochs - 1
                    completed = (params if last else _copy(params, tied), update_count,
                                 stage_index, epoch + 1)
                    progress.epoch_done(stage_index, stage_alpha, epoch, losses[-1])
                    epoch += 1
                stage_snapshots.append(
                    params[2].copy() if self.keep_stage_components else None)
        except KeyboardInterrupt:
            params, update_count, stage_index, epochs_done = completed
            if not losses:
                raise
            stages = stages[: stage_index + 1]
            if len(stage_snapshots) < len(stages):
                stage_snapshots.append(params[2].copy())
            warnings.warn(
                f"Training interrupted by the user after {len(losses)} epochs; the estimator "
                "keeps the weights of the last completed epoch.",
                UserWarning,
                stacklevel=_caller_level(),
            )
        finally:
            progress.close()
        if continuing:
            scratch.retire(None if tied else self.encoder_weights_, self.components_)
        self._commit(params, shift, tied, update_count, learning_rate, losses, stages,
                     stage_snapshots, continuing)
        self._step_halvings = halvings + (getattr(self, "_step_halvings", 0) if continuing else 0)
        if not continuing:
            self._started_baseline = float(baseline)
        self._thread_timings = timings  # for the next partial_fit call's choice

    def _divergence_advice(self, continuing):
        if self.learning_rate != "auto":
            return ("Lower learning_rate (or use learning_rate='auto') and standardise the "
                    "data.")
        advice = (f"The 'auto' step was halved {_MAX_STEP_HALVINGS} times without success: "
                  "pass a smaller float learning_rate or a smaller init_scale; an activation "
                  "whose slope grows with z can diverge at any step.")
        if continuing:
            advice += (" The step was set from the data that started this model: data of a "
                       "larger scale needs a smaller step.")
        return advice

    def _commit(self, params, shift, tied, update_count, learning_rate, losses, stages,
                stage_snapshots, continuing):
        encoder, encoder_bias, decoder, decoder_bias = params
        self.components_ = decoder
        self.encoder_weights_ = decoder if tied else encoder
        # Back from centred coordinates: z = W^e (x - s) + b_c = W^e x + (b_c - W^e s).
        # The product made as in _fitted_parameters_centred, in float64: made in float32
        # here, each continued call moved float32 intercepts by the same rounding.
        hidden_shift = _matvec(encoder, shift)
        self.intercept_hidden_ = (encoder_bias - hidden_shift).astype(encoder.dtype)
        self.intercept_visible_ = (decoder_bias + shift).astype(decoder.dtype)
        self._shift = shift
        self._tied_weights = bool(tied)
        self._update_count = update_count
        self.learning_rate_ = float(learning_rate)
        stages_run = np.asarray(stages, dtype=np.float64)
        if continuing:
            self.n_iter_ += len(losses)
            self.loss_curve_ = _appended(self.loss_curve_, losses)
            self.alpha_path_ = _appended(self.alpha_path_, stages_run)
        else:
            self.n_iter_ = len(losses)
            self.loss_curve_ = np.asarray(losses, dtype=np.float64)
            self.alpha_path_ = stages_run
        if self.keep_stage_components:
            snapshots = np.asarray(stage_snapshots).reshape(-1, *decoder.shape)
            previous = getattr(self, "stage_components_", None) if continuing else None
            earlier = len(self.alpha_path_) - len(snapshots)
            if previous is None or len(previous) != earlier:  # stages run without snapshots
                previous = np.full((earlier, *decoder.shape), np.nan, decoder.dtype)
            self.stage_components_ = (_appended(previous, snapshots, decoder.dtype)
                                      if len(previous) else snapshots)
        elif hasattr(self, "stage_components_"):
            del self.stage_components_

    # ------------------------------------------------------------ inference

    def _check_input(self, X):
        """Validated ``X`` for inference. Not yet checked for NaN and inf: the
        kernels return ``sum |X|`` for ``_checked_absolute_sum``."""
        check_is_fitted(self)
        return self._validated(X, reset=False)

    def _validated(self, X, reset, continuing=False):
        """``X`` as an array of the working dtype: ``X``'s own when float32 or
        float64, float64 otherwise; when ``continuing`` the training of a fitted
        model, the model's, so that a batch of another dtype does not convert
        the model to it."""
        # Not checked for NaN and inf here: every caller makes a pass over X that
        # also tells (training: the centred norms or the loss; inference: sum |X|),
        # and scikit-learn's check would be one more pass (5-7% of transform).
        if len(getattr(X, "shape", ())) == 2 and X.shape[1] == 0:  # a frame without columns
            raise ValueError(f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a "
                             "minimum of 1 is required.")
        dtype = self.components_.dtype if continuing else [np.float64, np.float32]
        if not continuing and getattr(X, "dtype", None) == _SWAPPED_FLOAT32:
            dtype = np.float32  # the list above would take it for another type: float64
        return validate_data(self, X, dtype=dtype, order="C", reset=reset,
                             ensure_all_finite=False)

    def _weights_as(self, dtype, names=_ENCODER_WEIGHTS + _DECODER_WEIGHTS):
        """The fitted arrays ``names`` in ``dtype``, C-contiguous, and the sum of
        their absolute values (inf if it overflows ``dtype``), which bounds what
        they produce. Raises if one of them holds values beyond ``dtype``'s range."""
        with np.errstate(over="ignore"):  # checked just below
            weights = tuple(np.ascontiguousarray(getattr(self, name), dtype=dtype)
                            for name in names)
        # One compiled pass per array tells both whether it is finite and its size:
        # at 3072 features, 300 units, transform's passes over the weights took
        # 10% of its product for 217 rows, when it also tested the decoder.
        size = float(sum(_kernels.absolute_sum(np.atleast_2d(w)) for w in weights))
        if not np.isfinite(size):
            if not all(np.isfinite(w).all() for w in weights):
                largest = max(float(np.abs(getattr(self, name)).max()) for name in names)
                raise ValueError(f"The fitted parameters reach {largest:.3g}, beyond "
                                 f"{np.dtype(dtype)}'s range; pass float64 input.")
            size = np.inf  # each value is finite, but not their sum in this dtype
        return weights, size

    def _weights_for(self, X, names=_ENCODER_WEIGHTS + _DECODER_WEIGHTS):
        """``_weights_as(X.dtype, names)``, for inference on ``X``, whose NaN and
        inf the kernels find later: where the weights do not fit ``X``'s dtype,
        a NaN or inf in ``X`` is named first, as the input's own problem."""
        try:
            return self._weights_as(X.dtype, names)
        except ValueError:
            _finite_absolute_sum(X, type(self).__name__)
            raise

    def _checked_output(self, out, what):
        # A pass over the output costs 3-4% of transform at d=144; a test inside
        # the kernel's loop costs twice that (it slows the loop itself).
        if not _finite(out):
            remedy = "pass float64 input or rescale" if out.dtype == np.float32 else "rescale"
            raise ValueError(
                f"The {what} overflow {out.dtype} for this input (values of X far beyond those the "
                f"model was trained on); {remedy} X as for training.")
        return out

    def transform(self, X):
        """Encode ``X``: the codes ``F(W^e x + b^e)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        H : ndarray of shape (n_samples, n_components)
            Same dtype as ``X`` (float32 or float64).
        """
        X = self._check_input(X)
        (encoder, encoder_bias), weight_size = self._weights_for(X, _ENCODER_WEIGHTS)
        activation = self._activation()
        out = np.empty((X.shape[0], encoder.shape[0]), dtype=X.dtype)
        address = gemm_address(X.dtype)
        with limit_in_force():
            warm_up_work_buffer(address, X.dtype)
            input_size = _kernels.encode(address, X, encoder, encoder_bias,
                                         activation.kernel_spec(), out)
        input_size = _checked_absolute_sum(X, input_size, type(self).__name__)
        # |z| <= max|W^e| sum|X| + max|b^e| <= (sum|W^e| + sum|b^e|) max(sum|X|, 1), and the
        # closed forms give |f(z)| <= max(|z|, 1): when that bound is far below overflow, the
        # pass over the codes is not needed.
        bound = weight_size * max(float(input_size), 1.0)
        if (isinstance(activation, (Shrink, RectifiedLinear, SaturatedLinear))
                and bound <= float(np.finfo(X.dtype).max) / 4):
            return out
        return self._checked_output(out, "codes")

    def inverse_transform(self, X):
        """Decode codes: ``W^d h + b^d``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, for instance from :meth:`transform`.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        H = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        n_components = self.components_.shape[0]
        if H.shape[1] != n_components:
            raise ValueError(
                f"X has {H.shape[1]} features, but inverse_transform expects codes with "
                f"n_components={n_components} features."
            )
        (decoder, decoder_bias), _ = self._weights_as(H.dtype, _DECODER_WEIGHTS)
        return self._checked_output(H @ decoder + decoder_bias, "reconstructions")

    def energy(self, X):
        """Per-sample reconstruction energy ``E(x) = 1/2 ||x - G(x)||^2``.

        Low on the data the model was trained on, high away from it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        energy : ndarray of shape (n_samples,)
        """
        X = self._check_input(X)
        out = np.empty(X.shape[0], dtype=X.dtype)
        address = gemm_address(X.dtype)
        weights, _ = self._weights_for(X)
        workspace = _kernels.energy_workspace(*X.shape, len(weights[0]), X.dtype)
        with limit_in_force():
            warm_up_work_buffer(address, X.dtype)
            input_size = _kernels.energy(address, X, *weights,
                                         self._activation().kernel_spec(), out, workspace)
        _checked_absolute_sum(X, input_size, type(self).__name__)
        return self._checked_output(out, "energies")

    def score_samples(self, X):
        """Negated reconstruction energy: **higher means more typical**.

        Returns ``-energy(X)``, the convention of scikit-learn's outlier
        detectors and density models, so that ``roc_auc_score(y_inlier,
        model.score_samples(X))`` and other tools for such scores work
        unchanged. Use :meth:`energy` for the energy itself.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return -self.energy(X)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: minus the mean reconstruction energy.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = False
        return tags


def _caller_level():
    """``stacklevel`` for a warning raised in the caller of this function that
    names the first frame outside the estimators' modules and scikit-learn:
    the code that called the fit, however many wrappers stand between."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED_BY_WARNINGS):
        frame, level = frame.f_back, level + 1
    return level


def _matvec(matrix, vector):
    """``matrix @ vector`` without NumPy's BLAS. Its worker threads spin for
    about 0.1 s after a threaded call, on the core that the epochs' products
    (made by SciPy's BLAS) need: around every ``partial_fit`` call, that took
    the gain of a second thread at 3072 features and batches of 16 and 128."""
    return np.einsum("ij,j->i", matrix, vector)


def _batch_loss(batch, params, activation, alpha):
    """Mean Eq. 2 loss of a centred ``batch`` under ``params``, in the working
    dtype; without NumPy's BLAS (``_matvec``)."""
    encoder, encoder_bias, decoder, decoder_bias = params
    with np.errstate(all="ignore"):  # a blown-up model overflows: that is what is measured
        pre = np.einsum("ij,kj->ik", batch, encoder) + encoder_bias
        codes = activation.function(pre)
        residual = np.einsum("ik,kj->ij", codes, decoder) + decoder_bias - batch
        loss = 0.5 * np.sum(residual**2, dtype=np.float64) + alpha * np.sum(
            activation.complementary(pre), dtype=np.float64)
    return float(loss) / len(batch)


def _alpha_schedule(start, stop, step):
    """Alphas of the stages: ``start + step, start + 2 step, ...`` ending at ``stop``.

    ``start=None`` means a fresh fit, whose schedule begins at 0 itself.
    """
    stop = float(stop)
    if step is None:
        return [stop]
    first = 0.0 if start is None else float(start) + step
    if first >= stop - 1e-12 * max(1.0, stop):
        return [0.0, stop] if start is None and stop > 0 else [stop]
    ratio = (stop - first) / step  # inf for alpha_step=1e-308
    if not ratio - 1e-9 <= MAX_STAGES - 1:  # alpha=1e300 would build a list of 1e301 stages
        raise ValueError(
            f"alpha={stop:g} in steps of alpha_step={step:g} from {first:g} makes {ratio + 1:.3g} "
            f"stages of max_iter epochs each, more than {MAX_STAGES}; raise alpha_step, or set "
            "it to None to train at alpha directly.")
    count = math.ceil(ratio - 1e-9)
    return [round(first + i * step, 12) for i in range(count)] + [stop]


def _finite(array):
    """Whether every value is finite. Summing needs no temporary array; only a
    sum that is not finite, which large finite values can also give, leads to
    testing the values."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.sum(array)
    return bool(np.isfinite(total) or np.isfinite(array).all())


def _finite_mean(X, estimator_name):
    """The mean of ``X``'s rows, in float64, after checking that ``X`` holds no
    NaN or inf: either makes the mean not finite (as does a sum beyond
    float64's range, which ``assert_all_finite`` then lets through)."""
    shift = X.mean(axis=0, dtype=np.float64)
    if not np.isfinite(shift).all():
        assert_all_finite(X, estimator_name=estimator_name, input_name="X")
    return shift


def _finite_absolute_sum(X, estimator_name):
    """``sum |X|``, after checking that ``X`` holds no NaN or inf (one pass)."""
    return _checked_absolute_sum(X, _kernels.absolute_sum(X), estimator_name)


def _checked_absolute_sum(X, total, estimator_name):
    """``total``, the sum of ``|X|`` in ``X``'s dtype, after checking that ``X``
    holds no NaN or inf: either makes ``total`` not finite (as does a sum
    beyond the dtype's range, which ``assert_all_finite`` then lets through)."""
    if not np.isfinite(total):
        assert_all_finite(X, estimator_name=estimator_name, input_name="X")
    return total


def _checked_squared_norms(X, shift):
    """``||x_i - shift||^2`` for every row, after checking that the working
    dtype can train on finite ``X``: its squares must not overflow, and its
    mean must not dwarf its spread (the intercepts, which absorb the mean,
    would lose the data's variation to rounding)."""
    squared_norms = _centred_squared_norms(X, shift)
    dtype = X.dtype
    if np.isfinite(squared_norms).all():
        largest = math.sqrt(squared_norms.max())
    else:
        largest = max(abs(float(X.max())), abs(float(X.min())))
    if not largest <= 1e-3 * math.sqrt(np.finfo(dtype).max):
        raise ValueError(
            f"X has values up to {largest:.3g} from its mean, too large for {dtype}: their "
            f"squares overflow. Rescale X (for instance with sklearn.preprocessing."
            f"StandardScaler){' or pass float64' if dtype == np.float32 else ''}.")
    spread = math.sqrt(squared_norms.mean() / X.shape[1])
    offset = math.sqrt(np.mean(shift**2))
    resolution = 1e3 * np.finfo(dtype).eps
    if spread and offset * resolution > spread and _rows_all_equal(X):
        spread = 0.0  # what is left is the rounding of the mean
    # Constant X: the activations' own unit scale is the one left to resolve.
    if offset > (spread or 1.0) / resolution:
        or_float64 = " or pass float64" if dtype == np.float32 else ""
        raise ValueError(
            f"X's mean ({offset:.3g}, root mean square over features) is "
            f"{offset / (spread or 1.0):.3g} times its spread ({spread:.3g}"
            f"{', constant X: taken as 1' if not spread else ''}): in {dtype} the model cannot "
            "resolve the data around so large an offset. Standardise X (for instance with "
            f"sklearn.preprocessing.StandardScaler){or_float64}.")
    return squared_norms


def _rows_all_equal(X, block_elements=2**20):
    """Whether every row of ``X`` equals the first, one block at a time."""
    block = max(1, block_elements // max(1, X.shape[1]))
    return all(np.array_equal(X[start:start + block], np.broadcast_to(
        X[0], X[start:start + block].shape)) for start in range(0, X.shape[0], block))


def _centred_squared_norms(X, shift, block_elements=2**20):
    """``||x_i - shift||^2`` for every row, one block of about 8 MiB at a time,
    so that X is never copied whole."""
    out = np.empty(X.shape[0])
    block = max(1, block_elements // max(1, X.shape[1]))
    for start in range(0, X.shape[0], block):
        centred = X[start:start + block] - shift
        out[start:start + block] = np.einsum("ij,ij->i", centred, centred)
        del centred  # else the next block is built while this one is alive
    return out


_reseeded = threading.local()


def _continued_rng(random_state, salt):
    """A generator for a later ``partial_fit`` call: reproducible when seeded,
    but not the same shuffle as the previous call.

    A seeded call reseeds a generator kept per thread: a new ``RandomState``
    costs about 65 us (its Mersenne Twister first fills its 624-word state
    from a fresh ``SeedSequence``, then is seeded again), a fifth of a
    one-row ``partial_fit``; reseeding costs 1 us and gives the same
    numbers."""
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return check_random_state(random_state)
    seed = np.random.SeedSequence([int(random_state), int(salt)]).generate_state(1)[0]
    rng = getattr(_reseeded, "rng", None)
    if rng is None:
        rng = _reseeded.rng = np.random.RandomState()
    rng.seed(seed)
    return rng


def _appended(history, values, dtype=np.float64):
    """``history`` and then ``values`` (along the first axis), in ``dtype``, in
    constant time per value over many calls.

    Each ``partial_fit`` call adds one value to ``loss_curve_`` and one to
    ``alpha_path_``, and a snapshot of the decoder to ``stage_components_``
    when it keeps them: a new array each time would copy the whole history at
    every call (2.2 ms a call after a million calls, ten times the rest of a
    one-row call). The array returned views a flat buffer with room to grow,
    whose first element records how many rows of it have been handed out. A
    later call writes after those only if ``history`` is still the longest
    view of it, so that no array ever seen by a caller changes, even where two
    estimators share a history (a shallow copy); otherwise the history moves
    to a new buffer. Pickles hold the view's values only.
    """
    history = np.asarray(history, dtype=dtype)  # the same array when it already is one
    values = np.asarray(values, dtype=dtype)
    n, added = len(history), len(values)
    row = math.prod(values.shape[1:])
    buffer = history.base
    if (isinstance(buffer, np.ndarray) and buffer.ndim == 1 and buffer.dtype == dtype
            and history.shape[1:] == values.shape[1:] and history.flags.c_contiguous
            and history.ctypes.data == buffer.ctypes.data + buffer.itemsize
            and buffer[0] == n and len(buffer) >= 1 + (n + added) * row):
        buffer[1 + n * row:1 + (n + added) * row] = values.reshape(-1)
    else:
        # Room for as many values again (at least 16) in a 1-D history; a quarter
        # more snapshots (at least one) of the decoder, which may be large.
        room = max(n + added, 16) if values.ndim == 1 else max((n + added) // 4, 1)
        buffer = np.empty(1 + (n + added + room) * row, dtype)
        buffer[1:1 + n * row] = history.reshape(-1)
        buffer[1 + n * row:1 + (n + added) * row] = values.reshape(-1)
    buffer[0] = n + added
    return buffer[1:1 + (n + added) * row].reshape((n + added,) + values.shape[1:])


def _copy(params, tied):
    encoder, encoder_bias, decoder, decoder_bias = params
    decoder = aligned_copy(decoder)  # tied: one array, copied once
    return [decoder if tied else aligned_copy(encoder), aligned_copy(encoder_bias), decoder,
            aligned_copy(decoder_bias)]
