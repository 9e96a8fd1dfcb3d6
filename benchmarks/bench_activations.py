"""What an activation costs in training: one epoch per activation, against shrink.

Run from the repository root::

    python benchmarks/bench_activations.py [--quick] [--json PATH]

The closed forms (shrink, relu, satlinear) are evaluated inline in the
epoch's loop; every other activation goes through its tables (a binary search
among flat intervals, one Hermite cubic for f and, for Eq. 3, one for each of
M+ and M-). Each repeat times one epoch (``fit`` with ``max_iter=1`` and no
schedule, one BLAS thread) of every activation in turn; the median over
repeats is divided by shrink's. The whole call is timed, with the work of
``fit`` that does not depend on the activation (validation, the weights'
draw), which brings the ratios towards 1. Kernels are compiled before
timing. Everything runs in one thread, so the clock is the process's CPU
time, which leaves out waits for a core on a shared machine.
"""

import _common

_common.scrub_blas_environment()

import argparse  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from sksatae import SaturatingAutoEncoder  # noqa: E402
from sksatae.activations import ACTIVATIONS, TabulatedActivation  # noqa: E402

CASES = [  # (n_features, n_components, batch_size, n_samples)
    (144, 100, 1, 4000),
    (144, 100, 16, 40000),
    (784, 300, 128, 20000),
]


def activations():
    return list(ACTIVATIONS) + [
        TabulatedActivation.from_function(lambda z: np.maximum(z, 0), name="relu (tabulated)"),
        TabulatedActivation.from_function(lambda z: np.exp(-z**2 / 2), name="bump (Eq. 3)"),
    ]


def label(activation):
    return activation if isinstance(activation, str) else activation.name


def epoch_seconds(activation, X, n_components, batch_size):
    model = SaturatingAutoEncoder(n_components, activation=activation, alpha=0.1, alpha_step=None,
                                  max_iter=1, batch_size=batch_size, learning_rate=1e-4,
                                  shuffle=False, random_state=0)
    return _common.measure(lambda: model.fit(X))[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", help="write the raw results to this file")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    environment = _common.environment_report()
    _common.print_environment(environment)

    kinds = activations()
    rows, results = [], []
    with threadpool_limits(1):
        for n_features, n_components, batch_size, n_samples in CASES:
            if args.quick:
                n_samples //= 4
            for dtype in (np.float64, np.float32):
                X = np.random.default_rng(0).standard_normal((n_samples, n_features)).astype(dtype)
                for activation in kinds:  # compile, and build the built-in tables
                    epoch_seconds(activation, X[:64], n_components, batch_size)
                times = {label(a): [] for a in kinds}
                for _ in range(repeats):
                    for activation in kinds:
                        times[label(activation)].append(
                            epoch_seconds(activation, X, n_components, batch_size))
                medians = {name: float(np.median(values)) for name, values in times.items()}
                case = f"d={n_features}, h={n_components}, batch {batch_size}, {np.dtype(dtype).name}"
                print(case, file=sys.stderr)
                ratios = {name: medians[name] / medians["shrink"] for name in medians}
                rows.append([case] + [f"{ratios[label(a)]:.2f}" for a in kinds])
                results.append({"case": case, "median_seconds": medians, "ratio_to_shrink": ratios})

    print()
    print("Epoch time relative to shrink (one thread, CPU time; median of "
          f"{repeats} interleaved repeats):")
    print()
    print(_common.markdown_table(["case"] + [label(a) for a in kinds], rows))
    if args.json:
        _common.write_json(args.json, environment, results)


if __name__ == "__main__":
    main()
