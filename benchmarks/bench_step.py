"""Where a minibatch SGD step goes: each piece of the kernel's step against its five products.

The training benchmark compares a whole epoch with the BLAS floor (the five
products of each step) and with the floor plus the work the algorithm
requires (``required``). This script times each piece of work that the
estimator's kernel (``sksatae._kernels.sgd_epoch``) adds to the products, on
its own, single-threaded, in compiled loops over the minibatches of one epoch
visited in a random order, and prints each as a share of the products' time:

- gather: the minibatch's rows copied out of ``X`` in the visiting order,
  centred, and the encoder's bias preloaded into the first product's output
  (``_load_batch``);
- responses: f(z), f'(z), f_c(z) and alpha f_c'(z) of every unit and sample
  (``_respond_all``), shrink units on realistic pre-activations;
- residual: the residual, its per-feature sums and the loss (``_residual``);
- hidden gradient: dL/dz and its per-unit sums (``_hidden_gradient``);
- re-projection: the decoder's rows to unit norm (``_normalize_rows``), on
  the estimator's schedule (every 10 samples: every update at batch >= 10).

The whole kernel's epoch is timed too: "kernel/products" is the distance the
training benchmark reports as ours/floor, without ``partial_fit``'s own work.
Each piece runs on buffers that stay in cache between its calls, where in a
step the products pass in between, and a piece's waits for memory can
overlap the work around it there: the sum of the pieces differs from the
kernel's distance. Gather and re-projection are the two pieces that the
``required`` floor of the training benchmark adds to the products.

Usage::

    python benchmarks/bench_step.py
    python benchmarks/bench_step.py --shapes 144:100 --batch-sizes 16
"""

import argparse
import time

from _common import scrub_blas_environment

scrub_blas_environment()

import numba  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from _common import (  # noqa: E402
    compiled_gemm_floor, environment_report, markdown_table, print_environment,
    updates_per_projection)
from sksatae import _kernels  # noqa: E402
from sksatae._blas import gemm_address  # noqa: E402
from sksatae.activations import Shrink  # noqa: E402

SHAPES = ((144, 100), (784, 300), (3072, 300))
BATCHES = (16, 128)
ALPHA = 0.1
PIECES = ("gather", "responses", "residual", "hidden gradient", "re-projection")


@numba.njit
def gather_loop(X, order, shift, encoder_bias, batch, pre, square_sum):
    size = batch.shape[0]
    for start in range(0, order.shape[0] - size + 1, size):
        _kernels._load_batch(X, order, start, 0, size, shift, batch, encoder_bias, pre, 0,
                             pre.shape[0], False, square_sum)


@numba.njit
def restore_loop(steps, saved, pre):
    # ``_respond_all`` overwrites z with f'(z): each step starts from the saved z.
    source, target = saved.reshape(saved.size), pre.reshape(pre.size)
    for _ in range(steps):
        for index in range(source.shape[0]):
            target[index] = source[index]


@numba.njit
def responses_loop(steps, activation, saved, pre, codes, penalty, penalty_grad):
    source, target = saved.reshape(saved.size), pre.reshape(pre.size)
    for _ in range(steps):
        for index in range(source.shape[0]):
            target[index] = source[index]
        _kernels._respond_all(activation, ALPHA, pre, codes, penalty, penalty_grad, 0, pre.size)


@numba.njit
def residual_loop(steps, reconstruction, decoder_bias, batch, penalty, square_sum,
                  residual_sum):
    total = 0.0
    for _ in range(steps):
        squares, penalties = _kernels._residual(
            reconstruction, decoder_bias, batch, 0, batch.shape[0], 0, batch.shape[1], penalty,
            0, penalty.size, square_sum, residual_sum)
        total += squares + penalties
    return total


@numba.njit
def hidden_gradient_loop(steps, grad, slope, penalty_grad, unit_grad):
    for _ in range(steps):
        _kernels._hidden_gradient(grad, slope, penalty_grad, 0, grad.shape[0], unit_grad)


@numba.njit
def projection_loop(steps, every, decoder):
    for update in range(1, steps + 1):
        if update % every == 0:
            _kernels._normalize_rows(decoder, 0, decoder.shape[0])


