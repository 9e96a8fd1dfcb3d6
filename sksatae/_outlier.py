"""SATAEOutlierDetector: the reconstruction energy of a Saturating
Auto-Encoder as an outlier score, under scikit-learn's outlier contract."""

from numbers import Real

import numpy as np
from sklearn.base import OutlierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._autoencoder import SaturatingAutoEncoder, restored_on_error

AUTO_MAD_MULTIPLIER = 3.0
"""Scaled MADs above the median training energy beyond which ``"auto"`` flags a sample."""

_MAD_TO_STD = 1.4826
"""``1 / Phi^-1(3/4)``: makes the MAD estimate the standard deviation of normal data."""

_TIE_ULPS = 4
"""Energies this many units in the last place apart count as one value: the
same row scored at two places of a batch may differ in its last bits."""


def _distinct(energies):
    """The energies, sorted, with each value counted once: a value within the
    tolerance of the last one kept is the same value (compared with the one
    kept, not with its neighbour, so that values a few ulps apart in a long
    run are not all merged into one)."""
    values = np.sort(energies.astype(np.float64))
    tolerance = _TIE_ULPS * np.finfo(energies.dtype).eps * values
    close = np.diff(values) <= tolerance[1:]
    keep = np.ones(len(values), dtype=bool)
    anchor = 0.0
    for i in np.flatnonzero(close) + 1:  # only where neighbours are that close
        if keep[i - 1]:
            anchor = values[i - 1]
        keep[i] = values[i] - anchor > tolerance[i]
    return values[keep]


def _inherited_sections(docstring):
    """The Parameters section of a numpydoc class docstring, split after its first
    entry, and the entries of its Attributes section."""
    header = "Parameters\n    ----------\n"
    start = docstring.index(header) + len(header)
    attributes = "\n    Attributes\n    ----------\n"
    end = docstring.index(attributes)
    first, rest = docstring[start:end].rstrip().split("\n\n    activation :", 1)
    attributes_end = docstring.index("\n    See Also\n")
    return {
        "first_parameter": first,
        "other_parameters": "    activation :" + rest + "\n",
        "inherited_attributes": docstring[end + len(attributes):attributes_end].strip("\n"),
    }


