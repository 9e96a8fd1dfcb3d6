"""Activations ``f`` and their complementary functions ``f_c``.

An :class:`Activation` carries ``f``, ``f'``, the saturation penalty ``f_c``
and ``f_c'`` in a form the compiled kernels evaluate without calling Python:
an integer code for the three closed forms of the paper, or tables for any
other function. Every estimator parameter ``activation`` takes one of them,
or one of the names in :data:`ACTIVATIONS`.

Closed forms (Eq. 1: ``f_c`` is the distance to f's flat set
``S = {z : f'(z) = 0}``):

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

Differentiable activations without a flat region (Section 5.1, Eq. 3) use
``f_c = min(M+ f, M- f)``, where ``M+ f(z)`` and ``M- f(z)`` average
``|f'|`` to the right and to the left of ``z`` over all scales ``l`` with
weight ``w(l) = l exp(-l / tau) / tau^2`` (a Gamma density of mean ``2 tau``).
That weight turns both into one-sided exponential smoothings of ``|f'|``::

    M+ f(z) = int_0^inf |f'(z + t)| exp(-t / tau) / tau dt
    M- f(z) = int_0^inf |f'(z - t)| exp(-t / tau) / tau dt

so ``f_c`` is ``|f'|`` seen through a window of length ``tau`` looking
both ways, and takes the smaller look: it is small where f is flat over a
stretch of about ``tau`` on at least one side, and stays high at an
isolated extremum, where ``|f'|`` itself touches zero (for a symmetric bump
it even peaks there, between two shallow minima). ``tau`` (the
``smoothing`` of :meth:`TabulatedActivation.from_function`, 1 by default, in
units of the pre-activation) is the one scale the paper leaves open: the
penalty ignores flat stretches much shorter than it. Both ``M`` have exact
slopes, ``(M+ - |f'|) / tau`` and ``(|f'| - M-) / tau``, which training uses.
Built in: ``"sigmoid"`` (the logistic function) and ``"tanh"``.

The NumPy functions of this module are the reference the compiled kernels
are tested against, and what plots use.
"""

import functools
from numbers import Real

import numpy as np

CLOSED_FORMS = ("shrink", "relu", "satlinear")
"""Names of the piecewise-linear activations of the paper (integer-coded)."""

ACTIVATIONS = CLOSED_FORMS + ("sigmoid", "tanh")
"""Every name an ``activation`` parameter accepts."""

ACTIVATION_CODES = {name: code for code, name in enumerate(CLOSED_FORMS)}
_TABULATED_DISTANCE, _TABULATED_VARIATION = 3, 4


class Activation:
    """An activation ``f`` with its complementary function ``f_c``.

    Not instantiated directly: use :class:`Shrink`, :class:`RectifiedLinear`,
    :class:`SaturatedLinear`, :meth:`TabulatedActivation.from_function`, or
    :func:`get_activation` with a name.

    Attributes
    ----------
    name : str
        A short name, used in plots and in ``repr``.
    flat_set : tuple of (float, float)
        The closed intervals ``(start, stop)`` where ``f' = 0`` (ends may be
        infinite); empty when f has no flat region.
    """

    name = None

    @property
    def flat_set(self):
        raise NotImplementedError

    def kernel_spec(self):
        """The plain tuple the compiled kernels take (see ``sksatae._kernels``)."""
        raise NotImplementedError

    def _respond(self, z):
        # Through the training kernel's own loop, in float32 for float32 input
        # (else float64), which a fit in that dtype compiles anyway: a loop of
        # their own, or the other dtype's, would cost a compilation more.
        from ._kernels import _respond_all

        z = np.asarray(z)
        z = z.astype(np.float32 if z.dtype == np.float32 else np.float64, copy=False)
        out = np.empty((4, 1, z.size), z.dtype)
        out[1, 0] = z.ravel()
        _respond_all(self.kernel_spec(), 1.0, out[1], out[0], out[2], out[3], 0, z.size)
        return out.reshape((4,) + z.shape)

    def function(self, z):
        """``f(z)``, elementwise."""
        return self._respond(z)[0]

    def derivative(self, z):
        """``f'(z)`` as training uses it (0 on the closed flat set)."""
        return self._respond(z)[1]

    def complementary(self, z):
        """The saturation penalty ``f_c(z)``."""
        return self._respond(z)[2]

    def complementary_derivative(self, z):
        """``f_c'(z)`` as training uses it (see the module docstring)."""
        return self._respond(z)[3]

    def __eq__(self, other):
        return type(self) is type(other) and repr(self) == repr(other) and all(
            np.array_equal(a, b) for a, b in zip(self.kernel_spec()[2:], other.kernel_spec()[2:]))

    def __hash__(self):
        return hash(repr(self))


