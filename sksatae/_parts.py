"""One training epoch run in parts, one thread per part.

Each SGD step of ``_kernels.sgd_epoch`` makes five matrix products and some
elementwise work (the gather, the responses, the residual, the re-projection).
When BLAS splits each product between threads, the elementwise work stays on
one core, and with two threads it weighs twice as much against the products.
Run in parts, the epoch instead splits everything: every part runs the same
compiled kernel in a thread of its own, with single-threaded products, on its
share of the minibatch's samples for the products that run over samples, and
on its share of the units for those that update weights. The parts meet at
``wait_for_parts`` three times per step.

The barrier spins, as BLAS's own worker threads do, and lets the core go
(``sched_yield``, ``SwitchToThread`` on Windows) after a while: a part whose
partner has lost its core to another job must not hold on to its own. Its
counters are updated with atomic instructions, compiled from the
``atomic_add`` and ``atomic_load`` intrinsics below; the yield routine's address
is looked up in Python and passed as an argument, as the BLAS routine is
(``_blas``), so that numba's on-disk cache holds no address of this process.
With numba's JIT disabled the same functions run as Python under the GIL.

Two parts that take turns on one core are slower than one thread, so on
Linux each worker first moves off the CPUs of the parts started before it
(``move_off``).
"""

import ctypes
import functools
import math
import os
import queue
import sys
import threading
import time

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import subroutine

COUNT, GENERATION, ABANDONED = 0, 1, 2
SPINS_BEFORE_YIELD = 2000
"""Spins of the barrier before each yield of the core: about 2.5 us here
(1.2 ns a spin, measured in a compiled loop), which covers the parts' usual
difference in arrival, far less than a step."""


CACHE_LINE = 64
"""Bytes per cache line on x86-64 and most ARM cores. Where lines are longer
(128 bytes on Apple's M series), two parts' rows may still share one: that
costs time, never correctness."""


