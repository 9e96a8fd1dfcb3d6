"""Determinism, thread counts, concurrent inference, memory of fit, read-only
installs and the uncompiled (``NUMBA_DISABLE_JIT=1``) paths.

On-disk caching across processes, the cache switch and the fallback when numba
finds no cache location are in ``test_caching.py``; here the same fallback is
exercised on a real read-only copy of the package.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import sksatae
from sksatae import SaturatingAutoEncoder
from sksatae._blas import gemm_address

PACKAGE_DIR = Path(sksatae.__file__).parent

FIT_AND_DIGEST = """
import hashlib, json, sys
import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
import sksatae
from sksatae import SaturatingAutoEncoder

X = StandardScaler().fit_transform(load_digits().data)
digests = {"package": sksatae.__file__}
for dtype in ("float64", "float32"):
    Xd = X.astype(dtype)
    model = SaturatingAutoEncoder(n_components=12, alpha=0.2, max_iter=2, random_state=0).fit(Xd)
    for name, array in [("components", model.components_), ("transform", model.transform(Xd)),
                        ("energy", model.energy(Xd)), ("loss_curve", model.loss_curve_)]:
        digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
        digests[f"{dtype} {name}"] = digest
print(json.dumps(digests))
"""


def run_python(code, cwd, env):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, check=True, timeout=300)


def environment(pythonpath, **changes):
    """This environment with ``pythonpath`` first on the path; ``None`` unsets a variable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(pythonpath), *filter(None, [os.environ.get("PYTHONPATH")])])}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(load_digits().data)


# ------------------------------------------------------------ determinism

def test_same_random_state_is_bit_identical_across_processes(tmp_path):
    env = environment(PACKAGE_DIR.parent, NUMBA_CACHE_DIR=tmp_path / "cache")
    runs = [json.loads(run_python(FIT_AND_DIGEST, tmp_path, env).stdout) for _ in range(2)]
    assert runs[0]["package"] == str(PACKAGE_DIR / "__init__.py")
    assert runs[0] == runs[1]
    assert len(runs[0]) == 9


def test_same_random_state_is_bit_identical_within_a_process(digits):
    def fit_outputs():
        model = SaturatingAutoEncoder(n_components=12, alpha=0.2, max_iter=2,
                                      random_state=0).fit(digits)
        return model.components_, model.transform(digits), model.energy(digits)

    for first, second in zip(fit_outputs(), fit_outputs()):
        np.testing.assert_array_equal(first, second)


def test_same_sequence_of_partial_fits_is_bit_identical(digits):
    def trained():
        model = SaturatingAutoEncoder(n_components=12, alpha=0.2, random_state=0)
        for block in np.array_split(digits, 3):
            model.partial_fit(block)
        return model.components_, model.transform(digits)

    for first, second in zip(trained(), trained()):
        np.testing.assert_array_equal(first, second)


# Products large enough for OpenBLAS to split them between threads, below
# SINGLE_THREAD_FLOPS, which it then sums in another order (OpenBLAS 0.3.30 and
# 0.3.31), so that a fit on BLAS's two threads differs from one with one in its
# last bits: in float64 at 256 features, 64 units and batch 60; in float32 only
# where the products' sums are long, as at 784 features (64 units, batch 16).
THREADED = dict(n_components=64, alpha=0.1, alpha_step=None, max_iter=3, random_state=0)
SPLIT_SUMS = {np.float64: ((1500, 256), 60), np.float32: ((600, 784), 16)}


def _threaded_fit(X, limit, n_threads):
    batch_size = SPLIT_SUMS[X.dtype.type][1]
    with threadpool_limits(limits=limit, user_api="blas"):
        in_force = {info["num_threads"] for info in threadpool_info()
                    if info["user_api"] == "blas"}
        assert in_force == {min(limit, os.cpu_count() or 1)}
        model = SaturatingAutoEncoder(n_threads=n_threads, batch_size=batch_size, **THREADED)
        model.fit(X).partial_fit(X)
    return model, (model.components_, model.transform(X), model.energy(X))


