"""How many threads each epoch of a fit uses.

Each SGD step issues five small matrix products. Waking worker threads and
waiting for them costs more than a second core gains unless the products are
large; and whether they gain depends on more than their size: with OpenBLAS
on two cores, two BLAS threads took 0.54 to 0.80 of one thread's time at every
shape of ``benchmarks/bench_training.py`` of more than a million multiply-adds
per product when the second core was free, but under load from other jobs
they were slower for every shape, up to 6 times (``docs/performance_log.md``).

An epoch with more than one thread runs in parts (``_parts``), one thread each,
each making single-threaded products: the elementwise work is then split too,
which BLAS's own threads leave on one core.

Splitting the work changes the order of some sums (and BLAS libraries may sum
a product in another order when they split it between threads: OpenBLAS
0.3.30 does for some shapes, ``Xb @ We.T`` at 784 features, 300 units and
batch 128, or batch 92 at 256 features and 64 units), so the thread count can
change a model in its last bits, and SGD carries such differences on. Hence
two rules:

- ``"auto"`` (the default) depends on the problem's size only, so that the
  same data and ``random_state`` give the same model bit for bit on a given
  machine: one thread below ``SINGLE_THREAD_FLOPS``, the limit in force above
  (at ``batch_size=1``, whose kernel makes no products: below and above twice
  ``SINGLE_SAMPLE_PART_WEIGHTS`` weights).
- ``"timed"`` measures: above ``SMALL_PRODUCT_FLOPS`` (at ``batch_size=1``,
  ``SINGLE_SAMPLE_TIMED_WEIGHTS`` weights) it times an epoch with
  the thread limit in force and one with a single thread (after a first
  epoch that loads the compiled kernel), keeps the faster
  (more threads only if at least ``MULTITHREAD_GAIN`` times the time), and
  times the other again every ``REPROBE_EVERY`` epochs. Faster on a free
  core, but which count runs which epoch depends on the machine's load.

Neither rule ever takes more threads than the BLAS limit in force (joblib
workers, an enclosing ``threadpool_limits``), nor more than the cores the
process may use (``_usable_cores``).

The limit is process-wide, so epochs that run at once in several threads (a
grid search on joblib's threading or Dask backend) share it: the smallest of
their limits applies while they overlap, and the limits in force before the
first of them come back when the last one ends (``SharedLimit``); and an epoch
runs in no more parts than the threads that the epochs already running leave
(``share_threads``).
"""

import os
import threading
from collections import Counter
from contextlib import contextmanager, nullcontext

import numba

SMALL_PRODUCT_FLOPS = 2**17
"""Below this many multiply-adds per matrix product of an SGD step
(``batch_size * n_features * n_components``), ``"timed"`` uses one thread
without timing anything; above, it times parts of at least half as many
against one thread. At 131,000 multiply-adds (144 features, 100 units,
batch 9; 64, 64, 32; 256, 64, 8) two parts took 0.63 to 0.88 of one
thread's epoch on a free core, against 0.57 to 0.76 at 230,000 to 920,000;
BLAS's own threads gained nothing at 230,000 (OpenBLAS does not split
products that small)."""

MULTITHREAD_GAIN = 0.9
"""More threads are kept only if their epoch takes less than this fraction of
a single thread's: a second core is not worth taking for less, and timings
that differ by less are within the noise of a shared machine."""

SINGLE_THREAD_FLOPS = 2**20
"""``"auto"`` uses one thread below this many multiply-adds per product (1.05
million), the limit in force above. With the second core free, two parts took
0.37 to 0.59 of one thread's epoch at seven shapes from 1.05 to 1.84 million
(144 features, 100 units, batch 80 and 128; 256, 128, 32; 784, 64, 32; 64,
256, 96; 3072, 16, 32; 1024, 32, 48), and 0.57 to 0.76 from 0.23 to 0.92
million. But the scheduler does not always keep the parts on different
cores (each worker moves off its partners' CPUs as it starts,
``_parts.move_off``, and may still be put back with them later): held on
one core, two parts took 1.24 to 1.35 of one thread's time in float32 at
0.23 and 0.92 million, 1.03 at 1.84 million and 1.13 at 3.8 million
(``docs/performance_log.md``, "Two parts from a million multiply-adds"); and
a core taken by another job costs more against shorter products."""

