"""How many BLAS threads a fit uses.

Each SGD step issues five small matrix products. Waking BLAS worker threads
and waiting for them at every product costs more than a second core gains
unless the products are large, and on a machine whose cores are busy with
other work it costs far more: there a thread that is not scheduled stalls
every product. So ``n_threads="auto"`` runs BLAS on one thread below a work
threshold per product, measured on such a machine (``benchmarks/
bench_training.py``, see ``docs/performance.md``). Neither rule ever raises
the BLAS limit already in force (joblib workers, an enclosing
``threadpool_limits``).
"""

from contextlib import contextmanager, nullcontext

SINGLE_THREAD_FLOPS = 2**30
"""Below this many multiply-adds per matrix product of an SGD step
(``batch_size * n_features * n_components``), ``"auto"`` uses one BLAS thread.

On two shared cores, two threads were slower than one for every size measured,
up to 0.94e9 multiply-adds per product (batch 1024, 3072 features, 300 units:
1.2x slower, and 3x to 6x slower for products of 15 to 120 million).
"""

_controller = None


def _blas_controller():
    # Building a ThreadpoolController scans the loaded libraries (milliseconds);
    # one built after SciPy's BLAS is loaded serves every later fit.
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def auto_thread_count(batch_size, n_features, n_components):
    """1 for steps too small to gain from threads, else None (no change)."""
    if batch_size * n_features * n_components < SINGLE_THREAD_FLOPS:
        return 1
    return None


def resolve_thread_limit(n_threads, batch_size, n_features, n_components):
    """The BLAS thread limit to apply, or None to leave the current one."""
    if n_threads == "auto":
        return auto_thread_count(batch_size, n_features, n_components)
    return n_threads


@contextmanager
def blas_thread_limit(n_threads, batch_size, n_features, n_components):
    """Context in which BLAS uses at most the chosen number of threads."""
    limit = resolve_thread_limit(n_threads, batch_size, n_features, n_components)
    context = nullcontext()
    if limit is not None:
        controller = _blas_controller()
        current = [info["num_threads"] for info in controller.info()]
        if current and limit < min(current):
            context = controller.limit(limits=limit)
    with context:
        yield
