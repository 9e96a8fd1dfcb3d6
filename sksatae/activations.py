"""The saturating nonlinearities and their complementary functions (Eq. 1).

For an activation ``f`` with flat set ``S = {z : f'(z) = 0}``, the
complementary function is the distance to that set,
``f_c(z) = inf_{s in S} |z - s|``:

=============  ================================  ===========================  =======================================
activation     f(z)                              flat set S                   f_c(z)
=============  ================================  ===========================  =======================================
``shrink``     ``sign(z) max(|z| - lambda, 0)``  [-lambda, lambda]            ``max(|z| - lambda, 0) = |shrink(z)|``
``relu``       ``max(z, 0)``                     (-inf, 0]                    ``max(z, 0)``
``satlinear``  ``min(max(z, 0), 1)``             (-inf, 0] U [1, inf)         ``min(z, 1 - z)`` on (0, 1), else 0
=============  ================================  ===========================  =======================================

Subgradients at the kinks: ``f'`` and ``f_c'`` are taken as 0 on the closed
flat set (``|z| <= lambda`` for shrink, ``z <= 0`` for relu, ``z <= 0`` or
``z >= 1`` for satlinear), and the tent of the saturated-linear ``f_c`` has
subgradient 0 at its peak ``z = 1/2`` (+1 below it, -1 above it).

These NumPy functions are the reference the compiled kernels are tested
against, and what plots use.
"""

import numpy as np

ACTIVATIONS = ("shrink", "relu", "satlinear")
ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}


def _check_name(activation):
    if activation not in ACTIVATION_CODES:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")


def activation_function(activation, z, shrink_width=0.1):
    """Apply the activation ``f`` elementwise.

    Parameters
    ----------
    activation : {"shrink", "relu", "satlinear"}
    z : array-like
        Pre-activations.
    shrink_width : float, default=0.1
        The width lambda of the shrink's flat region (ignored by the others).

    Returns
    -------
    ndarray
    """
    _check_name(activation)
    z = np.asarray(z)
    if activation == "shrink":
        return np.sign(z) * np.maximum(np.abs(z) - shrink_width, 0)
    if activation == "relu":
        return np.maximum(z, 0)
    return np.clip(z, 0, 1)


def complementary_function(activation, z, shrink_width=0.1):
    """The saturation penalty ``f_c``: the distance of ``z`` to f's flat set (Eq. 1).

    Parameters and return value as for :func:`activation_function`.
    """
    _check_name(activation)
    z = np.asarray(z)
    if activation == "shrink":
        return np.maximum(np.abs(z) - shrink_width, 0)
    if activation == "relu":
        return np.maximum(z, 0)
    return np.where((z > 0) & (z < 1), np.minimum(z, 1 - z), 0.0)


def activation_derivative(activation, z, shrink_width=0.1):
    """The (sub)derivative ``f'`` used in training (0 on the closed flat set)."""
    _check_name(activation)
    z = np.asarray(z)
    if activation == "shrink":
        active = np.abs(z) > shrink_width
    elif activation == "relu":
        active = z > 0
    else:
        active = (z > 0) & (z < 1)
    return active.astype(z.dtype if z.dtype.kind == "f" else float)


def complementary_derivative(activation, z, shrink_width=0.1):
    """The (sub)derivative ``f_c'`` used in training (see the module docstring)."""
    _check_name(activation)
    z = np.asarray(z)
    if activation == "shrink":
        out = np.sign(z) * (np.abs(z) > shrink_width)
    elif activation == "relu":
        out = 1.0 * (z > 0)
    else:
        inside = (z > 0) & (z < 1)
        out = np.where(inside, np.sign(0.5 - z), 0.0)
    return out.astype(z.dtype if z.dtype.kind == "f" else float)
