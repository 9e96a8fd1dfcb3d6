"""Inference speed and the memory of fit.

Run from the repository root::

    python benchmarks/bench_inference.py --quick

``transform`` is one matrix product and an elementwise activation, so it is
compared with the product alone, made as ``transform`` makes it: compiled, in
blocks of ``sksatae._kernels.ENCODE_ROWS`` rows, through the same BLAS entry
point (SciPy's ``?gemm``), once into a preallocated output and once into a
new array (``transform`` must return new memory, and filling fresh pages has
a cost of its own: about 10% of the product at 144 features in float64).
``score_samples`` needs two products (encode, then decode), which it makes in
blocks of ``sksatae._kernels.ENERGY_ROWS`` rows into two small buffers that
stay in cache; it is compared with those two products made the same way, in
the same blocks into buffers of the same size (``energy_workspace``), and
nothing else. The targets are
judged on these blocked references. Beside them, the products made whole,
from Python (``X @ W^e.T`` into a preallocated output and into a new array;
both products written out in full for ``score_samples``, which moves an
``n x d`` array through memory that the blocks keep in cache) are reported
as earlier versions of this script reported them. Methods are measured in
turn inside each repeat, each after a read of a buffer four times the size
of the last-level cache, so that each finds ``X`` in memory, not in a cache
that the method before it filled (``transform`` at 784 features, float32,
3,401 rows, timed right after the two full-size products, had paid to read
``X`` from memory where its reference, timed after ``score_samples``, found
it in cache: 1.13 against 1.03 measured apart); the best of the repeats is
kept (CPU time, one BLAS thread by default).

A second table gives the time of one call on one and on two rows, the
weights in cache as when a served model scores row after row, beside NumPy's
product ``X @ W^e.T`` and the estimator's ``?gemm`` on the same rows: at such
sizes a call is mostly scikit-learn's validation and the checks on input and
weights.

Peak memory of ``fit`` is measured in a fresh process per case: the process
imports everything, compiles the kernels on a tiny fit, builds ``X``, reads its
peak resident memory (``VmHWM``, first reset to the current resident size
through ``/proc/self/clear_refs``), fits, and reads it again. The increase is
reported in units of ``X``'s size. ``tracemalloc`` is not used because it does
not see memory that compiled kernels allocate.
"""

import _common

_common.scrub_blas_environment()

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from sksatae import SaturatingAutoEncoder, _kernels  # noqa: E402
from sksatae._blas import gemm as blas_gemm  # noqa: E402
from sksatae._blas import gemm_address  # noqa: E402

SHAPES = [(144, 100), (784, 300), (3072, 300)]

MEMORY_PROBE = """
import numpy as np
from sksatae import SaturatingAutoEncoder

def peak_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def make_model():
    return SaturatingAutoEncoder({n_components}, alpha=0.1, alpha_step=None, max_iter=1,
                                 batch_size=128, learning_rate={learning_rate}, random_state=0)

rng = np.random.default_rng(0)
small = rng.standard_normal((256, {n_features}))
make_model().fit(small.astype({dtype}))  # compile, and load everything fit needs
# Filled in blocks, so that building X leaves no temporary of X's size behind.
X = np.empty(({n_samples}, {n_features}), dtype={stored}, order="{order}")
for start in range(0, X.shape[0], 1000):
    block = X[start:start + 1000]
    values = rng.standard_normal(block.shape)
    block[...] = np.rint(3 * values) if X.dtype.kind == "i" else values
# Reset the peak to the current resident size (Linux >= 4.0), so that what
# imports and compilation allocated and freed earlier does not hide fit's peak.
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
before = peak_bytes()
make_model().fit(X)
print(X.nbytes, before, peak_bytes())
"""

MEMORY_CASES = [
    # label, stored dtype, working dtype, memory order, learning_rate
    ("float64, C order", "np.float64", "np.float64", "C", "'auto'"),
    ("float32, C order", "np.float32", "np.float32", "C", "'auto'"),
    ("float64, C order, fixed learning_rate", "np.float64", "np.float64", "C", "0.001"),
    ("float64, Fortran order (one conversion)", "np.float64", "np.float64", "F", "'auto'"),
    ("int64 (one conversion to float64)", "np.int64", "np.float64", "C", "'auto'"),
]