def aligned_empty(shape, dtype, per_part=False):
    """``np.empty(shape, dtype)`` starting at a cache line; if ``per_part``,
    with the last axis padded so that each row (one part's) starts at one too.

    Parts that write beside each other on one cache line take it from each
    other's core at every write, and the residual's loop writes its part's
    per-feature sums for every row of a batch. NumPy aligns arrays to 16
    bytes only, so without this the parts' rows of those sums, and the barrier's
    counters, share lines with each other or with other small arrays
    depending on where the allocator puts them.
    """
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    if per_part:
        per_line = CACHE_LINE // dtype.itemsize
        shape = shape[:-1] + (-(-shape[-1] // per_line) * per_line,)
    count = math.prod(shape)
    buffer = np.empty(count + CACHE_LINE // dtype.itemsize, dtype)
    offset = (-buffer.ctypes.data % CACHE_LINE) // dtype.itemsize
    return buffer[offset:offset + count].reshape(shape)


def aligned_copy(array, dtype=None):
    """A copy of ``array`` (in ``dtype``, if given) starting at a cache line.

    The kernels' loops over the weights' rows run 10 to 25% faster at a batch
    size of 1 when those rows start at a cache line (rows of 144 or 784
    values are whole lines): loads that straddle two lines cost two."""
    out = aligned_empty(np.shape(array), array.dtype if dtype is None else dtype)
    out[...] = array
    return out


def sync_buffer():
    """The barrier's shared state: arrivals, generation, abandoned flag, on a
    cache line of its own."""
    buffer = aligned_empty((CACHE_LINE // 8,), np.int64)
    buffer[:] = 0
    return buffer[:3]


def _element_pointer(context, builder, array_type, array, index):
    array = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, array, [index])


def _is_int64_array(array):
    return isinstance(array, types.Array) and array.dtype == types.int64 and array.ndim == 1


@intrinsic
def atomic_add(typingctx, array, index, value):
    """``array[index] += value`` in one atomic step; returns the old value."""
    if not _is_int64_array(array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        array, index, value = args
        pointer = _element_pointer(context, builder, sig.args[0], array, index)
        value = context.cast(builder, value, sig.args[2], types.int64)
        return builder.atomic_rmw("add", pointer, value, "seq_cst")

    return types.int64(array, index, value), codegen


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]``, read so that writes made before another thread's
    atomic update of it are seen after it."""
    if not _is_int64_array(array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        array, index = args
        pointer = _element_pointer(context, builder, sig.args[0], array, index)
        return builder.load_atomic(pointer, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def _call_yield(typingctx, address):
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        from llvmlite import ir

        function_type = ir.FunctionType(ir.IntType(32), [])
        function = builder.inttoptr(args[0], function_type.as_pointer())
        builder.call(function, [])
        return context.get_dummy_value()

    return types.void(address), codegen


_python_atomics = threading.Lock()


def _atomic_add_python(array, index, value):
    with _python_atomics:
        old = int(array[index])
        array[index] = old + value
    return old


def _atomic_load_python(array, index):
    return int(array[index])


def _call_yield_python(address):
    time.sleep(0)


if numba.config.DISABLE_JIT:
    atomic_add, atomic_load, _call_yield = (  # noqa: F811
        _atomic_add_python, _atomic_load_python, _call_yield_python)


@subroutine
def wait_for_parts(sync, n_parts, yield_address):
    """Wait until all ``n_parts`` parts have arrived; False if one has
    abandoned the epoch (then every part stops)."""
    generation = atomic_load(sync, GENERATION)
    if atomic_add(sync, COUNT, 1) == n_parts - 1:
        sync[COUNT] = 0  # before the generation moves on: no part counts again until then
        atomic_add(sync, GENERATION, 1)
        return atomic_load(sync, ABANDONED) == 0
    spins = 0
    while atomic_load(sync, GENERATION) == generation:
        if atomic_load(sync, ABANDONED) != 0:
            return False
        spins += 1
        if spins == SPINS_BEFORE_YIELD:
            spins = 0
            if yield_address != 0:
                _call_yield(yield_address)
    return atomic_load(sync, ABANDONED) == 0


@functools.lru_cache(maxsize=None)
def yield_address():
    """Address of the routine that lets the calling thread's core go (0: none)."""
    try:
        if sys.platform == "win32":
            function = ctypes.windll.kernel32.SwitchToThread
        else:
            function = ctypes.CDLL(None).sched_yield
    except (AttributeError, OSError):
        return 0
    return ctypes.cast(function, ctypes.c_void_p).value or 0


class _Worker:
    """A thread that runs one part after another, so that an epoch's parts
    start without starting threads, and run in threads whose BLAS work
    buffers are warm (``_blas.warm_up_work_buffer``)."""

    def __init__(self):
        self._jobs = queue.SimpleQueue()
        self._done = threading.Event()
        self._done.set()  # idle
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="sksatae-epoch-part")
        self._thread.start()

    def _serve(self):
        while True:
            job = self._jobs.get()
            try:
                job()
            finally:
                self._done.set()

    def start(self, job):
        self._done.clear()
        self._jobs.put(job)

    def wait(self):
        self._done.wait()


@functools.lru_cache(maxsize=None)
def _sched_getcpu():
    try:
        function = ctypes.CDLL(None).sched_getcpu
    except (AttributeError, OSError):  # not Linux, or no such routine in its C library
        return None
    function.restype, function.argtypes = ctypes.c_int, []
    return function


def current_cpu():
    """The CPU the calling thread runs on, or -1 where that cannot be known."""
    function = _sched_getcpu()
    return -1 if function is None else function()


def move_off(taken):
    """Move the calling thread to a CPU outside ``taken`` if it runs on one of
    them; its affinity is left as it was. Returns the CPU it then runs on.

    After a pause, the scheduler often wakes an epoch's worker on the CPU of
    the thread that woke it, and the parts then take turns on one core until
    the load balancer separates them, milliseconds later: after pauses of 20
    ms, epochs in two parts took 1.21 to 1.30 of one thread's time at 144
    features and 100 units (4,096 rows in batches of 128, 1,024 in batches
    of 16), and 0.70 to 0.85 with this move (``docs/performance_log.md``).
    Narrowing the thread's affinity moves it at once; restoring it straight
    after leaves the scheduler free to move it again, unlike pinning, which
    would stack the parts of processes that each pin on the same cores.
    """
    cpu = current_cpu()
    if cpu < 0 or cpu not in taken or not hasattr(os, "sched_setaffinity"):
        return cpu
    try:  # a placement hint: where the system refuses, the part runs where it is
        allowed = os.sched_getaffinity(0)
        elsewhere = allowed - set(taken)
        if not elsewhere:
            return cpu
        os.sched_setaffinity(0, elsewhere)
    except OSError:
        return cpu
    try:
        os.sched_setaffinity(0, allowed)
    except OSError:  # the thread stays on CPUs it was allowed anyway
        pass
    return current_cpu()


_idle_workers = []
_workers_lock = threading.Lock()


def _forget_workers():  # a forked child has none of its parent's threads
    global _workers_lock
    _idle_workers.clear()
    _workers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def _take_workers(n):
    # Each epoch takes workers of its own: epochs that run at once in several
    # threads would otherwise wait for each other's parts, which wait for them.
    with _workers_lock:
        taken = [_idle_workers.pop() for _ in range(min(n, len(_idle_workers)))]
    try:
        while len(taken) < n:
            taken.append(_Worker())
    except BaseException:
        _return_workers(taken)
        raise
    return taken


def _return_workers(workers):
    with _workers_lock:
        _idle_workers.extend(workers)


def run_in_parts(kernel, arguments, n_parts, before_each=None):
    """Run ``kernel(*arguments, sync, yield_address, part)`` for every part,
    part 0 in this thread; in one part, ``kernel(*arguments, None, 0, 0)``.

    Each worker first moves off the CPUs that the parts started before it
    run on (``move_off``). ``before_each`` runs in each thread before its
    part (the BLAS work buffer's warm-up). If any part raises, the epoch is
    abandoned: the other parts stop at their next meeting, and the first
    exception is raised here once every part has stopped. Returns each
    part's result, in order.
    """
    if n_parts == 1:
        if before_each is not None:
            before_each()
        return [kernel(*arguments, None, 0, 0)]
    sync, address = sync_buffer(), yield_address()
    results, errors = [None] * n_parts, []
    cpus, cpus_lock = {0: current_cpu()}, threading.Lock()

    def run(part):
        try:
            if part:
                with cpus_lock:
                    cpus[part] = move_off(set(cpus.values()))
            if before_each is not None:
                before_each()
            results[part] = kernel(*arguments, sync, address, part)
        except BaseException as exc:  # the other parts must not wait for this one
            errors.append(exc)
            sync[ABANDONED] = 1

    workers = _take_workers(n_parts - 1)
    try:
        for part, worker in enumerate(workers, start=1):
            worker.start(lambda part=part: run(part))
        run(0)
        for worker in workers:
            worker.wait()
    except BaseException:  # interrupted while waiting: the workers must not wait for part 0
        sync[ABANDONED] = 1
        for worker in workers:
            worker.wait()
        _return_workers(workers)
        raise
    _return_workers(workers)
    if errors:
        raise errors[0]
    return results
