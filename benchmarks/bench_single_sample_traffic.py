"""Batch size 1: the single-sample kernel against the memory traffic plain SGD needs.

Plain SGD at batch size 1 must, for every sample, read the encoder (the
codes), read the decoder (the reconstruction), read the decoder again
(dL/dh, which needs the whole residual) and write both matrices (their
updates): five matrix-sized transfers, which the estimator's kernel
(``sksatae._kernels.sgd_epoch_single_sample``) makes in three passes. At
``d=144``, ``h=100`` the weights live in the core's L2 cache, not its L1, and
those transfers take most of a step.

This script times, alternately in one process, one epoch of the estimator
(``partial_fit`` at ``batch_size=1``, one thread) and a compiled loop that
makes the same three passes over matrices of the same shape, row by row,
adding a vector that stays in L1 and nothing else ("traffic"). It prints
ours/traffic, how far the kernel's arithmetic and elementwise work put it
above its memory traffic, and, when PyTorch is installed, PyTorch autograd's
time (``bench_training.TorchAutograd``) over each: PyTorch/traffic is what a
kernel making nothing but that traffic would reach against PyTorch. CPU time
of the process; medians of paired ratios.

Usage::

    python benchmarks/bench_single_sample_traffic.py
    python benchmarks/bench_single_sample_traffic.py --shapes 144:100 784:300
"""

import argparse
import gc
import statistics

from _common import scrub_blas_environment

scrub_blas_environment()

from bench_training import (  # noqa: E402
    ALPHA, SHRINK_WIDTH, TorchAutograd, set_torch_threads, torch_available)
import numba  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from _common import (  # noqa: E402
    environment_report, markdown_table, measure, print_environment, write_json)
from sksatae import SaturatingAutoEncoder  # noqa: E402
from sksatae._parts import aligned_copy  # noqa: E402


@numba.njit(fastmath={"reassoc", "contract"})
def traffic_epoch(encoder, decoder, vector, n_samples):
    """The three passes of each sample's step, with one addition per weight."""
    n_components, n_features = encoder.shape
    zero = encoder.dtype.type(0.0)  # sums in the weights' dtype, as the kernel's
    total = zero
    for _ in range(n_samples):
        for k in range(n_components):  # the encoder: read and write
            for j in range(n_features):
                encoder[k, j] = encoder[k, j] + vector[j]
        for k in range(n_components):  # the decoder: read
            partial = zero
            for j in range(n_features):
                partial += decoder[k, j]
            total += partial
        for k in range(n_components):  # the decoder: read and write
            for j in range(n_features):
                decoder[k, j] = decoder[k, j] - vector[j]
    return total


def paired_ratios(n_features, n_components, dtype, repeats, seconds, with_torch):
    rng = np.random.default_rng(0)
    n_samples = max(2000, int(seconds / (0.25e-9 * n_features * n_components)))
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    model = SaturatingAutoEncoder(n_components, batch_size=1, alpha=ALPHA, alpha_step=None,
                                  max_iter=1, shrink_width=SHRINK_WIDTH, n_threads=1,
                                  random_state=0)
    model.fit(X[:64]).partial_fit(X)  # compiled, buffers warm
    # Rows and vector on cache lines, as the kernel's weights and buffers are
    # (``_parts.aligned_copy``): with the vector where the allocator put it, the loop
    # took 1.3 times as long in most processes and not in others.
    encoder = aligned_copy(model.encoder_weights_, dtype)
    decoder = aligned_copy(model.components_, dtype)
    vector = aligned_copy(np.zeros(n_features), dtype)  # the weights keep their values
    traffic_epoch(encoder, decoder, vector, 1)
    methods = {"ours": (lambda: model.partial_fit(X), n_samples),
               "traffic": (lambda: traffic_epoch(encoder, decoder, vector, n_samples),
                           n_samples)}
    if with_torch:
        torch_samples = max(200, n_samples // 40)
        torch_model = TorchAutograd(X, n_components, 1, model.learning_rate_)
        torch_model.prepare(torch_samples)
        methods["torch"] = (torch_model.run, torch_samples)
    times = {name: [] for name in methods}
    gc.disable()
    try:
        for _ in range(repeats):
            for name, (run, size) in methods.items():
                times[name].append(measure(run)[1] / size)
    finally:
        gc.enable()

    def median_ratio(name, reference):
        return statistics.median(a / b for a, b in zip(times[name], times[reference]))

    ratios = {"ours/traffic": median_ratio("ours", "traffic")}
    if with_torch:
        ratios["PyTorch/ours"] = median_ratio("torch", "ours")
        ratios["PyTorch/traffic"] = median_ratio("torch", "traffic")
    per_weight = statistics.median(times["traffic"]) / (n_features * n_components)
    return ratios, per_weight, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--shapes", nargs="+", default=["144:100"],
                        help="n_features:n_components pairs (default: 144:100)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=0.1,
                        help="about this long per epoch of ours")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 11)
    shapes = [tuple(int(v) for v in shape.split(":")) for shape in args.shapes]
    with_torch = torch_available()

    report = environment_report(extra_modules=["torch"])
    print("# Batch size 1: the single-sample kernel against its memory traffic\n")
    print_environment(report)
    print(f"- repeats {repeats}, about {args.seconds} s per epoch of ours; clock: CPU time; "
          f"one thread; shrink units, alpha {ALPHA}\n")
    columns = ["ours/traffic"] + (["PyTorch/ours", "PyTorch/traffic"] if with_torch else [])
    rows, results = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        set_torch_threads(1)
        for n_features, n_components in shapes:
            for dtype in (np.float32, np.float64):
                ratios, per_weight, times = paired_ratios(
                    n_features, n_components, dtype, repeats, args.seconds, with_torch)
                rows.append([n_features, n_components, np.dtype(dtype).name,
                             f"{per_weight * 1e9 / 5:.3f}",
                             *(f"{ratios[name]:.2f}" for name in columns)])
                results.append(dict(n_features=n_features, n_components=n_components,
                                    dtype=np.dtype(dtype).name, ratios=ratios,
                                    seconds_per_sample=times))
    print(markdown_table(["d", "h", "dtype", "traffic: ns per weight transfer", *columns],
                         rows))
    if not with_torch:
        print("\nPyTorch columns: skipped: torch not installed")
    if args.json:
        write_json(args.json, report, results)


if __name__ == "__main__":
    main()
