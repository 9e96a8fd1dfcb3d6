"""Batch size 1 in parts: two threads against one, by the model's size.

At ``batch_size=1`` an epoch makes no matrix products
(``sksatae._kernels.sgd_epoch_single_sample``); with more than one thread it
runs in parts, each updating its share of the units, and the parts meet once
per sample to add up their shares of the residual. This script times one
epoch (``partial_fit``) of the same fitted model with one thread and in two
parts, alternately in one process, over models of 1,024 to 235,200 weights,
and prints the median of the paired ratios: the measurement behind
``sksatae._threads.SINGLE_SAMPLE_PART_WEIGHTS``. The size rule is lifted
here, so that every size runs in parts. Wall-clock time; the second core
must be free for the numbers to mean anything.

Usage::

    python benchmarks/bench_single_sample_threads.py
    python benchmarks/bench_single_sample_threads.py --quick
"""

import argparse
import gc
import time

from _common import scrub_blas_environment

scrub_blas_environment()

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from _common import (  # noqa: E402
    environment_report, markdown_table, print_environment, settle_other_threads, write_json)
from sksatae import SaturatingAutoEncoder, _threads  # noqa: E402

SHAPES = ((32, 32), (64, 64), (128, 64), (144, 100), (256, 128), (400, 200), (512, 256),
          (784, 300))
QUICK_SHAPES = ((144, 100), (256, 128), (512, 256), (784, 300))


def epoch_ratios(n_features, n_components, dtype, repeats, seconds):
    """Paired ratios of an epoch's wall time in two parts over one thread."""
    rng = np.random.default_rng(0)
    n_samples = max(2000, int(seconds / (0.25e-9 * n_features * n_components)))
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    models = {}
    for n_threads in (1, 2):
        model = SaturatingAutoEncoder(n_components, batch_size=1, alpha=0.1, alpha_step=None,
                                      max_iter=1, shrink_width=0.1, n_threads=n_threads,
                                      random_state=0)
        models[n_threads] = model.fit(X[:64]).partial_fit(X)  # compiled, both buffers warm
    ratios, per_sample = [], []
    gc.disable()
    try:
        for _ in range(repeats):
            times = {}
            for n_threads, model in models.items():
                settle_other_threads()
                start = time.perf_counter()
                model.partial_fit(X)
                times[n_threads] = time.perf_counter() - start
            ratios.append(times[2] / times[1])
            per_sample.append(times[1] / n_samples)
    finally:
        gc.enable()
    return float(np.median(ratios)), min(ratios), max(ratios), float(np.median(per_sample))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="four shapes, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=0.15,
                        help="about this long per epoch with one thread")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    repeats = args.repeats or (5 if args.quick else 9)
    # Every size in parts: the rule this script measures would keep small models in one.
    _threads.SINGLE_SAMPLE_PART_WEIGHTS = 1

    report = environment_report()
    print("# Batch size 1: an epoch in two parts over one thread\n")
    print_environment(report)
    print(f"- repeats {repeats}, about {args.seconds} s per epoch; clock: wall time; shrink "
          "units, alpha 0.1\n")
    rows, results = [], []
    with threadpool_limits(limits=2, user_api="blas"):
        for n_features, n_components in shapes:
            for dtype in (np.float32, np.float64):
                median, low, high, per_sample = epoch_ratios(n_features, n_components, dtype,
                                                             repeats, args.seconds)
                weights = n_features * n_components
                rows.append((n_features, n_components, weights, np.dtype(dtype).name,
                             f"{per_sample * 1e6:.2f}", f"{median:.2f}",
                             f"{low:.2f} to {high:.2f}"))
                results.append(dict(n_features=n_features, n_components=n_components,
                                    dtype=np.dtype(dtype).name, median=median, low=low,
                                    high=high, one_thread_seconds_per_sample=per_sample))
    print(markdown_table(["d", "h", "weights", "dtype", "one thread (us/sample)",
                          "two parts / one thread", "range"], rows))
    if args.json:
        write_json(args.json, report, results)


if __name__ == "__main__":
    main()
