"""The single-sample kernel's passes over the weights against NumPy.

Feature counts cover each stage of the rows' loops: pairs of 64-byte vectors
(16 float64 or 32 float32 values), one more vector, then single values.
"""

import numba
import numpy as np
import pytest

from sksatae import _row_passes
from sksatae._row_passes import decoder_pass, encoder_pass, residual_pass

WIDTHS = [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 50, 144]
PLAIN = {"encoder": _row_passes._encoder_pass_python,
         "residual": _row_passes._residual_pass_python,
         "decoder": _row_passes._decoder_pass_python}
COMPILED = {"encoder": encoder_pass, "residual": residual_pass, "decoder": decoder_pass}
VERSIONS = ["compiled", "plain"]


def run(version, name, *args):
    (COMPILED if version == "compiled" else PLAIN)[name](*args)


def tolerance(dtype):
    return 3e-5 if dtype == np.float32 else 1e-12


def offset_rows(array):
    """A copy of ``array`` one value past a cache line: the passes read and write
    whole vectors that then straddle two lines."""
    flat = np.empty(array.size + 1, array.dtype)
    out = flat[1:].reshape(array.shape)
    out[...] = array
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", WIDTHS)
@pytest.mark.parametrize("waiting", [True, False])
def test_encoder_pass_updates_then_encodes_with_the_rows_before_the_update(version, dtype, d,
                                                                           waiting):
    rng = np.random.default_rng(d)
    h = 9
    encoder = rng.standard_normal((h, d)).astype(dtype)
    bias, pending = (rng.standard_normal(h).astype(dtype) for _ in range(2))
    pending[3] = 0.0
    previous, sample = (rng.standard_normal(d).astype(dtype) for _ in range(2))
    cross = dtype(previous.astype(np.float64) @ sample.astype(np.float64))
    codes = np.full(h, -7.0, dtype)
    got = encoder.copy()
    run(version, "encoder", got, bias, pending, waiting, previous, sample, cross, codes, 2, 8)

    change = pending[2:8, None].astype(np.float64) if waiting else 0.0
    updated = encoder[2:8].astype(np.float64) - change * previous
    tol = tolerance(dtype)
    np.testing.assert_allclose(got[2:8], updated, rtol=tol, atol=tol)
    np.testing.assert_array_equal(got[[0, 1, 8]], encoder[[0, 1, 8]])
    np.testing.assert_allclose(codes[2:8], updated @ sample + bias[2:8], rtol=tol,
                               atol=tol * (1 + d))
    np.testing.assert_array_equal(codes[[0, 1, 8]], -7.0)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", WIDTHS)
def test_residual_pass_adds_the_rows_of_units_with_a_code(version, dtype, d):
    rng = np.random.default_rng(100 + d)
    h = 9
    decoder = offset_rows(rng.standard_normal((h, d)).astype(dtype))
    codes = rng.standard_normal(h).astype(dtype)
    codes[4] = 0.0
    decoder[4] = np.nan  # a unit without a code: its row is not read
    share = offset_rows(rng.standard_normal(d).astype(dtype))
    expected = share.astype(np.float64) + codes[[1, 2, 3, 5, 6]] @ decoder[[1, 2, 3, 5, 6]]
    run(version, "residual", decoder, codes, share, 1, 7)
    tol = tolerance(dtype)
    np.testing.assert_allclose(share, expected, rtol=tol, atol=tol * 10)