PART_FLOPS = 2**19
"""Each part of an epoch run in parts makes products of at least this many
multiply-adds (``batch_size * n_features * n_components`` divided by the
number of parts): half ``SINGLE_THREAD_FLOPS``, so that two parts run from
there."""

SINGLE_SAMPLE_PART_WEIGHTS = 2**16
"""At ``batch_size=1`` (``_kernels.sgd_epoch_single_sample``, no BLAS), each
part of an epoch run in parts updates the rows of at least this many
weights (``n_features * n_components`` divided by the number of parts), and
``"auto"`` uses one thread below twice as many (``"timed"``:
``SINGLE_SAMPLE_TIMED_WEIGHTS``). The parts meet
once per sample, so what a second thread gains depends on how quickly the
two cores reach each other, which changed from one hour to the next on the
same virtual machine here (a barrier's round trip: 90 to 105 ns, then 160
to 170 ns). Two parts took 0.76 to 0.84 of one thread's epoch from 8,192
weights up, and 0.53 to 0.66 from 131,072, at the faster round trip; at the
slower, 1.13 to 1.30 at 14,400 weights, 0.80 to 0.95 at 80,000, and 0.62 to
0.75 at 235,200 (``benchmarks/bench_single_sample_threads.py``,
``docs/performance_log.md``)."""

SINGLE_SAMPLE_TIMED_WEIGHTS = 2**13
"""At ``batch_size=1``, ``"timed"`` times the epoch in parts against one
thread from this many weights, in parts of at least half as many: where the
cores reach each other quickly, two parts took 0.76 to 0.84 of one thread's
time from 8,192 weights (above), and where they do not, the timing keeps one
thread."""

SINGLE_SAMPLE_MAX_PARTS = 4
"""At ``batch_size=1``, an epoch runs in at most this many parts. Every part
reads every part's share of the residual at every sample (``parts *
n_features`` values) against its ``3 * n_components * n_features / parts``
weight updates, so the reads grow with the square of the parts: at 4 they
stay below 6% of a part's work from 100 units up. Only two parts (two
cores) were measured here."""

REPROBE_EVERY = 16
"""Epochs after which the thread count not chosen is timed again."""


