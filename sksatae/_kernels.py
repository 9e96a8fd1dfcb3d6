"""Compiled kernels: one SGD epoch, encoding, and reconstruction energy.

Every function here is compiled lazily by numba (see ``_jit``) and works for
float32 and float64 alike. Matrix products go straight to BLAS ``?gemm``
(``_blas.gemm``); weight updates are done by the gradient GEMMs themselves
(``beta = 1``), so an epoch touches each weight matrix only inside BLAS, apart
from the decoder's re-projection. At a batch size of 1 an epoch runs without
BLAS (``sgd_epoch_single_sample``), in three passes over the weights per step
where the five products make five. In training, the encoder's bias is preloaded
into the product's output and the decoder's is added in the loop that forms
the residual; elementwise work runs in small functions of its own, whose loops
the compiler vectorises more reliably than the same loops inline. With more
than one thread, an epoch runs in parts, one per thread, each on its share of
the samples, units and features (``sgd_epoch``, ``_parts``), or at a batch
size of 1 on its share of the units (``sgd_epoch_single_sample``).

Activations arrive as the plain tuple ``Activation.kernel_spec()`` builds:
``(code, width)`` for a closed form (``width`` is the shrink's), or
``(code, width, lower, step, smoothing, table, flat)`` for the two tabulated
forms, for which ``table`` holds, at the nodes ``lower + i * step``, the columns
``f, f', M+, M+', M-, M-'`` (Eq. 3's directional variations and their
slopes) and ``flat`` holds the flat intervals of f as rows
``start, stop, value, slope before start, slope after stop``. The kernels
compile once for all closed forms and once for all tabulated activations.

Shapes: ``X`` is (n_samples, n_features); ``encoder`` and ``decoder`` are
(n_components, n_features) (the decoder holds basis elements as rows, i.e.
the transpose of W^d); when weights are tied the same array is passed as both.
"""

import numpy as np

from numba import types
from numba.extending import overload

from ._blas import gemm
from ._jit import jit, subroutine
from ._parts import aligned_empty, wait_for_parts
from ._prefetch import GATHER_LEAD, prefetch_row, prefetch_rows
from ._row_passes import decoder_pass, encoder_pass, residual_pass

SHRINK, RELU, SATLINEAR, TABULATED_DISTANCE, TABULATED_VARIATION = 0, 1, 2, 3, 4
F, F_SLOPE, M_PLUS, M_PLUS_SLOPE, M_MINUS, M_MINUS_SLOPE = 0, 1, 2, 3, 4, 5
START, STOP, VALUE, SLOPE_BEFORE, SLOPE_AFTER = 0, 1, 2, 3, 4
ENCODE_ROWS = 2048
"""Rows per product in ``encode``: the activation then runs over codes the
product has just written, still in cache (float64 ``transform`` at 144
features, 100 units: 1.02 of the time of the product into new memory,
against 1.10 in one block; ``benchmarks/bench_inference.py``)."""


def unit_response(activation, z):
    """Return ``(f(z), f'(z), f_c(z), f_c'(z))`` for one pre-activation ``z``.

    Subgradients are 0 on the closed flat set and where f_c has a peak
    between two equally distant flat intervals (or equal M+ and M-).

    Compiled callers get the body that matches the activation's tuple type
    (below), inlined: kernels for the closed forms never compile the tables'
    code, and no tuple holding arrays is passed per element (which would
    cost reference counting on every call). This plain version runs when
    numba's JIT is disabled.
    """
    if len(activation) == 2:
        return _closed_form_response(activation[0], z, activation[1], 0.0, 1.0)
    return _tabulated_unit_response(activation, z)


def _tabulated_unit_response(activation, z):
    code, _, lower, step, smoothing, table, flat = activation
    return _tabulated_response(code, lower, step, smoothing, table, flat, np.float64(z))


def unit_value(activation, z):
    """``f(z)`` alone: ``unit_response(activation, z)[0]``, in a form whose
    loops the compiler vectorises for the closed forms."""
    if len(activation) == 2:
        return _closed_form_value(activation[0], z, activation[1], 0.0, 1.0)
    return _tabulated_unit_value(activation, z)


def _tabulated_unit_value(activation, z):
    return unit_response(activation, z)[0]


def _specialised(closed_form, tabulated):
    """The body of the overload that compiled callers of a unit function get:
    for the closed forms' tuple, ``closed_form(code, z, width, zero, one)``
    with the width and the constants in z's precision (float32 stays
    float32); for a table's, ``tabulated``."""
    def choose(activation, z):
        if len(activation) != 2:
            return tabulated
        precision = z if isinstance(z, types.Float) else types.float64

        def closed(activation, z):
            return closed_form(activation[0], z, precision(activation[1]), precision(0.0),
                               precision(1.0))
        return closed
    return choose


@jit
def _closed_form_response(code, z, width, zero, one):
    # Written as selects, not branches, so that loops over it vectorise. zero and
    # one come in z's precision, so that float32 stays float32. The tests are
    # ordered so that a NaN z (a float32 product overflowing to inf - inf) gives
    # NaN codes and penalties, for the checks on codes and loss to see.
    f = _closed_form_value(code, z, width, zero, one)
    if code == SHRINK:
        left = z < -width
        inside = (z >= -width) & (z <= width)
        slope = zero if inside else one
        return f, slope, -z - width if left else (zero if inside else z - width), \
            -one if left else slope
    if code == RELU:
        slope = zero if z <= zero else one
        return f, slope, f, slope
    half = one / (one + one)
    flat = (z <= zero) | (z >= one)
    fc = zero if flat else (z if z <= half else one - z)
    penalty_slope = zero if flat else (one if z < half else (-one if z > half else zero))
    return f, zero if flat else one, fc, penalty_slope


