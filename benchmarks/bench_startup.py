"""Start-up cost: import time, and how much of the first fit is compilation.

Run from the repository root::

    python benchmarks/bench_startup.py --quick

Each measurement runs in a fresh Python process. The compiled kernels are
cached on disk by numba; ``NUMBA_CACHE_DIR`` is pointed at a new, empty folder
for the cold case and at the folder that run filled for the warm case, so the
cache that normal use keeps (``sksatae/__pycache__``) is neither read nor
changed. Compilation is the first fit's time minus a second, identical fit in
the same process. Times are reported as both wall-clock and CPU time of the
child; on a shared machine the CPU time is the steadier of the two.

``--work-buffer`` measures instead what the estimator's warm-up of OpenBLAS's
work buffer (``sksatae._blas.warm_up_work_buffer``) saves: epochs at one
thread in fresh processes, then ``transform`` and ``score_samples`` of blocks
of 1024 rows, with the warm-up and with it replaced by a no-op, the two kinds
of process alternating.
"""

import _common

_common.scrub_blas_environment()

import argparse  # noqa: E402
import glob  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

IMPORT_PROBE = """
import time
wall, cpu = time.perf_counter(), time.process_time()
{statement}
print(time.perf_counter() - wall, time.process_time() - cpu)
"""

FIT_PROBE = """
import time
import numpy as np

def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu

from numba.core import event

class CompileClock(event.Listener):  # CPU time inside numba's outermost compile events
    depth, started, total = 0, 0.0, 0.0

    def on_start(self, ev):
        if self.depth == 0:
            self.started = time.process_time()
        self.depth += 1

    def on_end(self, ev):
        self.depth -= 1
        if self.depth == 0:
            self.total += time.process_time() - self.started

clock = CompileClock()
event.register("numba:compile", clock)

from sksatae import SaturatingAutoEncoder
X = np.random.default_rng(0).standard_normal(({n_samples}, {n_features})).astype({dtype})
def fit():
    model.fit(X)
def infer():
    model.transform(X)
    model.score_samples(X)
model = SaturatingAutoEncoder({n_components}, activation={activation!r}, alpha=0.1, alpha_step=None,
                              max_iter=1, batch_size={batch_size}, random_state=0)
first_fit = timed(fit)
fit_events = clock.total
first_infer = timed(infer)
infer_events = clock.total - fit_events
second_fit = timed(fit)
second_infer = timed(infer)
import inspect
from sksatae._kernels import sgd_epoch
# 1 where the fit ran its epochs in parts (a kernel compiled apart from the one-part one,
# whose barrier argument is None)
sync = list(inspect.signature(sgd_epoch.py_func).parameters).index("sync")
in_parts = any(str(signature[sync]) != "none" for signature in sgd_epoch.signatures)
print(*first_fit, *second_fit, *first_infer, *second_infer, fit_events, infer_events,
      int(in_parts))
"""

WORK_BUFFER_PROBE = """
import time
import numpy as np
from threadpoolctl import threadpool_limits
import sksatae._autoencoder
from sksatae import SaturatingAutoEncoder
if not {warm_up}:
    sksatae._autoencoder.warm_up_work_buffer = lambda address, dtype: None
X = np.random.default_rng(0).standard_normal(({n_samples}, {n_features})).astype(np.{dtype})
with threadpool_limits(limits=1, user_api="blas"):
    model = SaturatingAutoEncoder({n_components}, alpha=0.1, alpha_step=None, max_iter=1,
                                  batch_size={batch_size}, random_state=0)
    model.fit(X[:3 * {batch_size}])
    best = float("inf")
    for _ in range(3):
        cpu = time.process_time()
        model.partial_fit(X)
        best = min(best, time.process_time() - cpu)
    inference = []
    for method in (model.transform, model.score_samples):
        block, fastest = X[:1024], float("inf")
        method(block)
        for _ in range(3):
            cpu = time.process_time()
            for _ in range(10):
                method(block)
            fastest = min(fastest, (time.process_time() - cpu) / (10 * len(block)))
        inference.append(fastest)
print(best / {n_samples}, *inference)
"""

WORK_BUFFER_SHAPES = ((144, 100), (784, 300), (3072, 300))
WORK_BUFFER_BATCHES = (16, 128)

STATEMENTS = {
    "import sksatae": "import sksatae",
    "from sksatae import SaturatingAutoEncoder": "from sksatae import SaturatingAutoEncoder",
    "import sklearn.base, numba (baseline)": "import sklearn.base, numba",
}


def run_child(code, environment):
    output = subprocess.run([sys.executable, "-c", code], env=environment, check=True,
                            capture_output=True, text=True).stdout
    return [float(value) for value in output.split()]


