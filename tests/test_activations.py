"""The nonlinearities and their complementary functions (Eq. 1 and NOTES.md)."""

import numpy as np
import pytest

from sksatae import _kernels
from sksatae.activations import (
    ACTIVATION_CODES,
    ACTIVATIONS,
    activation_derivative,
    activation_function,
    complementary_derivative,
    complementary_function,
)

WIDTH = 0.3
rng = np.random.default_rng(0)
Z = np.concatenate([rng.uniform(-3, 3, 5000), [-WIDTH, WIDTH, 0.0, 0.5, 1.0]])


def flat_set_distance(activation, z):
    """Distance to the flat set written from its definition, as intervals."""
    if activation == "shrink":
        return np.maximum(np.abs(z) - WIDTH, 0.0)
    if activation == "relu":
        return np.where(z <= 0, 0.0, z)
    return np.where((z <= 0) | (z >= 1), 0.0, np.minimum(np.abs(z - 0), np.abs(z - 1)))


def in_flat_set(activation, z):
    if activation == "shrink":
        return np.abs(z) <= WIDTH
    if activation == "relu":
        return z <= 0
    return (z <= 0) | (z >= 1)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_complementary_is_distance_to_flat_set(activation):
    fc = complementary_function(activation, Z, WIDTH)
    assert np.all(fc[in_flat_set(activation, Z)] == 0)
    assert np.all(fc[~in_flat_set(activation, Z)] > 0)
    np.testing.assert_allclose(fc, flat_set_distance(activation, Z), atol=1e-15)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_flat_set_has_zero_slope_and_the_rest_does_not(activation):
    h = 1e-7
    away = Z[np.abs(np.abs(Z) - WIDTH) > 1e-3]
    away = away[(np.abs(away) > 1e-3) & (np.abs(away - 1) > 1e-3)]
    numeric = (activation_function(activation, away + h, WIDTH)
               - activation_function(activation, away - h, WIDTH)) / (2 * h)
    np.testing.assert_allclose(activation_derivative(activation, away, WIDTH), numeric, atol=1e-6)
    np.testing.assert_array_equal(numeric == 0, in_flat_set(activation, away) | (numeric == 0))
    numeric_c = (complementary_function(activation, away + h, WIDTH)
                 - complementary_function(activation, away - h, WIDTH)) / (2 * h)
    away_from_peak = np.abs(away - 0.5) > 1e-3
    np.testing.assert_allclose(complementary_derivative(activation, away, WIDTH)[away_from_peak],
                               numeric_c[away_from_peak], atol=1e-6)


def test_shrink_penalty_is_l1_norm_of_codes():
    np.testing.assert_array_equal(complementary_function("shrink", Z, WIDTH),
                                  np.abs(activation_function("shrink", Z, WIDTH)))


def test_satlinear_penalty_is_a_tent_peaking_at_one_half():
    assert complementary_function("satlinear", 0.5) == 0.5
    assert complementary_derivative("satlinear", 0.5) == 0.0
    np.testing.assert_allclose(complementary_function("satlinear", [0.2, 0.8]), [0.2, 0.2])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_compiled_unit_response_matches_reference(activation):
    code = ACTIVATION_CODES[activation]
    compiled = np.array([_kernels.unit_response(code, z, WIDTH) for z in Z])
    np.testing.assert_array_equal(compiled[:, 0], activation_function(activation, Z, WIDTH))
    np.testing.assert_array_equal(compiled[:, 1], activation_derivative(activation, Z, WIDTH))
    np.testing.assert_array_equal(compiled[:, 2], complementary_function(activation, Z, WIDTH))
    np.testing.assert_array_equal(compiled[:, 3], complementary_derivative(activation, Z, WIDTH))


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation must be one of"):
        activation_function("tanh", Z)