@jit
def _closed_form_value(code, z, width, zero, one):
    # f alone, for encode. Each test is named before the selects: written inside
    # them, or with the response's other three values computed and unused, the
    # compiler made loops that took 1.7 times as long (0.18 ns a float32 code
    # against 0.105).
    if code == SHRINK:
        left = z < -width
        inside = (z >= -width) & (z <= width)
        return z + width if left else (zero if inside else z - width)
    off = z <= zero
    if code == RELU:
        return zero if off else z
    top = z >= one
    return zero if off else (one if top else z)


_UNIT_OPTIONS = dict(inline="always", jit_options={"no_cfunc_wrapper": True})
overload(unit_response, **_UNIT_OPTIONS)(_specialised(_closed_form_response,
                                                     _tabulated_unit_response))
overload(unit_value, **_UNIT_OPTIONS)(_specialised(_closed_form_value, _tabulated_unit_value))


def part_units(sync, unit, end_unit):
    """A part's first unit and the end of its units, for ``range``: in an epoch
    in parts (``sync`` an array) compiled as unsigned integers, as they are in
    one part.

    A signed index may be negative, and numba wraps a negative index around
    in every access unless LLVM proves it never is, which it cannot from a
    part's first unit, a runtime value: with unsigned unit indices, epochs of
    ``sgd_epoch_single_sample`` in two parts took 0.87 to 0.94 (float32) and
    0.90 to 1.00 (float64) of their time with signed ones, at 144, 512 and 784
    features, the same model bit for bit (``docs/performance_log.md``). In one
    part, whose units start at 0, unsigned indices made float64 epochs 4%
    slower.
    """
    return unit, end_unit


def _typed_part_units(sync, unit, end_unit):
    if isinstance(sync, types.NoneType):
        return lambda sync, unit, end_unit: (unit, end_unit)
    return lambda sync, unit, end_unit: (np.uint64(unit), np.uint64(end_unit))


overload(part_units, **_UNIT_OPTIONS)(_typed_part_units)


@subroutine
def _hermite(z, a, value_a, slope_a, b, value_b, slope_b):
    """The cubic through ``(a, value_a)``, ``(b, value_b)`` with the given end
    slopes, and its derivative, at ``z``."""
    h = b - a
    t = (z - a) / h
    t2 = t * t
    t3 = t2 * t
    value = ((2.0 * t3 - 3.0 * t2 + 1.0) * value_a + (t3 - 2.0 * t2 + t) * h * slope_a
             + (3.0 * t2 - 2.0 * t3) * value_b + (t3 - t2) * h * slope_b)
    slope = ((6.0 * t2 - 6.0 * t) * (value_a - value_b) / h
             + (3.0 * t2 - 4.0 * t + 1.0) * slope_a + (3.0 * t2 - 2.0 * t) * slope_b)
    return value, slope


@subroutine
def _variations_outside(table, lower, step, smoothing, z):
    """Eq. 3's M+ and M- at ``z`` beyond the table, and their slopes:
    ``(M+, M+', M-, M-')``.

    There f continues with its end slope, so ``|f'|`` is constant: M+ (right)
    and M- (left) equal it, and the other one relaxes towards it
    exponentially with the smoothing length.
    """
    n = table.shape[0]
    upper = lower + (n - 1) * step
    right = z > upper
    end = n - 1 if right else 0
    tail = abs(table[end, F_SLOPE])
    edge = table[end, M_MINUS if right else M_PLUS]
    value = tail + (edge - tail) * np.exp(-abs(z - (upper if right else lower)) / smoothing)
    if right:
        return tail, 0.0, value, (tail - value) / smoothing
    return value, (value - tail) / smoothing, tail, 0.0


@subroutine
def _continued(value, slope, distance):
    """f and f' at ``distance`` beyond a table's end: linear, and constant where the
    end slope is 0 (also at an infinite distance, where 0 * inf would be NaN)."""
    if slope == 0.0:
        return value, 0.0
    return value + slope * distance, slope