class Shrink(Activation):
    """The shrink ``f(z) = sign(z) max(|z| - width, 0)``, flat on ``[-width, width]``.

    ``f_c(z) = max(|z| - width, 0) = |f(z)|``: an L1 penalty on the codes.

    Parameters
    ----------
    width : float, default=0.1
        The half-width lambda of the flat region.
    """

    name = "shrink"

    def __init__(self, width=0.1):
        if not isinstance(width, Real) or not 0 <= width < np.inf:
            raise ValueError(f"width must be a finite number >= 0, got {width!r}.")
        self.width = float(width)

    @property
    def flat_set(self):
        return ((-self.width, self.width),)

    def kernel_spec(self):
        return (ACTIVATION_CODES["shrink"], self.width)

    def function(self, z):
        z = np.asarray(z)
        return np.sign(z) * np.maximum(np.abs(z) - self.width, 0)

    def derivative(self, z):
        z = np.asarray(z)
        return (np.abs(z) > self.width).astype(_float_type(z))

    def complementary(self, z):
        return np.maximum(np.abs(np.asarray(z)) - self.width, 0)

    def complementary_derivative(self, z):
        z = np.asarray(z)
        return (np.sign(z) * (np.abs(z) > self.width)).astype(_float_type(z))

    def __repr__(self):
        return f"Shrink(width={self.width!r})"


class RectifiedLinear(Activation):
    """The rectified linear ``f(z) = max(z, 0)``, flat on ``(-inf, 0]``; ``f_c(z) = max(z, 0)``."""

    name = "relu"

    @property
    def flat_set(self):
        return ((-np.inf, 0.0),)

    def kernel_spec(self):
        return (ACTIVATION_CODES["relu"], 0.0)

    def function(self, z):
        return np.maximum(np.asarray(z), 0)

    def derivative(self, z):
        z = np.asarray(z)
        return (z > 0).astype(_float_type(z))

    complementary = function
    complementary_derivative = derivative

    def __repr__(self):
        return "RectifiedLinear()"


class SaturatedLinear(Activation):
    """The saturated linear ``f(z) = min(max(z, 0), 1)``, flat outside ``(0, 1)``.

    ``f_c`` is the tent ``min(z, 1 - z)`` on ``(0, 1)`` and 0 elsewhere.
    """

    name = "satlinear"

    @property
    def flat_set(self):
        return ((-np.inf, 0.0), (1.0, np.inf))

    def kernel_spec(self):
        return (ACTIVATION_CODES["satlinear"], 0.0)

    def function(self, z):
        return np.clip(np.asarray(z), 0, 1)

    def derivative(self, z):
        z = np.asarray(z)
        return ((z > 0) & (z < 1)).astype(_float_type(z))

    def complementary(self, z):
        z = np.asarray(z)
        return np.where((z > 0) & (z < 1), np.minimum(z, 1 - z), 0.0)

    def complementary_derivative(self, z):
        z = np.asarray(z)
        inside = (z > 0) & (z < 1)
        return np.where(inside, np.sign(0.5 - z), 0.0).astype(_float_type(z))

    def __repr__(self):
        return "SaturatedLinear()"


