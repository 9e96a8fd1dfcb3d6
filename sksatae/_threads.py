"""How many BLAS threads a fit uses.

Small matrix products run faster on one thread than on two (thread start-up
and synchronisation cost more than the work), so ``n_threads="auto"`` limits
BLAS to one thread below a per-step work threshold. It never raises the
limit already in force (joblib workers, an enclosing ``threadpool_limits``).
"""

from contextlib import contextmanager, nullcontext

SINGLE_THREAD_FLOPS = 4_000_000
"""Below this many multiply-adds per GEMM of an SGD step, use one thread."""


def auto_thread_count(batch_size, n_features, n_components):
    """1 for steps too small to gain from threads, else None (no change)."""
    if batch_size * n_features * n_components < SINGLE_THREAD_FLOPS:
        return 1
    return None


@contextmanager
def blas_thread_limit(n_threads, batch_size, n_features, n_components):
    """Context in which BLAS uses at most the chosen number of threads."""
    limit = auto_thread_count(batch_size, n_features, n_components) if n_threads == "auto" else n_threads
    if limit is None:
        context = nullcontext()
    else:
        from threadpoolctl import threadpool_limits

        context = threadpool_limits(limits=limit, user_api="blas")
    with context:
        yield