@jit
def _tabulated_response(code, lower, step, smoothing, table, flat, z):
    n_flat = flat.shape[0]
    # k: the last flat interval starting at or before z (-1: none).
    low, high = 0, n_flat
    while low < high:
        middle = (low + high) // 2
        if flat[middle, START] <= z:
            low = middle + 1
        else:
            high = middle
    k = low - 1
    inside = k >= 0 and z <= flat[k, STOP]

    n = table.shape[0]
    upper = lower + (n - 1) * step
    in_range = lower <= z <= upper
    # Hermite weights of z's grid cell, shared by the columns: values at i, i + 1
    # (v0, v2), node slopes (v1, v3); d* give the interpolant's derivative.
    # np.intp and a conditional, not int() and min(): each compiles numba's generic version.
    i = np.intp((z - lower) / step) if in_range else 0
    if i > n - 2:
        i = n - 2
    t = (z - lower) / step - i
    t2 = t * t
    t3 = t2 * t
    v0, v2 = 2.0 * t3 - 3.0 * t2 + 1.0, 3.0 * t2 - 2.0 * t3
    v1, v3 = (t3 - 2.0 * t2 + t) * step, (t3 - t2) * step
    d0, d1, d3 = (6.0 * t2 - 6.0 * t) / step, 3.0 * t2 - 4.0 * t + 1.0, 3.0 * t2 - 2.0 * t

    if inside:
        f, df = flat[k, VALUE], 0.0
    elif z > upper:
        f, df = _continued(table[n - 1, F], table[n - 1, F_SLOPE], z - upper)
    elif z < lower:
        f, df = _continued(table[0, F], table[0, F_SLOPE], z - lower)
    else:
        a, b = lower + i * step, lower + (i + 1) * step
        cut_left = k >= 0 and flat[k, STOP] >= a
        cut_right = k + 1 < n_flat and flat[k + 1, START] <= b
        if cut_left or cut_right:
            # The cell is cut at a flat interval's edge: the cubic runs from the edge,
            # with f's exact edge value and one-sided slope in place of the node's.
            value_a, slope_a = table[i, F], table[i, F_SLOPE]
            value_b, slope_b = table[i + 1, F], table[i + 1, F_SLOPE]
            if cut_left:
                a, value_a, slope_a = flat[k, STOP], flat[k, VALUE], flat[k, SLOPE_AFTER]
            if cut_right:
                b, value_b = flat[k + 1, START], flat[k + 1, VALUE]
                slope_b = flat[k + 1, SLOPE_BEFORE]
            f, df = _hermite(z, a, value_a, slope_a, b, value_b, slope_b)
        else:
            f = v0 * table[i, F] + v1 * table[i, F_SLOPE] + v2 * table[i + 1, F] + v3 * table[i + 1, F_SLOPE]
            df = (d0 * (table[i, F] - table[i + 1, F]) + d1 * table[i, F_SLOPE]
                  + d3 * table[i + 1, F_SLOPE])

    if code == TABULATED_DISTANCE:
        if inside:
            return f, df, 0.0, 0.0
        to_left = z - flat[k, STOP] if k >= 0 else np.inf
        to_right = flat[k + 1, START] - z if k + 1 < n_flat else np.inf
        if to_left < to_right:
            return f, df, to_left, 1.0
        if to_right < to_left:
            return f, df, to_right, -1.0
        return f, df, to_left, 0.0
    if in_range:
        plus = (v0 * table[i, M_PLUS] + v1 * table[i, M_PLUS_SLOPE] + v2 * table[i + 1, M_PLUS]
                + v3 * table[i + 1, M_PLUS_SLOPE])
        minus = (v0 * table[i, M_MINUS] + v1 * table[i, M_MINUS_SLOPE] + v2 * table[i + 1, M_MINUS]
                 + v3 * table[i + 1, M_MINUS_SLOPE])
        if plus <= minus:
            slope = (d0 * (table[i, M_PLUS] - table[i + 1, M_PLUS]) + d1 * table[i, M_PLUS_SLOPE]
                     + d3 * table[i + 1, M_PLUS_SLOPE])
            return f, df, plus, slope if plus < minus else 0.0
        slope = (d0 * (table[i, M_MINUS] - table[i + 1, M_MINUS]) + d1 * table[i, M_MINUS_SLOPE]
                 + d3 * table[i + 1, M_MINUS_SLOPE])
        return f, df, minus, slope
    plus, plus_slope, minus, minus_slope = _variations_outside(table, lower, step, smoothing, z)
    if plus < minus:
        return f, df, plus, plus_slope
    if minus < plus:
        return f, df, minus, minus_slope
    return f, df, plus, 0.0


@subroutine(fastmath={"reassoc", "arcp"})
def _normalize_rows(weights, first, end):
    """The rows ``first`` to ``end`` of ``weights`` scaled to unit norm."""
    # Runs after every update at batch sizes >= 10. Summing in the weights' own
    # dtype, in any order, and scaling by an approximate reciprocal let both
    # loops vectorise: 3x faster in float32 and 1.8x in float64 at 100 x 144.
    # Ranges here and in the loops below, not slices: each slice in the epoch's
    # loop added about 0.03 s to its compilation.
    # A row whose sum of squares overflows is left as it is, not zeroed (1 / inf),
    # so that the blow-up reaches the checks on the loss. A float64 sum, or a
    # float64 fallback for such rows, made a float32 epoch 2-4% slower.
    zero, one = weights.dtype.type(0.0), weights.dtype.type(1.0)
    infinite = weights.dtype.type(np.inf)
    for k in range(first, end):
        row = weights[k]
        norm = zero
        for j in range(row.shape[0]):
            norm += row[j] * row[j]
        if zero < norm < infinite:
            scale = one / np.sqrt(norm)
            for j in range(row.shape[0]):
                row[j] *= scale


# Per-unit minibatch buffers (z, f(z), their gradients) are laid out units by
# samples, (n_components, size): with OpenBLAS the five products of a step
# then take 0.69 to 0.98 of the time they take with samples by units at
# batches of 16 (both dtypes, all three benchmark shapes), and the same within
# the noise at 128 and 1024 (``python benchmarks/bench_gemm.py --layouts``).
# A batch of one row (a last, short batch; a one-row partial_fit) keeps that
# layout: at batch_size=1 epochs run in sgd_epoch_single_sample.
# The elementwise loops are small functions of their own: inline in the
# epoch's loop, the compiler vectorised some of them across rows, with
# gathers (16% of a float32 epoch at 144 features, batch 128).