class SharedLimit:
    """The BLAS libraries' thread limit, shared by the epochs running at once.

    threadpoolctl's own limit saves the limits on entry and restores them on
    exit: overlapping fits in threads would restore them out of order and
    leave every BLAS in the process at one thread, for good. Here the limits in
    force before the first running epoch are saved once, each running epoch's
    limit is counted, the smallest applies, and the saved limits come back
    when the last epoch ends.
    """

    def __init__(self, libraries):
        self._libraries = libraries  # threadpoolctl's LibController objects
        self._lock = threading.Lock()
        self._requested = Counter()  # the limits of the running epochs
        self._outer = None  # each library's limit before the first of them
        self._unrestored = None  # (the limits to restore, those left instead)

    def outer_limits(self):
        """Each library's limit, leaving out those of the running epochs; in a
        thread that holds a ``threadpool_limits`` of its own, that limit."""
        with self._lock:
            if _holds_user_limit():  # it controls OpenBLAS: no other epoch changes it
                return self._current()
            if self._requested:
                return list(self._outer)
            self._restore_late()
            return self._current()

    def _current(self):
        return [library.num_threads for library in self._libraries]

    def _restore_late(self):
        # A threadpool_limits entered in another thread while an epoch held its limit
        # keeps control of OpenBLAS (threadpoolctl 3.8), so the epoch's restore did not
        # take, and on exit it restores the epoch's limit it took for the user's. When
        # the limits are still those left then, they are restored now.
        if self._unrestored is None:
            return
        limits, left = self._unrestored
        self._unrestored = None
        if self._current() == left:
            self._set(limits)
            if self._current() != limits:  # still held: try again next time
                self._unrestored = (limits, left)

    def _set(self, limits):
        # From threadpoolctl 3.8, one Python thread at a time may set OpenBLAS's
        # process-wide limit: the first to set it, until its count of open limits
        # falls to zero. Counting each change as one lets the next epoch's thread set
        # it, unless this thread holds a threadpool_limits of its own.
        ownership = _thread_ownership()
        if ownership is not None:
            ownership.increment()
        try:
            for library, limit in zip(self._libraries, limits):
                library.set_num_threads(limit)
        finally:
            if ownership is not None:
                ownership.decrement()

    def forget_epochs(self):
        """In a forked child, which runs none of its parent's epochs: their
        limit comes off at the child's next fit."""
        self._lock = threading.Lock()
        if self._requested:
            self._unrestored = (self._outer, self._current())
        self._requested, self._outer = Counter(), None

    @contextmanager
    def limit(self, threads):
        """Context in which BLAS uses at most ``threads`` threads."""
        counted = False
        # Inside the caller's own threadpool_limits, the limits from before the other
        # epochs must not replace the caller's when the last epoch ends: the caller's
        # come back, and those from before once it has let go (a late restore).
        in_users_limit = _holds_user_limit()
        try:
            with self._lock:
                if not self._requested:
                    if not in_users_limit:
                        self._restore_late()
                    self._outer = self._current()
                users = self._current()
                self._requested[threads] += 1
                counted = True
                self._apply()
            yield
        finally:
            if counted:
                with self._lock:
                    self._requested[threads] -= 1
                    if not self._requested[threads]:
                        del self._requested[threads]
                    if in_users_limit and not self._requested:
                        self._set(users)
                        if users != self._outer:
                            self._unrestored = (self._outer, self._current())
                    else:
                        self._apply()

    def _apply(self):
        least = min(self._requested, default=None)
        self._set([outer if least is None else min(outer, least) for outer in self._outer])
        if least is None and self._current() != self._outer:
            self._unrestored = (self._outer, self._current())


def _thread_ownership():
    """threadpoolctl's per-thread count of open limits (3.8 and later), or None."""
    import threadpoolctl

    return getattr(threadpoolctl, "CONTROLLING_THREAD_OWNERSHIP", None)


def _holds_user_limit():
    """Whether this thread is inside a ``threadpool_limits`` of its own, which
    from threadpoolctl 3.8 controls OpenBLAS's process-wide limit."""
    ownership = _thread_ownership()
    return ownership is not None and ownership.count > 0


_threads_held = 0  # by the epochs running now
_threads_held_lock = threading.Lock()


def _forget_threads_held():  # a forked child runs none of its parent's epochs
    global _threads_held, _threads_held_lock, _shared_limit_lock
    _threads_held, _threads_held_lock = 0, threading.Lock()
    _shared_limit_lock = threading.Lock()
    if _shared_limit is not None:
        _shared_limit.forget_epochs()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_held)


@contextmanager
def share_threads(wanted, available):
    """Context holding threads for one epoch; yields how many, at least one.

    At most ``wanted``, and no more than the ``available`` threads less those
    that the epochs running now in other threads hold: epochs in parts that
    overlap would otherwise each take every core and wait for each other's
    parts at every step.
    """
    global _threads_held
    with _threads_held_lock:
        granted = max(1, min(wanted, available - _threads_held))
        _threads_held += granted
    try:
        yield granted
    finally:
        with _threads_held_lock:
            _threads_held -= granted


_shared_limit = None
_shared_limit_lock = threading.Lock()