def decoder_reference(decoder, bias, penalty, codes, slopes, residual, sample, step, tied,
                      normalize):
    d64 = decoder.astype(np.float64)
    back = np.where(slopes != 0, d64 @ residual, 0.0)
    change = step * (penalty + slopes * back)
    updated = d64 - step * codes[:, None] * residual
    kept = change.copy()
    if tied and normalize:
        updated -= change[:, None] * sample
        kept[:] = 0.0
    if normalize:
        norm = np.linalg.norm(updated, axis=1, keepdims=True)
        updated = np.where(norm > 0, updated / np.where(norm > 0, norm, 1.0), updated)
    return updated, bias - change, kept


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", WIDTHS)
@pytest.mark.parametrize("tied, normalize", [(False, False), (False, True), (True, True)])
def test_decoder_pass_takes_the_gradient_then_updates_each_row(version, dtype, d, tied,
                                                              normalize):
    rng = np.random.default_rng(200 + d)
    h = 8
    decoder = rng.standard_normal((h, d)).astype(dtype)
    bias, penalty, codes, slopes = (rng.standard_normal(h).astype(dtype) for _ in range(4))
    codes[[1, 5]] = 0.0  # no code: the row is read for dL/dh, not updated
    slopes[[1, 2]] = 0.0  # no slope: no dL/dh; unit 1 has neither and is left alone
    residual, sample = (rng.standard_normal(d).astype(dtype) for _ in range(2))
    step = dtype(0.1)
    want_decoder, want_bias, want_pending = decoder_reference(
        decoder, bias, penalty, codes, slopes, residual, sample, step, tied, normalize)
    got_bias, pending = bias.copy(), np.full(h, -7.0, dtype)
    run(version, "decoder", decoder, got_bias, penalty, codes, slopes, residual, sample, pending,
        step, tied, normalize, 0, h)
    tol = tolerance(dtype)
    np.testing.assert_allclose(decoder, want_decoder, rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(got_bias, want_bias, rtol=tol, atol=tol * (1 + d))
    np.testing.assert_allclose(pending, want_pending, rtol=tol, atol=tol * (1 + d))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_re_projection_leaves_rows_it_cannot_scale(version, dtype):
    """A zero row has no direction, and a row whose sum of squares overflows
    must reach the checks on the loss as it is, not as zeros (1 / inf)."""
    d, h = 40, 3
    big = np.finfo(dtype).max / 4
    decoder = np.zeros((h, d), dtype)
    decoder[1] = big
    decoder[2] = 3.0
    zeros = np.zeros(h, dtype)
    with np.errstate(over="ignore"):  # the plain version's sum of squares
        run(version, "decoder", decoder, zeros.copy(), zeros, zeros, zeros, np.zeros(d, dtype),
            np.zeros(d, dtype), zeros.copy(), dtype(0.1), False, True, 0, h)
    np.testing.assert_array_equal(decoder[0], 0.0)
    np.testing.assert_array_equal(decoder[1], big)
    np.testing.assert_allclose(decoder[2], 1.0 / np.sqrt(d), rtol=tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_not_a_number_reaches_the_codes_and_the_gradient(dtype):
    """A NaN code counts as a code (the loss checks must see it), and a NaN in
    the sample or the residual reaches every product with it."""
    d, h = 40, 3
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((h, d)).astype(dtype)
    sample = rng.standard_normal(d).astype(dtype)
    sample[37] = np.nan  # in the single values after the vectors
    codes = np.zeros(h, dtype)
    encoder_pass(weights.copy(), np.zeros(h, dtype), np.zeros(h, dtype), False, sample, sample,
                 dtype(0.0), codes, 0, h)
    assert np.isnan(codes).all()

    share = np.zeros(d, dtype)
    residual_pass(weights, np.array([np.nan, 0.0, 0.0], dtype), share, 0, h)
    assert np.isnan(share).all()

    residual = rng.standard_normal(d).astype(dtype)
    residual[3] = np.nan  # in the first vector
    pending = np.zeros(h, dtype)
    ones = np.ones(h, dtype)
    decoder_pass(weights, np.zeros(h, dtype), np.zeros(h, dtype), ones, ones, residual, sample,
                 pending, dtype(0.1), False, False, 0, h)
    assert np.isnan(pending).all() and np.isnan(weights[:, 3]).all()


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the compiled passes need numba's JIT")
def test_passes_refuse_arrays_they_cannot_step_through():
    """The loops step one value at a time: a strided view must not compile into
    a pass that reads the wrong values."""
    weights = np.zeros((4, 12))
    with pytest.raises(numba.TypingError):
        residual_pass(weights, np.zeros(4), np.zeros(24)[::2], 0, 4)
    with pytest.raises(numba.TypingError):
        encoder_pass(weights[:, ::2], np.zeros(4), np.zeros(4), True, np.zeros(6), np.zeros(6),
                     0.0, np.zeros(4), 0, 4)
