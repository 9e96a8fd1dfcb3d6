"""Building the tables of a :class:`~sksatae.activations.TabulatedActivation`
from a Python function: nodes, slopes, flat intervals (Eq. 1) and the
directional variations of Eq. 3. See ``TabulatedActivation.from_function``
for what each step guarantees."""

from numbers import Integral, Real

import numpy as np

MAX_TABULATION_ERROR = 1e-4
NEGLIGIBLE_TAIL = 1e-12
"""An end slope that moves f by less than this fraction of its range of values
(``max f - min f`` on the limits) across the whole range counts as 0 (see ``tabulate``)."""
_DIFFERENCE_STEP = 1e-5
_BISECTIONS = 64


def tabulate(function, derivative, name, complementary, smoothing, limits, n_points):
    """Keyword arguments of ``TabulatedActivation`` for ``function``."""
    lower, upper, smoothing, n_points = _check_arguments(
        function, derivative, complementary, smoothing, limits, n_points)
    if name is None:
        name = getattr(function, "__name__", type(function).__name__)
    nodes = np.linspace(lower, upper, n_points)
    step = (upper - lower) / (n_points - 1)
    values = _evaluate(function, nodes, "function")
    # Errors are measured against f's range of values, which a constant added to f
    # (absorbed by the decoder's bias) leaves as it is, unlike max |f|.
    scale = float(np.ptp(values))
    if scale == 0:
        raise ValueError(f"{name}: f is constant on {limits}; it has nothing to saturate.")

    midpoints = nodes[:-1] + step / 2
    middle_values = _evaluate(function, midpoints, "function")
    flat = _flat_intervals(function, nodes, values, middle_values)
    _check_continuous_at_edges(name, function, flat, scale)
    slopes = _slopes(function, nodes, flat)
    if derivative is not None:
        given = _evaluate(derivative, nodes, "derivative")
        _check_derivative(name, function, given, slopes, nodes, flat)
        slopes = given
    slopes[_inside(nodes, flat)] = 0.0
    # f has reached its asymptote at such an end (a sigmoid's slope is 4e-18 at -40):
    # it continues there at its end value, not along that slope, which would take it
    # below the asymptote, and far from it at large |z|.
    for end in (0, -1):
        if abs(slopes[end]) * (upper - lower) <= NEGLIGIBLE_TAIL * scale:
            slopes[end] = 0.0
    flat_rows = _flat_rows(function, derivative, flat)

    if complementary == "auto":
        complementary = "distance" if flat_rows.shape[0] else "variation"
    if complementary == "distance" and not flat_rows.shape[0]:
        raise ValueError(
            f"{name}: f has no flat region on {limits} (no stretch where it is exactly "
            "constant), so Eq. 1's distance to it is undefined; use complementary='variation'.")
    table = np.zeros((n_points, 6))
    table[:, 0], table[:, 1] = values, slopes
    if complementary == "variation":
        middle_slopes = (_slopes(function, midpoints, flat) if derivative is None
                         else _evaluate(derivative, midpoints, "derivative"))
        middle_slopes[_inside(midpoints, flat)] = 0.0
        table[:, 2:] = _directional_variations(slopes, middle_slopes, step, smoothing)

    fields = dict(name=name, complementary_form=complementary, smoothing=smoothing,
                  limits=(lower, upper), table=table, flat=flat_rows, tabulation_error=0.0)
    from .activations import TabulatedActivation

    # Point by point through the compiled interpolant that every fit compiles,
    # whatever its dtype: an array loop here would be compiled for float64 only
    # (0.3 s more for a float32 fit); 16,384 calls take about 10 ms.
    from ._kernels import _tabulated_response

    code, _, *interpolant = TabulatedActivation(**fields).kernel_spec()
    interpolated = np.array([_tabulated_response(code, *interpolant, z)[0]
                             for z in midpoints.tolist()])
    error = float(np.abs(interpolated - middle_values).max() / scale)
    if not error <= MAX_TABULATION_ERROR:
        raise ValueError(
            f"{name}: interpolating f between {n_points} nodes on {limits} is off by {error:.2g} "
            f"of f's range of values (at most {MAX_TABULATION_ERROR:g} is accepted); raise n_points or "
            "narrow limits, and check that f is continuous.")
    fields["tabulation_error"] = error
    return fields


def _check_arguments(function, derivative, complementary, smoothing, limits, n_points):
    if not callable(function):
        raise TypeError(f"function must be callable, got {function!r}.")
    if derivative is not None and not callable(derivative):
        raise TypeError(f"derivative must be callable or None, got {derivative!r}.")
    if complementary not in ("auto", "distance", "variation"):
        raise ValueError("complementary must be 'auto', 'distance' or 'variation', got "
                         f"{complementary!r}.")
    if not isinstance(smoothing, Real) or not 0 < smoothing < np.inf:
        raise ValueError(f"smoothing must be a finite number > 0, got {smoothing!r}.")
    if (np.ndim(limits) != 1 or len(limits) != 2 or not all(isinstance(v, Real) for v in limits)
            or not -np.inf < limits[0] < limits[1] < np.inf):
        raise ValueError(f"limits must be two finite numbers (low, high) with low < high, got {limits!r}.")
    if not isinstance(n_points, Integral) or isinstance(n_points, bool) or n_points < 3:
        raise ValueError(f"n_points must be an int >= 3, got {n_points!r}.")
    return float(limits[0]), float(limits[1]), float(smoothing), int(n_points)


