"""Direct BLAS ``?gemm`` calls from compiled code.

The BLAS routine is scipy's ``scipy.linalg.cython_blas`` entry point. Its
address is looked up in Python and passed to the kernels as an ordinary
integer argument, so no process-specific address is baked into compiled code
and numba's on-disk cache stays valid across processes.

With numba's JIT disabled (``NUMBA_DISABLE_JIT=1``), the kernels run as plain
Python and the intrinsic below cannot run; the same routine is then called
through ``ctypes`` with the same arguments, so ``gemm`` behaves identically.
"""

import ctypes
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import subroutine

_GEMM_NAMES = {np.dtype(np.float32): "sgemm", np.dtype(np.float64): "dgemm"}


def gemm_address(dtype):
    """Address of scipy's Fortran-order ``sgemm`` or ``dgemm`` for ``dtype``."""
    from numba.extending import get_cython_function_address

    return get_cython_function_address("scipy.linalg.cython_blas", _GEMM_NAMES[np.dtype(dtype)])


@intrinsic
def _fortran_gemm(typingctx, address, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Call ``?gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)``.

    Integers (including the three array addresses) arrive as intp, alpha and
    beta as the float type of the routine; every argument is passed by
    reference, as the Fortran convention of cython_blas requires.
    """
    if not isinstance(alpha, types.Float) or alpha != beta:
        return None
    signature = types.void(address, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, sig, args):
        address, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc = args
        char, int32 = ir.IntType(8), ir.IntType(32)
        real_ptr = context.get_value_type(sig.args[6]).as_pointer()
        int_ptr, char_ptr = int32.as_pointer(), char.as_pointer()
        function_type = ir.FunctionType(
            ir.VoidType(),
            [char_ptr, char_ptr, int_ptr, int_ptr, int_ptr, real_ptr, real_ptr, int_ptr,
             real_ptr, int_ptr, real_ptr, real_ptr, int_ptr],
        )
        function = builder.inttoptr(address, function_type.as_pointer())

        def by_ref(value, as_type=None):
            if as_type is not None:
                value = builder.trunc(value, as_type)
            return cgutils.alloca_once_value(builder, value)

        builder.call(function, [
            by_ref(transa, char), by_ref(transb, char),
            by_ref(m, int32), by_ref(n, int32), by_ref(k, int32),
            by_ref(alpha), builder.inttoptr(a, real_ptr), by_ref(lda, int32),
            builder.inttoptr(b, real_ptr), by_ref(ldb, int32),
            by_ref(beta), builder.inttoptr(c, real_ptr), by_ref(ldc, int32),
        ])
        return context.get_dummy_value()

    return signature, codegen


def _fortran_gemm_through_ctypes(address, transa, transb, m, n, k, alpha, a, lda, b, ldb,
                                 beta, c, ldc):
    """What ``_fortran_gemm`` compiles to, for uncompiled runs."""
    real = ctypes.c_float if np.dtype(type(alpha)) == np.float32 else ctypes.c_double
    function = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 13)(address)

    def by_ref(value, kind=ctypes.c_int):
        return ctypes.byref(kind(value))

    function(
        by_ref(transa, ctypes.c_char), by_ref(transb, ctypes.c_char),
        by_ref(m), by_ref(n), by_ref(k), by_ref(alpha, real), a, by_ref(lda), b, by_ref(ldb),
        by_ref(beta, real), c, by_ref(ldc),
    )


if numba.config.DISABLE_JIT:
    _fortran_gemm = _fortran_gemm_through_ctypes  # noqa: F811

_NO, _YES = ord("N"), ord("T")


@subroutine
def gemm(address, alpha, a, transpose_a, b, transpose_b, beta, c, row, end_row, column,
         end_column):
    """Row-major ``c = alpha * op(a) @ op(b) + beta * c`` through Fortran ``?gemm``,
    on the block ``c[row:end_row, column:end_column]`` alone, from the rows
    ``row:end_row`` of ``op(a)`` and the columns ``column:end_column`` of ``op(b)``.

    For compiled callers only: from Python, the BLAS call below cannot run.
    Every array must have unit stride along its last axis (rows may be a
    prefix of a larger buffer). The block is addressed inside the whole
    arrays rather than passed as a slice: a slice across columns is an array
    of another numba type, for which every caller would compile the call
    again (0.3 s). A row-major matrix is its
    transpose in column-major order, so ``c.T = op(b).T @ op(a).T`` is what
    BLAS computes. The leading dimensions are the row strides, but never less
    than the row length: a one-row array is contiguous whatever its row
    stride says (a one-row DataFrame converts to one with a row stride of one
    element), and BLAS refuses a leading dimension shorter than a row.
    """
    m, n = end_row - row, end_column - column
    k = a.shape[0] if transpose_a else a.shape[1]
    if m <= 0 or n <= 0:
        return
    item = c.itemsize
    # Conditionals, not max(), which compiles numba's version of it (0.06 s).
    ldb, lda, ldc = b.strides[0] // item, a.strides[0] // item, c.strides[0] // item
    ldb = ldb if ldb > b.shape[1] else b.shape[1]
    lda = lda if lda > a.shape[1] else a.shape[1]
    ldc = ldc if ldc > c.shape[1] else c.shape[1]
    # Rows of op(a) are columns of a when it is transposed; columns of op(b) rows of b.
    a_start = row if transpose_a else row * lda
    b_start = column * ldb if transpose_b else column
    _fortran_gemm(
        address, _YES if transpose_b else _NO, _YES if transpose_a else _NO,
        n, m, k, c.dtype.type(alpha),
        b.ctypes.data + b_start * item, ldb if ldb > 1 else 1,
        a.ctypes.data + a_start * item, lda if lda > 1 else 1,
        c.dtype.type(beta), c.ctypes.data + (row * ldc + column) * item, ldc if ldc > 1 else 1,
    )


WARM_UP_SHAPE = (1024, 1024, 64)
"""``(m, k, n)`` of the product that ``warm_up_work_buffer`` makes: an ``m x k``
operand fills a whole packed block of OpenBLAS's buffer for the usual block
sizes (a 400 x 144 one sufficed here; 4 to 6 ms once, single-threaded)."""

_warmed = threading.local()


def warm_up_work_buffer(address, dtype):
    """Make one product of zeros through ``address``, once per thread and routine.

    OpenBLAS packs the operands of a product into a work buffer, lent to the
    call from a pool that lasts as long as the process, and maps its pages
    only when it first writes them. In a fresh process, small products ran
    at up to 2.5 times the time they take once one larger product has
    written more of the buffer (``sgemm`` of 128 x 144 by 144 x 100: 305 us
    against 115 to 130 us, OpenBLAS 0.3.30 on AMD EPYC), and the time went
    to two prefetches of the kernel (``perf``), which run ahead of the
    packed data into pages never written. A whole epoch took
    up to twice its time at one thread (float32, 144 features, 100 units,
    batch 128; ``benchmarks/bench_startup.py --work-buffer``), and
    ``transform`` after small products only up to 2.7 times (float32, blocks
    of 1024 rows; the same benchmark). Concurrent calls borrow
    different buffers: one product per thread that calls the kernels covers
    the buffers its calls borrow. The product runs under the thread limit in
    force, which callers set for their own products: changing it here would
    change it for products running in other threads at that moment, and
    with it the last bits of their sums.
    """
    if not hasattr(_warmed, "routines"):
        _warmed.routines = set()
    if address in _warmed.routines:
        return
    dtype = np.dtype(dtype)
    m, k, n = WARM_UP_SHAPE
    # Zeros from calloc: the pages read stay unmapped (the shared zero page).
    a, b, c = np.zeros(m * k, dtype), np.zeros(k * n, dtype), np.empty(m * n, dtype)
    _fortran_gemm_through_ctypes(address, _NO, _NO, m, n, k, dtype.type(1.0), a.ctypes.data, m,
                                 b.ctypes.data, k, dtype.type(0.0), c.ctypes.data, m)
    _warmed.routines.add(address)