@numba.njit(nogil=True)
def encode_products(address, X, encoder, out):
    """``out = X @ encoder.T`` in the row blocks of ``_kernels.encode``."""
    n_samples, n_components = out.shape
    rows = _kernels.ENCODE_ROWS
    for start in range(0, n_samples, rows):
        stop = min(start + rows, n_samples)
        blas_gemm(address, 1.0, X[start:stop], False, encoder, True, 0.0, out[start:stop], 0,
                  stop - start, 0, n_components)


@numba.njit(nogil=True)
def energy_products(address, X, encoder, decoder, hidden, recon):
    """The two products of ``_kernels.energy``, in its row blocks and into its
    buffers (``hidden, recon = _kernels.energy_workspace(...)``)."""
    n_samples, n_features = X.shape
    block = hidden.shape[0]
    for start in range(0, n_samples, block):
        size = min(block, n_samples - start)
        hb, rb = hidden[:size], recon[:size]
        encode_products(address, X[start:start + size], encoder, hb)
        blas_gemm(address, 1.0, hb, False, decoder, False, 0.0, rb, 0, size, 0, n_features)


def bench_throughput(n_features, n_components, dtype, repeats, n_samples, rng):
    from scipy.linalg import blas

    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    model = SaturatingAutoEncoder(n_components, alpha=0.1, alpha_step=None, max_iter=1,
                                  batch_size=128, random_state=0).fit(X[:2048])
    encoder, decoder = model.encoder_weights_, model.components_
    codes = np.empty((n_samples, n_components), dtype)
    recon = np.empty((n_samples, n_features), dtype)

    address = gemm_address(dtype)
    workspace = _kernels.energy_workspace(n_samples, n_features, n_components, dtype)

    def one_gemm():
        # Row-major codes = X @ encoder.T is column-major codes.T = encoder @ X.T.
        gemm(1.0, encoder.T, X.T, 0.0, codes.T, trans_a=1, overwrite_c=1)

    def one_gemm_new_output():
        return gemm(1.0, encoder.T, X.T, trans_a=1)

    def two_gemms():
        one_gemm()
        gemm(1.0, decoder.T, codes.T, 0.0, recon.T, overwrite_c=1)

    def one_gemm_blocks():
        encode_products(address, X, encoder, codes)

    def one_gemm_blocks_new_output():
        out = np.empty((n_samples, n_components), dtype)
        encode_products(address, X, encoder, out)
        return out

    def two_gemms_blocks():
        energy_products(address, X, encoder, decoder, *workspace)

    methods = {"transform": lambda: model.transform(X),
               "score_samples": lambda: model.score_samples(X),
               "one GEMM, blocks": one_gemm_blocks,
               "one GEMM, blocks, new output": one_gemm_blocks_new_output,
               "two GEMMs, blocks": two_gemms_blocks,
               "one GEMM": one_gemm, "one GEMM, new output": one_gemm_new_output,
               "two GEMMs": two_gemms}
    for method in methods.values():
        method()
    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            _common.evict_caches()
            times[name].append(_common.measure(method))
    return times


LATENCY_ROWS = (1, 2)
"""Row counts of the latency table: one row, which ``transform`` and
``score_samples`` multiply with compiled loops (``_kernels.FEW_ROWS``), and
two, which go to ``?gemm``."""


