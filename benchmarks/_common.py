"""Helpers shared by the benchmark scripts.

Import this module first: ``scrub_blas_environment()`` must run before NumPy
is imported, because OpenBLAS reads its tuning variables when it is loaded.
"""

import datetime
import os
import platform
import sys
import time

BLAS_TUNING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
"""OpenBLAS overrides that would make the numbers describe another machine."""


def scrub_blas_environment():
    """Re-execute this script without the OpenBLAS overrides, if any is set."""
    if "numpy" in sys.modules:
        raise RuntimeError("scrub_blas_environment() must run before numpy is imported")
    if any(name in os.environ for name in BLAS_TUNING_VARIABLES):
        environment = {k: v for k, v in os.environ.items() if k not in BLAS_TUNING_VARIABLES}
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)


def cpu_model():
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_report(extra_modules=()):
    """Date, machine, library versions and the BLAS thread pools, as a dict."""
    import numba
    import numpy
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import sksatae

    versions = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "scikit-learn": sklearn.__version__,
        "sksatae": sksatae.__version__,
    }
    for name in extra_modules:
        try:
            module = __import__(name)
            versions[name] = module.__version__
        except ImportError:
            versions[name] = "not installed"
    pools = [
        {key: info.get(key) for key in
         ("user_api", "internal_api", "prefix", "version", "threading_layer", "architecture",
          "num_threads", "filepath")}
        for info in threadpool_info()
    ]
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions,
        "threadpools": pools,
    }


def print_environment(report, file=sys.stdout):
    """Print ``environment_report()`` as a short markdown list."""
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    print(f"- date: {report['date']}", file=file)
    print(f"- CPU: {report['cpu']} ({report['logical_cpus']} logical CPUs), "
          f"load average at start {tuple(round(x, 2) for x in report['load_average'] or ())}",
          file=file)
    print(f"- versions: {versions}", file=file)
    for pool in report["threadpools"]:
        library = os.path.basename(pool["filepath"] or "")
        print(f"- {pool['user_api']}: {pool['internal_api']} {pool['version']} "
              f"({library}, threading layer {pool.get('threading_layer')}, "
              f"architecture {pool.get('architecture')}, {pool['num_threads']} threads)",
              file=file)


def measure(function):
    """Run ``function()`` once; return ``(wall_seconds, cpu_seconds)``.

    CPU time is the whole process's, so on a machine shared with other jobs it
    measures the work of a single-threaded run without the time spent waiting
    for a core.
    """
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    function()
    return time.perf_counter() - wall_start, time.process_time() - cpu_start


_EVICTION_BUFFER = []


def largest_cache_bytes(default=32 * 2**20):
    """Size of the CPU's last-level cache, from sysfs where Linux gives it."""
    sizes = []
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(root):
            try:
                with open(os.path.join(root, entry, "size")) as size:
                    text = size.read().strip()
            except OSError:
                continue
            units = {"K": 2**10, "M": 2**20, "G": 2**30}
            sizes.append(int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text))
    except (OSError, ValueError):
        pass
    return max(sizes, default=default)