def _blas_limit():
    # Building a ThreadpoolController scans the loaded libraries (milliseconds);
    # one built after SciPy's BLAS is loaded serves every later fit. One only:
    # each would keep limits of its own.
    global _shared_limit
    with _shared_limit_lock:
        if _shared_limit is None:
            from threadpoolctl import ThreadpoolController

            controller = ThreadpoolController().select(user_api="blas")
            _shared_limit = SharedLimit(controller.lib_controllers)
    return _shared_limit


def _limit_to(shared, threads):
    # Set unless every library allows no more already: threadpoolctl's
    # threadpool_limits reaches only the libraries loaded when it is entered,
    # so one entered before ``import sksatae`` limits NumPy's BLAS but not
    # SciPy's, which the kernels call.
    if threads >= max(shared.outer_limits(), default=1):
        return nullcontext()
    return shared.limit(threads)


def _threads_in_force(shared):
    """The smallest of the BLAS libraries' limits, the one the user set, and no
    more than the cores this process may use: BLAS threads without a core of
    their own wait for each other at every product (below)."""
    return min(min(shared.outer_limits(), default=1), _usable_cores())


def limit_in_force():
    """Context in which every BLAS library keeps to ``_threads_in_force``
    threads (see ``_limit_to``)."""
    shared = _blas_limit()
    return _limit_to(shared, _threads_in_force(shared))


_cores_counted = {}  # affinity: joblib's count under it


def _usable_cores():
    """The CPUs this process may keep busy at once: its affinity, and its
    cgroup's CPU quota (a container's CPU limit), as joblib counts them.

    A BLAS limit above it let OpenBLAS's threads take turns at one core: under
    ``taskset -c 0`` with ``threadpool_limits(2)``, an epoch at 784 features,
    300 units and batch 128 took 21 times as long as under a limit of 1, and
    ``score_samples`` 6 times (the same would follow, not measured here, from
    OpenBLAS's default of a thread per CPU in a container whose quota is one).

    joblib reads the quota from files (40 us, as long as a one-row
    ``transform``), so its count is kept for each affinity seen: a quota
    changed while the process runs is seen once its affinity changes.
    """
    affinity = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    counted = _cores_counted.get(affinity)
    if counted is None:
        import joblib

        counted = _cores_counted[affinity] = max(1, joblib.cpu_count())
    return counted


