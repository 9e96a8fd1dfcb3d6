"""scikit-learn's common estimator checks, for every activation, tied and untied."""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from sksatae import SaturatingAutoEncoder
from sksatae.activations import ACTIVATIONS, TabulatedActivation

BUMP = TabulatedActivation.from_function(lambda z: np.exp(-z**2 / 2), name="bump")

ESTIMATORS = [
    SaturatingAutoEncoder(activation=activation, tied_weights=tied)
    for activation in ACTIVATIONS
    for tied in (False, True)
] + [
    SaturatingAutoEncoder(n_components=5, activation="shrink", alpha_step=None, batch_size=1),
    SaturatingAutoEncoder(activation=BUMP),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