def bench_latency(n_features, n_components, dtype, calls, rng, clock_index):
    """Per-call times (median of ``calls``, weights in cache, as when a served
    model scores row after row) of ``transform`` and ``score_samples`` on a
    few rows, beside NumPy's product ``X @ W^e.T`` and one ``?gemm`` through
    the estimator's entry point (the route such rows took before the loops)."""
    X = rng.standard_normal((2048, n_features)).astype(dtype)
    model = SaturatingAutoEncoder(n_components, alpha=0.1, alpha_step=None, max_iter=1,
                                  batch_size=128, random_state=0).fit(X)
    encoder = model.encoder_weights_
    address = gemm_address(dtype)
    table = {}
    for n_rows in LATENCY_ROWS:
        rows = np.ascontiguousarray(X[:n_rows])
        codes = np.empty((n_rows, n_components), dtype)
        methods = {"transform": lambda: model.transform(rows),
                   "score_samples": lambda: model.score_samples(rows),
                   "NumPy product": lambda: rows @ encoder.T,
                   "?gemm": lambda: encode_products(address, rows, encoder, codes)}
        for method in methods.values():
            method()
        times = {name: [] for name in methods}
        for _ in range(calls):
            for name, method in methods.items():
                times[name].append(_common.measure(method)[clock_index])
        table[n_rows] = {name: float(np.median(values)) for name, values in times.items()}
    return table