def evict_caches():
    """Read a buffer of four times the last-level cache, so that what a method
    reads next comes from memory, whichever method ran before it."""
    import numpy as np

    if not _EVICTION_BUFFER:
        _EVICTION_BUFFER.append(np.ones(4 * largest_cache_bytes() // 8))
    return float(_EVICTION_BUFFER[0].sum())


def settle_other_threads(timeout=1.0, interval=0.02):
    """Wait, at most ``timeout`` seconds, until the process's other threads use no CPU.

    OpenBLAS's workers spin for a while after a threaded product. Counted in
    the process's CPU time of a single-threaded run that follows, they made
    the first method timed after a two-thread block look up to twice as slow
    (``bench_training.py --threads 1 2``, 144 features, batch 128). In a
    two-thread run that follows, they take a core from it: ours, timed right
    after the floor's two-thread products, ran at 1.58 and 1.82 of the floor
    (medians, ``--shapes 144:100 --batch-sizes 1024 --threads 2``, float32),
    where the same rows after the one-thread block, which settles first,
    gave 1.22 and 1.36. Returns whether they came to rest.
    """
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        others = time.process_time() - time.thread_time()
        time.sleep(interval)
        if time.process_time() - time.thread_time() - others < 0.1 * interval:
            return True
    return False


def write_json(path, environment, results):
    """Write the raw results of a benchmark next to its environment report."""
    import json

    with open(path, "w") as out:
        json.dump({"environment": environment, "results": results}, out, indent=1)
    print(f"\nraw results written to {path}")


def markdown_table(header, rows):
    """Lines of a markdown table; cells are converted with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def mkl_gemm_addresses():
    """Addresses of MKL's Fortran ``sgemm``/``dgemm`` (32-bit integers), or None."""
    import ctypes
    import glob

    import numpy as np

    candidates = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    if not candidates:
        return None
    library = ctypes.CDLL(candidates[0])
    library.MKL_Set_Num_Threads(1)
    return {np.dtype(np.float32): ctypes.cast(library.sgemm, ctypes.c_void_p).value,
            np.dtype(np.float64): ctypes.cast(library.dgemm, ctypes.c_void_p).value}


SAMPLES_PER_PROJECTION = 10
"""The estimator's default: the decoder is re-projected every 10 samples."""


def updates_per_projection(batch_size):
    """Updates between re-projections, as the estimator counts them."""
    return max(1, round(SAMPLES_PER_PROJECTION / batch_size))


def compiled_gemm_floor(layout="units", required=False):
    """A compiled loop of the five GEMMs of one SGD step per minibatch, and nothing else.

    ``layout="units"`` makes the products of the estimator's kernel
    (``sksatae._kernels.sgd_epoch``) in its layout: per-unit buffers units by
    samples (one row for a single sample), the same BLAS routine through the
    same entry point. The kernel's first product also adds to the encoder's
    preloaded bias (``beta = 1``); here it overwrites (``beta = 0``), as the
    five products alone would. That is the floor an epoch can approach.
    ``layout="samples"`` makes the same products with the per-unit buffers
    samples by units, the other natural layout, for comparison. Returns
    ``floor(address, X, encoder, decoder, batch_size, step)``; a last, shorter
    batch of ``X`` is left out.

    ``required=True`` (units layout only) adds to the products the two pieces
    of work that the algorithm itself requires and that they leave out, each
    made the cheapest way known here: each minibatch's rows copied out of
    ``X`` in the visiting order ``order`` (SGD over shuffled samples gathers
    them; the products above read consecutive rows in place; the next
    minibatch's rows are prefetched, as the estimator does), and the
    decoder's rows projected to unit norm every ``normalize_every`` updates by
    the estimator's own projection. It returns ``floor(address, X, order,
    encoder, decoder, batch_size, step, normalize_every)``. No elementwise work
    of the step (unit responses, residual, biases, loss) is made.
    """
    import numba
    import numba.extending
    import numpy as np

    from sksatae._blas import gemm as gemm_block
    from sksatae._kernels import _normalize_rows
    from sksatae._prefetch import prefetch_rows

    @numba.extending.register_jitable
    def gemm(address, alpha, a, transpose_a, b, transpose_b, beta, c):
        gemm_block(address, alpha, a, transpose_a, b, transpose_b, beta, c, 0, c.shape[0], 0,
                   c.shape[1])

    if layout not in ("units", "samples"):
        raise ValueError(f"layout must be 'units' or 'samples', got {layout!r}")
    if required and layout != "units":
        raise ValueError("required=True makes the products in the 'units' layout only")
    by_unit = layout == "units"

    @numba.njit(nogil=True)
    def step_products(address, xb, encoder, decoder, step, zb, rb, gb):
        if by_unit:  # as in the kernel
            one = xb.shape[0] == 1
            rows, weights = (xb, encoder) if one else (encoder, xb)
            gemm(address, 1.0, rows, False, weights, True, 0.0, zb)  # Z = We Xb^T
            gemm(address, 1.0, zb, not one, decoder, False, 0.0, rb)  # Xr = H^T Wd
            rows, weights = (rb, decoder) if one else (decoder, rb)
            gemm(address, 1.0, rows, False, weights, True, 0.0, gb)  # dH = Wd R^T
            gemm(address, -step, zb, one, rb, False, 1.0, decoder)  # Wd -= step H R
            gemm(address, -step, gb, one, xb, False, 1.0, encoder)  # We -= step dZ Xb
        else:
            gemm(address, 1.0, xb, False, encoder, True, 0.0, zb)  # Z = Xb We^T
            gemm(address, 1.0, zb, False, decoder, False, 0.0, rb)  # Xr = H Wd
            gemm(address, 1.0, rb, False, decoder, True, 0.0, gb)  # dH = R Wd^T
            gemm(address, -step, zb, True, rb, False, 1.0, decoder)  # Wd -= step H^T R
            gemm(address, -step, gb, True, xb, False, 1.0, encoder)  # We -= step dZ^T Xb

    @numba.njit(nogil=True)
    def unit_buffers(batch_size, n_components, dtype):
        if by_unit and batch_size > 1:
            return np.empty((n_components, batch_size), dtype), \
                np.empty((n_components, batch_size), dtype)
        return np.empty((batch_size, n_components), dtype), \
            np.empty((batch_size, n_components), dtype)

    @numba.njit(nogil=True)
    def gemm_floor(address, X, encoder, decoder, batch_size, step):
        n_samples, n_features = X.shape
        rb = np.empty((batch_size, n_features), encoder.dtype)
        zb, gb = unit_buffers(batch_size, encoder.shape[0], encoder.dtype)
        for start in range(0, n_samples - batch_size + 1, batch_size):
            step_products(address, X[start:start + batch_size], encoder, decoder, step,
                          zb, rb, gb)

    @numba.njit(nogil=True)
    def required_floor(address, X, order, encoder, decoder, batch_size, step, normalize_every):
        n_samples, n_features = X.shape
        xb = np.empty((batch_size, n_features), encoder.dtype)
        rb = np.empty((batch_size, n_features), encoder.dtype)
        zb, gb = unit_buffers(batch_size, encoder.shape[0], encoder.dtype)
        updates = 0
        for start in range(0, n_samples - batch_size + 1, batch_size):
            for i in range(batch_size):
                source, target = X[order[start + i]], xb[i]
                for j in range(n_features):
                    target[j] = source[j]
            prefetch_rows(X, order, start + batch_size, start + 2 * batch_size)
            step_products(address, xb, encoder, decoder, step, zb, rb, gb)
            updates += 1
            if updates % normalize_every == 0:
                _normalize_rows(decoder, 0, decoder.shape[0])

    return required_floor if required else gemm_floor