def _evaluate(function, z, what):
    try:
        out = np.asarray(function(z.copy()), dtype=np.float64)
    except Exception as exc:
        raise ValueError(f"calling the {what} on a float64 array of shape {z.shape} failed: "
                         f"{exc!r}; it must be vectorised (NumPy array in, array out).") from exc
    if out.shape != z.shape:
        raise ValueError(f"the {what} returned shape {out.shape} for input of shape {z.shape}; "
                         "it must be vectorised (NumPy array in, array of the same shape out).")
    if not np.isfinite(out).all():
        bad = z[~np.isfinite(out)][0]
        raise ValueError(f"the {what} is not finite at z={bad:g}; it must be finite on limits.")
    return out


def _flat_intervals(function, nodes, values, middle_values):
    """Maximal runs of cells where f is exactly constant, as rows (start, stop,
    value), edges refined by bisection; a run touching an end of the range is
    unbounded."""
    flat_cell = (values[1:] == values[:-1]) & (middle_values == values[:-1])
    padded = np.concatenate([[False], flat_cell, [False]]).astype(np.int8)
    run_starts = np.flatnonzero(np.diff(padded) == 1)  # first flat cell
    run_stops = np.flatnonzero(np.diff(padded) == -1)  # one past the last flat cell
    n_cells = len(nodes) - 1
    # Where f's steps fall below its rounding (a sigmoid's tail), runs of equal
    # values meet each other one ulp apart: no true flat region ends like that.
    level = values[run_starts]
    ulps = 4 * np.spacing(np.abs(level))
    genuine = ((run_starts == 0) | (np.abs(values[run_starts - 1] - level) > ulps)) & (
        (run_stops == n_cells) | (np.abs(values[np.minimum(run_stops + 1, n_cells)] - level) > ulps))
    run_starts, run_stops = run_starts[genuine], run_stops[genuine]
    starts = np.where(run_starts == 0, -np.inf, nodes[run_starts])
    stops = np.where(run_stops == n_cells, np.inf, nodes[np.minimum(run_stops, n_cells)])
    level = values[run_starts]
    left = run_starts > 0
    if left.any():  # the flat run extends from its first node down to where f changes
        outside, within = nodes[run_starts[left] - 1], nodes[run_starts[left]]
        starts[left] = _bisect(function, outside, within, level[left])
    right = run_stops < n_cells
    if right.any():
        outside, within = nodes[run_stops[right] + 1], nodes[run_stops[right]]
        stops[right] = _bisect(function, outside, within, level[right])
    return np.column_stack([starts, stops, level])


def _check_continuous_at_edges(name, function, flat, scale):
    """Refuse a jump at a flat interval's edge, which the bisection would take for an edge."""
    for start, stop, level in flat:
        for edge, side in ((start, -1.0), (stop, 1.0)):
            if np.isfinite(edge):
                beside = np.array([edge + side * 1e-12 * max(1.0, abs(edge))])
                if abs(_evaluate(function, beside, "function")[0] - level) > 1e-6 * scale:
                    raise ValueError(f"{name}: f jumps at z={edge:g}; it must be continuous.")


def _bisect(function, outside, within, level):
    """The point between ``outside`` (f != level) and ``within`` (f == level)
    where f stops being ``level``, to full precision (vectorised)."""
    outside, within = outside.copy(), within.copy()
    for _ in range(_BISECTIONS):
        middle = (outside + within) / 2
        same = _evaluate(function, middle, "function") == level
        within = np.where(same, middle, within)
        outside = np.where(same, outside, middle)
    return within


def _inside(z, flat):
    inside = np.zeros(z.shape, dtype=bool)
    for start, stop in flat[:, :2]:
        inside |= (z >= start) & (z <= stop)
    return inside


def _slopes(function, nodes, flat):
    """Central differences, one-sided away from a flat interval's edge nearby,
    and inwards at the ends of the range: f is never evaluated beyond it (where
    it need not be defined: a square root below 0)."""
    delta = _DIFFERENCE_STEP * np.maximum(1.0, np.abs(nodes))
    slopes = np.empty_like(nodes)
    inner, ends = slice(1, -1), [0, -1]
    slopes[inner] = (_evaluate(function, nodes[inner] + delta[inner], "function")
                     - _evaluate(function, nodes[inner] - delta[inner], "function")
                     ) / (2 * delta[inner])
    slopes[ends] = _one_sided_slope(function, nodes[ends], np.array([1.0, -1.0]))
    edges = flat[:, :2][np.isfinite(flat[:, :2])]
    for edge in edges:
        near = np.abs(nodes - edge) < 2 * delta
        if near.any():
            side = np.where(nodes[near] >= edge, 1.0, -1.0)
            slopes[near] = _one_sided_slope(function, nodes[near], side)
    return slopes