def memory_case(n_samples, n_features, n_components, stored, working, order, learning_rate):
    code = MEMORY_PROBE.format(n_samples=n_samples, n_features=n_features,
                               n_components=n_components, stored=stored, dtype=working,
                               order=order, learning_rate=learning_rate)
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout
    x_bytes, before, after = (int(value) for value in output.split())
    return x_bytes, before, after


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller data")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default=None,
                        help="default: cpu with one thread, wall with more")
    parser.add_argument("--json", help="write the raw results to this file")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    clock_index = 0 if clock == "wall" else 1

    environment = _common.environment_report()
    print("# sksatae inference and memory benchmark\n")
    _common.print_environment(environment)
    print(f"- command: python benchmarks/bench_inference.py {' '.join(sys.argv[1:])}")
    print(f"- {repeats} repeats, {args.threads} BLAS thread(s), clock: {clock}\n", flush=True)

    rng = np.random.default_rng(0)
    results = {"throughput": [], "memory": []}
    rows = []
    judged = {"transform": 0.0, "transform, new output": 0.0, "score_samples": 0.0}
    full_size = dict.fromkeys(judged, 0.0)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for n_features, n_components in SHAPES:
            n_samples = int((2e8 if args.quick else 8e8) / (n_features * n_components))
            for dtype in (np.float32, np.float64):
                times = bench_throughput(n_features, n_components, dtype, repeats, n_samples, rng)
                best = {name: min(t[clock_index] for t in values) for name, values in times.items()}
                results["throughput"].append({
                    "n_features": n_features, "n_components": n_components,
                    "dtype": np.dtype(dtype).name, "n_samples": n_samples, "raw": times})
                blocked = {
                    "transform": best["transform"] / best["one GEMM, blocks"],
                    "transform, new output":
                        best["transform"] / best["one GEMM, blocks, new output"],
                    "score_samples": best["score_samples"] / best["two GEMMs, blocks"]}
                whole = {"transform": best["transform"] / best["one GEMM"],
                         "transform, new output": best["transform"] / best["one GEMM, new output"],
                         "score_samples": best["score_samples"] / best["two GEMMs"]}
                for name in judged:
                    judged[name] = max(judged[name], blocked[name])
                    full_size[name] = max(full_size[name], whole[name])
                rows.append([
                    n_features, n_components, np.dtype(dtype).name, n_samples,
                    f"{n_samples / best['transform'] / 1e3:.0f}k",
                    f"{blocked['transform']:.2f}",
                    f"{blocked['transform, new output']:.2f}",
                    f"{whole['transform']:.2f}",
                    f"{whole['transform, new output']:.2f}",
                    f"{n_samples / best['score_samples'] / 1e3:.0f}k",
                    f"{blocked['score_samples']:.2f}",
                    f"{whole['score_samples']:.2f}",
                    f"{best['score_samples'] / best['one GEMM']:.2f}",
                ])
                print(f"  d={n_features} {np.dtype(dtype).name} done", file=sys.stderr, flush=True)
    print("## Throughput (samples per second) and time ratios (best of the repeats)\n")
    print(f"\"in blocks\": the products made as the estimator makes them, compiled, in blocks "
          f"of {_kernels.ENCODE_ROWS} rows for transform and of {_kernels.ENERGY_ROWS} rows for "
          "score_samples (the targets' references); \"full-size\": each product made whole, "
          "from Python, as earlier versions of this script made them.\n")
    print(_common.markdown_table(
        ["d", "h", "dtype", "n_samples", "transform samples/s", "transform / one GEMM in blocks",
         "transform / one GEMM in blocks with a new output", "transform / one full-size GEMM",
         "transform / one full-size GEMM with a new output", "score_samples samples/s",
         "score_samples / its two GEMMs in blocks", "score_samples / its two full-size GEMMs",
         "score_samples / one full-size GEMM"], rows))

    latency_rows = []
    results["latency"] = []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for n_features, n_components in SHAPES:
            for dtype in (np.float32, np.float64):
                table = bench_latency(n_features, n_components, dtype, 51 if args.quick else 201,
                                      rng, clock_index)
                for n_rows, median in table.items():
                    results["latency"].append({
                        "n_features": n_features, "n_components": n_components,
                        "dtype": np.dtype(dtype).name, "n_rows": n_rows, "median": median})
                    latency_rows.append([
                        n_features, n_components, np.dtype(dtype).name, n_rows,
                        *(f"{1e6 * median[name]:.0f}" for name in median),
                        f"{median['transform'] / median['NumPy product']:.1f}",
                        f"{median['?gemm'] / median['NumPy product']:.1f}"])
    print(f"\n## A few rows: time per call (us, median of {51 if args.quick else 201})\n")
    print(f"Up to {_kernels.FEW_ROWS} row(s), transform and score_samples make their products "
          "with compiled loops instead of ?gemm (\"?gemm product\": the product alone through "
          "the estimator's BLAS entry point). The rest of a call is validation and checks.\n")
    print(_common.markdown_table(
        ["d", "h", "dtype", "rows", "transform", "score_samples", "NumPy product X @ W^e.T",
         "?gemm product", "transform / NumPy product", "?gemm / NumPy product"], latency_rows))

    n_samples, n_features, n_components = (40_000 if args.quick else 100_000), 256, 64
    memory_rows = []
    worst_native = 0.0
    for label, stored, working, order, learning_rate in MEMORY_CASES:
        x_bytes, before, after = memory_case(n_samples, n_features, n_components, stored,
                                             working, order, learning_rate)
        working_bytes = n_samples * n_features * np.dtype(working.replace("np.", "")).itemsize
        extra = (after - before) / working_bytes
        if stored == working and order == "C":
            worst_native = max(worst_native, extra)
        results["memory"].append({"case": label, "x_bytes": x_bytes, "working_bytes": working_bytes,
                                  "peak_before": before, "peak_after": after})
        memory_rows.append([label, f"{x_bytes / 2**20:.0f}", f"{(after - before) / 2**20:.0f}",
                            f"{extra:.2f}"])
    print(f"\n## Peak memory of fit ({n_samples} x {n_features} samples, {n_components} units)\n")
    print(_common.markdown_table(
        ["X", "X (MiB)", "fit's peak increase (MiB)", "increase / X in the working dtype"],
        memory_rows))

    print("\n## Targets\n")
    if args.quick:
        print("A --quick run multiplies fewer rows (217 to 13,888), against which the checks "
              "on the weights weigh more: the targets are judged on the full command.\n")
    for text, name in (
            ("transform within 1.2x of one GEMM into a preallocated output", "transform"),
            ("transform within 1.2x of one GEMM returning a new array", "transform, new output"),
            ("score_samples within 1.2x of its GEMMs", "score_samples")):
        print(f"- {text}: {'HELD' if judged[name] <= 1.2 else 'NOT HELD'} "
              f"(worst {judged[name]:.2f} against the products in blocks; "
              f"{full_size[name]:.2f} against the full-size ones)")
    print(f"- fit on float C-ordered X copies nothing of X's size (increase < 0.5 X): "
          f"{'HELD' if worst_native < 0.5 else 'NOT HELD'} (worst {worst_native:.2f} X)")

    if args.json:
        _common.write_json(args.json, environment, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
