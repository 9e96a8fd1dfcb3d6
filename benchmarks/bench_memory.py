"""Memory of training on data larger than the working set.

Run from the repository root::

    python benchmarks/bench_memory.py --quick
    python benchmarks/bench_memory.py --json memory.json

A float32 file of ``--size-gb`` (``d=784`` columns) is written to a temporary
folder and opened as a read-only ``np.memmap``. Each case runs in a fresh
process, which imports everything, compiles the kernels on a tiny fit, then
trains and reports three measures of the memory training added:

- ``anonymous``: the peak increase of the process's anonymous resident memory
  (``RssAnon`` in ``/proc/self/status``, sampled every millisecond by a
  thread; compiled kernels release the GIL). This is the memory training
  itself holds, what must fit in RAM.
- ``allocations``: the peak of NumPy's allocations (``tracemalloc``; it does
  not see the kernels' own small buffers).
- ``added``: the larger of the two, what the tables report as training's cost
  (memory freed earlier and reused does not raise ``RssAnon``).
- ``resident``: the increase of the peak resident size (``VmHWM``, first reset
  through ``/proc/self/clear_refs``). It includes the file's pages that the
  memory map brought in, which the kernel reclaims under memory pressure, so it
  grows with the file while free memory lasts.

Cases: ``partial_fit`` over the memory map in chunks of several sizes (one
pass over the file), ``fit`` on the memory map itself (one epoch in shuffled
order, by index), and ``fit`` on an in-memory float32 array.
"""

import _common

_common.scrub_blas_environment()

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

N_FEATURES = 784

PROBE = """
import json, threading, time, tracemalloc
import numpy as np
from sksatae import SaturatingAutoEncoder

def status():
    values = {{}}
    with open("/proc/self/status") as lines:
        for line in lines:
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                values[name] = int(rest.split()[0]) * 1024
    return values

def make_model():
    return SaturatingAutoEncoder({n_components}, alpha=0.1, alpha_step=None, max_iter=1,
                                 batch_size={batch_size}, n_threads=1, random_state=0)

make_model().partial_fit(np.random.default_rng(0).standard_normal((512, {n_features}),
                                                                  dtype=np.float32))
if {in_memory}:
    X = np.empty(({n_rows}, {n_features}), dtype=np.float32)
    rng = np.random.default_rng(1)
    for start in range(0, len(X), 10_000):
        X[start:start + 10_000] = rng.standard_normal((len(X[start:start + 10_000]),
                                                       {n_features}), dtype=np.float32)
else:
    X = np.memmap({path!r}, dtype=np.float32, mode="r", shape=({n_rows}, {n_features}))

peak_anonymous, done = [0], threading.Event()
def sample():
    while not done.is_set():
        peak_anonymous[0] = max(peak_anonymous[0], status()["RssAnon"])
        time.sleep(0.001)

with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
before = status()
sampler = threading.Thread(target=sample)
sampler.start()
tracemalloc.start()
start = time.perf_counter()
model = make_model()
if {chunk_rows}:
    for first in range(0, len(X), {chunk_rows}):
        model.partial_fit(X[first:first + {chunk_rows}])
else:
    model.fit(X)
seconds = time.perf_counter() - start
allocations = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
done.set()
sampler.join()
after = status()
model_bytes = sum(getattr(model, name).nbytes for name in
                  ("components_", "encoder_weights_", "intercept_hidden_", "intercept_visible_"))
print(json.dumps({{"x_bytes": int(X.nbytes), "model_bytes": model_bytes, "seconds": seconds,
                  "anonymous": max(peak_anonymous[0], after["RssAnon"]) - before["RssAnon"],
                  "allocations": allocations,
                  "resident": after["VmHWM"] - before["VmRSS"],
                  "file_pages_after": after["RssFile"] - before["RssFile"]}}))
"""


def write_data(path, n_rows, n_features):
    """Standard normal float32 rows, written in blocks (never the whole array in memory)."""
    data = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, n_features))
    rng = np.random.default_rng(0)
    for start in range(0, n_rows, 20_000):
        block = data[start:start + 20_000]
        block[...] = rng.standard_normal(block.shape, dtype=np.float32)
    data.flush()
    del data


