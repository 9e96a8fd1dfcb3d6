"""The choice of BLAS threads per epoch (``sksatae._threads``)."""

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from sksatae import _threads
from sksatae._threads import (MULTITHREAD_GAIN, REPROBE_EVERY, SINGLE_THREAD_FLOPS,
                              SMALL_PRODUCT_FLOPS, SharedLimit, ThreadChoice, limit_in_force)


class FakeLibrary:
    """A BLAS library as threadpoolctl's controllers show it."""

    def __init__(self, num_threads):
        self.num_threads = num_threads
        self.settings = []

    def set_num_threads(self, num_threads):
        self.settings.append(num_threads)
        self.num_threads = num_threads


@pytest.fixture
def controller(monkeypatch):
    def install(num_threads):
        fake = FakeLibrary(num_threads)
        shared = SharedLimit([fake])
        monkeypatch.setattr(_threads, "_blas_limit", lambda: shared)
        # As many cores as threads: the choices below must not depend on this machine's.
        monkeypatch.setattr(_threads, "_usable_cores", lambda: 64)
        return fake
    return install


LARGE = (128, 784, 300)  # 30 million multiply-adds per product
MEDIUM = (64, 144, 100)  # 0.92 million


@pytest.mark.parametrize("n_threads, in_force, shape, calls_blas, expected", [
    (1, 2, LARGE, True, [1]),
    (4, 2, LARGE, True, [2]),
    ("auto", 1, LARGE, True, [1]),
    ("auto", 2, MEDIUM, True, [1]),  # below SINGLE_THREAD_FLOPS: sizes only
    ("auto", 2, LARGE, True, [2]),  # above SINGLE_THREAD_FLOPS
    ("auto", 4, LARGE, True, [4]),
    ("timed", 1, LARGE, True, [1]),
    ("timed", 2, (8, 144, 100), True, [1]),  # below SMALL_PRODUCT_FLOPS
    ("timed", 2, (16, 144, 100), True, [2, 1]),
    ("timed", 2, LARGE, True, [2, 1]),
    # The single-sample kernel (batch_size=1) runs in parts from 2 * 2**16 weights.
    ("timed", 2, (1, 3072, 400), False, [2, 1]),
    ("auto", 2, (1, 3072, 400), False, [2]),
    (1, 2, (1, 3072, 400), False, [1]),
    ("auto", 2, (1, 512, 256), False, [2]),
    ("auto", 2, (1, 511, 256), False, [1]),
    ("auto", 2, (1, 144, 100), False, [1]),
    ("timed", 2, (1, 128, 64), False, [2, 1]),  # "timed" from 2**13 weights
    ("timed", 2, (1, 127, 64), False, [1]),
    # One row through the minibatch kernel (a one-row partial_fit): products like any other.
    ("auto", 2, (1, 3072, 300), True, [1]),
    ("auto", 2, (1, 3072, 400), True, [2]),
])
def test_candidate_thread_counts(controller, n_threads, in_force, shape, calls_blas, expected):
    controller(in_force)
    assert ThreadChoice(n_threads, *shape, {}, calls_blas=calls_blas).candidates == expected


def test_the_size_thresholds_are_ordered():
    # The benchmark's shape of 144 features and 100 units: "timed" from batch 16, "auto"
    # in parts from batch 128.
    assert 8 * 144 * 100 < SMALL_PRODUCT_FLOPS < 16 * 144 * 100
    assert 64 * 144 * 100 < SINGLE_THREAD_FLOPS < 128 * 144 * 100


