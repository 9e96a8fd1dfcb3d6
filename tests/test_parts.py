"""Epochs run in parts, one thread each: the barrier, failures, and the estimator's use."""

import os
import threading

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sksatae import SaturatingAutoEncoder, _kernels, _parts, _threads
from sksatae._parts import (CACHE_LINE, current_cpu, move_off, run_in_parts, sync_buffer,
                            wait_for_parts, yield_address)
from sksatae._threads import (PART_FLOPS, SINGLE_SAMPLE_MAX_PARTS, SINGLE_SAMPLE_PART_WEIGHTS,
                              SINGLE_SAMPLE_TIMED_WEIGHTS, SINGLE_THREAD_FLOPS,
                              SMALL_PRODUCT_FLOPS, ThreadChoice,
                              share_threads)


@numba.njit(nogil=True)
def _count_in_step(counts, seen, steps, sync, address, part):
    """Each part counts its steps; after each meeting it records the smallest
    count of all parts, which must equal its own if no part ran ahead."""
    n_parts = counts.shape[0]
    for step in range(steps):
        counts[part] = step + 1
        if not wait_for_parts(sync, n_parts, address):
            return False
        least = counts[0]
        for other in range(1, n_parts):
            least = min(least, counts[other])
        seen[part, step] = least
        if not wait_for_parts(sync, n_parts, address):  # nobody counts on before all have read
            return False
    return True