@subroutine
def _load_batch(X, order, start, first, end, shift, out, encoder_bias, pre, unit, end_unit,
                measure_squares, square_sum):
    """``out[i] = X[order[start + i]] - shift`` for the rows ``first`` to ``end``
    of the batch; the entries of the units ``unit`` to ``end_unit`` in ``pre`` set to
    their bias, which the encoder's product then adds to (``beta = 1``); and,
    if ``measure_squares``, the per-feature sums of the squares of those rows
    of ``out`` added to ``square_sum`` (float64: a float32 square underflows)."""
    for i in range(first, end):
        ahead = start + i + GATHER_LEAD  # a row to come, asked for now (_prefetch)
        if ahead < order.shape[0]:
            prefetch_row(X, order[ahead])
        source, target = X[order[start + i]], out[i]
        for j in range(target.shape[0]):
            target[j] = source[j] - shift[j]
    # Loops, not array assignments, for which numba compiles an error message
    # (1.8 s of a cold first fit).
    for k in range(unit, end_unit):
        row, value = pre[k], encoder_bias[k]
        for i in range(row.shape[0]):
            row[i] = value
    if measure_squares:
        # A loop of its own: inside the copy it kept that loop from vectorising.
        for i in range(first, end):
            for j in range(out.shape[1]):
                value = np.float64(out[i, j])
                square_sum[j] += value * value


@jit
def _respond_all(activation, alpha, pre, codes, penalty, penalty_grad, first, end):
    """Unit responses, elementwise, on the entries ``first`` to ``end`` in C
    order, the bias already in ``pre``: ``pre`` becomes f'(z), ``codes`` f(z), ``penalty``
    f_c(z) and ``penalty_grad`` alpha f_c'(z). The penalties are summed apart
    (``_residual``): a sum in this loop kept it from vectorising. One loop over
    all entries (C order): rows are as short as the minibatch."""
    z, f_out, fc_out, dfc_out = pre.flat, codes.flat, penalty.flat, penalty_grad.flat
    for index in range(first, end):
        f, df, fc, dfc = unit_response(activation, z[index])
        f_out[index] = f
        z[index] = df
        fc_out[index] = fc
        dfc_out[index] = alpha * dfc


@subroutine(fastmath={"reassoc"})
def _hidden_gradient(grad, slope, penalty_grad, first, end, unit_grad):
    """``grad = grad * slope + penalty_grad``, elementwise on the units ``first``
    to ``end``, and each unit's sum over the samples into ``unit_grad``, summed
    in any order so that it vectorises (in turn, each addition waits on the
    one before)."""
    # Unsigned, so that no index is checked for wrapping around (below zero),
    # here and in _residual: from a variable start, with signed indices, the
    # residual's loop took 3 times as long.
    first, end = np.uintp(first), np.uintp(end)
    for k in range(first, end):
        g_row, slope_row, penalty_row = grad[k], slope[k], penalty_grad[k]
        total = grad.dtype.type(0.0)
        for i in range(g_row.shape[0]):
            g = g_row[i] * slope_row[i] + penalty_row[i]
            g_row[i] = g
            total += g
        unit_grad[k] = total


@subroutine(fastmath={"reassoc"})
def _residual(reconstruction, decoder_bias, rows, first_row, end_row, first, end, penalty,
              entry, end_entry, square_sum, residual_sum):
    """``reconstruction += decoder_bias - rows`` in place on the block of rows
    ``first_row`` to ``end_row`` and features ``first`` to ``end``: the
    residual, whose per-feature sums over the block go to ``residual_sum``.
    Returns, in float64, the block's summed squares and the sum of the
    entries ``entry`` to ``end_entry`` of ``penalty`` in C order (f_c(z), which the loop that
    computes it cannot sum without losing its vectorisation). Sums run in any
    order so that they vectorise."""
    first, end = np.uintp(first), np.uintp(end)  # see _hidden_gradient
    for j in range(first, end):
        square_sum[j] = 0.0
        residual_sum[j] = 0.0
    # Four rows at a time: each pass over the per-feature sums, a load and a
    # store per sum, serves four rows (a float32 epoch at 144 features, batch
    # 16: 0.98 of its time with one row at a time).
    tail = first_row + (end_row - first_row) // 4 * 4
    for i in range(first_row, tail, 4):
        for j in range(first, end):
            bias = decoder_bias[j]
            r0 = reconstruction[i, j] + bias - rows[i, j]
            r1 = reconstruction[i + 1, j] + bias - rows[i + 1, j]
            r2 = reconstruction[i + 2, j] + bias - rows[i + 2, j]
            r3 = reconstruction[i + 3, j] + bias - rows[i + 3, j]
            reconstruction[i, j] = r0
            reconstruction[i + 1, j] = r1
            reconstruction[i + 2, j] = r2
            reconstruction[i + 3, j] = r3
            square_sum[j] += (r0 * r0 + r1 * r1) + (r2 * r2 + r3 * r3)
            residual_sum[j] += (r0 + r1) + (r2 + r3)
    for i in range(tail, end_row):
        for j in range(first, end):
            r = reconstruction[i, j] + decoder_bias[j] - rows[i, j]
            reconstruction[i, j] = r
            square_sum[j] += r * r
            residual_sum[j] += r
    penalty_sum, flat = 0.0, penalty.flat
    for index in range(entry, end_entry):
        penalty_sum += np.float64(flat[index])
    total = 0.0
    for j in range(first, end):
        total += square_sum[j]
    return total, penalty_sum


