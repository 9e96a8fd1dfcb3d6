"""Compiled kernels against plain NumPy references and finite differences."""

import threading

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from sksatae import _blas, _kernels
from sksatae._blas import WARM_UP_SHAPE, gemm_address, warm_up_work_buffer
from sksatae._parts import run_in_parts
from sksatae.activations import (
    ACTIVATIONS,
    CLOSED_FORMS,
    TabulatedActivation,
    activation_derivative,
    activation_function,
    complementary_derivative,
    complementary_function,
    get_activation,
)

WIDTH = 0.1
BUMP = TabulatedActivation.from_function(lambda z: np.exp(-z**2 / 2), name="bump")
SOFT_SHRINK = TabulatedActivation.from_function(
    lambda z: np.sign(z) * np.maximum(np.abs(z) - 0.2, 0) ** 2 / (1 + np.maximum(np.abs(z) - 0.2, 0)),
    name="soft shrink")
KERNEL_ACTIVATIONS = list(ACTIVATIONS) + [BUMP, SOFT_SHRINK]
"""Closed forms, built-in Eq. 3 activations, and user functions with Eq. 3 and Eq. 1 penalties."""


def spec(activation):
    return get_activation(activation, WIDTH).kernel_spec()


def kinks(activation):
    """Where f or f_c has a kink: flat-set edges and midpoints between flat intervals
    (and 0, where M+ and M- cross for the symmetric Eq. 3 activations)."""
    flat = get_activation(activation, WIDTH).flat_set
    edges = [edge for interval in flat for edge in interval if np.isfinite(edge)]
    return edges + [(a[1] + b[0]) / 2 for a, b in zip(flat, flat[1:])] + [0.0]


def reference_loss(X, encoder, encoder_bias, decoder, decoder_bias, activation, alpha):
    """Mean over samples of Eq. 2's per-sample loss, written directly."""
    Z = X @ encoder.T + encoder_bias
    R = activation_function(activation, Z, WIDTH) @ decoder + decoder_bias - X
    per_sample = 0.5 * (R**2).sum(axis=1)
    per_sample += alpha * complementary_function(activation, Z, WIDTH).sum(axis=1)
    return per_sample.mean()


def make_problem(dtype=np.float64, n=9, d=6, h=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    encoder = rng.standard_normal((h, d)).astype(dtype)
    decoder = rng.standard_normal((h, d)).astype(dtype)
    encoder_bias = (0.3 * rng.standard_normal(h)).astype(dtype)
    decoder_bias = rng.standard_normal(d).astype(dtype)
    return X, encoder, encoder_bias, decoder, decoder_bias


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_gemm_matches_numpy(dtype, transpose_a, transpose_b, compiled_gemm):
    rng = np.random.default_rng(1)
    m, k, n = 5, 3, 4
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m + 2, n)).astype(dtype)  # rows beyond m must stay untouched
    expected = c.copy()
    expected[:m] = 0.5 * c[:m] - 2.0 * ((a.T if transpose_a else a) @ (b.T if transpose_b else b))
    compiled_gemm(gemm_address(dtype), -2.0, a, transpose_a, b, transpose_b, 0.5, c[:m])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("block", [(1, 4, 2, 5), (0, 6, 0, 7), (2, 3, 6, 7), (3, 3, 0, 7)],
                         ids=["inner", "whole", "one-entry", "empty"])
def test_gemm_changes_its_block_only(dtype, transpose_a, transpose_b, block,
                                            compiled_gemm_block):
    rng = np.random.default_rng(2)
    m, k, n = 6, 5, 7
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    row, end_row, column, end_column = block
    product = (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    expected = c.copy()
    expected[row:end_row, column:end_column] = (
        0.5 * c[row:end_row, column:end_column]
        - 2.0 * product[row:end_row, column:end_column])
    compiled_gemm_block(gemm_address(dtype), -2.0, a, transpose_a, b, transpose_b, 0.5, c,
                        row, end_row, column, end_column)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)


