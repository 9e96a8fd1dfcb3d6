"""Software prefetch of the rows an epoch will gather next.

SGD visits the samples in a new random order each epoch, so the next row
to be copied out of ``X`` lies anywhere in it. When ``X`` does not fit the
caches, each such row waits on main memory, and the hardware's prefetchers,
which follow addresses that advance steadily, cannot guess it. The kernels
know the order in advance: they ask for the next rows while they work on the
current ones (``llvm.prefetch``, a hint that never faults and changes no
result). At 144 features, 100 units and a ``X`` of 131,072 rows, an epoch at
batch size 1 took 0.94 (float32) and 0.95 (float64) of its time without the
hint, and at batch size 16 0.987 and 0.996 (``docs/performance.md``).

With numba's JIT disabled, ``prefetch_rows`` does nothing.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import subroutine

PREFETCH_BYTES = 32 * 1024
"""At most this many bytes of next rows are asked for per step and part:
what the smallest common L1 data cache holds. Further ahead, rows would
only push out the ones the step is using (at 3,072 features, a minibatch of
1,024 float64 rows is 25 MB)."""

_LINE = 64  # bytes per request; a longer line only makes some requests redundant


@intrinsic
def _prefetch(typingctx, address):
    """``llvm.prefetch`` of the cache line holding ``address``: for reading,
    into every cache level, as data."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        byte_pointer, int32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32])
        # Named by llvmlite from the pointer's type, as LLVM's version expects.
        function = builder.module.declare_intrinsic("llvm.prefetch", [byte_pointer],
                                                    function_type)
        pointer = builder.inttoptr(args[0], byte_pointer)
        builder.call(function, [pointer, int32(0), int32(3), int32(1)])
        return context.get_dummy_value()

    return types.void(address), codegen


@subroutine
def rows_within_budget(X, order, first, end):
    """``end`` clipped to the order's length and to ``PREFETCH_BYTES`` of rows
    of ``X`` from ``first`` (at least one row)."""
    row_bytes = max(1, X.shape[1] * X.itemsize)
    return min(end, order.shape[0], first + max(1, PREFETCH_BYTES // row_bytes))


@subroutine
def prefetch_rows(X, order, first, end):
    """Ask for the rows ``X[order[first:end]]`` (``end`` clipped to the order's
    length), as many as ``PREFETCH_BYTES`` allows. ``X`` is 2-D with unit
    stride along its rows."""
    size = np.uintp(X.shape[1] * X.itemsize)
    if size == 0:
        return
    for i in range(first, rows_within_budget(X, order, first, end)):
        start = X.ctypes.data + np.uintp(order[i]) * np.uintp(X.strides[0])
        offset = np.uintp(0)
        while offset < size:
            _prefetch(start + offset)
            offset += np.uintp(_LINE)
        _prefetch(start + size - np.uintp(1))  # the last line, where the row starts inside one


def _no_prefetch(X, order, first, end):
    pass


if numba.config.DISABLE_JIT:
    prefetch_rows = _no_prefetch  # noqa: F811