def epoch_workspace(n_samples, n_features, n_components, batch_size, dtype, n_parts=1):
    """The buffers ``sgd_epoch`` works in, for ``n_samples`` rows at ``batch_size``,
    in ``n_parts`` parts (``_parts``).

    Allocated here rather than in the kernel: each allocation site compiles
    numba's ``np.empty``, 0.4 s of a cold first fit in all. Per-unit buffers
    (z, f(z), f_c(z), alpha f_c'(z), dL/dh) come in one stack for a full batch
    and one for a last, shorter batch (the same stack when there is none).
    Parts take turns between two batch buffers, so that one part can gather
    the next batch while another still updates the encoder with the last.
    Buffers start at a cache line, and each part's sums, which its loops
    write for every row of a batch, take cache lines of their own
    (``_parts.aligned_empty``).
    """
    size = min(batch_size, n_samples)
    tail = n_samples % size

    def units(rows):
        return aligned_empty((5, n_components, rows), dtype)

    full = units(size)
    return (aligned_empty((2 if n_parts == 1 else 3, size, n_features), dtype),  # batches, residual
            # Per part: per feature, the residual's sums, and the sums of its squares
            # and of the data's; the step's summed squares and penalties.
            aligned_empty((n_parts, n_features), dtype, per_part=True),
            aligned_empty((n_parts, 2, n_features), np.float64, per_part=True),
            np.empty(n_components, dtype),  # per-unit sums of dL/dz
            full, units(tail) if tail else full,
            aligned_empty((n_parts, 2), np.float64, per_part=True))


