"""Prefetch of the rows an epoch gathers next: it compiles to prefetch
instructions, and asks only for rows of the order it is given."""

import platform

import numba
import numpy as np
import pytest

from sksatae import SaturatingAutoEncoder, _kernels
from sksatae._prefetch import PREFETCH_BYTES, prefetch_rows, rows_within_budget

_INSTRUCTION = {"x86_64": "prefetcht0", "amd64": "prefetcht0", "aarch64": "prfm",
                "arm64": "prfm"}


@numba.njit
def _ask(X, order, first, end):
    prefetch_rows(X, order, first, end)


def test_prefetch_compiles_to_prefetch_instructions():
    X, order = np.zeros((8, 144)), np.arange(8)
    _ask(X, order, 0, 4)
    signature = _ask.signatures[0]
    assert "@llvm.prefetch" in _ask.inspect_llvm(signature)
    instruction = _INSTRUCTION.get(platform.machine().lower())
    if instruction is not None:
        assert instruction in _ask.inspect_asm(signature)


@pytest.mark.parametrize("shape, dtype, first, end, expected", [
    ((100, 144), np.float64, 0, 16, 16),  # a minibatch of 16 rows of 1,152 bytes
    ((100, 144), np.float64, 0, 50, 28),  # 32 KiB hold 28 of them
    ((100, 144), np.float32, 10, 80, 66),  # 56 of 576 bytes
    ((100, 144), np.float64, 95, 111, 100),  # the order ends first
    ((100, 144), np.float64, 100, 116, 100),  # the order has ended: nothing
    ((4, 8192), np.float64, 0, 4, 1),  # a row over the budget: still one
    ((4, 8192), np.float64, 2, 3, 3),
])
def test_rows_within_budget(shape, dtype, first, end, expected):
    assert PREFETCH_BYTES == 32 * 1024  # as the expected counts assume
    X, order = np.zeros(shape, dtype), np.arange(shape[0])
    assert rows_within_budget(X, order, first, end) == expected


@pytest.mark.parametrize("batch_size, kernel", [(1, "sgd_epoch_single_sample"),
                                                (16, "sgd_epoch")])
def test_epochs_ask_for_their_next_rows(batch_size, kernel):
    # Code loaded from numba's cache cannot be inspected: the kernel is compiled
    # again here, for the signature a fit used.
    X = np.random.default_rng(0).standard_normal((40, 6))
    SaturatingAutoEncoder(4, batch_size=batch_size, max_iter=1, alpha_step=None,
                          n_threads=1).fit(X)
    dispatcher = getattr(_kernels, kernel)
    fresh = numba.njit(nogil=True)(dispatcher.py_func)
    signature = dispatcher.signatures[0]
    fresh.compile(signature)
    assert "@llvm.prefetch" in fresh.inspect_llvm(signature)