def run_case(path, n_rows, chunk_rows, in_memory, n_components, batch_size):
    code = PROBE.format(path=str(path), n_rows=n_rows, n_features=N_FEATURES,
                        chunk_rows=chunk_rows, in_memory=in_memory,
                        n_components=n_components, batch_size=batch_size)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(n_bytes):
    return f"{n_bytes / 2**20:.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 0.25 GB file instead of 1.5 GB")
    parser.add_argument("--size-gb", type=float, default=None, help="size of the data file")
    parser.add_argument("--n-components", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunks", type=int, nargs="+", default=[2_000, 10_000, 50_000],
                        help="rows per partial_fit call")
    parser.add_argument("--folder", help="where to write the data file (default: a temporary "
                        "folder, removed afterwards)")
    parser.add_argument("--json", help="write the raw results to this file")
    args = parser.parse_args(argv)
    size_gb = args.size_gb or (0.25 if args.quick else 1.5)
    n_rows = int(size_gb * 1e9 / (4 * N_FEATURES))

    environment = _common.environment_report()
    print("# sksatae memory benchmark\n")
    _common.print_environment(environment)
    print(f"- command: python benchmarks/bench_memory.py {' '.join(sys.argv[1:])}")
    print(f"- data: {n_rows} x {N_FEATURES} float32 ({n_rows * N_FEATURES * 4 / 2**30:.2f} GiB), "
          f"{args.n_components} units, batch_size={args.batch_size}, one BLAS thread\n",
          flush=True)

    results = []
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        path = Path(folder) / "X.float32"
        started = time.perf_counter()
        write_data(path, n_rows, N_FEATURES)
        print(f"  data written in {time.perf_counter() - started:.0f} s", file=sys.stderr,
              flush=True)
        cases = [(f"partial_fit, memmap, chunks of {rows} rows", rows, False, n_rows)
                 for rows in args.chunks]
        cases.append(("fit, memmap (one shuffled epoch)", 0, False, n_rows))
        in_memory_rows = min(n_rows, int(0.25e9 / (4 * N_FEATURES)))
        cases.append(("fit, in-memory array", 0, True, in_memory_rows))
        for label, chunk_rows, in_memory, rows in cases:
            result = run_case(path, rows, chunk_rows, in_memory, args.n_components,
                              args.batch_size)
            result.update(case=label, chunk_rows=chunk_rows, rows=rows,
                          chunk_bytes=chunk_rows * N_FEATURES * 4)
            results.append(result)
            print(f"  {label}: done in {result['seconds']:.0f} s", file=sys.stderr, flush=True)

    rows = []
    for r in results:
        # Memory that the process freed earlier and reuses does not raise RssAnon, and
        # tracemalloc does not see the kernels' buffers: the larger of the two counts.
        r["added"] = max(r["anonymous"], r["allocations"])
        chunk = mib(r["chunk_bytes"]) if r["chunk_rows"] else "-"
        rows.append([r["case"], mib(r["x_bytes"]), chunk, mib(r["model_bytes"]),
                     mib(r["anonymous"]), mib(r["allocations"]), mib(r["added"]),
                     f"{r['added'] / r['x_bytes']:.3f}", mib(r["resident"]),
                     f"{r['seconds']:.0f}"])
    print("## Memory added by training (MiB)\n")
    print(_common.markdown_table(
        ["case", "X", "chunk", "model", "anonymous (peak)", "NumPy allocations (peak)",
         "added (larger of the two)", "added / X", "resident incl. file pages (peak)",
         "seconds"], rows))

    chunked = [r for r in results if r["chunk_rows"]]
    bound = max(r["added"] - (r["chunk_bytes"] + r["model_bytes"]) for r in chunked)
    print("\n## Targets\n")
    print(f"- partial_fit over a memmap holds no more than one chunk plus the model plus "
          f"64 MiB of working buffers: {'HELD' if bound < 64 * 2**20 else 'NOT HELD'} "
          f"(worst excess over chunk + model {mib(bound)} MiB)")
    fits = [r for r in results if not r["chunk_rows"]]
    worst_fit = max(r["added"] / r["x_bytes"] for r in fits)
    print(f"- fit adds less than a quarter of X: {'HELD' if worst_fit < 0.25 else 'NOT HELD'} "
          f"(worst {worst_fit:.3f} X)")

    if args.json:
        _common.write_json(args.json, environment, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