def _split_sums_data(dtype):
    return np.random.default_rng(0).standard_normal(SPLIT_SUMS[dtype][0]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_auto_threads_give_the_same_model_under_any_blas_limit(dtype):
    X = _split_sums_data(dtype)
    _, expected = _threaded_fit(X, 1, 1)
    for limit in (2, 2):  # twice: no run-to-run choice either
        _, got = _threaded_fit(X, limit, "auto")
        for first, second in zip(expected, got):
            np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_timed_threads_run_both_counts_and_agree_to_rounding(dtype):
    X = _split_sums_data(dtype)
    _, expected = _threaded_fit(X, 1, 1)
    model, got = _threaded_fit(X, 2, "timed")
    if (os.cpu_count() or 1) > 1:  # epochs ran on each count
        assert {"1", "2"} <= set(model._thread_timings)
    # In float32 a change in the last bits can tip a unit of one sample over the shrink's
    # threshold, and SGD carries that on: with OpenBLAS's Haswell kernels the codes then
    # differ by up to 2.5e-4 (as after changing alpha by one part in 1e7), the weights by
    # 5e-8. One epoch fewer moves the weights by 1.7e-3 and the codes by 3e-2.
    tolerance = 1e-3 if dtype == np.float32 else 1e-10
    for first, second in zip(expected, got):
        np.testing.assert_allclose(first, second, rtol=tolerance, atol=tolerance)


def test_blas_work_buffer_is_warmed_before_the_first_product_of_each_thread(monkeypatch):
    calls = []
    monkeypatch.setattr(sksatae._blas, "_fortran_gemm_through_ctypes",
                        lambda *args: calls.append(args[0]))
    X = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    fitted = SaturatingAutoEncoder(3, alpha=0.1, alpha_step=None, max_iter=1,
                                   random_state=0).fit(X)

    def in_a_new_thread(action):
        calls.clear()
        thread = threading.Thread(target=action)
        thread.start()
        thread.join()
        return list(calls)

    address32, address64 = gemm_address(np.float32), gemm_address(np.float64)

    def fit_then_infer():
        model = SaturatingAutoEncoder(3, alpha=0.1, alpha_step=None, max_iter=2, batch_size=8,
                                      random_state=0).fit(X)
        model.transform(X), model.score_samples(X), model.transform(X.astype(np.float64))

    assert in_a_new_thread(fit_then_infer) == [address32, address64]
    # Plain SGD calls no BLAS: no warm-up until the first product.
    assert in_a_new_thread(lambda: SaturatingAutoEncoder(
        3, alpha=0.1, alpha_step=None, max_iter=2, batch_size=1, random_state=0).fit(X)) == []
    assert in_a_new_thread(lambda: fitted.score_samples(X)) == [address32]
    assert in_a_new_thread(lambda: fitted.energy(X.astype(np.float64))) == [address64]


def _cpu_of_other_threads(action, settle=0.3):
    """CPU seconds spent by threads other than this one during ``action()`` and
    the ``settle`` seconds after it."""
    all_threads, this_thread = time.process_time(), time.thread_time()
    action()
    time.sleep(settle)
    return (time.process_time() - all_threads) - (time.thread_time() - this_thread)


def test_training_leaves_numpy_blas_threads_idle():
    # OpenBLAS's worker threads spin for about 0.1 s after each threaded call. NumPy's
    # BLAS is not the one the kernels call, so a NumPy product around an epoch puts a
    # spinning thread on the core that the epoch's own products need (two threads
    # then gained nothing at 3072 features, batches of 16 and 128).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 3072))
    # No BLAS in the epochs themselves, and one thread: an epoch in parts would count
    # its worker's share (about 0.01 s here, more when a busy machine makes it wait).
    model = SaturatingAutoEncoder(300, batch_size=1, alpha=0.1, alpha_step=None, max_iter=1,
                                  n_threads=1, random_state=0).fit(X)
    matrix, vector = model.encoder_weights_, X[0]
    with threadpool_limits(limits=2, user_api="blas"):  # a worker to wake, on any machine
        for _ in range(5):  # earlier tests' BLAS threads come to rest
            if _cpu_of_other_threads(lambda: None) < 0.01:
                break
        numpy_product = _cpu_of_other_threads(lambda: [matrix @ vector for _ in range(3)])
        training = _cpu_of_other_threads(lambda: model.partial_fit(X).fit(X))
    assert numpy_product > 0.03, numpy_product  # the measurement sees a woken worker
    assert training < 0.3 * numpy_product, (training, numpy_product)


# ------------------------------------------------------------ concurrency

def test_concurrent_inference_matches_serial_calls(digits):
    model = SaturatingAutoEncoder(n_components=24, alpha=0.2, max_iter=2,
                                  random_state=0).fit(digits)
    inputs = [np.tile(digits, (3, 1)).astype(dtype) for dtype in (np.float64, np.float32)]
    serial = [(model.transform(X), model.score_samples(X)) for X in inputs]
    n_threads, repeats = 8, 5
    start = threading.Barrier(n_threads)
    results, errors = [None] * n_threads, []

    def work(index):
        try:
            X = inputs[index % 2]
            start.wait()
            results[index] = [(model.transform(X), model.score_samples(X))
                              for _ in range(repeats)]
        except Exception as error:  # reported below: an exception in a thread is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for index, calls in enumerate(results):
        codes, scores = serial[index % 2]
        for concurrent_codes, concurrent_scores in calls:
            np.testing.assert_array_equal(concurrent_codes, codes)
            np.testing.assert_array_equal(concurrent_scores, scores)


def _blas_thread_limits():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_concurrent_fits_leave_the_blas_thread_limits_as_they_were():
    # Each epoch below 2**20 multiply-adds per product runs under a one-thread limit
    # (n_threads="auto"). Fits in threads, as in a grid search on a threading backend,
    # must not leave every BLAS in the process at one thread after they end, as epochs
    # that each restored the limits they saw on entry would (on a machine where more
    # are in force).
    X = np.random.default_rng(0).standard_normal((200, 20))
    before = _blas_thread_limits()

    def work():
        for _ in range(10):
            SaturatingAutoEncoder(4, max_iter=3, random_state=0).fit(X)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _blas_thread_limits() == before


def test_a_callers_limit_held_over_an_epoch_in_parts_is_lifted_by_the_next_fit():
    # A threadpool_limits entered in another thread while an epoch in parts holds BLAS at
    # one thread saves that 1 as the limit to restore, and keeps control of OpenBLAS until
    # it exits (threadpoolctl 3.8): the epoch's own restore did not take, and the process
    # stayed at one thread for good. Run apart: this process's limits must not be touched.
    code = textwrap.dedent("""
        import json, threading, numpy as np
        from threadpoolctl import threadpool_info, threadpool_limits
        from sksatae import SaturatingAutoEncoder, _autoencoder

        def limits():
            return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

        X = np.random.default_rng(0).standard_normal((512, 256))
        model = SaturatingAutoEncoder(64, batch_size=128, n_threads=2, random_state=0)
        model.partial_fit(X)  # 2**21 multiply-adds per product: epochs in two parts
        before = limits()
        real, entered, go = _autoencoder.run_in_parts, threading.Event(), threading.Event()

        def gated(*args, **kwargs):  # the epoch's limit is on: wait for the caller's
            entered.set()
            go.wait()
            return real(*args, **kwargs)

        _autoencoder.run_in_parts = gated
        thread = threading.Thread(target=model.partial_fit, args=(X,))
        thread.start()
        entered.wait()
        during = limits()
        with threadpool_limits(limits=1):
            go.set()
            thread.join()
        left = limits()
        # Next, a fit in this thread's own threadpool_limits(1): the late restore must
        # wait until the block is let go (it raised the limit inside it, and the block
        # then put back the 1 it saved, for good), and the fit keep to one thread.
        parts = []
        _autoencoder.run_in_parts = lambda kernel, arguments, n_parts, *rest: (
            parts.append(n_parts) or real(kernel, arguments, n_parts, *rest))
        with threadpool_limits(limits=1):
            SaturatingAutoEncoder(64, batch_size=128, max_iter=2, random_state=0).fit(X)
            in_block = limits()
        _autoencoder.run_in_parts = real
        SaturatingAutoEncoder(2, max_iter=1).fit(X[:20, :3])
        print(json.dumps([before, during, left, sorted(set(parts)), in_block, limits()]))
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    before, during, left, parts, in_block, after = json.loads(done.stdout)
    assert max(before) == 2 and max(during) == 1  # the scenario: an epoch in parts
    assert max(left) == 1  # what the caller's block restored on exit
    assert parts == [1] and max(in_block) == 1
    assert after == before


def test_an_epochs_limit_applies_in_any_thread():
    # threadpoolctl >= 3.8 ignores a thread's change to OpenBLAS's limit while another
    # live thread holds the right to change it: an epoch in the main thread must not
    # keep that right, or the epochs of a fit in another thread run unlimited.
    from sksatae._threads import _blas_limit

    shared, before = _blas_limit(), _blas_thread_limits()
    with shared.limit(1):
        assert max(_blas_thread_limits()) == 1
    seen = []
    thread = threading.Thread(target=lambda: seen.append(_limited_to_one(shared)))
    thread.start()
    thread.join()
    assert seen == [[1] * len(before)]
    assert _blas_thread_limits() == before


def _limited_to_one(shared):
    with shared.limit(1):
        return _blas_thread_limits()


# ------------------------------------------------------------ interruption

def test_interruption_in_the_first_epoch_is_raised_and_changes_nothing(digits, monkeypatch):
    from sksatae import _kernels

    def interrupted_epoch(*args):
        raise KeyboardInterrupt

    fresh = SaturatingAutoEncoder(n_components=8, max_iter=1, random_state=0)
    fitted = SaturatingAutoEncoder(n_components=8, max_iter=1, random_state=0).fit(digits)
    before = {key: np.copy(value) for key, value in vars(fitted).items() if key.endswith("_")}
    monkeypatch.setattr(_kernels, "sgd_epoch", interrupted_epoch)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(digits)
    assert not hasattr(fresh, "components_")
    with pytest.raises(KeyboardInterrupt):
        fitted.partial_fit(digits)
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(fitted, key), value)


# ------------------------------------------------------------ memory

@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_does_not_copy_the_data(shuffle):
    rng = np.random.default_rng(0)
    X = np.empty((50_000, 100))  # 40 MB, filled in blocks to avoid a temporary of that size
    for start in range(0, len(X), 5000):
        X[start:start + 5000] = rng.standard_normal((5000, 100))
    X.flags.writeable = False  # fit only reads X
    model = SaturatingAutoEncoder(n_components=8, alpha=0.1, alpha_step=None, max_iter=1,
                                  batch_size=256, shuffle=shuffle, random_state=0)
    model.fit(X[:500])  # compile first; compilation allocates too
    tracemalloc.start()
    try:
        model.fit(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # What fit allocates beyond the model: the visiting order (8 bytes per sample) and, when
    # sizing the step, a block of 4096 centred rows and its squares (6.7 MiB here). A copy of
    # X would be 38 MiB, a float32 copy 19 MiB.
    assert peak < 0.25 * X.nbytes, f"peak {peak / 2**20:.1f} MiB, X {X.nbytes / 2**20:.0f} MiB"


# ------------------------------------------------------------ one-row input

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_accepts_a_one_row_array_whatever_its_row_stride(dtype, compiled_gemm):
    rng = np.random.default_rng(0)
    row = rng.standard_normal(5).astype(dtype)
    # Contiguous, as numpy sees it, with a row stride of one element (as from a one-row frame).
    a = np.lib.stride_tricks.as_strided(row, shape=(1, 5), strides=(row.itemsize,) * 2)
    assert a.flags.c_contiguous
    b = rng.standard_normal((3, 5)).astype(dtype)
    c = np.full((1, 3), np.nan, dtype)
    compiled_gemm(gemm_address(dtype), 1.0, a, False, b, True, 0.0, c)
    np.testing.assert_allclose(c, row[None] @ b.T, rtol=1e-5)


def test_one_row_frames_transform_like_arrays(digits):
    model = SaturatingAutoEncoder(n_components=8, max_iter=1, random_state=0).fit(digits)
    frame = pd.DataFrame(digits[:1])
    np.testing.assert_array_equal(model.transform(frame), model.transform(digits[:1]))
    np.testing.assert_array_equal(model.energy(frame), model.energy(digits[:1]))


# ------------------------------------------------------------ read-only install

FIT_IN_INSTALL = """
import json, warnings
import numpy as np
import sksatae
from sksatae import SaturatingAutoEncoder
X = np.random.default_rng(0).standard_normal((60, 5))
model = SaturatingAutoEncoder(n_components=3, alpha=0.1, max_iter=2, random_state=0).fit(X)
print(json.dumps({"package": sksatae.__file__, "energy": model.energy(X).tolist()}))
"""


def blocked_path(folder, name):
    """A path that no user can create a folder at, root included: its parent is a file.
    (Root ignores permission bits, so read-only folders alone do not stop it.)"""
    blocker = folder / f"{name}-is-a-file"
    blocker.write_text("")
    return blocker / name


def make_read_only(root):
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture
def read_only_install(tmp_path):
    """A copy of the package in a read-only folder, with no writable place for a cache."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE_DIR, site / "sksatae", ignore=shutil.ignore_patterns("__pycache__"))
    # numba's cache next to the sources: a file where its folder would go, for root's sake.
    (site / "sksatae" / "__pycache__").write_text("")
    home = tmp_path / "home"
    home.mkdir()
    make_read_only(site)
    make_read_only(home)
    no_cache_anywhere = dict(NUMBA_CACHE_DIR=None, SKSATAE_NUMBA_CACHE=None,
                             HOME=blocked_path(tmp_path, "home"),
                             XDG_CACHE_HOME=blocked_path(tmp_path, "cache"))
    yield site, no_cache_anywhere
    for path in [site, home, *site.rglob("*"), *home.rglob("*")]:
        if path.is_dir():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def written_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def check_install_run(done, site, expected_energy):
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["package"] == str(site / "sksatae" / "__init__.py")
    np.testing.assert_allclose(result["energy"], expected_energy, rtol=1e-12)


@pytest.fixture(scope="module")
def expected_energy():
    X = np.random.default_rng(0).standard_normal((60, 5))
    model = SaturatingAutoEncoder(n_components=3, alpha=0.1, max_iter=2, random_state=0).fit(X)
    return model.energy(X)


def test_read_only_install_caches_in_a_writable_numba_cache_dir(read_only_install, tmp_path,
                                                               expected_energy):
    site, no_cache_anywhere = read_only_install
    before = written_files(site)
    cache = tmp_path / "numba-cache"
    env = environment(site, **{**no_cache_anywhere, "NUMBA_CACHE_DIR": cache})
    done = run_python(FIT_IN_INSTALL, tmp_path, env)
    check_install_run(done, site, expected_energy)
    assert "Warning" not in done.stderr, done.stderr
    assert any(name.endswith(".nbi") for name in written_files(cache))
    assert written_files(site) == before


def test_read_only_install_without_any_cache_location_compiles_with_one_warning(
        read_only_install, tmp_path, expected_energy):
    site, no_cache_anywhere = read_only_install
    before = written_files(site)
    done = run_python(FIT_IN_INSTALL, tmp_path, environment(site, **no_cache_anywhere))
    check_install_run(done, site, expected_energy)
    assert done.stderr.count("RuntimeWarning") == 1, done.stderr
    assert done.stderr.count("sksatae: numba cannot cache compiled kernels") == 1
    assert written_files(site) == before


def test_read_only_install_with_caching_switched_off_is_silent(read_only_install, tmp_path,
                                                               expected_energy):
    site, no_cache_anywhere = read_only_install
    before = written_files(site)
    env = environment(site, **{**no_cache_anywhere, "SKSATAE_NUMBA_CACHE": "0"})
    done = run_python(FIT_IN_INSTALL, tmp_path, env)
    check_install_run(done, site, expected_energy)
    assert "Warning" not in done.stderr, done.stderr
    assert written_files(site) == before


# ------------------------------------------------------------ uncompiled kernels

def test_uncompiled_kernels_fit_and_infer_like_the_compiled_ones(tmp_path, expected_energy):
    done = run_python(FIT_IN_INSTALL, tmp_path,
                      environment(PACKAGE_DIR.parent, NUMBA_DISABLE_JIT=1))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["energy"], expected_energy, rtol=1e-9)