def test_an_epoch_runs_in_no_more_parts_than_usable_cores(controller, monkeypatch):
    # A BLAS limit of 8 on 2 cores ran epochs in 8 parts, each waiting at every step for
    # parts without a core (0.64 s an epoch against 0.43 s in 2 parts).
    controller(8)
    monkeypatch.setattr(_threads, "_usable_cores", lambda: 2)
    choice = ThreadChoice("auto", *LARGE, {})
    assert choice.candidates == [2] and choice.parts(8) == 2
    with choice.epoch(2) as (n_parts, used):
        assert n_parts == 2
    # "timed" records each epoch under the count it asked for: when that was 8 and the
    # epoch ran as 2 parts, a record under "2" left 8 untimed, chosen for every epoch,
    # and one thread was never timed.
    choice = ThreadChoice("timed", *LARGE, {"first_run": 1})
    assert choice.candidates == [2, 1]
    for expected in (2, 1):
        threads = choice.next_epoch(100)
        assert threads == expected
        with choice.epoch(threads) as (n_parts, used):
            choice.record(used, 0.1, 100)
    assert {"2", "1"} <= set(choice.timings)


@pytest.mark.parametrize("n_threads", ["auto", "timed", 2])
def test_blas_threads_stay_within_the_usable_cores(controller, monkeypatch, n_threads):
    # Under a limit of 2 on one core, OpenBLAS's two threads took turns at it: an epoch
    # took 21 times as long as under a limit of 1, score_samples 6 times.
    fake = controller(2)
    monkeypatch.setattr(_threads, "_usable_cores", lambda: 1)
    choice = ThreadChoice(n_threads, *LARGE, {"first_run": 1})
    assert choice.candidates == [1]
    with choice.epoch(1) as (n_parts, used):
        assert (n_parts, used, fake.num_threads) == (1, 1, 1)
    assert fake.num_threads == 2
    with limit_in_force():
        assert fake.num_threads == 1
    assert fake.num_threads == 2


@pytest.mark.parametrize("ratio, expected", [(0.5, 2), (0.99 * MULTITHREAD_GAIN, 2),
                                             (1.01 * MULTITHREAD_GAIN, 1), (1.2, 1)])
def test_more_threads_are_kept_only_when_clearly_faster(controller, ratio, expected):
    fake = controller(2)
    choice = ThreadChoice("timed", *LARGE, {"first_run": 1})
    run_epochs(choice, fake, {2: ratio * 1e-3, 1: 1e-3}, 2)
    assert choice.next_epoch(100) == expected


def run_epochs(choice, controller, seconds_per_sample, n_epochs):
    """Run ``n_epochs`` fake epochs of 100 samples; return the counts used."""
    used = []
    for _ in range(n_epochs):
        threads = choice.next_epoch(100)
        in_force, before = controller.num_threads, len(controller.settings)
        with choice.limit(threads):
            assert controller.num_threads == threads
        # A limit below the one in force is applied, then lifted; the one in force is
        # left alone.
        assert controller.num_threads == in_force
        assert len(controller.settings) == before + 2 * (threads < in_force)
        choice.record(threads, 100 * seconds_per_sample[threads], 100)
        used.append(threads)
    return used


@pytest.mark.parametrize("faster", [1, 2])
def test_both_counts_are_timed_then_the_faster_kept_and_the_other_timed_again(controller,
                                                                             faster):
    fake = controller(2)
    timings = {"first_run": 1}  # the kernel loaded
    choice = ThreadChoice("timed", *LARGE, timings)
    seconds = {faster: 1e-3, 3 - faster: 2e-3}
    used = run_epochs(choice, fake, seconds, 2 + REPROBE_EVERY + 1 + 3)
    assert used[:2] == [2, 1]  # the limit in force first, then one thread
    assert used[2:2 + REPROBE_EVERY] == [faster] * REPROBE_EVERY
    assert used[2 + REPROBE_EVERY] == 3 - faster  # timed again
    assert used[-3:] == [faster] * 3
    assert timings[str(faster)] == [pytest.approx(1e-3), 100]