def test_work_buffer_warm_up_makes_one_valid_product_per_thread_and_routine(monkeypatch):
    calls, threads, real = [], [], _blas._fortran_gemm_through_ctypes

    def recording(*args):
        calls.append(args)
        threads.append(max(info["num_threads"] for info in threadpool_info()
                           if info["user_api"] == "blas"))
        real(*args)

    monkeypatch.setattr(_blas, "_fortran_gemm_through_ctypes", recording)

    def train_both_dtypes():
        for dtype in (np.float32, np.float32, np.float64, np.float64):
            warm_up_work_buffer(gemm_address(dtype), dtype)

    for _ in range(2):  # each a thread of its own
        thread = threading.Thread(target=train_both_dtypes)
        thread.start()
        thread.join()
    assert [call[0] for call in calls] == [gemm_address(np.float32), gemm_address(np.float64)] * 2
    # Under the limit in force: changing it would change other threads' products.
    assert threads == [max(info["num_threads"] for info in threadpool_info()
                           if info["user_api"] == "blas")] * 4
    m, k, n = WARM_UP_SHAPE
    for _, transa, transb, mm, nn, kk, alpha, _, lda, _, ldb, beta, _, ldc in calls:
        assert (chr(transa), chr(transb), mm, nn, kk) == ("N", "N", m, n, k)
        assert lda >= m and ldb >= k and ldc >= m


def test_float32_shrink_responses_are_computed_in_float32():
    """The kernels subtract the shrink's width in float32 for float32 codes, as
    ``Shrink.function`` does (and twice as fast as through float64), not in
    float64 rounded back, which differs in the last bit for some inputs."""
    z = np.random.default_rng(0).uniform(-2, 2, (40, 16)).astype(np.float32)
    expected = get_activation("shrink", WIDTH).function(z)
    wide = z.astype(np.float64)
    through_float64 = np.where(np.abs(wide) > WIDTH, wide - np.sign(wide) * WIDTH, 0).astype(
        np.float32)
    assert expected.dtype == np.float32 and not np.array_equal(expected, through_float64)

    pre = z.copy()
    codes, penalty, penalty_grad = (np.empty_like(z) for _ in range(3))
    _kernels._respond_all(spec("shrink"), 0.5, pre, codes, penalty, penalty_grad, 0, pre.size)
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(penalty, np.abs(expected))

    encoder = np.eye(16, dtype=np.float32)
    out = np.empty_like(z)
    _kernels.encode(gemm_address(np.float32), z, encoder, np.zeros(16, np.float32),
                    spec("shrink"), out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS, ids=str)
@pytest.mark.parametrize("tied", [False, True])
def test_full_batch_step_follows_finite_difference_gradient(activation, tied):
    X, encoder, encoder_bias, decoder, decoder_bias = make_problem()
    alpha, step = 0.7, 1e-3
    if tied:
        encoder = decoder
    before = [encoder.copy(), encoder_bias.copy(), decoder.copy(), decoder_bias.copy()]
    z = X @ encoder.T + encoder_bias
    away_from_kinks = np.min(np.abs(np.stack([z - kink for kink in kinks(activation)])))
    assert away_from_kinks > 1e-3  # central differences below stay on one side of every kink

    def loss(params):
        enc, enc_b, dec, dec_b = params
        return reference_loss(X, dec if tied else enc, enc_b, dec, dec_b, activation, alpha)

    gradients = []
    for index in ([2] if tied else [0]) + [1] + ([] if tied else [2]) + [3]:
        params = [p.copy() for p in before]
        grad = np.zeros_like(params[index])
        for position in np.ndindex(grad.shape):
            old = params[index][position]
            params[index][position] = old + 1e-6
            plus = loss(params)
            params[index][position] = old - 1e-6
            minus = loss(params)
            params[index][position] = old
            grad[position] = (plus - minus) / 2e-6
        gradients.append((index, grad))

    loss_sum, _, n_seen, updates, finite = _kernels.sgd_epoch(
        gemm_address(np.float64), X, np.arange(len(X)), np.zeros(X.shape[1]), encoder,
        encoder_bias, decoder, decoder_bias, spec(activation), alpha, step, 0, 0, False,
        _kernels.epoch_workspace(*X.shape, len(encoder), len(X), np.float64), None, 0, 0,
    )
    assert finite and n_seen == len(X) and updates == 1
    np.testing.assert_allclose(loss_sum / n_seen, loss(before), rtol=1e-12)
    after = [encoder, encoder_bias, decoder, decoder_bias]
    for index, grad in gradients:
        measured = (before[index] - after[index]) / step
        np.testing.assert_allclose(measured, grad, rtol=1e-5, atol=1e-6)


