"""Compiled kernels: one SGD epoch, encoding, and reconstruction energy.

Every function here is compiled lazily by numba (see ``_jit``) and works for
float32 and float64 alike. Matrix products go straight to BLAS ``?gemm``
(``_blas.gemm``); biases are folded in by preloading the outputs and
accumulating into them, and weight updates are done by the gradient GEMMs
themselves (``beta = 1``), so an epoch touches each weight matrix only inside
BLAS. Activations are passed as integer codes (``activations.ACTIVATION_CODES``).

Shapes: ``X`` is (n_samples, n_features); ``encoder`` and ``decoder`` are
(n_components, n_features) (the decoder holds basis elements as rows, i.e.
the transpose of W^d); when weights are tied the same array is passed as both.
"""

import numpy as np

from ._blas import gemm
from ._jit import jit

SHRINK, RELU, SATLINEAR = 0, 1, 2


@jit
def unit_response(code, z, width):
    """Return ``(f(z), f'(z), f_c(z), f_c'(z))`` for one pre-activation ``z``.

    Subgradients are 0 on the closed flat set and at the satlinear tent's peak.
    """
    if code == SHRINK:
        if z > width:
            return z - width, 1.0, z - width, 1.0
        if z < -width:
            return z + width, 1.0, -z - width, -1.0
        return 0.0, 0.0, 0.0, 0.0
    if code == RELU:
        if z > 0.0:
            return z, 1.0, z, 1.0
        return 0.0, 0.0, 0.0, 0.0
    if z <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    if z >= 1.0:
        return 1.0, 0.0, 0.0, 0.0
    if z < 0.5:
        return z, 1.0, z, 1.0
    if z > 0.5:
        return z, 1.0, 1.0 - z, -1.0
    return z, 1.0, z, 0.0


@jit
def _fill_rows(out, row):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = row[j]


@jit
def _normalize_rows(weights):
    for k in range(weights.shape[0]):
        row = weights[k]
        norm = np.dot(row, row)
        if norm > 0.0:
            scale = 1.0 / np.sqrt(norm)
            for j in range(weights.shape[1]):
                weights[k, j] *= scale