def test_the_first_epoch_of_a_fresh_timed_fit_is_not_timed(controller):
    # It loads the compiled kernel (0.1 s in a new process, four epochs' time here),
    # which was charged to the first count timed, always the larger one: one thread was
    # then kept for 16 epochs unless the larger count was four times faster.
    fake = controller(2)
    timings = {}
    choice = ThreadChoice("timed", *LARGE, timings)
    first = choice.next_epoch(100)
    choice.record(first, 100 * 5e-3, 100)  # the kernel's loading included
    assert timings == {"first_run": 1}
    used = run_epochs(choice, fake, {2: 1e-3, 1: 2e-3}, 3)
    assert [first, *used] == [2, 2, 1, 2]
    # Later calls with these timings (partial_fit) time every epoch.
    choice = ThreadChoice("timed", *LARGE, timings)
    choice.record(2, 100 * 3e-3, 100)
    assert timings["2"] == [pytest.approx(3e-3), 100]


def test_a_load_change_moves_the_choice(controller):
    fake = controller(2)
    choice = ThreadChoice("timed", *LARGE, {"first_run": 1})
    run_epochs(choice, fake, {2: 1e-3, 1: 2e-3}, 2)
    assert choice.next_epoch(100) == 2
    # The second core gets busy: two threads become slow. The next timing of two
    # threads records it, and the choice moves to one.
    run_epochs(choice, fake, {2: 5e-3, 1: 2e-3}, 1)
    assert choice.next_epoch(100) == 1


def test_timings_carry_over_calls_and_limits(controller):
    fake = controller(2)
    timings = {"first_run": 1}  # the kernel loaded
    run_epochs(ThreadChoice("timed", *LARGE, timings), fake, {2: 1e-3, 1: 2e-3}, 2)
    assert set(timings) == {"1", "2", "uses", "first_run"}
    # A later call (partial_fit) starts from the timings: no new probing.
    assert ThreadChoice("timed", *LARGE, timings).next_epoch(100) == 2
    # A call under a limit of one thread times one thread, and keeps the rest.
    one = controller(1)
    run_epochs(ThreadChoice("timed", *LARGE, timings), one, {1: 0.5e-3}, 1)
    assert timings["2"] == [pytest.approx(1e-3), 100] and timings["1"][0] == pytest.approx(0.5e-3)
    controller(2)
    assert ThreadChoice("timed", *LARGE, timings).next_epoch(100) == 1  # one is faster now
    controller(4)  # more threads allowed: four are timed before being chosen
    assert ThreadChoice("timed", *LARGE, timings).next_epoch(100) == 4


def test_timings_count_only_for_epochs_of_a_similar_size(controller):
    fake = controller(2)
    timings = {"first_run": 1}  # the kernel loaded
    choice = ThreadChoice("timed", *LARGE, timings)
    run_epochs(choice, fake, {2: 1e-3, 1: 2e-3}, 2)  # epochs of 100 samples
    assert choice.next_epoch(150) == 2
    # An epoch of 1,000 samples: both timings are dropped and taken again.
    assert choice.next_epoch(1000) == 2
    choice.record(2, 1000 * 3e-3, 1000)
    assert choice.next_epoch(1000) == 1
    choice.record(1, 1000 * 2e-3, 1000)
    assert choice.next_epoch(1000) == 1


def test_overlapping_limits_restore_the_limits_in_force_before_them():
    # Two fits in threads: the first to start ends first. Each restoring what it saw
    # on entry would leave one thread in force for good.
    libraries = [FakeLibrary(4), FakeLibrary(2)]
    shared = SharedLimit(libraries)
    first, second = shared.limit(1), shared.limit(3)
    first.__enter__()
    assert [library.num_threads for library in libraries] == [1, 1]
    second.__enter__()
    assert [library.num_threads for library in libraries] == [1, 1]  # the smaller applies
    assert shared.outer_limits() == [4, 2]
    first.__exit__(None, None, None)
    assert [library.num_threads for library in libraries] == [3, 2]
    second.__exit__(None, None, None)
    assert [library.num_threads for library in libraries] == [4, 2]


