"""One GEMM of an SGD step through each BLAS a user's machine may have.

The training benchmark finds PyTorch's hand-written SGD faster than our
BLAS floor on the larger shapes. This script isolates why: it times the
product ``Z = Xb @ We.T`` of one minibatch, single-threaded, through SciPy's
OpenBLAS (the routine the estimator's kernels call, via
``scipy.linalg.cython_blas``), NumPy's own BLAS (``np.matmul`` with ``out=``)
and PyTorch's (``torch.mm`` with ``out=``; MKL on x86 builds), and prints each
time over SciPy's. Where Intel's MKL is installed as the ``mkl`` package
(``libmkl_rt`` in the environment), MKL's ``?gemm`` is also called from the
same compiled code as SciPy's: that column shows what the kernels would gain
from that library alone.

``--layouts`` instead times the five GEMMs of whole SGD steps with the
per-unit buffers (codes, their gradients) laid out units by samples, as the
kernel does, against samples by units, and prints the ratio: the
measurement behind that choice of layout.

``--parts`` times the five GEMMs of a step split as an epoch in two parts
splits them (``sksatae/_parts.py``: the units for four products, the samples
or the features for the decoder's), both parts run in turn on one thread,
against the same products whole. Each part packs the operand it shares with
the other for itself, where BLAS's own threads share one packing: the ratio
is the work that splitting adds, before any waiting between the parts.

Usage::

    python benchmarks/bench_gemm.py
    python benchmarks/bench_gemm.py --layouts
    python benchmarks/bench_gemm.py --parts
"""

import argparse

from _common import scrub_blas_environment

scrub_blas_environment()

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from _common import (  # noqa: E402
    environment_report, markdown_table, mkl_gemm_addresses, print_environment)

SHAPES = ((144, 100), (784, 300), (3072, 300))
BATCHES = (16, 128)


def best_cpu_time(function, repeats=5, target=0.1):
    """Best CPU seconds per call over ``repeats`` runs of about ``target`` seconds each."""
    import time

    function()
    start = time.process_time()
    calls = 0
    while time.process_time() - start < target / 4:
        function()
        calls += 1
    per_run = max(1, int(calls * 4))
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(per_run):
            function()
        best = min(best, (time.process_time() - start) / per_run)
    return best