def _finishes(function, seconds=60):
    """Run ``function`` in a thread; whether it returned within ``seconds``."""
    done = []
    thread = threading.Thread(target=lambda: done.append(function()), daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(done)


@pytest.mark.parametrize("n_parts", [2, 3, 5])
def test_barrier_keeps_every_part_in_step(n_parts):
    steps = 2000
    counts, seen = np.zeros(n_parts, np.int64), np.zeros((n_parts, steps), np.int64)
    results = run_in_parts(_count_in_step, (counts, seen, steps), n_parts)
    assert results == [True] * n_parts
    np.testing.assert_array_equal(seen, np.broadcast_to(np.arange(1, steps + 1), seen.shape))


def test_a_part_that_fails_to_start_stops_the_others_and_is_raised():
    counts, seen = np.zeros(2, np.int64), np.zeros((2, 100), np.int64)

    def fail_in_a_worker():
        if threading.current_thread().name.startswith("sksatae-epoch-part"):
            raise MemoryError("no buffer for this part")

    def run():
        with pytest.raises(MemoryError, match="no buffer"):
            run_in_parts(_count_in_step, (counts, seen, 100), 2, fail_in_a_worker)
        return True

    assert _finishes(run)  # part 0 did not wait for the part that never came
    assert counts[0] <= 1  # and stopped at its first meeting


def test_an_exception_in_the_callers_part_is_raised_after_the_workers_stop():
    counts, seen = np.zeros(3, np.int64), np.zeros((3, 100), np.int64)

    def interrupt_the_caller():
        if threading.current_thread().name.startswith("sksatae-epoch-part"):
            return
        raise KeyboardInterrupt

    def run():
        with pytest.raises(KeyboardInterrupt):
            run_in_parts(_count_in_step, (counts, seen, 100), 3, interrupt_the_caller)
        return True

    assert _finishes(run)
    assert counts.max() <= 1  # the workers stopped at their first meeting


@numba.njit(nogil=True)
def _part_zero_leaves(met, sync, address, part):
    """Part 0 returns at once; the others wait for it at their first meeting."""
    if part == 0:
        return True
    met[part] = wait_for_parts(sync, met.shape[0], address)
    return True


def test_an_interruption_while_waiting_for_the_workers_stops_them(monkeypatch):
    # Ctrl-C reaches the caller once its own part is done, while it waits for the
    # others: they must not go on waiting for it at their next meeting.
    real_wait, waited = _parts._Worker.wait, []

    def interrupted_wait(self):
        waited.append(self)
        if len(waited) == 1:
            raise KeyboardInterrupt
        real_wait(self)

    monkeypatch.setattr(_parts._Worker, "wait", interrupted_wait)
    met = np.ones(2, np.int64)

    def run():
        with pytest.raises(KeyboardInterrupt):
            run_in_parts(_part_zero_leaves, (met,), 2)
        return True

    assert _finishes(run)
    assert len(waited) == 2 and waited[0]._done.is_set()  # waited for, and stopped
    assert met[1] == 0  # told that the epoch was abandoned
    assert waited[0] in _parts._idle_workers  # and back in the pool for the next epoch


def test_epochs_in_parts_from_several_threads_at_once_do_not_wait_for_each_other():
    # Each epoch takes workers of its own: shared ones would deadlock two epochs
    # each waiting for a part queued behind the other's.
    outcomes = []

    def one_epoch():
        counts, seen = np.zeros(2, np.int64), np.zeros((2, 500), np.int64)
        outcomes.append(run_in_parts(_count_in_step, (counts, seen, 500), 2))

    def run():
        threads = [threading.Thread(target=one_epoch) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return True

    assert _finishes(run)
    assert outcomes == [[True, True]] * 4


def test_workers_are_reused_from_epoch_to_epoch():
    names = []

    def record():
        names.append(threading.get_ident())

    counts, seen = np.zeros(2, np.int64), np.zeros((2, 10), np.int64)
    for _ in range(3):
        run_in_parts(_count_in_step, (counts, seen, 10), 2, record)
    workers = {ident for ident in names if ident != threading.get_ident()}
    assert len(workers) == 1


def _in_a_thread(function):
    """``function()`` called in a new thread, so that affinity changes stay there."""
    result = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join()
    return result[0]


needs_two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or current_cpu() < 0
    or len(os.sched_getaffinity(0)) < 2,
    reason="moving threads between CPUs needs Linux and two usable CPUs")


def _move_off_recorded(monkeypatch, seen_cpu, taken):
    """``move_off(taken)`` in a new thread that it takes to be on ``seen_cpu``
    (the scheduler may move a thread between any two reads of its CPU). Returns
    the thread's affinity before, what ``move_off`` returned, its affinity
    after, and each affinity set, with the CPU the thread ran on right after."""
    real_getcpu, real_setaffinity = _parts._sched_getcpu(), os.sched_setaffinity
    calls = []

    def recorded(pid, cpus):
        real_setaffinity(pid, cpus)
        calls.append((set(cpus), real_getcpu()))

    monkeypatch.setattr(_parts, "current_cpu", lambda: seen_cpu)
    monkeypatch.setattr(os, "sched_setaffinity", recorded)

    def move():
        allowed = os.sched_getaffinity(0)
        return allowed, move_off(taken), os.sched_getaffinity(0)
    return (*_in_a_thread(move), calls)


@needs_two_cpus
def test_move_off_leaves_a_taken_cpu_and_restores_the_affinity(monkeypatch):
    cpu = min(os.sched_getaffinity(0))
    allowed, returned, affinity, calls = _move_off_recorded(monkeypatch, cpu, {cpu})
    assert [mask for mask, _ in calls] == [allowed - {cpu}, allowed]
    # Right after the narrowing, the kernel has moved the thread off the taken CPU.
    assert calls[0][1] in allowed - {cpu}
    assert affinity == allowed


@needs_two_cpus
@pytest.mark.parametrize("taken", ["another CPU", "every allowed CPU"])
def test_move_off_stays_where_it_cannot_or_need_not_move(monkeypatch, taken):
    cpus = sorted(os.sched_getaffinity(0))
    allowed, returned, affinity, calls = _move_off_recorded(
        monkeypatch, cpus[0], {cpus[1]} if taken == "another CPU" else set(cpus))
    assert calls == []
    assert returned == cpus[0]
    assert affinity == allowed


@needs_two_cpus
@pytest.mark.parametrize("refused", ["sched_getaffinity", "sched_setaffinity"])
def test_move_off_leaves_the_thread_where_it_is_when_the_system_refuses(monkeypatch, refused):
    def refuse(*args):
        raise PermissionError("not allowed here")

    cpu = min(os.sched_getaffinity(0))
    monkeypatch.setattr(_parts, "current_cpu", lambda: cpu)
    monkeypatch.setattr(os, refused, refuse)
    assert _in_a_thread(lambda: move_off({cpu})) == cpu


def test_each_worker_moves_off_the_cpus_of_the_parts_started_before_it(monkeypatch):
    taken = []

    def record(cpus):
        taken.append(set(cpus))
        return 100 + len(taken)

    monkeypatch.setattr(_parts, "current_cpu", lambda: 7)
    monkeypatch.setattr(_parts, "move_off", record)
    counts, seen = np.zeros(3, np.int64), np.zeros((3, 10), np.int64)
    assert run_in_parts(_count_in_step, (counts, seen, 10), 3) == [True] * 3
    assert taken == [{7}, {7, 101}]
    taken.clear()
    assert run_in_parts(lambda sync, address, part: part, (), 1) == [0]
    assert taken == []


def test_sync_buffer_starts_cleared_and_yield_routine_is_found():
    assert not sync_buffer().any()
    assert yield_address() != 0  # sched_yield (POSIX) or SwitchToThread (Windows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_what_each_part_writes_lies_on_cache_lines_of_its_own(dtype):
    sync = sync_buffer()
    assert sync.ctypes.data % CACHE_LINE == 0 and sync.nbytes <= CACHE_LINE
    # 7 features and 2 sums: rows of 28, 56 and 16 bytes unless padded.
    rows, visible_sums, squares, _, units, last_units, step_sums = \
        _kernels.epoch_workspace(100, 7, 5, 16, dtype, n_parts=3)
    for buffer in (rows, units, last_units):
        assert buffer.ctypes.data % CACHE_LINE == 0
    for per_part in (visible_sums, squares, step_sums):
        assert per_part.shape[0] == 3 and per_part.flags.c_contiguous
        for part in range(3):
            assert per_part[part].ctypes.data % CACHE_LINE == 0
            assert per_part[part].nbytes % CACHE_LINE == 0


def test_aligned_copy_starts_at_a_cache_line_and_keeps_the_values():
    rng = np.random.default_rng(0)
    for shape in [(7,), (5, 9), (3, 4, 6)]:
        array = rng.standard_normal(shape)
        for dtype in (None, np.float32):
            copies = [_parts.aligned_copy(array, dtype) for _ in range(8)]
            for copy in copies:
                assert copy.ctypes.data % CACHE_LINE == 0
                assert copy.dtype == (array.dtype if dtype is None else dtype)
                assert copy.flags.c_contiguous and copy.shape == shape
                np.testing.assert_array_equal(copy, array.astype(copy.dtype))
                assert not np.shares_memory(copy, array)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_parts", [1, 3])
def test_single_sample_buffers_start_each_row_at_a_cache_line(dtype, n_parts):
    # 7 features and 5 units: rows of 28 to 56 bytes unless padded. In parts, each
    # part's rows (and its shares of the residual and penalty) on lines of their own.
    for buffer in _kernels.single_sample_workspace(7, 5, dtype, n_parts):
        for row in buffer.reshape(-1, buffer.shape[-1]):
            assert row.ctypes.data % CACHE_LINE == 0


@pytest.mark.parametrize("batch_size", [1, 10])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_weights_the_kernels_train_start_at_a_cache_line(batch_size, dtype):
    # A loop over rows that straddle cache lines costs up to a third more at
    # batch_size=1 (docs/performance_log.md). NumPy aligns to 16 bytes only, so
    # each array has a 1 in 4 chance to pass by luck.
    X = np.random.default_rng(0).standard_normal((60, 16)).astype(dtype)
    model = SaturatingAutoEncoder(6, batch_size=batch_size, max_iter=2, alpha=0.1,
                                  random_state=0, tied_weights=False)
    starts = []
    for train in (model.fit, model.partial_fit, model.partial_fit):
        train(X)
        starts += [model.components_.ctypes.data, model.encoder_weights_.ctypes.data]
    assert [start % CACHE_LINE for start in starts] == [0] * len(starts)


def _model(n_threads, **params):
    # 128 x 128 x 128 multiply-adds per product: 2 ** 21, two parts of 2 ** 20.
    params = {"n_components": 128, "batch_size": 128, "max_iter": 3, "alpha": 0.1,
              "alpha_step": 0.1, "random_state": 0, **params}
    return SaturatingAutoEncoder(n_threads=n_threads, **params)


@pytest.fixture(scope="module")
def wide_data():
    return np.random.default_rng(0).standard_normal((640, 128))


def _parts_used(monkeypatch):
    used, real = [], _parts.run_in_parts

    def recording(kernel, arguments, n_parts, before_each=None):
        used.append(n_parts)
        return real(kernel, arguments, n_parts, before_each)

    monkeypatch.setattr("sksatae._autoencoder.run_in_parts", recording)
    return used


def test_fit_in_parts_matches_the_fit_in_one_part(wide_data, monkeypatch):
    used = _parts_used(monkeypatch)
    with threadpool_limits(limits=1, user_api="blas"):
        whole = _model("auto").fit(wide_data)
    assert set(used) == {1}
    used.clear()
    with threadpool_limits(limits=2, user_api="blas"):
        split = _model("auto").fit(wide_data)
    assert set(used) == {2}
    # The same steps, summed in another order in places: equal to rounding.
    np.testing.assert_allclose(split.loss_curve_, whole.loss_curve_, rtol=1e-10)
    for name in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_"):
        np.testing.assert_allclose(getattr(split, name), getattr(whole, name), rtol=1e-8,
                                   atol=1e-10)


def test_fit_in_parts_is_reproducible_bit_for_bit(wide_data, monkeypatch):
    used = _parts_used(monkeypatch)
    with threadpool_limits(limits=2, user_api="blas"):
        first = _model(2).fit(wide_data)
        second = _model(2).fit(wide_data)
    assert set(used) == {2}
    for name in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    np.testing.assert_array_equal(first.loss_curve_, second.loss_curve_)


def test_partial_fit_in_parts_with_a_short_last_batch(wide_data, monkeypatch):
    used = _parts_used(monkeypatch)
    with threadpool_limits(limits=2, user_api="blas"):
        model = _model(2, batch_size=192).partial_fit(wide_data[:200])  # batches of 192, 8
        with threadpool_limits(limits=1, user_api="blas"):
            reference = _model(2, batch_size=192).partial_fit(wide_data[:200])
    assert used == [2, 1]
    np.testing.assert_allclose(model.components_, reference.components_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("n_threads, threads, flops, cores, expected", [
    ("auto", 1, 2**30, 64, 1),  # one thread: one part
    ("auto", 2, 2**20, 64, 2),
    ("auto", 4, 2**20, 64, 2),  # each part at least PART_FLOPS
    ("auto", 4, 2**20 - 64, 64, 1),
    ("auto", 8, 2**30, 64, 8),
    ("auto", 8, 2**30, 2, 2),  # no more parts than cores
    # "timed": parts of half SMALL_PRODUCT_FLOPS, which the timing keeps or not
    ("timed", 4, 2**17, 64, 2),
    ("timed", 4, 2**18, 64, 4),
    ("timed", 4, 2**17 - 64, 64, 1),
])
def test_parts_per_epoch(n_threads, threads, flops, cores, expected, monkeypatch):
    monkeypatch.setattr(_threads, "_usable_cores", lambda: cores)
    choice = ThreadChoice(n_threads, flops // (8 * 8), 8, 8, {})
    assert choice.parts(threads) == expected
    assert PART_FLOPS == 2**19 and SINGLE_THREAD_FLOPS == 2**20 and SMALL_PRODUCT_FLOPS == 2**17


@pytest.mark.parametrize("n_threads, threads, shape, cores, expected", [
    ("auto", 4, (512, 512), 64, 4),
    ("auto", 8, (1024, 1024), 64, 4),  # at most SINGLE_SAMPLE_MAX_PARTS
    ("auto", 4, (400, 400), 64, 2),  # each part at least SINGLE_SAMPLE_PART_WEIGHTS
    ("auto", 4, (256, 511), 64, 1),
    ("auto", 1, (2**15, 2**15), 64, 1),
    ("auto", 8, (2**15, 2**15), 2, 2),  # no more parts than cores
    ("auto", 4, (128, 64), 64, 1),
    (4, 4, (128, 64), 64, 1),
    # "timed": parts of half SINGLE_SAMPLE_TIMED_WEIGHTS, which the timing keeps or not
    ("timed", 4, (128, 64), 64, 2),
    ("timed", 4, (127, 64), 64, 1),
    ("timed", 4, (256, 256), 64, 4),
])
def test_single_sample_parts_per_epoch(n_threads, threads, shape, cores, expected, monkeypatch):
    monkeypatch.setattr(_threads, "_usable_cores", lambda: cores)
    choice = ThreadChoice(n_threads, 1, *shape, {}, calls_blas=False)
    assert choice.parts(threads) == expected
    assert SINGLE_SAMPLE_PART_WEIGHTS == 2**16 and SINGLE_SAMPLE_MAX_PARTS == 4
    assert SINGLE_SAMPLE_TIMED_WEIGHTS == 2**13


def _single_sample_model(n_threads, **params):
    # 512 features by 256 units: 2**17 weights, two parts of 2**16.
    return _model(n_threads, **{"n_components": 256, "batch_size": 1, "max_iter": 2, **params})


@pytest.fixture(scope="module")
def single_sample_data():
    return np.random.default_rng(1).standard_normal((200, 512))


@pytest.mark.parametrize("activation", ["shrink", "satlinear"])  # untied, tied
def test_batch_size_one_fit_in_parts_matches_the_fit_in_one_part(activation, single_sample_data,
                                                                 monkeypatch):
    X = single_sample_data
    used = _parts_used(monkeypatch)

    def model():
        return _single_sample_model("auto", activation=activation)
    with threadpool_limits(limits=1, user_api="blas"):
        whole = model().fit(X)
    assert set(used) == {1}
    used.clear()
    with threadpool_limits(limits=2, user_api="blas"):
        split = model().fit(X)
        again = model().fit(X)
    assert set(used) == {2}
    np.testing.assert_allclose(split.loss_curve_, whole.loss_curve_, rtol=1e-10)
    for name in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_"):
        np.testing.assert_allclose(getattr(split, name), getattr(whole, name), rtol=1e-8,
                                   atol=1e-10)
        np.testing.assert_array_equal(getattr(split, name), getattr(again, name))
    assert not np.array_equal(split.components_, whole.components_)  # it did run in parts


def test_overlapping_epochs_share_the_threads_available():
    with share_threads(2, 2) as first:
        with share_threads(2, 2) as second:  # the first holds both: at least one
            with share_threads(3, 4) as third:
                assert (first, second, third) == (2, 1, 1)
        with share_threads(2, 2) as after:
            assert after == 1
    with share_threads(2, 2) as alone:
        assert alone == 2


@pytest.mark.parametrize("single_sample", [False, True], ids=["minibatch", "batch1"])
def test_fits_in_parts_in_several_threads_at_once(single_sample, wide_data, single_sample_data,
                                                  monkeypatch):
    make, data = ((_single_sample_model, single_sample_data) if single_sample
                  else (_model, wide_data))
    used = _parts_used(monkeypatch)
    with threadpool_limits(limits=2, user_api="blas"):
        alone = make(2).fit(data)
        models = [make(2) for _ in range(3)]

        def run():
            threads = [threading.Thread(target=model.fit, args=(data,)) for model in models]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return True

        assert _finishes(run, seconds=300)
    assert used[0] == 2 and set(used) <= {1, 2}  # overlapping epochs: what was left
    for model in models:
        np.testing.assert_allclose(model.components_, alone.components_, rtol=1e-8, atol=1e-10)


def test_part_units_are_unsigned_in_parts_only():
    # Unsigned in an epoch in parts, so that numba does not wrap negative unit indices
    # around in every access; in one part the units start at a constant 0.
    @numba.njit
    def bounds(sync):
        return _kernels.part_units(sync, 3, 7)

    assert bounds(np.zeros(3, np.int64)) == (3, 7)
    assert bounds(None) == (3, 7)
    returned = {str(arguments[0]): str(bounds.overloads[arguments].signature.return_type)
                for arguments in bounds.signatures}
    assert returned == {"array(int64, 1d, C)": "UniTuple(uint64 x 2)",
                        "none": "UniTuple(int64 x 2)"}