class TabulatedActivation(Activation):
    """An activation tabulated from a Python function, for the compiled kernels.

    Build one with :meth:`from_function`; the object then holds only arrays
    and numbers (no Python callable), so estimators using it clone, pickle
    and load with skops like any other.

    Between the nodes f is the cubic Hermite interpolant of the tabulated
    values and slopes (its own derivative is the ``f'`` training uses, so
    gradients are exact for the interpolant). On a flat interval f is the
    exact constant, with ``f' = 0``; a grid cell cut by a flat interval's edge
    is interpolated from the edge, found to full precision by bisection.
    Outside the tabulated range f continues linearly with its slope at the
    range's end; a flat end stays flat, and so does an end where f has
    reached its asymptote, whose slope would move f by less than 1e-12 of
    its range of values across the whole range (the built-in sigmoid's left
    end), up to ``z = +-inf``. Eq. 3's ``M+`` and ``M-`` are continued
    exactly for that extension.

    Attributes
    ----------
    name : str
    complementary_form : {"distance", "variation"}
        Eq. 1 (distance to the flat set, exact) or Eq. 3 (tabulated).
    smoothing : float
        The scale tau of Eq. 3's weighting (unused by ``"distance"``).
    limits : tuple of two floats
        The tabulated range of pre-activations.
    n_points : int
        Number of nodes (``n_points - 1`` equal cells).
    tabulation_error : float
        The largest ``|f_table - f|`` found at the cells' midpoints, relative
        to f's range of values ``max f - min f`` on ``limits`` (at most 1e-4 by
        construction). It covers f (and so f') only: Eq. 3's ``M+`` and ``M-``
        are exact to O(h^2) where ``|f'|`` is smooth, but only to O(h) within a
        few ``smoothing`` lengths of a point where ``f'`` jumps (a kink, or a
        flat interval's edge), with ``h`` the cell width: about 1e-3 relative at
        the default grid, decaying like ``exp(-|z - kink| / smoothing)``.
    """

    def __init__(self, name, complementary_form, smoothing, limits, table, flat, tabulation_error):
        self.name = name
        self.complementary_form = complementary_form
        self.smoothing = smoothing
        self.limits = limits
        self.table = table
        self.flat = flat
        self.tabulation_error = tabulation_error

    @classmethod
    def from_function(cls, function, derivative=None, *, name=None, complementary="auto",
                      smoothing=1.0, limits=(-20.0, 20.0), n_points=16385):
        """Tabulate a vectorised function ``f`` (NumPy array in, array out).

        Parameters
        ----------
        function : callable
            ``f``, applied to a 1-D float64 array, returning an array of the
            same shape. It should be continuous; it is called once here and
            never stored.
        derivative : callable, default=None
            ``f'``, vectorised likewise. None differentiates ``f`` numerically
            (central differences with steps of ``1e-5 max(1, |z|)``, one-sided
            next to a flat interval). A given derivative is checked against
            that estimate; it may differ from it only at nodes next to a kink
            of f, and must lie between f's one-sided slopes there, and at the
            two ends of ``limits``, where its value is the slope f continues
            with beyond them (``relu' = 0`` at 0 on ``limits=(0, 4)``).
        name : str, default=None
            Name for plots and ``repr``; None uses the function's name.
        complementary : {"auto", "distance", "variation"}, default="auto"
            ``"distance"``: Eq. 1, the distance to the flat set (f must have
            one). ``"variation"``: Eq. 3 (see the module docstring).
            ``"auto"``: ``"distance"`` when f has a flat region, else
            ``"variation"``.
        smoothing : float, default=1.0
            The scale tau of Eq. 3's weighting ``w(l) = l exp(-l / tau) / tau^2``.
        limits : tuple of two floats, default=(-20.0, 20.0)
            The range of pre-activations tabulated.
        n_points : int, default=16385
            Number of equally spaced nodes over ``limits``.

        Returns
        -------
        activation : TabulatedActivation

        Raises
        ------
        ValueError
            When f is not finite on the range, not vectorised, constant, when
            ``derivative`` disagrees with f, when ``"distance"`` is asked of
            an f without a flat region, or when the interpolation error
            exceeds 1e-4 of f's range of values (refine ``n_points`` or narrow
            ``limits``).

        Notes
        -----
        A flat region is a stretch where f is *exactly* constant in floating
        point, found on the nodes and the cells' midpoints (so a flat stretch
        shorter than a cell, ``(limits[1] - limits[0]) / (n_points - 1)``, is
        not seen) and refined by bisection to full precision. A function that
        only tends to a constant (a sigmoid) has none. Where the flat region
        reaches an end of the range, it continues to infinity.

        The Hermite interpolant's error on a smooth f is about
        ``h^4 max|f''''| / 384`` with ``h`` the cell width (1.9e-13 for
        the built-in sigmoid); a kink of f away from its flat set is
        rounded over one cell. ``complementary="variation"`` tables of an f
        whose slope jumps are less accurate near the jump (see
        ``tabulation_error``).

        Examples
        --------
        >>> import numpy as np
        >>> from sksatae.activations import TabulatedActivation
        >>> relu = TabulatedActivation.from_function(lambda z: np.maximum(z, 0), name="relu")
        >>> relu.flat_set, relu.complementary_form
        (((-inf, 0.0),), 'distance')
        >>> relu.complementary([-1.0, 2.5])
        array([0. , 2.5])
        >>> bump = TabulatedActivation.from_function(lambda z: np.exp(-z**2 / 2), name="bump")
        >>> bump.complementary_form, bool(bump.tabulation_error < 1e-10)
        ('variation', True)
        >>> bool(bump.derivative(0.0) == 0 < bump.complementary(0.0))
        True
        """
        from ._tabulation import tabulate

        return cls(**tabulate(function, derivative, name, complementary, smoothing, limits,
                              n_points))

    @property
    def flat_set(self):
        return tuple((float(start), float(stop)) for start, stop in self.flat[:, :2])

    @property
    def n_points(self):
        return self.table.shape[0]

    def kernel_spec(self):
        self._check_tables()
        code = _TABULATED_DISTANCE if self.complementary_form == "distance" else _TABULATED_VARIATION
        lower, upper = self.limits
        step = (upper - lower) / (self.n_points - 1)
        return (code, 0.0, float(lower), float(step), float(self.smoothing), self.table, self.flat)

    def _check_tables(self):
        """Refuse fields the compiled code cannot use safely: it reads the tables
        without bounds checks. ``from_function`` builds valid ones; this guards
        objects built or edited by hand."""
        def refuse(problem):
            raise ValueError(f"TabulatedActivation {self.name!r}: {problem}; build it with "
                             "TabulatedActivation.from_function.")

        if self.complementary_form not in ("distance", "variation"):
            refuse(f"complementary_form must be 'distance' or 'variation', got "
                   f"{self.complementary_form!r}")
        table, flat = self.table, self.flat
        if not (isinstance(table, np.ndarray) and table.dtype == np.float64 and table.ndim == 2
                and table.shape[0] >= 2 and table.shape[1] == 6 and table.flags.c_contiguous):
            refuse("table must be a C-ordered float64 array of shape (n_points >= 2, 6) "
                   "(f, f', M+, M+', M-, M-' at the nodes), got "
                   f"{getattr(table, 'dtype', type(table).__name__)} of shape "
                   f"{getattr(table, 'shape', None)}")
        if not np.isfinite(table).all():
            refuse("table holds NaN or infinite values")
        if not (isinstance(flat, np.ndarray) and flat.dtype == np.float64 and flat.ndim == 2
                and flat.shape[1] == 5 and flat.flags.c_contiguous):
            refuse("flat must be a C-ordered float64 array of shape (n_intervals, 5) (start, "
                   f"stop, value, slope before, slope after), got shape {getattr(flat, 'shape', None)}")
        starts, stops = flat[:, 0], flat[:, 1]
        if (np.isnan(flat).any() or not np.isfinite(flat[:, 2:]).all()
                or (starts > stops).any() or (stops[:-1] >= starts[1:]).any()):
            refuse("flat must hold sorted, disjoint intervals with finite values and slopes")
        if self.complementary_form == "distance" and not len(flat):
            refuse("complementary_form 'distance' needs a flat interval")
        try:
            lower, upper = (float(limit) for limit in self.limits)
        except (TypeError, ValueError):  # not two numbers
            lower = upper = np.nan
        if not (np.isfinite([lower, upper]).all() and lower < upper):
            refuse(f"limits must be two finite floats, lower first, got {self.limits!r}")
        if not (isinstance(self.smoothing, Real) and np.isfinite(self.smoothing)
                and self.smoothing > 0):
            refuse(f"smoothing must be a positive float, got {self.smoothing!r}")

    def __repr__(self):
        details = f"{self.name!r}, complementary={self.complementary_form!r}"
        if self.complementary_form == "variation":
            details += f", smoothing={self.smoothing!r}"
        return f"TabulatedActivation({details}, limits={self.limits!r}, n_points={self.n_points})"


