"""Fixtures shared by several test modules."""

import numba
import pytest

from sksatae._blas import gemm


@numba.njit
def _compiled_gemm(address, alpha, a, transpose_a, b, transpose_b, beta, c):
    gemm(address, alpha, a, transpose_a, b, transpose_b, beta, c, 0, c.shape[0], 0, c.shape[1])


@numba.njit
def _compiled_gemm_block(address, alpha, a, transpose_a, b, transpose_b, beta, c, row, end_row,
                         column, end_column):
    gemm(address, alpha, a, transpose_a, b, transpose_b, beta, c, row, end_row, column,
         end_column)


@pytest.fixture
def compiled_gemm():
    """``sksatae._blas.gemm`` on the whole of ``c``, behind a compiled caller: it
    runs only in compiled code."""
    return _compiled_gemm


@pytest.fixture
def compiled_gemm_block():
    """``sksatae._blas.gemm`` on a block of ``c``, behind a compiled caller."""
    return _compiled_gemm_block
