"""Memory that partial_fit keeps between calls (``sksatae._scratch``): reused
only where nothing else can see it, and never a cause of different results."""

import copy
import gc
import pickle
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sksatae import DivergenceError, SaturatingAutoEncoder, _autoencoder, _kernels, _scratch
from sksatae._parts import aligned_copy


def thread_scratch():
    return _scratch._THREAD_LOCAL.scratch


def data(n_samples, n_features, seed=0):
    return np.random.default_rng(seed).standard_normal((n_samples, n_features))


def poison(scratch):
    """Fill every kept buffer and spare with garbage, as memory that is not
    fresh from the operating system holds."""
    def fill(item):
        if isinstance(item, np.ndarray):
            item[...] = np.nan if item.dtype.kind == "f" else -7
        else:
            for part in item:
                fill(part)
    fill(list(scratch._workspaces.values()))
    fill(scratch._spares)


# (model parameters, rows per call): batch 1 (its own kernel), batches with a shorter
# last one, untied and tied weights, float32, and epochs in two parts.
CASES = {
    "batch 1": (dict(n_components=12, batch_size=1), 40, np.float64),
    "batch 16, a shorter last batch": (dict(n_components=12, batch_size=16), 70, np.float64),
    "tied": (dict(n_components=12, batch_size=16, activation="satlinear"), 64,
             np.float64),
    "float32": (dict(n_components=12, batch_size=16), 64, np.float32),
    "two parts": (dict(n_components=64, batch_size=128, n_threads=2), 300, np.float64),
    "batch 1, two parts": (dict(n_components=300, batch_size=1, n_threads=2), 30, np.float64),
}


@pytest.mark.parametrize("case", CASES)
def test_reused_memory_gives_the_results_of_fresh_memory(case, monkeypatch):
    params, rows, dtype = CASES[case]
    n_features = 512 if params["n_components"] == 300 else 256 if params.get("n_threads") else 9
    chunks = [data(rows, n_features, seed).astype(dtype) for seed in range(5)]

    def trained(between_calls):
        model = SaturatingAutoEncoder(**params, alpha_step=None, random_state=0)
        with threadpool_limits(limits=2, user_api="blas"):
            for chunk in chunks:
                model.partial_fit(chunk)
                between_calls()
        return model

    kept = trained(lambda: poison(thread_scratch()))
    scratch = thread_scratch()
    if params.get("n_threads") == 2:
        assert 2 in scratch._workspaces  # the case: epochs in parts
    assert scratch._workspaces and scratch._spares  # the case: memory was kept
    monkeypatch.setattr(_autoencoder, "kept_for", lambda model: _scratch.Scratch())
    fresh = trained(lambda: None)
    for name in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(fresh, name), err_msg=name)
    np.testing.assert_array_equal(kept.loss_curve_, fresh.loss_curve_)


def test_partial_fit_reuses_its_buffers_and_the_weights_it_replaced(monkeypatch):
    allocations = []
    real = _kernels.epoch_workspace
    monkeypatch.setattr(_kernels, "epoch_workspace",
                        lambda *args: allocations.append(args) or real(*args))
    X = data(50, 8)
    model = SaturatingAutoEncoder(6, batch_size=16, tied_weights=False, random_state=0)
    addresses = []
    for _ in range(5):
        model.partial_fit(X)
        addresses.append((model.components_.ctypes.data, model.encoder_weights_.ctypes.data))
    assert len(allocations) == 1
    # From the third call on, each call's weights are in the memory of those it replaced
    # two calls before: the previous call's are the model's until the call ends.
    assert addresses[2] == addresses[0] and addresses[3] == addresses[1]
    assert addresses[4] == addresses[2] and addresses[1] != addresses[0]
    model.partial_fit(data(50, 8)[:40])  # another last batch: buffers of its own shape
    assert len(allocations) == 2


HOLDERS = {
    "the array": lambda array, model: array,
    "a row": lambda array, model: array[1],
    "a transpose": lambda array, model: array.T,
    "a memoryview": lambda array, model: memoryview(array),
    "a shallow copy of the model": lambda array, model: copy.copy(model),
}


@pytest.mark.parametrize("holder", HOLDERS)
@pytest.mark.parametrize("name", ["components_", "encoder_weights_"])
def test_weights_a_caller_still_holds_are_never_overwritten(holder, name):
    X = data(50, 8)
    model = SaturatingAutoEncoder(6, batch_size=16, tied_weights=False, random_state=0)
    model.partial_fit(X)
    array = getattr(model, name)
    held, values = HOLDERS[holder](array, model), array.copy()
    address = array.ctypes.data
    del array
    for _ in range(4):
        model.partial_fit(X)
        assert getattr(model, name).ctypes.data != address
    if isinstance(held, SaturatingAutoEncoder):
        held = getattr(held, name)
    np.testing.assert_array_equal(
        np.asarray(held), (values.T if holder == "a transpose" else
                           values[1] if holder == "a row" else values))