def _float_type(z):
    return z.dtype if z.dtype.kind == "f" else np.float64


def _sigmoid(z):
    # 1 / (1 + e^-z) written so that no exponential overflows and the tail keeps its
    # relative precision; scipy.special.expit would add its import (0.3 s) to a first fit.
    z = np.asarray(z, dtype=np.float64)
    small = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, small) / (1.0 + small)


def _sigmoid_derivative(z):
    value = _sigmoid(z)
    return value * (1 - value)


def _tanh_derivative(z):
    return 1 - np.tanh(z) ** 2


@functools.lru_cache(maxsize=None)
def _built_in(name):
    if name == "sigmoid":
        return TabulatedActivation.from_function(_sigmoid, _sigmoid_derivative, name="sigmoid",
                                                 complementary="variation", limits=(-40.0, 40.0))
    return TabulatedActivation.from_function(np.tanh, _tanh_derivative, name="tanh",
                                             complementary="variation", limits=(-40.0, 40.0))


def get_activation(activation, shrink_width=0.1):
    """The :class:`Activation` for a name (or the object itself).

    Parameters
    ----------
    activation : {"shrink", "relu", "satlinear", "sigmoid", "tanh"} or Activation
    shrink_width : float, default=0.1
        The width of the shrink's flat region, for the name ``"shrink"``.

    Returns
    -------
    Activation
    """
    if isinstance(activation, Activation):
        return activation
    if activation == "shrink":
        return Shrink(shrink_width)
    if activation == "relu":
        return RectifiedLinear()
    if activation == "satlinear":
        return SaturatedLinear()
    if activation in ("sigmoid", "tanh"):
        return _built_in(activation)
    raise ValueError(f"activation must be one of {ACTIVATIONS} or an Activation, got {activation!r}.")


def activation_function(activation, z, shrink_width=0.1):
    """Apply the activation ``f`` elementwise.

    Parameters
    ----------
    activation : {"shrink", "relu", "satlinear", "sigmoid", "tanh"} or Activation
    z : array-like
        Pre-activations.
    shrink_width : float, default=0.1
        The width lambda of the shrink's flat region (for the name ``"shrink"``).

    Returns
    -------
    ndarray
    """
    return get_activation(activation, shrink_width).function(z)


def complementary_function(activation, z, shrink_width=0.1):
    """The saturation penalty ``f_c``: the distance of ``z`` to f's flat set
    (Eq. 1) or, for activations without one, Eq. 3.

    Parameters and return value as for :func:`activation_function`.
    """
    return get_activation(activation, shrink_width).complementary(z)


def activation_derivative(activation, z, shrink_width=0.1):
    """The (sub)derivative ``f'`` used in training (0 on the closed flat set)."""
    return get_activation(activation, shrink_width).derivative(z)


def complementary_derivative(activation, z, shrink_width=0.1):
    """The (sub)derivative ``f_c'`` used in training (see the module docstring)."""
    return get_activation(activation, shrink_width).complementary_derivative(z)