class ThreadChoice:
    """The thread count of each epoch of one fit or ``partial_fit`` call.

    ``timings`` maps a thread count (as a string: the dict is saved with the
    model) to ``[seconds per sample, samples]`` of its last timed epoch, plus
    ``"uses"``, the epochs run since the last timing, and ``"first_run"`` once
    the first epoch, which is not timed, has run; the estimator keeps it
    between ``partial_fit`` calls, so that one-epoch calls are timed too. A
    timing counts only for epochs of between half and twice its size: an
    epoch's fixed costs weigh more on fewer samples. Use as::

        threads = choice.next_epoch(n_samples)
        with choice.epoch(threads) as (n_parts, used):
            ...  # one epoch in n_parts parts, timed
        choice.record(used, seconds, n_samples)
    """

    def __init__(self, n_threads, batch_size, n_features, n_components, timings, *,
                 calls_blas=True):
        shared = _blas_limit()
        in_force = _threads_in_force(shared)
        if calls_blas:  # the work of a step: multiply-adds per product
            work = batch_size * n_features * n_components
            several, timed_from, per_part = SINGLE_THREAD_FLOPS, SMALL_PRODUCT_FLOPS, PART_FLOPS
        else:  # the single-sample kernel: weights per step
            work = n_features * n_components
            several, timed_from = 2 * SINGLE_SAMPLE_PART_WEIGHTS, SINGLE_SAMPLE_TIMED_WEIGHTS
            per_part = SINGLE_SAMPLE_PART_WEIGHTS
        if n_threads == "timed":  # which keeps the parts only where they were faster
            per_part = timed_from // 2
        most_parts = work // per_part
        if not calls_blas:
            most_parts = min(most_parts, SINGLE_SAMPLE_MAX_PARTS)
        self.timings = timings
        self._shared = shared
        self._in_force = in_force
        self._most_parts = most_parts  # that the work allows
        self._calls_blas = calls_blas
        # Uncompiled (NUMBA_DISABLE_JIT), parts would only take turns at the GIL.
        self._parts_allowed = not numba.config.DISABLE_JIT
        if n_threads == "auto":
            self.candidates = [1 if work < several else in_force]
        elif n_threads != "timed":
            self.candidates = [min(n_threads, in_force)]
        elif in_force == 1 or work < timed_from:
            self.candidates = [1]
        else:
            self.candidates = [in_force, 1]
        # The first epoch of a fresh "timed" fit pays for loading the compiled kernel
        # (about 0.1 s in a new process, several epochs' time): not a timing to keep.
        self._untimed_first = len(self.candidates) == 2 and not timings.get("first_run")

    def next_epoch(self, n_samples):
        """The thread count to run the next epoch of ``n_samples`` with."""
        if len(self.candidates) == 1:
            return self.candidates[0]
        for n in self.candidates:
            timed = self.timings.get(str(n))
            if timed is not None and not timed[1] / 2 <= n_samples <= 2 * timed[1]:
                del self.timings[str(n)]
        untimed = [n for n in self.candidates if str(n) not in self.timings]
        if untimed:
            return untimed[0]
        many, one = self.candidates
        faster = self.timings[str(many)][0] < MULTITHREAD_GAIN * self.timings["1"][0]
        best = many if faster else one
        if self.timings.get("uses", 0) >= REPROBE_EVERY:
            other = next(n for n in self.candidates if n != best)
            del self.timings[str(other)]
            return other
        return best

    def parts(self, threads):
        """In how many parts an epoch with ``threads`` threads runs (``_parts``):
        one per thread, unless each part would make products of fewer than
        ``PART_FLOPS`` multiply-adds (half ``SMALL_PRODUCT_FLOPS`` for
        ``"timed"``; at ``batch_size=1``, update fewer than
        ``SINGLE_SAMPLE_PART_WEIGHTS`` weights, or half
        ``SINGLE_SAMPLE_TIMED_WEIGHTS`` for ``"timed"``, in at most
        ``SINGLE_SAMPLE_MAX_PARTS``), and no more than the cores this process
        may use: parts wait for each other at every step, and a part without a
        core of its own holds up all the others."""
        if threads == 1 or not self._parts_allowed:
            return 1
        return max(1, min(threads, _usable_cores(), self._most_parts))

    def limit(self, threads):
        """Context in which BLAS uses at most ``threads`` threads."""
        return _limit_to(self._shared, threads)

    @contextmanager
    def epoch(self, threads):
        """Context for one epoch with ``threads`` threads. Yields the number of
        parts to run it in and the thread count to ``record`` its time under:
        fewer than ``threads`` where epochs running in other threads hold some.
        """
        parts = self.parts(threads)
        if not self._calls_blas:  # no BLAS threads to limit
            with share_threads(parts, self._in_force) as granted:
                yield granted, threads if granted == parts else granted
            return
        with share_threads(threads if parts == 1 else parts, self._in_force) as granted:
            if parts == 1:  # BLAS's own threads, if any
                with self.limit(granted):
                    yield 1, granted
            else:
                with self.limit(1):  # each part's products on its own thread
                    # Timed under the count asked for, unless epochs in other threads took
                    # some of its parts: parts capped by cores or by size are that count's
                    # epoch, and "timed" must see its candidate timed.
                    yield granted, threads if granted == parts else granted

    def record(self, threads, seconds, n_samples):
        # Kept whatever the candidates: a call under another limit (one thread, say)
        # still times that count for later calls.
        if n_samples == 0:
            return
        if self._untimed_first:
            self._untimed_first = False
            self.timings["first_run"] = 1
            return
        untimed = str(threads) not in self.timings
        self.timings[str(threads)] = [seconds / n_samples, n_samples]
        self.timings["uses"] = 0 if untimed else self.timings.get("uses", 0) + 1