def compare_layouts():
    """CPU time of the five GEMMs of an epoch in the kernel's layout over the other."""
    from _common import compiled_gemm_floor

    from sksatae._blas import gemm_address

    floors = {layout: compiled_gemm_floor(layout) for layout in ("units", "samples")}
    report = environment_report()
    print("# The five GEMMs of an SGD step: per-unit buffers units by samples (the "
          "kernel's) over samples by units, one thread\n")
    print_environment(report)
    rows = []
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for d, h in SHAPES:
            for batch in ((1,) if d == SHAPES[0][0] else ()) + BATCHES + (1024,):
                n_samples = max(2 * batch, int(2e7 / (d * h)) // batch * batch)
                X = rng.standard_normal((n_samples, d))
                cells = [d, h, batch]
                for dtype in (np.float32, np.float64):
                    address, data = gemm_address(dtype), X.astype(dtype)
                    times = {}
                    for layout, floor in floors.items():
                        encoder = (0.1 * rng.standard_normal((h, d))).astype(dtype)
                        decoder = encoder.copy()
                        times[layout] = best_cpu_time(
                            lambda: floor(address, data, encoder, decoder, batch, 1e-7),
                            repeats=7, target=0.2)
                    cells.append(f"{times['units'] / times['samples']:.2f}")
                rows.append(cells)
    print()
    print(markdown_table(["d", "h", "batch", "float32: units / samples",
                          "float64: units / samples"], rows))


def compiled_step_in_parts():
    """A compiled function making the five products of ``steps`` SGD steps,
    each split in ``n_parts`` as ``_kernels.sgd_epoch`` splits them, the parts
    of each product one after the other."""
    import numba

    from sksatae._blas import gemm

    @numba.njit
    def units_of(part, n_parts, n_components):
        return n_components * part // n_parts, n_components * (part + 1) // n_parts

    @numba.njit
    def step_in_parts(address, xb, rb, encoder, decoder, codes, grad, n_parts, step, steps):
        no, yes = xb.shape[0] < 0, xb.shape[0] >= 0  # runtime flags, as in the kernel
        size, n_features = xb.shape
        n_components = encoder.shape[0]
        for _ in range(steps):
            for part in range(n_parts):
                unit, end_unit = units_of(part, n_parts, n_components)
                gemm(address, 1.0, encoder, no, xb, yes, 0.0, codes, unit, end_unit, 0, size)
            for part in range(n_parts):
                row, end_row = 0, size
                column = n_features * part // n_parts
                end_column = n_features * (part + 1) // n_parts
                if n_parts > 1 and size > n_features:
                    row, end_row = size * part // n_parts, size * (part + 1) // n_parts
                    column, end_column = 0, n_features
                gemm(address, 1.0, codes, yes, decoder, no, 0.0, rb, row, end_row, column,
                     end_column)
            for part in range(n_parts):
                unit, end_unit = units_of(part, n_parts, n_components)
                gemm(address, 1.0, decoder, no, rb, yes, 0.0, grad, unit, end_unit, 0, size)
                gemm(address, -step, codes, no, rb, no, 1.0, decoder, unit, end_unit, 0,
                     n_features)
                gemm(address, -step, grad, no, xb, no, 1.0, encoder, unit, end_unit, 0,
                     n_features)

    return step_in_parts


def compare_parts(n_parts=2):
    """CPU time of a step's five GEMMs split in ``n_parts``, run in turn on one
    thread, over the same GEMMs whole."""
    import time

    from sksatae._blas import gemm_address

    step_in_parts = compiled_step_in_parts()
    report = environment_report()
    print(f"# The five GEMMs of an SGD step split in {n_parts} parts as an epoch in parts "
          "splits them, run in turn on one thread, over the same GEMMs whole\n")
    print_environment(report)
    print("\nPaired: the two run back to back, 15 times; the median of the ratios, and the "
          "best over the best.")
    rows = []
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for d, h in SHAPES:
            for batch in BATCHES + (1024,):
                cells = [d, h, batch]
                for dtype in (np.float32, np.float64):
                    address = gemm_address(dtype)
                    xb, rb = (rng.standard_normal((batch, d)).astype(dtype) for _ in range(2))
                    encoder, decoder = ((0.1 * rng.standard_normal((h, d))).astype(dtype)
                                        for _ in range(2))
                    codes, grad = (np.empty((h, batch), dtype) for _ in range(2))
                    steps = max(1, int(2e8 / (5 * batch * d * h)))

                    def run(parts):
                        start = time.process_time()
                        step_in_parts(address, xb, rb, encoder, decoder, codes, grad, parts,
                                      1e-9, steps)
                        return time.process_time() - start

                    run(1), run(n_parts)
                    whole, split = zip(*[(run(1), run(n_parts)) for _ in range(15)])
                    ratios = sorted(b / a for a, b in zip(whole, split))
                    cells.append(f"{ratios[len(ratios) // 2]:.3f} ({min(split) / min(whole):.3f})")
                rows.append(cells)
    print()
    print(markdown_table(["d", "h", "batch", f"float32: {n_parts} parts / whole",
                          f"float64: {n_parts} parts / whole"], rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", action="store_true",
                        help="compare the layouts of the per-unit buffers instead")
    parser.add_argument("--parts", action="store_true",
                        help="time the products split as an epoch in two parts splits them, "
                             "on one thread, against the same products whole")
    args = parser.parse_args(argv)
    if args.layouts:
        compare_layouts()
        return
    if args.parts:
        compare_parts()
        return
    import numba

    from sksatae._blas import gemm, gemm_address

    try:
        import torch
    except ImportError:
        torch = None

    @numba.njit
    def scipy_product(address, xb, encoder, out):
        gemm(address, 1.0, xb, False, encoder, True, 0.0, out, 0, out.shape[0], 0, out.shape[1])

    mkl_addresses = mkl_gemm_addresses()

    report = environment_report(extra_modules=("torch",))
    print("# One GEMM (Z = Xb We^T), one thread\n")
    print_environment(report)
    if torch is None:
        print("\nPyTorch column: skipped: torch not installed")
    else:
        torch.set_num_threads(1)
    rows = []
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for dtype in (np.float32, np.float64):
            address = gemm_address(dtype)
            for d, h in SHAPES:
                for batch in BATCHES:
                    xb = rng.standard_normal((batch, d)).astype(dtype)
                    encoder = rng.standard_normal((h, d)).astype(dtype)
                    out = np.empty((batch, h), dtype)
                    scipy_time = best_cpu_time(lambda: scipy_product(address, xb, encoder, out))
                    numpy_time = best_cpu_time(lambda: np.matmul(xb, encoder.T, out=out))
                    row = [d, h, batch, np.dtype(dtype).name, f"{scipy_time * 1e6:.0f}",
                           f"{numpy_time / scipy_time:.2f}"]
                    if torch is not None:
                        xt, et = torch.from_numpy(xb), torch.from_numpy(encoder)
                        ot = torch.empty(batch, h, dtype=xt.dtype)
                        torch_time = best_cpu_time(lambda: torch.mm(xt, et.t(), out=ot))
                        row.append(f"{torch_time / scipy_time:.2f}")
                    else:
                        row.append("-")
                    if mkl_addresses:
                        mkl_address = mkl_addresses[np.dtype(dtype)]
                        scipy_product(address, xb, encoder, out)
                        expected = out.copy()
                        scipy_product(mkl_address, xb, encoder, out)
                        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3)
                        mkl_time = best_cpu_time(
                            lambda: scipy_product(mkl_address, xb, encoder, out))
                        row.append(f"{mkl_time / scipy_time:.2f}")
                    else:
                        row.append("-")
                    rows.append(row)
    print()
    print(markdown_table(
        ["d", "h", "batch", "dtype", "SciPy OpenBLAS (us, CPU)", "NumPy / SciPy", "PyTorch / SciPy",
         "MKL (same kernel) / SciPy"], rows))
    if not mkl_addresses:
        print("\nMKL column: skipped: no libmkl_rt in this environment (pip install mkl)")


if __name__ == "__main__":
    main()
