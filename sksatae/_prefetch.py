"""Software prefetch of the rows an epoch will gather next.

SGD visits the samples in a new random order each epoch, so the next row
to be copied out of ``X`` lies anywhere in it. When ``X`` does not fit the
caches, each such row waits on main memory, and the hardware's prefetchers,
which follow addresses that advance steadily, cannot guess it. The kernels
know the order in advance, and ask for rows before they copy them
(``llvm.prefetch``, a hint that never faults and changes no result): the
next sample's row at batch size 1; at larger batches, each part's rows of
the next minibatch while the current step runs, and, while a minibatch is
copied, the row ``GATHER_LEAD`` rows ahead. ``docs/performance_log.md`` gives
what each saves.

With numba's JIT disabled, the functions here do nothing.
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

GATHER_LEAD = 8
"""How many rows ahead of the row it copies the gather of a minibatch asks for."""

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
def prefetch_row(X, row):
    """Ask for the row ``row`` of the 2-D array ``X`` (unit stride along it)."""
    size = np.uintp(X.shape[1] * X.itemsize)
    if size == 0:
        return
    start = X.ctypes.data + np.uintp(row) * np.uintp(X.strides[0])
    offset = np.uintp(0)
    while offset < size:
        _prefetch(start + offset)
        offset += np.uintp(_LINE)
    _prefetch(start + size - np.uintp(1))  # the last line, where the row starts inside one


@subroutine
def rows_within_budget(X, order, first, end):
    """``end`` clipped to the order's length and to ``PREFETCH_BYTES`` of rows
    of ``X`` from ``first`` (at least one row)."""
    row_bytes = max(1, X.shape[1] * X.itemsize)
    return min(end, order.shape[0], first + max(1, PREFETCH_BYTES // row_bytes))


@subroutine
def prefetch_rows(X, order, first, end):
    """Ask for the rows ``X[order[first:end]]`` (``end`` clipped to the order's
    length), as many as ``PREFETCH_BYTES`` allows."""
    for i in range(first, rows_within_budget(X, order, first, end)):
        prefetch_row(X, order[i])


def _no_prefetch(*args):
    pass


if numba.config.DISABLE_JIT:
    prefetch_row = prefetch_rows = _no_prefetch  # noqa: F811