def reference_epoch(X, order, shift, params, activation, alpha, step, batch_size,
                    normalize_every, tied):
    """One SGD epoch in plain NumPy, mirroring the kernel's update order."""
    encoder, encoder_bias, decoder, decoder_bias = (p.astype(np.float64) for p in params)
    if tied:
        encoder = decoder
    total, updates = 0.0, 0
    for start in range(0, len(order), batch_size):
        xb = X[order[start:start + batch_size]].astype(np.float64) - shift
        z = xb @ encoder.T + encoder_bias
        h = activation_function(activation, z, WIDTH)
        r = h @ decoder + decoder_bias - xb
        total += 0.5 * (r**2).sum() + alpha * complementary_function(activation, z, WIDTH).sum()
        df = activation_derivative(activation, z, WIDTH)
        dfc = complementary_derivative(activation, z, WIDTH)
        dz = (r @ decoder.T) * df + alpha * dfc
        lr = step / len(xb)
        grad_decoder, grad_encoder = h.T @ r, dz.T @ xb
        decoder_bias = decoder_bias - lr * r.sum(axis=0)
        encoder_bias = encoder_bias - lr * dz.sum(axis=0)
        if tied:
            decoder = decoder - lr * (grad_decoder + grad_encoder)
            encoder = decoder
        else:
            decoder = decoder - lr * grad_decoder
            encoder = encoder - lr * grad_encoder
        updates += 1
        if normalize_every and updates % normalize_every == 0:
            decoder = decoder / np.linalg.norm(decoder, axis=1, keepdims=True)
            if tied:
                encoder = decoder
    return total, [encoder, encoder_bias, decoder, decoder_bias]


def run_epoch(kernel, X, order, shift, params, activation, alpha, step, batch_size,
              normalize_every, update_count, measure_squares):
    """``sgd_epoch`` ("gemm"), the same in parts ("parts<n>", one thread each)
    or, at batch size 1, ``sgd_epoch_single_sample`` ("single", in parts
    "single-parts<n>")."""
    common = (X, order, shift, *params, activation, alpha, step)
    n_parts = int(kernel.rpartition("parts")[2]) if "parts" in kernel else 1
    if kernel.startswith("single"):
        assert batch_size == 1
        workspace = _kernels.single_sample_workspace(X.shape[1], len(params[0]), X.dtype,
                                                     n_parts)
        arguments = (*common, normalize_every, update_count, measure_squares, workspace)
        results = run_in_parts(_kernels.sgd_epoch_single_sample, arguments, n_parts)
    else:
        workspace = _kernels.epoch_workspace(*X.shape, len(params[0]), batch_size, X.dtype,
                                             n_parts)
        arguments = (gemm_address(X.dtype), *common, normalize_every, update_count,
                     measure_squares, workspace)
        results = run_in_parts(_kernels.sgd_epoch, arguments, n_parts)
    for result in results[1:]:  # every part saw the same steps and losses
        assert result[0] == results[0][0] and result[2:] == results[0][2:]
    return (results[0][0], sum(result[1] for result in results), *results[0][2:])


# Parts: 3 split a batch of 4 and 5 units unevenly; 7 leave parts without samples
# or units; at batch size 1 one of two parts has no sample at every step; batches
# of 9 rows of 7 features split the reconstruction's product by samples. The
# single-sample kernel in 2 parts splits 5 units unevenly, in 7 leaves parts
# without units.
KERNELS = [("gemm", 4), ("gemm", 1), ("single", 1), ("parts2", 4), ("parts3", 4),
           ("parts7", 4), ("parts2", 1), ("parts3", 9), ("single-parts2", 1),
           ("single-parts7", 1)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS, ids=str)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("kernel, batch_size", KERNELS,
                         ids=["batch4", "batch1", "single", "parts2", "parts3", "parts7",
                              "parts2-batch1", "parts3-batch9", "single-parts2",
                              "single-parts7"])