def test_a_limit_is_lifted_when_the_epoch_raises():
    library = FakeLibrary(2)
    shared = SharedLimit([library])
    with pytest.raises(KeyboardInterrupt):
        with shared.limit(1):
            raise KeyboardInterrupt
    assert library.num_threads == 2
    with shared.limit(1):  # the count of running epochs went back to zero
        assert library.num_threads == 1
    assert library.num_threads == 2


def test_another_fits_limit_is_not_taken_for_the_users(controller):
    library = controller(2)
    with ThreadChoice("auto", *MEDIUM, {}).limit(1):
        assert library.num_threads == 1
        # A fit starting now sees the limit in force outside the running epochs.
        assert ThreadChoice("auto", *LARGE, {}).candidates == [2]
        assert ThreadChoice("timed", *LARGE, {}).candidates == [2, 1]
    assert library.num_threads == 2


class HeldElsewhere(FakeLibrary):
    """A library whose limit another thread's threadpool_limits controls while
    ``held`` (threadpoolctl 3.8): changes from this thread do not take."""

    held = False

    def set_num_threads(self, num_threads):
        if not self.held:
            super().set_num_threads(num_threads)


@pytest.mark.parametrize("changed_since, restored", [(None, 2), (3, 3)])
def test_a_limit_held_elsewhere_over_an_epoch_is_restored_once_let_go(changed_since, restored):
    # A caller's threadpool_limits entered during an epoch in parts saves the epoch's
    # limit of 1 as the one to restore: the process stayed at one thread for good.
    library = HeldElsewhere(2)
    shared = SharedLimit([library])
    with shared.limit(1):
        library.held = True  # entered now: it saves 1 and keeps control
    assert library.num_threads == 1  # the epoch's restore did not take
    library.held = False  # it exits, restoring the 1 it saved
    if changed_since is not None:  # a limit set since is the user's: kept
        library.num_threads = changed_since
    assert shared.outer_limits() == [restored]  # what the next fit sees
    assert library.num_threads == restored


def test_a_fit_in_a_callers_own_limit_keeps_to_it_while_another_epoch_runs(monkeypatch):
    # Thread A's epoch saved the limit of 2; thread B then fits inside its own
    # threadpool_limits(1), which controls OpenBLAS (threadpoolctl 3.8). B's fit took A's
    # saved 2 for its limit, and the end of B's epoch, the last one, restored 2 inside
    # B's block; B's block then restored the 1 it had saved from A's epoch, for good.
    library = FakeLibrary(2)
    shared = SharedLimit([library])
    in_block = set()
    monkeypatch.setattr(_threads, "_holds_user_limit", lambda: "B" in in_block)
    epoch_a = shared.limit(1)
    epoch_a.__enter__()
    in_block.add("B")  # B enters threadpool_limits(1): it saves 1, sets 1
    library.num_threads = 1
    assert shared.outer_limits() == [1]  # what B's fit may take
    with shared.limit(1):
        in_block.discard("B")
        epoch_a.__exit__(None, None, None)  # A's restore cannot take while B holds control
        library.num_threads = 1
        in_block.add("B")
    assert library.num_threads == 1  # B's block keeps its limit after B's fit
    in_block.discard("B")  # B's block exits, restoring the 1 it saved
    library.num_threads = 1
    assert shared.outer_limits() == [2] and library.num_threads == 2


def test_a_late_restore_waits_until_the_callers_own_limit_is_let_go(monkeypatch):
    library = HeldElsewhere(2)
    shared = SharedLimit([library])
    with shared.limit(1):
        library.held = True  # another thread's threadpool_limits: its restore will not take
    library.held = False  # it exits, restoring the epoch's 1 it saved
    in_block = []
    monkeypatch.setattr(_threads, "_holds_user_limit", lambda: bool(in_block))
    in_block.append(1)  # this thread's threadpool_limits(1), equal to what was left
    assert shared.outer_limits() == [1] and library.num_threads == 1
    with shared.limit(1):
        assert library.num_threads == 1
    assert library.num_threads == 1  # still inside the block
    in_block.clear()
    assert shared.outer_limits() == [2] and library.num_threads == 2