def best_seconds(function, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


def bench_configuration(n_features, n_components, batch_size, dtype, args, rng, floor):
    n_available = max(4 * batch_size, min(args.max_samples, int(args.max_bytes / (n_features * 8)))
                      // batch_size * batch_size)
    data = rng.standard_normal((n_available, n_features)).astype(dtype)
    encoder = (rng.standard_normal((n_components, n_features))
               / np.sqrt(n_features)).astype(dtype)
    decoder = encoder.copy()
    encoder_bias, decoder_bias = np.zeros(n_components, dtype), np.zeros(n_features, dtype)
    shift = np.zeros(n_features, dtype)
    address = gemm_address(np.dtype(dtype))
    # Runs of about --target seconds of products: the first rows of the data,
    # visited in a random order.
    probe = 8 * batch_size
    seconds = best_seconds(lambda: floor(address, data[:probe], encoder, encoder.copy(),
                                         batch_size, 1e-7), 2)
    steps = max(4, min(n_available // batch_size, int(args.target / (seconds / 8))))
    n_samples = steps * batch_size
    X = data[:n_samples]
    order = rng.permutation(n_samples)
    activation = Shrink(width=0.1).kernel_spec()
    units = (n_components, batch_size)
    batch, residual = np.empty((batch_size, n_features), dtype), np.empty(
        (batch_size, n_features), dtype)
    pre, codes, penalty, penalty_grad, grad = (np.empty(units, dtype) for _ in range(5))
    square_sum, visible_sum = np.empty(n_features, np.float64), np.empty(n_features, dtype)
    hidden_sum = np.empty(n_components, dtype)
    # Realistic operands: the first minibatch's pre-activations and responses.
    saved = (encoder @ X[order[:batch_size]].T).astype(dtype)
    pre[:] = saved
    _kernels._respond_all(activation, ALPHA, pre, codes, penalty, penalty_grad, 0, pre.size)
    residual[:] = codes.T @ decoder
    grad[:] = decoder @ residual.T
    every = updates_per_projection(batch_size)
    learning_rate = 1e-4

    workspace = _kernels.epoch_workspace(n_samples, n_features, n_components, batch_size,
                                         dtype)

    def kernel():
        outcome = _kernels.sgd_epoch(
            address, X, order, shift, encoder, encoder_bias, decoder, decoder_bias,
            activation, ALPHA, learning_rate, every, 0, False, workspace, None, 0, 0)
        if outcome[2] != n_samples or not outcome[4]:
            raise RuntimeError("the kernel's epoch stopped early")

    timed = {
        "products": lambda: floor(address, X, encoder, decoder, batch_size, 1e-7),
        "kernel": kernel,
        "gather": lambda: gather_loop(X, order, shift, encoder_bias, batch, pre, square_sum),
        "restore": lambda: restore_loop(steps, saved, pre),
        "responses": lambda: responses_loop(steps, activation, saved, pre, codes, penalty,
                                            penalty_grad),
        "residual": lambda: residual_loop(steps, residual, decoder_bias, batch, penalty,
                                          square_sum, visible_sum),
        "hidden gradient": lambda: hidden_gradient_loop(steps, grad, pre, penalty_grad,
                                                        hidden_sum),
        "re-projection": lambda: projection_loop(steps, every, decoder),
    }
    for function in timed.values():  # compile, and warm the caches
        function()
    best = {name: float("inf") for name in timed}
    for _ in range(args.repeats):  # interleaved, so that load on the machine hits all alike
        for name, function in timed.items():
            best[name] = min(best[name], best_seconds(function, 1))
    best["responses"] = max(0.0, best["responses"] - best["restore"])
    return {name: seconds / steps for name, seconds in best.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=None,
                        help="n_features:n_components pairs (default: 144:100 784:300 3072:300)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.15,
                        help="seconds of the products in one run")
    parser.add_argument("--max-samples", type=int, default=200_000)
    parser.add_argument("--max-bytes", type=float, default=150e6,
                        help="bytes of float64 data per shape, as in bench_training.py")
    args = parser.parse_args(argv)
    shapes = ([tuple(int(v) for v in s.split(":")) for s in args.shapes]
              if args.shapes else SHAPES)

    print("# Where a minibatch SGD step goes: each piece of the kernel's step, one thread\n")
    print_environment(environment_report())
    print(f"- repeats {args.repeats}, about {args.target:g} s of products per run; clock: CPU "
          f"time; shrink units, alpha {ALPHA}\n")
    floor = compiled_gemm_floor()
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for n_features, n_components in shapes:
            for batch_size in args.batch_sizes:
                for dtype in args.dtypes:
                    per_step = bench_configuration(n_features, n_components, batch_size,
                                                   np.dtype(dtype), args, rng, floor)
                    products = per_step["products"]
                    shares = [per_step[name] / products for name in PIECES]
                    rows.append([n_features, n_components, batch_size, dtype,
                                 f"{products * 1e6:.1f}",
                                 *(f"{100 * share:.1f}" for share in shares),
                                 f"{100 * sum(shares):.1f}",
                                 f"{per_step['kernel'] / products:.2f}"])
    print(markdown_table(
        ["d", "h", "batch", "dtype", "products (us/step)",
         *(f"{name} (%)" for name in PIECES), "sum (%)", "kernel/products"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