def _one_sided_slope(function, z, side):
    """Second-order one-sided difference at ``z`` looking in direction ``side``."""
    delta = side * _DIFFERENCE_STEP * np.maximum(1.0, np.abs(z))
    f0 = _evaluate(function, z, "function")
    f1 = _evaluate(function, z + delta, "function")
    f2 = _evaluate(function, z + 2 * delta, "function")
    return (-3 * f0 + 4 * f1 - f2) / (2 * delta)


def _check_derivative(name, function, given, estimated, nodes, flat):
    """Refuse a derivative that differs from f's estimated slope, except at a node
    beside a kink of f (a flat interval's edge, for one), where a central difference
    averages the two sides: there it must lie between f's one-sided slopes. At the
    two ends of the limits, beyond which f is not evaluated, a kink cannot be told
    from an error: the value given is taken, as the slope f continues with beyond."""
    away = ~_inside(nodes, flat)
    scale = max(np.abs(estimated[away]).max(initial=0.0), 1e-300)
    tolerance = 1e-4 * scale
    off = np.flatnonzero(away & (np.abs(given - estimated) > tolerance))
    reach = 2 * _DIFFERENCE_STEP * np.maximum(1.0, np.abs(nodes[off]))
    # f is not evaluated beyond the limits.
    inner = off[(nodes[off] - reach >= nodes[0]) & (nodes[off] + reach <= nodes[-1])]
    excused = np.zeros(len(nodes), dtype=bool)
    excused[[0, -1]] = True
    if len(inner):
        left = _one_sided_slope(function, nodes[inner], -np.ones(len(inner)))
        right = _one_sided_slope(function, nodes[inner], np.ones(len(inner)))
        kink = np.abs(left - right) > tolerance
        between = ((given[inner] >= np.minimum(left, right) - tolerance)
                   & (given[inner] <= np.maximum(left, right) + tolerance))
        excused[inner[kink & between]] = True
    refused = off[~excused[off]]
    if len(refused):
        mismatch = np.abs(given[refused] - estimated[refused]) / scale
        worst = nodes[refused][np.argmax(mismatch)]
        raise ValueError(
            f"{name}: the derivative given does not match f's slope at {len(refused)} of "
            f"{len(nodes)} nodes (off by up to {mismatch.max():.2g} of f's largest slope, at "
            f"z={worst:g}); check it, or pass derivative=None to differentiate f numerically.")


def _flat_rows(function, derivative, flat):
    """Rows ``start, stop, value, slope before start, slope after stop``."""
    rows = np.zeros((len(flat), 5))
    rows[:, :3] = flat
    for row in rows:
        for column, edge, side in ((3, row[0], -1.0), (4, row[1], 1.0)):
            if np.isfinite(edge):
                row[column] = _edge_slope(function, derivative, edge, side)
    return rows


def _edge_slope(function, derivative, edge, side):
    if derivative is not None:
        beside = edge + side * 1e-9 * max(1.0, abs(edge))
        return float(_evaluate(derivative, np.array([beside]), "derivative")[0])
    return float(_one_sided_slope(function, np.array([edge]), np.array([side]))[0])


def _directional_variations(slopes, middle_slopes, step, smoothing):
    """Columns ``M+, M+', M-, M-'`` of Eq. 3 at the nodes, for ``|f'|`` constant
    beyond the range (f continues linearly there).

    With ``|f'|`` linear between nodes the integrals are exact cell by cell:
    ``M+(z_i) = e M+(z_i+1) + (1 - e) g_i + c (g_i+1 - g_i)``, with
    ``e = exp(-h / tau)`` and ``c = (tau (1 - e) - h e) / h``, a first-order
    recursive filter run from each end. Its O(h^2) error is removed by
    Richardson extrapolation from the grid refined by the cells' midpoints.
    """
    coarse = np.abs(slopes)
    fine = np.empty(2 * len(coarse) - 1)
    fine[::2], fine[1::2] = coarse, np.abs(middle_slopes)
    plus = (4 * _smooth(fine[::-1], step / 2, smoothing)[::-2]
            - _smooth(coarse[::-1], step, smoothing)[::-1]) / 3
    minus = (4 * _smooth(fine, step / 2, smoothing)[::2] - _smooth(coarse, step, smoothing)) / 3
    return np.column_stack([plus, (plus - coarse) / smoothing, minus, (coarse - minus) / smoothing])


def _smooth(magnitude, step, smoothing):
    """``int_0^inf g(z - t) exp(-t / tau) / tau dt`` at every node, g piecewise linear."""
    ratio = step / smoothing
    decay = float(np.exp(-ratio))
    weight_here = -np.expm1(-ratio)
    weight_slope = (smoothing * weight_here - step * decay) / step
    increments = weight_here * magnitude[1:] + weight_slope * (magnitude[:-1] - magnitude[1:])
    # The first-order recursion as a plain loop: about 10 ms for the built-in tables,
    # where importing scipy.signal for lfilter took a second of the first fit.
    out = [float(magnitude[0])]
    last = out[0]
    for increment in increments.tolist():
        last = decay * last + increment
        out.append(last)
    return np.array(out)