@jit
def sgd_epoch(
    blas_gemm, X, order, shift, encoder, encoder_bias, decoder, decoder_bias,
    code, width, alpha, learning_rate, batch_size, normalize_every, update_count,
    measure_squares,
):
    """Run one epoch of minibatch SGD on Eq. 2, in place on the parameters.

    Samples are visited as ``X[order] - shift`` (``X`` itself is only read).
    Each step minimises the minibatch mean of
    ``1/2 ||x - G(x)||^2 + alpha * sum_i f_c(z_i)``. Every ``normalize_every``
    updates (0: never) the decoder's rows are projected to unit norm.

    Returns ``(loss_sum, square_sum, n_visited, update_count, finite)``: the
    summed per-sample loss of the visited samples (each measured before its
    step), the summed ``||x - shift||^2`` of those samples (only when
    ``measure_squares``, else 0), how many samples
    were visited, the running update counter, and False if the loss stopped
    being finite (the epoch then stops at once).
    """
    n_samples, n_features = X.shape
    n_components = encoder.shape[0]
    dtype = encoder.dtype
    batch_size = min(batch_size, n_samples)
    batch = np.empty((batch_size, n_features), dtype)
    residual = np.empty((batch_size, n_features), dtype)
    pre = np.empty((batch_size, n_components), dtype)  # z, then f'(z)
    codes = np.empty((batch_size, n_components), dtype)  # f(z)
    penalty_grad = np.empty((batch_size, n_components), dtype)  # alpha f_c'(z)
    grad_hidden = np.empty((batch_size, n_components), dtype)  # dL/dh, then dL/dz
    visible_sum = np.empty(n_features, dtype)
    hidden_sum = np.empty(n_components, dtype)
    visible_loss = np.empty(n_features, np.float64)
    hidden_loss = np.empty(n_components, np.float64)
    data_square = np.zeros(n_features, np.float64)
    loss_sum = 0.0
    n_visited = 0
    for start in range(0, n_samples, batch_size):
        size = min(batch_size, n_samples - start)
        xb, rb = batch[:size], residual[:size]
        zb, hb, pb, gb = pre[:size], codes[:size], penalty_grad[:size], grad_hidden[:size]
        if measure_squares:
            for i in range(size):
                row = order[start + i]
                for j in range(n_features):
                    value = X[row, j] - shift[j]
                    xb[i, j] = value
                    data_square[j] += value * value
        else:
            for i in range(size):
                row = order[start + i]
                for j in range(n_features):
                    xb[i, j] = X[row, j] - shift[j]

        _fill_rows(zb, encoder_bias)
        gemm(blas_gemm, 1.0, xb, False, encoder, True, 1.0, zb)
        hidden_loss[:] = 0.0
        for i in range(size):
            for k in range(n_components):
                f, df, fc, dfc = unit_response(code, zb[i, k], width)
                hb[i, k] = f
                zb[i, k] = df
                pb[i, k] = alpha * dfc
                hidden_loss[k] += fc
        batch_loss = alpha * hidden_loss.sum()

        _fill_rows(rb, decoder_bias)
        gemm(blas_gemm, 1.0, hb, False, decoder, False, 1.0, rb)
        visible_loss[:] = 0.0
        visible_sum[:] = 0.0
        for i in range(size):
            for j in range(n_features):
                r = rb[i, j] - xb[i, j]
                rb[i, j] = r
                visible_loss[j] += r * r
                visible_sum[j] += r
        batch_loss += 0.5 * visible_loss.sum()
        if not np.isfinite(batch_loss):
            return loss_sum + batch_loss, data_square.sum(), n_visited + size, update_count, False
        loss_sum += batch_loss
        n_visited += size

        step = learning_rate / size
        gemm(blas_gemm, 1.0, rb, False, decoder, True, 0.0, gb)
        gemm(blas_gemm, -step, hb, True, rb, False, 1.0, decoder)
        for j in range(n_features):
            decoder_bias[j] -= step * visible_sum[j]

        hidden_sum[:] = 0.0
        for i in range(size):
            for k in range(n_components):
                g = gb[i, k] * zb[i, k] + pb[i, k]
                gb[i, k] = g
                hidden_sum[k] += g
        gemm(blas_gemm, -step, gb, True, xb, False, 1.0, encoder)
        for k in range(n_components):
            encoder_bias[k] -= step * hidden_sum[k]

        update_count += 1
        if normalize_every > 0 and update_count % normalize_every == 0:
            _normalize_rows(decoder)
    return loss_sum, data_square.sum(), n_visited, update_count, True


@jit
def encode(blas_gemm, X, encoder, encoder_bias, code, width, out):
    """``out = F(X @ encoder.T + encoder_bias)``, written in place."""
    _fill_rows(out, encoder_bias)
    gemm(blas_gemm, 1.0, X, False, encoder, True, 1.0, out)
    for i in range(out.shape[0]):
        for k in range(out.shape[1]):
            out[i, k] = unit_response(code, out[i, k], width)[0]


@jit
def energy(blas_gemm, X, encoder, encoder_bias, decoder, decoder_bias, code, width, out):
    """``out[i] = 1/2 ||X[i] - G(X[i])||^2``, in blocks of rows to bound memory."""
    n_samples, n_features = X.shape
    block = min(n_samples, 512)
    dtype = encoder.dtype
    hidden = np.empty((block, encoder.shape[0]), dtype)
    recon = np.empty((block, n_features), dtype)
    for start in range(0, n_samples, block):
        size = min(block, n_samples - start)
        xb, hb, rb = X[start:start + size], hidden[:size], recon[:size]
        encode(blas_gemm, xb, encoder, encoder_bias, code, width, hb)
        _fill_rows(rb, decoder_bias)
        gemm(blas_gemm, 1.0, hb, False, decoder, False, 1.0, rb)
        for i in range(size):
            total = 0.0
            for j in range(n_features):
                r = xb[i, j] - rb[i, j]
                total += r * r
            out[start + i] = 0.5 * total