def test_arrays_that_are_not_ours_to_write_are_not_reused():
    scratch = _scratch.Scratch()
    source = np.arange(12.0).reshape(3, 4)
    read_only = aligned_copy(source)
    read_only.flags.writeable = False
    unaligned = np.empty(13)[1:].reshape(3, 4)
    if unaligned.ctypes.data % _scratch.CACHE_LINE == 0:
        unaligned = np.empty(14)[2:].reshape(3, 4)
    from_bytes = np.frombuffer(bytearray(aligned_copy(source).tobytes()), np.float64)
    for array in (read_only, unaligned, from_bytes.reshape(3, 4)):
        scratch.retire(array)
        address = array.ctypes.data
        del array
        copied = scratch.copy(source, np.float64)
        assert copied.ctypes.data != address
        np.testing.assert_array_equal(copied, source)
    spare = aligned_copy(source)
    scratch.retire(spare)
    address = spare.ctypes.data
    del spare
    assert scratch.copy(source + 1, np.float64).ctypes.data == address  # the control


def test_kept_memory_goes_with_the_model_and_is_handed_to_the_next():
    X = data(50, 8)
    first = SaturatingAutoEncoder(6, batch_size=16, random_state=0).partial_fit(X)
    first.partial_fit(X)
    scratch = thread_scratch()
    assert scratch._workspaces and scratch._spares
    second = SaturatingAutoEncoder(6, batch_size=16, random_state=0).partial_fit(X)
    assert thread_scratch() is scratch and scratch._workspaces
    del first
    gc.collect()
    assert scratch._workspaces  # held for the second model now
    del second
    gc.collect()
    assert not scratch._workspaces and not scratch._spares


def test_fit_keeps_nothing_and_models_carry_none_of_it():
    found = []

    def fit_in_a_new_thread():
        model = SaturatingAutoEncoder(6, batch_size=16, max_iter=2, random_state=0)
        model.fit(data(50, 8))
        found.append(getattr(_scratch._THREAD_LOCAL, "scratch", None))
        model.partial_fit(data(50, 8))
        found.append(getattr(_scratch._THREAD_LOCAL, "scratch", None))
        found.append(model)

    thread = threading.Thread(target=fit_in_a_new_thread)
    thread.start()
    thread.join()
    after_fit, after_partial_fit, model = found
    assert after_fit is None and after_partial_fit is not None
    for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert not any(isinstance(value, _scratch.Scratch) for value in vars(copied).values())
    assert not any(isinstance(value, _scratch.Scratch) for value in vars(model).values())


def test_a_failed_call_leaves_the_next_as_if_it_had_not_run():
    X = data(60, 8)
    huge = 1e6 * data(60, 8, seed=1)

    def model():
        return SaturatingAutoEncoder(6, batch_size=16, learning_rate=0.05, random_state=0)

    failed, clean = model().partial_fit(X), model().partial_fit(X)
    with pytest.raises(DivergenceError):
        failed.partial_fit(huge)
    failed.partial_fit(X)
    clean.partial_fit(X)
    for name in ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_"):
        np.testing.assert_array_equal(getattr(failed, name), getattr(clean, name))


def test_threads_keep_their_own_memory():
    chunks = [data(64, 9, seed) for seed in range(4)]

    def train(model, out):
        for chunk in chunks:
            model.partial_fit(chunk)
        out.append(thread_scratch())

    models = [SaturatingAutoEncoder(8, batch_size=16, random_state=seed) for seed in range(4)]
    scratches = []
    threads = [threading.Thread(target=train, args=(m, scratches)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(s) for s in scratches}) == 4
    for seed, model in enumerate(models):
        alone = SaturatingAutoEncoder(8, batch_size=16, random_state=seed)
        train(alone, [])
        np.testing.assert_array_equal(model.components_, alone.components_)


def test_buffers_are_kept_for_two_counts_of_parts_at_most():
    scratch, allocated = _scratch.Scratch(), []

    def workspace(key, n_parts):
        return scratch.workspace(key, n_parts, lambda: allocated.append(n_parts) or [n_parts])

    first = [workspace("a", n) for n in (1, 2, 1, 2)]
    assert allocated == [1, 2] and first[0] is first[2] and first[1] is first[3]
    workspace("a", 3)
    assert sorted(scratch._workspaces) == [2, 3]
    assert workspace("a", 2) is first[1] and allocated == [1, 2, 3]
    workspace("b", 2)  # buffers of other shapes
    assert allocated == [1, 2, 3, 2] and list(scratch._workspaces) == [2]