def test_epoch_matches_numpy_reference(dtype, activation, tied, kernel, batch_size):
    X, encoder, encoder_bias, decoder, decoder_bias = make_problem(dtype, n=23, d=7, h=5, seed=3)
    X.setflags(write=False)
    X_before = X.copy()
    order = np.random.default_rng(0).permutation(len(X))
    shift = X.mean(axis=0)
    params = [decoder if tied else encoder, encoder_bias, decoder, decoder_bias]
    step = 0.0125 * batch_size  # the same step per sample
    expected_loss, expected = reference_epoch(X, order, shift, params, activation, 0.3, step,
                                              batch_size, 3, tied)
    loss_sum, square_sum, n_seen, updates, finite = run_epoch(
        kernel, X, order, shift.astype(dtype), params, spec(activation), 0.3, step, batch_size,
        3, 0, True,
    )
    assert finite and n_seen == 23 and updates == -(-23 // batch_size)
    expected_square = ((X.astype(np.float64) - shift.astype(dtype)) ** 2).sum()
    np.testing.assert_allclose(square_sum, expected_square, rtol=1e-6)
    np.testing.assert_array_equal(X, X_before)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(loss_sum, expected_loss, rtol=tol)
    for got, want in zip(params, expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["shrink", SOFT_SHRINK], ids=str)
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("kernel", ["single", "single-parts2"])
@pytest.mark.parametrize("d", [41, 50])
def test_single_sample_epoch_matches_reference_over_whole_vectors(dtype, activation, tied,
                                                                  kernel, d):
    """Rows long enough for every stage of the passes' loops (``_row_passes``):
    pairs of 64-byte vectors, one more vector (float64 at 41 and 50 features,
    float32 at 50), then single values."""
    X, encoder, encoder_bias, decoder, decoder_bias = make_problem(dtype, n=19, d=d, h=6, seed=7)
    encoder *= dtype(2 / np.sqrt(d))  # codes of order 1, as at d=7
    decoder *= dtype(1 / np.sqrt(d))
    order = np.random.default_rng(2).permutation(len(X))
    shift = X.mean(axis=0)
    params = [decoder if tied else encoder, encoder_bias, decoder, decoder_bias]
    expected_loss, expected = reference_epoch(X, order, shift, params, activation, 0.3, 0.01, 1,
                                              3, tied)
    assert np.isfinite(expected_loss)
    loss_sum, *_, updates, finite = run_epoch(kernel, X, order, shift.astype(dtype), params,
                                              spec(activation), 0.3, 0.01, 1, 3, 0, True)
    assert finite and updates == len(X)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(loss_sum, expected_loss, rtol=tol)
    for got, want in zip(params, expected):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("kernel", ["gemm", "single", "parts2", "single-parts2"])
def test_epoch_reports_divergence_instead_of_continuing(kernel):
    X, *params = make_problem(n=50)
    *_, n_seen, updates, finite = run_epoch(kernel, 1e3 * X, np.arange(50), np.zeros(6), params,
                                            spec("relu"), 0.0, 1e4, 1, 0, 0, False)
    assert not finite
    assert n_seen < 50 and updates == n_seen - 1  # stopped at once, before the bad step


@pytest.mark.parametrize("kernel", ["single", "single-parts2"])
@pytest.mark.parametrize("activation", ["shrink", "relu", "satlinear"])
@pytest.mark.parametrize("tied", [False, True])
def test_single_sample_epoch_with_saturated_units_matches_reference(activation, tied, kernel):
    """Units held in a flat region all epoch: at z = 0 (no code, no slope: rows the
    single-sample kernel skips) and, for the saturated linear unit, at z = 3 (a code
    but no slope: a decoder update without the gradient's product)."""
    X, encoder, encoder_bias, decoder, decoder_bias = make_problem(n=17, d=7, h=6, seed=4)
    if tied:
        encoder = decoder
    encoder[:4] = 0.0  # z is the bias whatever x
    encoder_bias[:4] = [0.0, 3.0, 0.0, 3.0]
    order = np.random.default_rng(1).permutation(len(X))
    shift = np.zeros(X.shape[1])
    normalize_every = 0 if tied else 4  # a tied zero row has no direction to project to
    params = [encoder, encoder_bias, decoder, decoder_bias]
    expected_loss, expected = reference_epoch(X, order, shift, params, activation, 0.3, 0.01,
                                              1, normalize_every, tied)
    z = X @ encoder.T + encoder_bias
    codes = activation_function(activation, z, WIDTH)
    flat = activation_derivative(activation, z, WIDTH) == 0
    assert (flat[:, [0, 2]] & (codes[:, [0, 2]] == 0)).all()
    assert not flat[:, 4:].all()
    if activation == "satlinear":
        assert (flat[:, [1, 3]] & (codes[:, [1, 3]] == 1)).all()
    loss_sum, *_, updates, finite = run_epoch(kernel, X, order, shift, params,
                                              spec(activation), 0.3, 0.01, 1, normalize_every,
                                              0, False)
    assert finite and updates == len(X)
    np.testing.assert_allclose(loss_sum, expected_loss, rtol=1e-10)
    for got, want in zip(params, expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", KERNEL_ACTIVATIONS, ids=str)
@pytest.mark.parametrize("n", [_kernels.ENCODE_ROWS + 300, _kernels.ENCODE_ROWS + _kernels.FEW_ROWS,
                               1], ids=["last-block-by-blas", "last-block-by-loops", "one-row"])
def test_encode_and_energy_match_numpy(dtype, activation, n):
    # More rows than one block of encode's products, and a last block cut short:
    # 300 rows, which BLAS multiplies, or few enough for the loops (in energy's
    # blocks of ENERGY_ROWS too); or a single row.
    assert _kernels.ENCODE_ROWS % _kernels.ENERGY_ROWS == 0
    X, encoder, encoder_bias, decoder, decoder_bias = make_problem(dtype, n=n, seed=5)
    code = spec(activation)
    codes = np.empty((len(X), encoder.shape[0]), dtype)
    _kernels.encode(gemm_address(dtype), X, encoder, encoder_bias, code, codes)
    X64 = X.astype(np.float64)
    expected_codes = activation_function(activation, X64 @ encoder.T.astype(np.float64)
                                         + encoder_bias, WIDTH)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(codes, expected_codes, rtol=tol, atol=tol)
    energy = np.empty(len(X), dtype)
    _kernels.energy(gemm_address(dtype), X, encoder, encoder_bias, decoder, decoder_bias, code,
                    energy, _kernels.energy_workspace(*X.shape, len(encoder), dtype))
    residual = X64 - (expected_codes @ decoder.astype(np.float64) + decoder_bias)
    np.testing.assert_allclose(energy, 0.5 * (residual**2).sum(axis=1), rtol=tol * 10, atol=tol)


@numba.njit
def compiled_residual(reconstruction, decoder_bias, rows, first_row, end_row, first, end,
                      penalty, entry, end_entry, square_sum, residual_sum):
    # _residual is a subroutine: called from Python it would run uncompiled.
    return _kernels._residual(reconstruction, decoder_bias, rows, first_row, end_row, first,
                              end, penalty, entry, end_entry, square_sum, residual_sum)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("first_row, end_row", [(0, 9), (1, 8), (2, 5), (3, 3), (0, 4)])
def test_residual_over_a_block_of_rows_matches_numpy(dtype, first_row, end_row):
    # Rows four at a time, then one at a time: every length of the last group, and
    # blocks that start past the first row (parts split by samples), on a block of
    # features (parts split by features).
    rng = np.random.default_rng(first_row * 10 + end_row)
    reconstruction = rng.standard_normal((9, 7)).astype(dtype)
    rows = rng.standard_normal((9, 7)).astype(dtype)
    decoder_bias = rng.standard_normal(7).astype(dtype)
    penalty = rng.uniform(0, 1, (3, 9)).astype(dtype)
    first, end = 1, 6
    square_sum, residual_sum = np.full(7, 99.0), np.full(7, 99.0, dtype)
    before = reconstruction.copy()
    total, penalty_sum = compiled_residual(reconstruction, decoder_bias, rows, first_row,
                                           end_row, first, end, penalty, 4, 20, square_sum,
                                           residual_sum)
    block = (slice(first_row, end_row), slice(first, end))
    expected = (before.astype(np.float64) + decoder_bias - rows)[block]
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(reconstruction[block], expected, **tol)
    changed = np.ones(reconstruction.shape, bool)
    changed[block] = False
    np.testing.assert_array_equal(reconstruction[changed], before[changed])
    np.testing.assert_allclose(square_sum[first:end], (expected**2).sum(axis=0), **tol)
    np.testing.assert_allclose(residual_sum[first:end], expected.sum(axis=0), **tol)
    np.testing.assert_allclose(total, (expected**2).sum(), **tol)
    np.testing.assert_allclose(penalty_sum, penalty.ravel()[4:20].astype(np.float64).sum(),
                               **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_encode_and_energy_return_the_sum_of_absolute_values_of_x(dtype, bad):
    # Summed block by block inside the kernels; a NaN or inf in the last block,
    # cut short, must still make the sum not finite.
    X, encoder, encoder_bias, decoder, decoder_bias = make_problem(
        dtype, n=_kernels.ENCODE_ROWS + 300, seed=6)
    if bad is not None:
        X[-3, 2] = bad
    code = spec("shrink")
    codes = np.empty((len(X), encoder.shape[0]), dtype)
    energy = np.empty(len(X), dtype)
    encoded = _kernels.encode(gemm_address(dtype), X, encoder, encoder_bias, code, codes)
    energies = _kernels.energy(gemm_address(dtype), X, encoder, encoder_bias, decoder,
                               decoder_bias, code, energy,
                               _kernels.energy_workspace(*X.shape, len(encoder), dtype))
    expected = np.abs(X.astype(np.float64)).sum()
    for total in (encoded, energies):
        if bad is None:
            np.testing.assert_allclose(total, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
        else:
            assert not np.isfinite(total)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_encode_gives_the_closed_forms_exactly_at_their_edges_and_beyond(dtype, activation):
    # The compiled, vectorised loop, on each edge of the flat set, next to it, at
    # the satlinear tent's peak, at +-inf and NaN (which must stay NaN).
    edges = np.array([0.0, 0.5, 1.0, WIDTH, -WIDTH], dtype)
    z = np.concatenate([edges, np.nextafter(edges, dtype(np.inf)),
                        np.nextafter(edges, dtype(-np.inf)),
                        np.array([np.inf, -np.inf, np.nan, 2.0, -2.0], dtype)])
    X = np.zeros((len(z), 2), dtype)
    X[:, 0] = z  # a second, zero column: z * 1 + 0 * 0, exact for +-inf and NaN too
    codes = np.empty((len(z), 1), dtype)
    _kernels.encode(gemm_address(dtype), X, np.array([[1.0, 0.0]], dtype), np.zeros(1, dtype),
                    spec(activation), codes)
    expected = get_activation(activation, WIDTH).function(z)
    assert expected.dtype == dtype
    np.testing.assert_array_equal(codes[:, 0], expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_few_rows_products_pass_inf_and_nan_on(dtype, activation):
    # The loops that replace BLAS for a few rows must spread inf and NaN as BLAS
    # does: a NaN code is not a zero code to skip in the decoder's product.
    z = np.array([np.inf, np.nan, 2.0, -np.inf], dtype)
    expected = get_activation(activation, WIDTH).function(z)
    encoder, decoder = np.array([[1.0, 0.0]], dtype), np.array([[1.0, 1.0]], dtype)
    zeros = np.zeros(2, dtype)
    for row in range(0, len(z), _kernels.FEW_ROWS):
        X = np.zeros((min(_kernels.FEW_ROWS, len(z) - row), 2), dtype)
        X[:, 0] = z[row:row + len(X)]
        codes = np.empty((len(X), 1), dtype)
        _kernels.encode(gemm_address(dtype), X, encoder, zeros[:1], spec(activation), codes)
        np.testing.assert_array_equal(codes[:, 0], expected[row:row + len(X)])
        energy = np.empty(len(X), dtype)
        _kernels.energy(gemm_address(dtype), X, encoder, zeros[:1], decoder, zeros,
                        spec(activation), energy, _kernels.energy_workspace(*X.shape, 1, dtype))
        for i, value in enumerate(z[row:row + len(X)]):
            if np.isnan(value):
                assert np.isnan(energy[i])
            elif np.isfinite(value):
                code = expected[row + i]
                np.testing.assert_allclose(energy[i], 0.5 * ((value - code) ** 2 + code**2),
                                           rtol=1e-6)
        # NaN codes from finite rows (a NaN weight, which the kernels do not reject):
        # every energy NaN, none the energy of a zero code.
        _kernels.energy(gemm_address(dtype), np.ones_like(X), np.array([[np.nan, 0.0]], dtype),
                        zeros[:1], decoder, zeros, spec(activation), energy,
                        _kernels.energy_workspace(*X.shape, 1, dtype))
        assert np.isnan(energy).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_closed_forms_pass_a_nan_pre_activation_on(dtype, activation):
    # A float32 product overflowing to inf - inf gives NaN: a code of 0 would hide it
    # from the checks on codes and loss.
    z = np.array([np.nan, 2.0], dtype)
    f, _, fc, _ = get_activation(activation, WIDTH)._respond(z)  # the kernels' own loop
    assert np.isnan(f[0]) and np.isnan(fc[0])
    np.testing.assert_allclose([f[1], fc[1]], [activation_function(activation, 2.0, WIDTH),
                                               complementary_function(activation, 2.0, WIDTH)],
                               rtol=1e-7)


@pytest.mark.parametrize("activation, low, high", [("sigmoid", 0.0, 1.0), ("tanh", -1.0, 1.0),
                                                   ("satlinear", 0.0, 1.0)])
def test_pre_activations_overflowing_float32_give_the_limits(activation, low, high):
    X = np.array([[3e38, 0.0], [-3e38, 0.0]], np.float32)
    encoder = np.array([[2.0, 0.0]], np.float32)  # z = +-6e38: +-inf in float32
    codes = np.empty((2, 1), np.float32)
    _kernels.encode(gemm_address(np.float32), X, encoder, np.zeros(1, np.float32),
                    spec(activation), codes)
    np.testing.assert_allclose(codes[:, 0], [high, low], rtol=0, atol=1e-17)


@pytest.mark.parametrize("kernel, batch_size", [("gemm", 2), ("single", 1)])
@pytest.mark.parametrize("dtype, size", [(np.float32, 1e19), (np.float64, 1e160)])
def test_decoder_rows_whose_squares_overflow_are_not_zeroed(kernel, batch_size, dtype, size):
    # x = 0 and codes of 0: the step leaves the decoder as it is, and only the
    # re-projection acts. A row whose norm overflows must keep its size, for the
    # loss to show the blow-up; the others are brought to unit norm.
    d = 5
    X = np.zeros((2, d), dtype)
    encoder = np.zeros((3, d), dtype)
    decoder = np.array([[size, 2 * size, 0, -size, size], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]],
                       dtype)
    want = decoder.astype(np.float64)
    want[1] /= np.sqrt(5)
    params = [encoder, -np.ones(3, dtype), decoder, np.zeros(d, dtype)]
    run_epoch(kernel, X, np.arange(2), np.zeros(d), params, spec("relu"), 0.0, 0.1, batch_size,
              1, 0, False)
    np.testing.assert_allclose(decoder, want, rtol=1e-6 if dtype == np.float32 else 1e-14)