def child_environment(cache_dir=None):
    environment = dict(os.environ)
    environment.pop("SKSATAE_NUMBA_CACHE", None)
    if cache_dir is not None:
        environment["NUMBA_CACHE_DIR"] = cache_dir
    return environment


def best_and_median(values):
    return min(values), statistics.median(values)


def bench_work_buffer(repeats):
    """Seconds per sample of an epoch, ``transform`` and ``score_samples``, without
    and with the work buffer's warm-up."""
    rows, results = [], []
    for n_features, n_components in WORK_BUFFER_SHAPES:
        for batch_size in WORK_BUFFER_BATCHES:
            # About 0.2 s per epoch on the machine this was written on.
            n_samples = max(8 * batch_size,
                            int(4e8 / (n_features * n_components)) // batch_size * batch_size)
            for dtype in ("float32", "float64"):
                runs = {False: [], True: []}
                for _ in range(repeats):
                    for warm_up in (False, True):
                        probe = WORK_BUFFER_PROBE.format(
                            warm_up=warm_up, n_samples=n_samples, n_features=n_features,
                            n_components=n_components, batch_size=batch_size, dtype=dtype)
                        runs[warm_up].append(run_child(probe, child_environment()))
                # Columns: epoch, transform, score_samples (seconds per sample).
                fresh = [min(run[i] for run in runs[False]) for i in range(3)]
                warmed = [min(run[i] for run in runs[True]) for i in range(3)]
                results.append({"n_features": n_features, "n_components": n_components,
                                "batch_size": batch_size, "dtype": dtype,
                                "seconds_per_sample": {"fresh": runs[False],
                                                       "warmed": runs[True]}})
                ratios = [f"{f / w:.2f}" for f, w in zip(fresh, warmed)]
                rows.append([n_features, n_components, batch_size, dtype,
                             f"{1e-3 / fresh[0]:.1f}k", f"{1e-3 / warmed[0]:.1f}k", *ratios])
                print(f"  d={n_features} h={n_components} batch={batch_size} {dtype}: "
                      f"fresh/warmed {', '.join(ratios)}", flush=True)
    print("\n## One thread in a fresh process, with OpenBLAS's work buffer fresh or warmed "
          "(CPU time, best of the processes)\n")
    print("Epoch samples/s, then time ratios fresh/warmed of the epoch, and of transform "
          "and score_samples on blocks of 1024 rows.\n")
    print(_common.markdown_table(
        ["d", "h", "batch", "dtype", "epoch samples/s, buffer fresh", "warmed",
         "epoch fresh/warmed", "transform fresh/warmed", "score_samples fresh/warmed"], rows))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--activation", default="shrink",
                        help="activation of the fitted model (kernels for the closed forms and "
                             "for tabulated activations are compiled separately)")
    parser.add_argument("--batch-size", type=int, default=10,
                        help="batch size of the fitted model (default: the estimator's, 10); "
                             "1 compiles the single-sample kernel instead of the minibatch one")
    parser.add_argument("--shape", type=int, nargs=3, default=(2000, 64, 32),
                        metavar=("N_SAMPLES", "N_FEATURES", "N_COMPONENTS"),
                        help="size of the fitted data and model (default 2000 64 32); at "
                             "sizes where the estimator takes two threads, the first fit "
                             "compiles the kernel for epochs in parts instead")
    parser.add_argument("--work-buffer", action="store_true",
                        help="only measure what the warm-up of OpenBLAS's work buffer saves")
    parser.add_argument("--json", help="write the raw results to this file")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)

    environment = _common.environment_report()
    print("# sksatae start-up benchmark\n")
    _common.print_environment(environment)
    print(f"- command: python benchmarks/bench_startup.py {' '.join(sys.argv[1:])}")
    print(f"- {repeats} fresh processes per measurement\n", flush=True)
    if args.work_buffer:
        results = bench_work_buffer(repeats)
        if args.json:
            _common.write_json(args.json, environment, {"work_buffer": results})
        return 0

    results = {"imports": {}, "fits": {}}
    # Imports: warm the file-system cache once, then interleave the statements.
    for statement in STATEMENTS.values():
        run_child(IMPORT_PROBE.format(statement=statement), child_environment())
    samples = {name: [] for name in STATEMENTS}
    for _ in range(repeats):
        for name, statement in STATEMENTS.items():
            samples[name].append(run_child(IMPORT_PROBE.format(statement=statement),
                                           child_environment()))
    rows = []
    baseline_cpu = best_and_median([s[1] for s in samples["import sklearn.base, numba (baseline)"]])
    for name, values in samples.items():
        wall, cpu = best_and_median([v[0] for v in values]), best_and_median([v[1] for v in values])
        results["imports"][name] = {"wall": [v[0] for v in values],
                                    "cpu": [v[1] for v in values]}
        # ``import sksatae`` loads neither scikit-learn nor numba: nothing to subtract.
        added = f"{cpu[0] - baseline_cpu[0]:.4f}" if name.startswith("from") else "-"
        rows.append([name, f"{wall[0]:.4f}", f"{wall[1]:.4f}", f"{cpu[0]:.4f}", added])
    print("## Import time (seconds, best and median of the processes)\n")
    print(_common.markdown_table(
        ["statement", "wall best", "wall median", "CPU best", "CPU added to the baseline"], rows))

    fit_rows = []
    n_samples, n_features, n_components = args.shape
    for dtype in ("np.float64", "np.float32"):
        cold, warm = [], []
        probe = FIT_PROBE.format(dtype=dtype, activation=args.activation,
                                 batch_size=args.batch_size, n_samples=n_samples,
                                 n_features=n_features, n_components=n_components)
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="sksatae-numba-cache-") as cache_dir:
                cold.append(run_child(probe, child_environment(cache_dir)))
                cached = glob.glob(os.path.join(cache_dir, "**", "*.nb[ic]"), recursive=True)
                if not cached:
                    raise RuntimeError(f"numba wrote no cache files under {cache_dir}")
                warm.append(run_child(probe, child_environment(cache_dir)))
        results["fits"][dtype] = {"cold": cold, "warm": warm, "cache_files": len(cached)}
        for label, runs in (("cold cache", cold), ("warm cache", warm)):
            # columns of a run: first fit wall, cpu; second fit wall, cpu; first
            # inference wall, cpu; second inference wall, cpu; numba's compile events
            # in the first fit and in the first inference (cpu)
            first_fit = best_and_median([r[1] for r in runs])[0]
            second_fit = best_and_median([r[3] for r in runs])[0]
            first_infer = best_and_median([r[5] for r in runs])[0]
            second_infer = best_and_median([r[7] for r in runs])[0]
            fit_rows.append([
                dtype.replace("np.", ""), label, f"{best_and_median([r[0] for r in runs])[0]:.3f}",
                f"{first_fit:.3f}", f"{second_fit:.3f}", f"{first_fit - second_fit:.3f}",
                f"{best_and_median([r[8] for r in runs])[0]:.3f}",
                f"{first_infer - second_infer:.3f}",
                f"{best_and_median([r[9] for r in runs])[0]:.3f}",
                ("single sample" if args.batch_size == 1 else
                 " or ".join(sorted({"in parts" if r[10] else "one part" for r in runs}))),
            ])
    print("\n## First fit in a fresh process (seconds; best of the processes)\n")
    print(f"Fit of {args.shape[0]} x {args.shape[1]} samples, {args.shape[2]} units "
          f"({args.activation}), batch size {args.batch_size}, one epoch; then transform + "
          "score_samples.\n")
    print("\"Compile\" is the first call's CPU time less the second's: numba's compilation,"
          " and its start-up, which a warm cache does not save. \"Compile events\" is the"
          " part numba's own compile events account for (``numba.core.event``).\n")
    print(_common.markdown_table(
        ["dtype", "numba cache", "first fit wall", "first fit CPU", "second fit CPU",
         "compile in fit (CPU)", "compile events in fit (CPU)",
         "compile in transform + score_samples (CPU)", "compile events (CPU)",
         "epoch kernel"], fit_rows))

    print("\n## Targets\n")
    import_cpu = best_and_median([s[1] for s in samples["import sksatae"]])[0]
    print(f"- import sksatae <= 0.5 s: {'HELD' if import_cpu <= 0.5 else 'NOT HELD'} "
          f"({import_cpu:.4f} s CPU)")
    for label, index, limit in (("cold", 0, 5.0), ("warm", 1, 0.5)):
        worst_fit = max(float(row[5]) for row in fit_rows[index::2])
        worst = max(float(row[5]) + float(row[7]) for row in fit_rows[index::2])
        worst_events = max(float(row[6]) for row in fit_rows[index::2])
        print(f"- {label} cache: first fit's compile <= {limit:g} s: "
              f"{'HELD' if worst_fit <= limit else 'NOT HELD'} (worst {worst_fit:.3f} s CPU, "
              f"of which compile events {worst_events:.3f} s); with the first transform/score "
              f"added: {'HELD' if worst <= limit else 'NOT HELD'} (worst {worst:.3f} s CPU)")

    if args.json:
        _common.write_json(args.json, environment, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