class SATAEOutlierDetector(OutlierMixin, SaturatingAutoEncoder):
    """Outlier detection with a Saturating Auto-Encoder (SATAE).

    Fits a :class:`SaturatingAutoEncoder` and scores samples by their
    reconstruction energy ``E(x) = 1/2 ||x - G(x)||^2``. The saturation penalty
    makes the auto-encoder reconstruct well only near the training data, so
    the energy is low on the data and high away from it (Section 3 of Goroshin
    & LeCun, 2013).

    The scores follow scikit-learn's outlier detectors
    (:class:`~sklearn.ensemble.IsolationForest`,
    :class:`~sklearn.neighbors.LocalOutlierFactor`): :meth:`score_samples` is
    ``-E(x)`` (**higher means more normal**), :meth:`decision_function` is
    ``score_samples(X) - offset_`` (**negative means outlier**) and
    :meth:`predict` returns +1 for inliers and -1 for outliers.

    .. warning:: **Sign conventions differ from PyOD.** PyOD's
       ``decision_function`` returns outlier scores where *higher means more
       abnormal*. Here ``decision_function`` follows scikit-learn: *lower means
       more abnormal*, and 0 is the threshold. The PyOD-style training
       attributes ``decision_scores_`` and ``threshold_`` are provided in
       PyOD's sign (energies; a sample is an outlier when its energy exceeds
       ``threshold_``). For PyOD-sign scores on new data use :meth:`energy`,
       not ``decision_function``.

    The model and its training are those of :class:`SaturatingAutoEncoder`,
    so :meth:`transform`, :meth:`inverse_transform` and :meth:`energy` are
    available too. The model works best on standardised data; see
    :class:`~sklearn.preprocessing.StandardScaler`.

    Parameters
    ----------
{first_parameter}

    contamination : "auto" or float, default="auto"
        The expected proportion of outliers in the training data; it sets
        ``offset_``, the threshold on :meth:`score_samples`.

        - float in (0, 0.5]: ``offset_`` is the ``contamination`` quantile of
          the training ``score_samples``, so that this fraction of the training
          samples is flagged (up to ties), as in
          :class:`~sklearn.ensemble.IsolationForest`.
        - ``"auto"``: a sample is flagged when its energy exceeds the median
          training energy by more than three scaled median absolute deviations
          (the Hampel identifier)::

              threshold_ = median(E) + 3 * 1.4826 * median(|E - median(E)|)
              offset_ = -threshold_

          where ``E`` are the distinct training energies (repeated rows count
          once). See Notes for why.

    validation_fraction : float in (0, 1) or None, default=None
        The fraction of ``X`` that ``fit`` holds out of training (drawn with
        ``random_state``) to set ``offset_`` from, by the ``contamination``
        rule, instead of from the samples the model was trained on. A model
        fitted closely to few samples gives them lower energies than new
        samples of the same kind: trained on 91 images of one digit, the
        ``"auto"`` threshold set from them flagged 4% of them and 91% of
        other images of that digit. None sets it from all of ``X``, which
        all train the model. ``partial_fit`` always uses its batch.

{other_parameters}
    Attributes
    ----------
    offset_ : float
        Offset used to define the decision function from the raw scores:
        ``decision_function = score_samples - offset_``. It is minus the energy
        threshold (see ``contamination``).

    decision_scores_ : ndarray of shape (n_samples,)
        Outlier scores of the training samples in **PyOD's sign**: their
        reconstruction energies, higher means more abnormal. Equal to
        ``-score_samples(X_train)``.

    threshold_ : float
        The energy threshold in **PyOD's sign**: ``-offset_``. A sample is an
        outlier when its energy is above it.

{inherited_attributes}

    See Also
    --------
    SaturatingAutoEncoder : The auto-encoder itself, as a transformer.
    sklearn.ensemble.IsolationForest : Outlier detection by random partitions.
    sklearn.neighbors.LocalOutlierFactor : Outlier detection by local density.
    sklearn.svm.OneClassSVM : Outlier detection by a kernel support.

    Notes
    -----
    Why the ``"auto"`` threshold is the Hampel identifier on the energies:

    - The energy has no fixed scale: it grows with the data's scale and
      dimension and depends on the fitted model. A constant offset such as
      IsolationForest's ``-0.5``, meaningful there because its scores are
      normalised to (0, 1], has no counterpart here, so the threshold must be
      estimated from the training energies.
    - A fixed quantile (say the 99th percentile) would be
      ``contamination=0.01`` in disguise: it flags that fraction of every
      training set, clean or not. The Hampel identifier flags only energies
      that are far above the bulk relative to the bulk's own spread, so the
      number of training samples it flags follows the data.
    - The median and the MAD are unaffected by up to half of the training
      samples being outliers, whereas the mean and standard deviation are
      inflated by the very outliers one is looking for (masking).
    - Only high energies are abnormal, so the rule is one-sided.
    - Repeated rows (a sensor idling at one reading) count once: each
      distinct energy enters the median and the MAD once. Counted as often as
      they occur, rows repeated in half of the training set would make the
      MAD 0, and every sample of higher energy than theirs an outlier.

    Energies are sums of squared residuals and so skewed to the right: on data
    with no outliers the rule still flags the far end of that tail, typically
    a few percent of the training samples, and up to about 10% when the
    energies are heavy-tailed (as with saturated-linear units on data that
    often reaches their saturation). Pass a float ``contamination`` when the
    expected proportion of outliers is known.

    ``partial_fit`` updates the weights with one pass over the given batch and
    then sets ``offset_``, ``decision_scores_`` and ``threshold_`` from that
    batch's energies under the updated model.

    References
    ----------
    R. Goroshin and Y. LeCun. Saturating Auto-Encoders. International
    Conference on Learning Representations (ICLR), 2013. arXiv:1301.3577.

    C. Leys, C. Ley, O. Klein, P. Bernard and L. Licata. Detecting outliers:
    Do not use standard deviation around the mean, use absolute deviation
    around the median. Journal of Experimental Social Psychology, 49(4),
    764-766, 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from sksatae import SATAEOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.standard_normal((200, 2)) @ [[1.0, 0.9], [0.0, 0.3]]
    >>> X_new = np.array([[0.0, 0.0], [2.0, -2.0]])
    >>> detector = SATAEOutlierDetector(n_components=4, contamination=0.05,
    ...                                 max_iter=10, random_state=0).fit(X)
    >>> detector.predict(X_new)
    array([ 1, -1])
    >>> bool(np.all(detector.decision_function(X_new)
    ...             == detector.score_samples(X_new) - detector.offset_))
    True
    >>> int((detector.predict(X) == -1).sum())  # 5% of 200
    10
    """

    # The model parameters are documented once, on SaturatingAutoEncoder
    # (``python -OO`` strips docstrings).
    if __doc__ is not None:
        __doc__ = __doc__.format(**_inherited_sections(SaturatingAutoEncoder.__doc__))

    _parameter_constraints = {
        **SaturatingAutoEncoder._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    }

    def __init__(
        self,
        n_components=100,
        *,
        contamination="auto",
        validation_fraction=None,
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
        super().__init__(
            n_components=n_components,
            activation=activation,
            shrink_width=shrink_width,
            alpha=alpha,
            alpha_step=alpha_step,
            max_iter=max_iter,
            batch_size=batch_size,
            learning_rate=learning_rate,
            tied_weights=tied_weights,
            normalize_decoder_every=normalize_decoder_every,
            init_scale=init_scale,
            keep_stage_components=keep_stage_components,
            n_threads=n_threads,
            shuffle=shuffle,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
        )
        self.contamination = contamination
        self.validation_fraction = validation_fraction

    @restored_on_error
    def fit(self, X, y=None):
        """Fit the auto-encoder to ``X`` and set the outlier threshold from it
        (from the part held out of training, with ``validation_fraction``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted detector.
        """
        self._validate_params()  # before the split, which validation_fraction sizes
        if self.validation_fraction is None:
            super().fit(X)
            self._set_threshold(X)
            return self
        train, held_out = train_test_split(X, test_size=self.validation_fraction,
                                           random_state=self.random_state)
        super().fit(train)
        self._set_threshold(held_out)
        self.decision_scores_ = self.energy(X)
        return self

    @restored_on_error
    def partial_fit(self, X, y=None):
        """One pass of SGD over ``X``, then the threshold from ``X``'s energies.

        The threshold (``offset_``) reflects this batch only; see Notes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense).
        y : Ignored
            Not used (dask-ml's ``Incremental`` passes a placeholder).

        Returns
        -------
        self : object
            The updated detector.
        """
        super().partial_fit(X)
        self._set_threshold(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit the detector to ``X`` and label ``X``'s samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            1 for inliers, -1 for outliers.
        """
        return self.fit(X).predict(X)

    def _set_threshold(self, X):
        energies = self.energy(X)
        if self.contamination == "auto":
            distinct = _distinct(energies)
            median = np.median(distinct)
            spread = _MAD_TO_STD * np.median(np.abs(distinct - median))
            self.offset_ = float(-(median + AUTO_MAD_MULTIPLIER * spread))
        else:
            # IsolationForest's rule: the contamination quantile of score_samples.
            scores = -energies.astype(np.float64)
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        self.threshold_ = -self.offset_
        self.decision_scores_ = energies

    def decision_function(self, X):
        """Shifted scores: ``score_samples(X) - offset_``; **negative means outlier**.

        This is scikit-learn's sign, the opposite of PyOD's
        ``decision_function``: use :meth:`energy` for scores where higher means
        more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``offset_``-shifted minus energy: positive for inliers, negative
            for outliers.
        """
        check_is_fitted(self)
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Whether each sample is an inlier (+1) or an outlier (-1).

        A sample is an outlier when ``decision_function`` is negative, that is
        when its energy is above ``threshold_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers.
        """
        decision = self.decision_function(X)
        return np.where(decision < 0, -1, 1)