@jit
def sgd_epoch(
    blas_gemm, X, order, shift, encoder, encoder_bias, decoder, decoder_bias,
    activation, alpha, learning_rate, normalize_every, update_count, measure_squares,
    workspace, sync, yield_address, part,
):
    """Run one epoch of minibatch SGD on Eq. 2, in place on the parameters.

    Samples are visited as ``X[order] - shift`` (``X`` itself is only read).
    Each step minimises the minibatch mean of
    ``1/2 ||x - G(x)||^2 + alpha * sum_i f_c(z_i)``. Every ``normalize_every``
    updates (0: never) the decoder's rows are projected to unit norm.
    ``workspace`` is ``epoch_workspace(...)`` for ``X``'s shape, the model's
    size, the batch size, ``encoder``'s dtype and the number of parts: it sets
    the batch size and the number of parts.

    In one part, ``sync`` is None (``yield_address`` and ``part`` are 0).
    In several, each runs this in a thread of its own, as part ``part``
    (``_parts.run_in_parts``, which supplies ``sync`` and ``yield_address``).
    numba compiles the two cases apart, and the first without any of the
    code under ``sync is not None``.

    Returns ``(loss_sum, square_sum, n_visited, update_count, finite)``: the
    summed per-sample loss of the visited samples (each measured before its
    step), this part's share of the summed ``||x - shift||^2`` of those samples
    (only when ``measure_squares``, else 0), how many samples were visited, the
    running update counter, and False if the loss stopped being finite (the
    epoch then stops at once).
    """
    n_samples, n_features = X.shape
    n_components = encoder.shape[0]
    rows_buffer, visible_sums, squares, hidden_sum, units, last_units, step_sums = workspace
    n_parts = step_sums.shape[0]
    size = rows_buffer.shape[1]
    visible_sum, visible_loss, data_square = visible_sums[part], squares[part, 0], squares[part, 1]
    # This part's units (rows of the weights) and features.
    if sync is None:
        unit, end_unit, feature, end_feature = 0, n_components, 0, n_features
    else:
        unit, end_unit = n_components * part // n_parts, n_components * (part + 1) // n_parts
        feature, end_feature = n_features * part // n_parts, n_features * (part + 1) // n_parts
    # Fills and sums are loops: np.zeros and .sum() compile numba's generic
    # versions, 0.1 to 0.2 s of a cold first fit for each call site.
    for j in range(n_features):
        data_square[j] = 0.0
    loss_sum = 0.0
    n_visited = 0
    finite = True
    xb, rb = rows_buffer[0], rows_buffer[rows_buffer.shape[0] - 1]
    # Transposition flags as runtime values: numba compiles a function once per
    # combination of literal arguments, which made gemm compile once per call's
    # flags (0.15 to 0.3 s each), here and in encode and energy.
    no, yes = n_samples < 0, n_samples >= 0
    for start in range(0, n_samples, size):
        if n_samples - start < size:
            size = n_samples - start
            units = last_units
        if sync is None:
            sample, end_sample = 0, size
        else:
            xb = rows_buffer[start // rows_buffer.shape[1] % 2]
            sample, end_sample = size * part // n_parts, size * (part + 1) // n_parts
        # z, then f'(z); f(z); f_c(z); alpha f_c'(z); dL/dh, then dL/dz
        pre, codes, penalty, penalty_grad, grad_hidden = \
            units[0], units[1], units[2], units[3], units[4]

        # This part's samples (the batch) and units (the encoder's bias).
        _load_batch(X, order, start, sample, end_sample, shift, xb, encoder_bias, pre, unit,
                    end_unit, measure_squares, data_square)
        # Its rows of the next batch, asked for while this one's step runs (_prefetch).
        prefetch_rows(X, order, start + size + sample, start + size + end_sample)
        if sync is not None:
            if not wait_for_parts(sync, n_parts, yield_address):
                break
        # This part's units: z = W^e x + b^e and the responses.
        gemm(blas_gemm, 1.0, encoder, no, xb, yes, 1.0, pre, unit, end_unit, 0, size)
        entry, end_entry = unit * size, end_unit * size  # this part's units' rows
        _respond_all(activation, alpha, pre, codes, penalty, penalty_grad, entry, end_entry)
        if sync is not None:
            if not wait_for_parts(sync, n_parts, yield_address):
                break
        # W^d h and the residual: in parts, over this part's features, or its samples
        # where the batch is larger, so that each part reads the smaller of the codes
        # and the decoder whole.
        row, end_row, column, end_column = 0, size, feature, end_feature
        by_samples = False
        if sync is not None:
            if size > n_features:
                by_samples = True
                row, end_row, column, end_column = sample, end_sample, 0, n_features
        gemm(blas_gemm, 1.0, codes, yes, decoder, no, 0.0, rb, row, end_row, column, end_column)
        square_sum, penalty_sum = _residual(rb, decoder_bias, xb, row, end_row, column,
                                            end_column, penalty, entry, end_entry,
                                            visible_loss, visible_sum)
        if sync is not None:
            step_sums[part, 0], step_sums[part, 1] = square_sum, penalty_sum
            if not wait_for_parts(sync, n_parts, yield_address):
                break
            square_sum, penalty_sum = 0.0, 0.0
            for other in range(n_parts):  # in the same order in every part: the same loss
                square_sum += step_sums[other, 0]
                penalty_sum += step_sums[other, 1]
        batch_loss = 0.5 * square_sum + alpha * penalty_sum
        loss_sum += batch_loss
        n_visited += size
        if not np.isfinite(batch_loss):
            finite = False
            break

        # This part's units (and features): the gradients and updates.
        step = learning_rate / size
        gemm(blas_gemm, 1.0, decoder, no, rb, yes, 0.0, grad_hidden, unit, end_unit, 0, size)
        gemm(blas_gemm, -step, codes, no, rb, no, 1.0, decoder, unit, end_unit, 0, n_features)
        for j in range(feature, end_feature):
            total = visible_sum[j]
            if sync is not None:
                if by_samples:  # each part summed its own samples
                    total = visible_sums[0, j]
                    for other in range(1, n_parts):
                        total += visible_sums[other, j]
            decoder_bias[j] -= step * total

        _hidden_gradient(grad_hidden, pre, penalty_grad, unit, end_unit, hidden_sum)
        gemm(blas_gemm, -step, grad_hidden, no, xb, no, 1.0, encoder, unit, end_unit, 0,
             n_features)
        for k in range(unit, end_unit):
            encoder_bias[k] -= step * hidden_sum[k]

        update_count += 1
        if normalize_every > 0 and update_count % normalize_every == 0:
            _normalize_rows(decoder, unit, end_unit)
    data_total = 0.0
    for j in range(n_features):
        data_total += data_square[j]
    return loss_sum, data_total, n_visited, update_count, finite


# Plain SGD, one sample per step, without BLAS. BLAS's five products make three
# passes over the decoder and two over the encoder per step, and at one sample
# a step takes the time to stream the weights through the cache. Here the
# encoder's update waits for the next step, whose pass over the encoder makes
# it and then the product with the next sample, row by row; the decoder's
# gradient, update and re-projection are one pass too: three passes in all
# (``_row_passes``). Rows of units in a flat region (no code, no slope, no
# penalty gradient: most units of a saturated model) are skipped by both
# decoder passes and the encoder's update.
# In parts, each part makes the three passes over its own units' rows, and the
# parts meet once per step, to add up their shares of the residual.


def single_sample_workspace(n_features, n_components, dtype, n_parts=1):
    """The buffers ``sgd_epoch_single_sample`` works in (see ``epoch_workspace``)."""
    # Each row starts at a cache line, as the weights' rows do (``_parts.aligned_copy``).
    # Per part, rows: the sample, the one before, the residual; f(z), f'(z),
    # alpha f_c'(z), the pending update. Per-feature sums of the data's squares. Per
    # step parity and part: that part's share of the residual, and of the penalty
    # (two of each: a part may start the next step's share while another still
    # reads this step's).
    return (aligned_empty((n_parts, 3, n_features), dtype, per_part=True),
            aligned_empty((n_parts, 4, n_components), dtype, per_part=True),
            aligned_empty((n_features,), np.float64),
            aligned_empty((2, n_parts, n_features), dtype, per_part=True),
            aligned_empty((2, n_parts, 1), np.float64, per_part=True))


@jit(fastmath={"reassoc", "contract"})
def sgd_epoch_single_sample(
    X, order, shift, encoder, encoder_bias, decoder, decoder_bias, activation, alpha,
    learning_rate, normalize_every, update_count, measure_squares, workspace,
    sync, yield_address, part,
):
    """``sgd_epoch`` at a batch size of 1: the same arguments less the BLAS
    routine, with ``single_sample_workspace(...)`` for the model's size,
    ``encoder``'s dtype and the number of parts; the same results up to
    rounding.

    The three passes over the weights are ``_row_passes``' vector code; the
    other sums run in any order so that they vectorise. The unit responses are
    computed in a loop of their own, after the products: interleaved with
    them, their branches stalled the products (a third of a float32 epoch at
    144 features, 100 units). In parts, each part updates its own share of
    the units (and part 0 the decoder's bias), and every part adds the
    shares of the residual in the same order: all see the same residual and
    loss."""
    n_samples, n_features = X.shape
    n_components = encoder.shape[0]
    dtype = encoder.dtype
    zero, step = dtype.type(0.0), dtype.type(learning_rate)
    tied = encoder.ctypes.data == decoder.ctypes.data
    visible, hidden, data_square, residual_shares, penalty_shares = workspace
    n_parts = residual_shares.shape[1]
    if sync is None:
        # Buffers at constant indices: at a runtime one (the part's) a float32 epoch took
        # 3 to 5% longer (144 features, 100 units).
        visible, hidden = visible[0], hidden[0]
        unit, end_unit = 0, n_components
    else:
        visible, hidden = visible[part], hidden[part]
        unit, end_unit = n_components * part // n_parts, n_components * (part + 1) // n_parts
    unit, end_unit = part_units(sync, unit, end_unit)
    sample, previous, residual = visible[0], visible[1], visible[2]
    codes, slopes, penalty_grads = hidden[0], hidden[1], hidden[2]
    pending = hidden[3]  # step * dL/dz: the encoder's waiting update
    measure_squares = measure_squares and part == 0
    if part == 0:
        for j in range(n_features):
            data_square[j] = 0.0
    loss_sum, n_visited, finite = 0.0, 0, True
    waiting = False  # an encoder update is pending
    for t in range(n_samples):
        prefetch_rows(X, order, t + 1, t + 2)  # the next sample's row (_prefetch)
        source = X[order[t]]
        cross = zero  # previous . sample: the pending update's share of each code
        for j in range(n_features):
            value = source[j] - shift[j]
            sample[j] = value
            cross += previous[j] * value
        if measure_squares:
            for j in range(n_features):
                value = np.float64(sample[j])
                data_square[j] += value * value
        # The encoder's pass: its last update, and z from each row as it was before it,
        # less the update's share (change * cross), so that the sum does not wait for the
        # update's multiply-add: 0.91 of the pass's time in float64 (144 x 100).
        encoder_pass(encoder, encoder_bias, pending, waiting, previous, sample, cross, codes,
                     unit, end_unit)
        waiting = False
        penalty_sum = 0.0
        for k in range(unit, end_unit):
            f, df, fc, dfc = unit_response(activation, codes[k])
            codes[k] = f
            slopes[k] = df
            penalty_sum += fc
            penalty_grads[k] = alpha * dfc
        share = residual
        if sync is not None:
            share = residual_shares[t % 2, part]
        if part == 0:
            for j in range(n_features):
                share[j] = decoder_bias[j] - sample[j]
        else:
            for j in range(n_features):
                share[j] = zero
        residual_pass(decoder, codes, share, unit, end_unit)
        if sync is not None:
            penalty_shares[t % 2, part, 0] = penalty_sum
            if not wait_for_parts(sync, n_parts, yield_address):
                break
            shares = residual_shares[t % 2]
            for j in range(n_features):
                residual[j] = shares[0, j]
            for other in range(1, n_parts):
                for j in range(n_features):
                    residual[j] += shares[other, j]
            penalty_sum = 0.0
            for other in range(n_parts):
                penalty_sum += penalty_shares[t % 2, other, 0]
        square_sum = 0.0
        for j in range(n_features):
            value = np.float64(residual[j])
            square_sum += value * value
        loss = 0.5 * square_sum + alpha * penalty_sum
        loss_sum += loss
        n_visited += 1
        if not np.isfinite(loss):
            finite = False
            break

        update_count += 1
        normalize = normalize_every > 0 and update_count % normalize_every == 0
        decoder_pass(decoder, encoder_bias, penalty_grads, codes, slopes, residual, sample, pending,
                     step, tied, normalize, unit, end_unit)
        if part == 0:  # which alone reads the decoder's bias
            for j in range(n_features):
                decoder_bias[j] -= step * residual[j]
        sample, previous = previous, sample
        waiting = True
    if waiting:
        for k in range(unit, end_unit):
            change = pending[k]
            if change != 0.0:
                for j in range(n_features):
                    encoder[k, j] -= change * previous[j]
    data_total = 0.0
    if measure_squares:
        for j in range(n_features):
            data_total += data_square[j]
    return loss_sum, data_total, n_visited, update_count, finite


@jit
def absolute_sum(X):
    """Sum of ``|X|`` in X's dtype: not finite if X holds NaN or inf (or if the
    sum overflows)."""
    return _absolute_sum(X)


@subroutine(fastmath={"reassoc"})
def _absolute_sum(X):
    # Summed in any order so that the loop vectorises; no "nnan"/"ninf" flags,
    # which would let the compiler assume the answer.
    total = X.dtype.type(0.0)
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            total += abs(X[i, j])
    return total


FEW_ROWS = 1
"""Blocks of at most this many rows get their products in ``encode`` and
``energy`` from loops, not BLAS. With OpenBLAS's Haswell kernels, which it
picks for AVX2 processors (forced here with ``OPENBLAS_CORETYPE=Haswell``),
``?gemm`` on one row took 58 to 177 us at 784 and 3,072 features, 300 units,
against 8 to 85 us for the loops, and a one-row ``score_samples`` took 0.45
to 0.92 of its time before. With its SkylakeX kernels, which have a path for
small products, one row took 0.95 to 1.02 of the time either way, but two to
four rows by loops took up to 1.41: one row only (``docs/performance_log.md``,
Inference and memory)."""


@subroutine(fastmath={"reassoc", "contract"})
def _few_rows_encoded(rows, encoder, codes):
    """``codes = rows @ encoder.T`` for a few rows: each unit's weights are
    read once, for all the rows."""
    for k in range(encoder.shape[0]):
        weights = encoder[k]
        for i in range(rows.shape[0]):
            row = rows[i]
            z = codes.dtype.type(0.0)
            for j in range(row.shape[0]):
                z += weights[j] * row[j]
            codes[i, k] = z


@subroutine(fastmath={"reassoc", "contract"})
def _few_rows_decoded(codes, decoder, out):
    """``out = codes @ decoder`` for a few rows, skipping zero codes (a NaN
    code is not skipped, and spreads as it does through BLAS)."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = 0.0
    for k in range(decoder.shape[0]):
        weights = decoder[k]
        for i in range(out.shape[0]):
            code = codes[i, k]
            if code != 0.0:
                target = out[i]
                for j in range(target.shape[0]):
                    target[j] += code * weights[j]


@jit
def encode(blas_gemm, X, encoder, encoder_bias, activation, out):
    """``out = F(X @ encoder.T + encoder_bias)``, written in place. Returns
    ``sum |X|`` (``absolute_sum``), which callers check for NaN and inf and use
    to bound the codes: summed block by block just before each block's product,
    the rows are read from memory once, not twice (a pass of its own over ``X``
    took 9% of the time of ``transform``'s product at 144 features, 100 units,
    in float32)."""
    no, yes = X.shape[0] < 0, X.shape[0] >= 0  # runtime flags: see sgd_epoch
    n_samples, n_components = out.shape
    total = X.dtype.type(0.0)
    for start in range(0, n_samples, ENCODE_ROWS):
        # A conditional, not min(), here and in energy: see _tabulated_response.
        stop = start + ENCODE_ROWS if n_samples - start > ENCODE_ROWS else n_samples
        codes, rows = out[start:stop], X[start:stop]
        total += _absolute_sum(rows)
        if stop - start <= FEW_ROWS:
            _few_rows_encoded(rows, encoder, codes)
        else:
            gemm(blas_gemm, 1.0, rows, no, encoder, yes, 0.0, codes, 0, stop - start, 0,
                 n_components)
        for i in range(codes.shape[0]):
            for k in range(n_components):
                codes[i, k] = unit_value(activation, codes[i, k] + encoder_bias[k])
    return total


ENERGY_ROWS = 512
"""Rows per block in ``energy``: its buffers are ``energy_workspace``'s."""


def energy_workspace(n_samples, n_features, n_components, dtype):
    """The codes and reconstructions of one block of rows, for ``energy``."""
    block = min(n_samples, ENERGY_ROWS)
    return np.empty((block, n_components), dtype), np.empty((block, n_features), dtype)


@jit
def energy(blas_gemm, X, encoder, encoder_bias, decoder, decoder_bias, activation, out,
           workspace):
    """``out[i] = 1/2 ||X[i] - G(X[i])||^2``, in blocks of rows to bound memory;
    ``workspace`` is ``energy_workspace(...)`` for ``X`` and the model. Returns
    ``sum |X|``, as ``encode`` does."""
    n_samples, n_features = X.shape
    hidden, recon = workspace
    block = hidden.shape[0]
    no = n_samples < 0  # a runtime flag: see sgd_epoch
    total = X.dtype.type(0.0)
    for start in range(0, n_samples, block):
        size = block if n_samples - start > block else n_samples - start
        xb, hb, rb = X[start:start + size], hidden[:size], recon[:size]
        total += encode(blas_gemm, xb, encoder, encoder_bias, activation, hb)
        if size <= FEW_ROWS:
            _few_rows_decoded(hb, decoder, rb)
        else:
            gemm(blas_gemm, 1.0, hb, no, decoder, no, 0.0, rb, 0, size, 0, n_features)
        _half_squared_residuals(xb, rb, decoder_bias, out[start:start + size])
    return total


@subroutine(fastmath={"reassoc"})
def _half_squared_residuals(rows, reconstruction, decoder_bias, out):
    """``out[i] = 1/2 ||rows[i] - reconstruction[i] - decoder_bias||^2``, summed
    in float64 whatever the dtype (float32 squares overflow at 1.8e19), in any
    order so that the loop vectorises: in turn, each addition waited on the one
    before (score_samples in float32 at 144 features, 100 units: 1.39 of its
    two products' time, against 1.13)."""
    for i in range(rows.shape[0]):
        total = 0.0
        for j in range(rows.shape[1]):
            r = np.float64(rows[i, j]) - np.float64(reconstruction[i, j] + decoder_bias[j])
            total += r * r
        out[i] = 0.5 * total