def test_a_forked_child_lifts_its_parents_running_epochs_limit():
    library = FakeLibrary(2)
    shared = SharedLimit([library])
    epoch = shared.limit(1)
    epoch.__enter__()  # running in the parent when it forks
    shared.forget_epochs()  # in the child
    assert shared.outer_limits() == [2] and library.num_threads == 2
    with shared.limit(1):
        assert library.num_threads == 1
    assert library.num_threads == 2


def test_a_limit_that_cannot_be_set_is_not_counted():
    class Refusing(FakeLibrary):
        def set_num_threads(self, num_threads):
            if num_threads < 2:
                raise OSError("refused")
            super().set_num_threads(num_threads)

    library = Refusing(2)
    shared = SharedLimit([library])
    with pytest.raises(OSError, match="refused"):
        with shared.limit(1):
            pass
    library.num_threads = 3  # changed outside any epoch: read afresh, not the saved 2
    assert shared.outer_limits() == [3]


def test_the_smallest_limit_applies_to_every_library(monkeypatch):
    # NumPy's BLAS limited to one thread, SciPy's (the kernels') not: a
    # threadpool_limits entered before SciPy's was loaded.
    scipy_blas, numpy_blas = FakeLibrary(2), FakeLibrary(1)
    shared = SharedLimit([scipy_blas, numpy_blas])
    monkeypatch.setattr(_threads, "_blas_limit", lambda: shared)
    choice = ThreadChoice("auto", *LARGE, {})
    assert choice.candidates == [1]
    with choice.epoch(1) as (n_parts, used):
        assert (n_parts, used) == (1, 1)
        assert scipy_blas.num_threads == 1 and numpy_blas.num_threads == 1
    with limit_in_force():
        assert scipy_blas.num_threads == 1 and numpy_blas.num_threads == 1
    assert scipy_blas.num_threads == 2 and numpy_blas.num_threads == 1


def test_a_limit_entered_before_the_import_holds_in_fit_and_inference():
    script = textwrap.dedent("""
        import types

        import numpy as np
        from threadpoolctl import threadpool_info, threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            from sksatae import SaturatingAutoEncoder, _autoencoder, _kernels

            seen = []
            def recording(function):
                def call(*args, **kwargs):
                    seen.append(max(library["num_threads"] for library in threadpool_info()
                                    if library["user_api"] == "blas"))
                    return function(*args, **kwargs)
                return call
            _autoencoder.run_in_parts = recording(_autoencoder.run_in_parts)
            # The estimator's calls recorded, not the module's functions replaced: energy's
            # compiled code calls _kernels.encode, which must still be the compiled kernel
            # when energy compiles (it did not when the cache held no energy).
            recorded = types.SimpleNamespace(**vars(_kernels))
            recorded.encode = recording(_kernels.encode)
            recorded.energy = recording(_kernels.energy)
            _autoencoder._kernels = recorded
            X = np.random.default_rng(0).standard_normal((512, 256))
            model = SaturatingAutoEncoder(n_components=128, batch_size=256, max_iter=2,
                                          random_state=0).fit(X)
            model.transform(X)
            model.score_samples(X)
            print(sorted(set(seen)), len(seen))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    threads, calls = result.stdout.split("]")
    assert threads == "[1" and int(calls) >= 4  # epochs, transform, score_samples


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_usable_cores_follow_the_affinity():
    # In a thread of its own: on Linux an affinity set with pid 0 holds for the calling
    # thread only, and joblib reads the calling thread's.
    seen = []

    def restricted():
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        seen.append(_threads._usable_cores())

    thread = threading.Thread(target=restricted)
    thread.start()
    thread.join()
    assert seen == [1]
