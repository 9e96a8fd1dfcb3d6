"""Fixtures shared by several test modules."""

import numba
import pytest

from sksatae._blas import gemm


@numba.njit
def _compiled_gemm(address, alpha, a, transpose_a, b, transpose_b, beta, c):
    gemm(address, alpha, a, transpose_a, b, transpose_b, beta, c)


@pytest.fixture
def compiled_gemm():
    """``sksatae._blas.gemm`` behind a compiled caller: it runs only in compiled code."""
    return _compiled_gemm
