"""Training speed: one SGD epoch of SaturatingAutoEncoder against its BLAS floor,
PyTorch (autograd and hand-written gradients) and scikit-learn's MLPRegressor.

Run from the repository root::

    python benchmarks/bench_training.py --quick
    python benchmarks/bench_training.py --json training.json

Every competitor trains the same model on the same data: ``d`` inputs, ``h``
shrink units with untied weights, loss ``1/2 ||x - G(x)||^2 + alpha |h|_1``
averaged over the minibatch, plain SGD with the estimator's step, samples
visited in a new random order each epoch and the decoder's basis elements
re-projected to unit norm every 10 samples, that is after every update at
batch sizes of 10 and more (the estimator's defaults). The BLAS floor is the
five matrix products of each SGD step and nothing else, made by the kernel's
own calls (see ``_common.compiled_gemm_floor``); PyTorch's time over the
floor's is what a kernel exactly at the floor would reach against PyTorch,
the best that any implementation making these products on this BLAS can do.
At batch 1 the estimator makes none of them: its single-sample kernel updates
the weights in fewer passes than the products make, and can beat the floor.
"required" (batch sizes above 1) is the floor plus the two pieces of work that
the algorithm needs and the products leave out: the gather of each
minibatch's rows in a new random order, and the decoder's re-projection;
PyTorch's time over its time is the most that any implementation of this
algorithm on this BLAS can reach, whatever it does about the rest of a step
(unit responses, residual, biases, loss), if it re-projects the decoder by a
pass over its rows, as ours and PyTorch do. The estimator without the
decoder's re-projection ("unprojected") shows how much of our distance to the
floor is that projection, which the floor leaves out; without the shuffle
("unshuffled", not run unless asked for with ``--methods``), how much is the
gather of rows in a random order, where the floor reads consecutive ones.
MLPRegressor fits ``X`` to ``X`` with
one ReLU hidden layer of the same size, plain SGD (no momentum): the closest
scikit-learn model. Before the timed repeats, every method runs once untimed
under each thread limit of the run, so that what it pays only on its first
run under a limit (loading a kernel, starting worker threads, warming each
thread's BLAS buffers) is not timed. Methods are measured in turn inside each
repeat (ours, floor, required, ..., PyTorch, ..., ours, floor, ...), so load
on the machine hits them alike. Ratios come two ways: of the best times over
the repeats, and as the median over the repeats of each repeat's ratio of two
methods timed in the same repeat ("paired"), which one repeat spared by the
load for one method alone does not move. Ours, the floor and "required" run
back to back, in that order; PyTorch and MLPRegressor run after the others
(five to seven runs after ours with the default methods), so a change in the
load between the two can still move their paired ratios. The targets are
judged both ways, beside how much the floor's own repeats spread.

A ratio within a few hundredths of its target's limit is decided by the load
as much as by the code. So every configuration in which a ratio that decides
a target comes within 3% of the limit (``--confirm-band``), on either side,
is measured a second time after the first pass: 14 more repeats
(``--confirm-repeats``; none with ``--quick``) of ours, the floor and PyTorch
autograd, interleaved as before. The targets are then judged again, on all
the repeats of those rows; both judgements are printed.

``--blas mkl`` points ours and the floor at MKL's ``?gemm`` (the ``mkl``
package) instead of SciPy's, so that ours and PyTorch run on one library:
it tells the library's share of the ratios from the kernels'.

Each measured run makes at least ``--min-steps`` minibatch steps (16; 3 with
``--quick``) where the data size allows. Ours is ``partial_fit``, whose fixed
cost per call (copying the weights, so that a call that fails leaves the model
as it was; the intercepts' change of coordinates; the checks of the weights
and of the last update) took about 10 ms at ``d=3072``, ``h=300``, float64,
0.6 of a step at batch 16: in runs of 8 steps it weighed 5 to 10% against the
floor, which has none (``docs/performance_log.md``).

Clocks: with one thread the process's CPU time is used (on a shared machine it
excludes time spent waiting for a core, so it is the cost of the work), each
run starting once no other thread of the process uses the CPU (a BLAS worker
still spinning after a run with more threads would be counted with it); with
more threads, wall-clock time. ``--clock`` overrides this.
"""

import _common

_common.scrub_blas_environment()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from sksatae import SaturatingAutoEncoder  # noqa: E402
from sksatae._blas import gemm_address, warm_up_work_buffer  # noqa: E402
from sksatae._parts import aligned_copy  # noqa: E402
from sksatae._threads import ThreadChoice  # noqa: E402

SHAPES = [(144, 100), (784, 300), (3072, 300)]
"""(n_features, n_components): 12x12 patches, MNIST, CIFAR-10 sized inputs."""

ALPHA = 0.1
SHRINK_WIDTH = 0.1

METHODS = ["ours", "floor", "required", "floor_py", "unprojected", "unshuffled", "torch",
           "torch_manual", "mlp"]
DEFAULT_METHODS = [name for name in METHODS if name != "unshuffled"]
LABELS = {"ours": "ours", "floor": "floor", "required": "required", "floor_py": "floor-py",
          "unprojected": "unprojected", "unshuffled": "unshuffled", "torch": "PyTorch",
          "torch_manual": "PyTorch-manual", "mlp": "MLP"}


def fewer_threads(row):
    """Whether ours kept one thread in ``row`` where the floor's products could use more."""
    return row["threads"] > 1 and row["ours_threads"] == [1]


FLOOR_TARGETS = [
    ("epoch within 1.15x of the BLAS floor at batch >= 16", 1.15,
     lambda r: r["batch_size"] >= 16 and not fewer_threads(r)),
    ("epoch within 1.2x of the BLAS floor at batch 1", 1.2, lambda r: r["batch_size"] == 1),
]
"""(name, most ours/floor may be, rows it applies to)."""

TORCH_TARGETS = [
    ("vs PyTorch autograd, d=144: >= 50x at batch 1", 50,
     lambda r: r["n_features"] == SHAPES[0][0] and r["batch_size"] == 1),
    ("vs PyTorch autograd, d=144: >= 8x at batch <= 16", 8,
     lambda r: r["n_features"] == SHAPES[0][0] and r["batch_size"] <= 16),
    ("vs PyTorch autograd, larger shapes: >= 1.8x at batch 16", 1.8,
     lambda r: r["n_features"] != SHAPES[0][0] and r["batch_size"] == 16),
    ("vs PyTorch autograd, larger shapes: >= 1.2x at batch >= 128", 1.2,
     lambda r: r["n_features"] != SHAPES[0][0] and r["batch_size"] >= 128),
    ("never slower than PyTorch autograd", 1.0, lambda r: True),
]
"""(name, least PyTorch/ours may be, rows it applies to)."""


def batch_sizes_for(n_features, quick):
    sizes = [16, 128, 1024] if not quick else [16, 1024]
    return ([1] if n_features == SHAPES[0][0] else []) + sizes


# ----------------------------------------------------------------- methods


class Ours:
    """One epoch of the estimator at a fixed alpha: ``partial_fit`` of a fitted model.

    ``partial_fit`` runs exactly one pass; the initial ``fit`` (``max_iter=1``,
    no alpha schedule) compiles the kernels and draws the weights, which a
    timed ``fit`` would also count (10% of an epoch at 3072 features).
    """

    def __init__(self, X, n_components, batch_size, n_threads="auto", project=True,
                 shuffle=True):
        self.model = SaturatingAutoEncoder(
            n_components, alpha=ALPHA, alpha_step=None, max_iter=1, batch_size=batch_size,
            shrink_width=SHRINK_WIDTH, shuffle=shuffle, random_state=0, n_threads=n_threads,
            normalize_decoder_every="auto" if project else None)
        self.model.fit(X[: max(batch_size * 3, 64)])  # compile (or load from cache)
        self.X = X

    def prepare(self, n_samples):
        self.data = self.X[:n_samples]

    def run(self):
        self.model.partial_fit(self.data)


class GemmFloor:
    """The five GEMMs of each SGD step, compiled, through the same BLAS entry point."""

    _compiled = None

    def __init__(self, X, n_components, batch_size):
        if GemmFloor._compiled is None:
            GemmFloor._compiled = _common.compiled_gemm_floor()
        rng = np.random.default_rng(0)
        dtype, n_features = X.dtype, X.shape[1]
        self.address = gemm_address(dtype)
        # As the estimator does before its minibatch epochs (at batch 1 it calls no
        # BLAS and does not): the floor's speed must not depend on whether an
        # earlier configuration of the run warmed the buffer (docs/performance_log.md).
        warm_up_work_buffer(self.address, dtype)
        # A tiny nonzero step keeps the weights at their initial scale (no
        # growth, no denormals), while BLAS still does the full update.
        self.step = 1e-7
        # Cache-line aligned, as the estimator's working copies are.
        self.encoder = aligned_copy(0.1 * rng.standard_normal((n_components, n_features)), dtype)
        self.decoder = aligned_copy(self.encoder)
        # For the same from Python (GemmFloorPython): per-unit buffers flat,
        # used units by samples.
        self.buffers = [np.empty(batch_size * n_components, dtype),
                        np.empty((batch_size, n_features), dtype),
                        np.empty(batch_size * n_components, dtype)]
        self.X, self.batch_size = X, batch_size
        self.prepare(min(len(X), 2 * batch_size))
        self.run()

    def prepare(self, n_samples):
        self.data = self.X[:n_samples]

    def run(self):
        GemmFloor._compiled(self.address, self.data, self.encoder, self.decoder,
                            self.batch_size, self.step)


class RequiredFloor(GemmFloor):
    """The floor plus the work the algorithm requires beyond its five products.

    Each minibatch is gathered from a new random order of the samples (drawn
    per epoch, as the estimator draws its own), and the decoder's rows are
    re-projected on the estimator's schedule by the estimator's projection
    (``_common.compiled_gemm_floor(required=True)``). PyTorch's time over this
    one's bounds what any implementation of the algorithm on this BLAS can
    reach against PyTorch, whatever it does about the rest of a step, if it
    re-projects by a pass over the decoder's rows (``docs/performance_log.md``
    says how one could avoid that pass, and what it would save).
    """

    _compiled_required = None

    def __init__(self, X, n_components, batch_size):
        if RequiredFloor._compiled_required is None:
            RequiredFloor._compiled_required = _common.compiled_gemm_floor(required=True)
        self.normalize_every = _common.updates_per_projection(batch_size)
        self.rng = np.random.default_rng(0)
        super().__init__(X, n_components, batch_size)

    def run(self):
        order = self.rng.permutation(len(self.data))
        RequiredFloor._compiled_required(self.address, self.data, order, self.encoder,
                                         self.decoder, self.batch_size, self.step,
                                         self.normalize_every)


class GemmFloorPython:
    """The same five GEMMs from Python, as scipy.linalg.blas calls writing in place."""

    def __init__(self, X, n_components, batch_size):
        from scipy.linalg import blas

        floor = GemmFloor(X, n_components, batch_size)
        self.gemm = blas.sgemm if X.dtype == np.float32 else blas.dgemm
        self.encoder, self.decoder, self.buffers = floor.encoder, floor.decoder, floor.buffers
        self.X, self.batch_size, self.step = X, batch_size, floor.step

    def prepare(self, n_samples):
        self.data = self.X[:n_samples]

    def run(self):
        # scipy's gemm takes column-major (Fortran) arrays: the transpose of a
        # row-major array is one. Per-unit buffers are units by samples, as in
        # the kernel, so a row-major (units, size) buffer is passed as a
        # column-major (size, units) one.
        gemm, step, encoder, decoder = self.gemm, self.step, self.encoder, self.decoder
        codes, residual, grad = self.buffers
        X, batch_size = self.data, self.batch_size
        n_components = encoder.shape[0]
        for start in range(0, len(X), batch_size):
            xb = X[start:start + batch_size]
            size = len(xb)
            rb = residual[:size]
            zb = codes[:size * n_components].reshape(n_components, size)
            gb = grad[:size * n_components].reshape(n_components, size)
            gemm(1.0, xb.T, encoder.T, 0.0, zb.T, trans_a=1, overwrite_c=1)  # Z = We Xb^T
            gemm(1.0, decoder.T, zb.T, 0.0, rb.T, trans_b=1, overwrite_c=1)  # Xr = H^T Wd
            gemm(1.0, rb.T, decoder.T, 0.0, gb.T, trans_a=1, overwrite_c=1)  # dH = Wd R^T
            gemm(-step, rb.T, zb.T, 1.0, decoder.T, overwrite_c=1)  # Wd -= step H R
            gemm(-step, xb.T, gb.T, 1.0, encoder.T, overwrite_c=1)  # We -= step dZ Xb


class TorchAutograd:
    """PyTorch as usually written: nn.Module of two nn.Linear, autograd, optim.SGD."""

    def __init__(self, X, n_components, batch_size, learning_rate):
        import torch
        from torch import nn

        class SaturatingAutoEncoderModule(nn.Module):
            def __init__(self, n_features, n_components):
                super().__init__()
                self.encoder = nn.Linear(n_features, n_components)
                self.decoder = nn.Linear(n_components, n_features)

            def forward(self, x):
                codes = nn.functional.softshrink(self.encoder(x), SHRINK_WIDTH)
                return self.decoder(codes), codes

        torch.manual_seed(0)
        self.torch = torch
        self.module = SaturatingAutoEncoderModule(X.shape[1], n_components).to(
            torch.float32 if X.dtype == np.float32 else torch.float64)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=learning_rate)
        self.X_all = torch.from_numpy(X)
        self.batch_size = batch_size
        self.prepare(min(len(X), 3 * batch_size))
        self.run()

    def prepare(self, n_samples):
        self.X = self.X_all[:n_samples]

    def run(self):
        torch, module, optimizer = self.torch, self.module, self.optimizer
        order = torch.randperm(len(self.X))
        total = torch.zeros(())
        for update, start in enumerate(range(0, len(self.X), self.batch_size), start=1):
            xb = self.X[order[start:start + self.batch_size]]
            reconstruction, codes = module(xb)
            loss = (0.5 * ((reconstruction - xb) ** 2).sum(dim=1).mean()
                    + ALPHA * codes.abs().sum(dim=1).mean())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach()
            if update % _common.updates_per_projection(self.batch_size) == 0:
                with torch.no_grad():
                    weight = module.decoder.weight  # (n_features, n_components)
                    weight /= weight.norm(dim=0, keepdim=True)
        return float(total)


class TorchManual:
    """PyTorch with hand-written gradients and preallocated buffers (mm with out=, addmm_)."""

    def __init__(self, X, n_components, batch_size, learning_rate):
        import torch

        torch.manual_seed(0)
        self.torch = torch
        dtype = torch.float32 if X.dtype == np.float32 else torch.float64
        n_features = X.shape[1]
        bound = 1.0 / math.sqrt(n_features)
        self.encoder = torch.empty(n_components, n_features, dtype=dtype).uniform_(-bound, bound)
        self.encoder_bias = torch.zeros(n_components, dtype=dtype)
        self.decoder = torch.empty(n_features, n_components, dtype=dtype).uniform_(
            -1 / math.sqrt(n_components), 1 / math.sqrt(n_components))
        self.decoder_bias = torch.zeros(n_features, dtype=dtype)
        self.pre = torch.empty(batch_size, n_components, dtype=dtype)
        self.codes = torch.empty(batch_size, n_components, dtype=dtype)
        self.residual = torch.empty(batch_size, n_features, dtype=dtype)
        self.grad_hidden = torch.empty(batch_size, n_components, dtype=dtype)
        self.learning_rate = learning_rate
        self.X_all = torch.from_numpy(X)
        self.batch_size = batch_size
        self.prepare(min(len(X), 3 * batch_size))
        self.run()

    def prepare(self, n_samples):
        self.X = self.X_all[:n_samples]

    def run(self):
        torch = self.torch
        order = torch.randperm(len(self.X))
        total = torch.zeros((), dtype=torch.float64)
        encoder, encoder_bias = self.encoder, self.encoder_bias
        decoder, decoder_bias = self.decoder, self.decoder_bias
        for update, start in enumerate(range(0, len(self.X), self.batch_size), start=1):
            xb = self.X[order[start:start + self.batch_size]]
            size = len(xb)
            step = self.learning_rate / size
            pre, codes = self.pre[:size], self.codes[:size]
            residual, grad_hidden = self.residual[:size], self.grad_hidden[:size]
            torch.addmm(encoder_bias, xb, encoder.t(), out=pre)
            codes.copy_(torch.nn.functional.softshrink(pre, SHRINK_WIDTH))
            torch.addmm(decoder_bias, codes, decoder.t(), out=residual)
            residual -= xb
            total += 0.5 * residual.square().sum() + ALPHA * codes.abs().sum()
            torch.mm(residual, decoder, out=grad_hidden)
            decoder.addmm_(residual.t(), codes, alpha=-step)
            decoder_bias.sub_(residual.sum(dim=0), alpha=step)
            # dL/dz = dL/dh f'(z) + alpha f_c'(z); for the shrink, f'(z) = |sign(h)|
            # and f_c'(z) = sign(h).
            sign = codes.sign()
            grad_hidden.mul_(sign.abs()).add_(sign, alpha=ALPHA)
            encoder.addmm_(grad_hidden.t(), xb, alpha=-step)
            encoder_bias.sub_(grad_hidden.sum(dim=0), alpha=step)
            if update % _common.updates_per_projection(self.batch_size) == 0:
                decoder /= decoder.norm(dim=0, keepdim=True)
        return float(total)


class MLP:
    """scikit-learn's MLPRegressor fitted X -> X, one epoch of plain SGD."""

    def __init__(self, X, n_components, batch_size, learning_rate):
        from sklearn.neural_network import MLPRegressor

        self.model = MLPRegressor(
            hidden_layer_sizes=(n_components,), activation="relu", solver="sgd",
            batch_size=batch_size, learning_rate_init=min(learning_rate, 1e-3), momentum=0.0,
            alpha=0.0, shuffle=True, random_state=0)
        self.X = X
        warm = X[: min(len(X), 3 * batch_size)]
        self.model.partial_fit(warm, warm)

    def prepare(self, n_samples):
        self.data = self.X[:n_samples]

    def run(self):
        self.model.partial_fit(self.data, self.data)


# ----------------------------------------------------------------- driver


def use_mkl_for_ours():
    """Point the estimator's kernels and the floor at MKL's ``?gemm`` (``--blas mkl``).

    The kernels take the routine's address as an argument; the estimator looks
    it up with ``gemm_address``, which is replaced here. For comparisons on
    one library only: the estimator itself always uses SciPy's BLAS.
    """
    global gemm_address
    import sksatae._autoencoder

    addresses = _common.mkl_gemm_addresses()
    if addresses is None:
        raise SystemExit("--blas mkl: no libmkl_rt in this environment (pip install mkl)")

    def mkl_address(dtype):
        return addresses[np.dtype(dtype)]

    sksatae._autoencoder.gemm_address = gemm_address = mkl_address


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def set_torch_threads(n_threads):
    if torch_available():
        import torch

        torch.set_num_threads(n_threads)


def calibrate(method, batch_size, n_max, target_seconds, clock_index, min_steps):
    """Number of samples (a multiple of ``batch_size``) for a run of about target, and of
    at least ``min_steps`` batches where ``n_max`` allows (always at least 3)."""
    least = max(3 * batch_size, min(n_max, min_steps * batch_size) // batch_size * batch_size)
    n_samples = min(n_max, max(3 * batch_size, 256 // batch_size * batch_size))
    while True:
        method.prepare(n_samples)
        seconds = _common.measure(method.run)[clock_index]
        if seconds > target_seconds / 4 or n_samples >= n_max:
            break
        n_samples = min(n_max, n_samples * 4)
    per_sample = seconds / n_samples
    wanted = int(target_seconds / max(per_sample, 1e-12))
    return max(least, min(n_max, wanted) // batch_size * batch_size)


def bench_configuration(n_features, n_components, batch_size, dtype, threads, args, rng):
    """Best time per sample of each method, for each thread count."""
    n_max = max(3 * batch_size, min(args.max_samples, int(args.max_bytes / (n_features * 8))))
    X = rng.standard_normal((n_max, n_features)).astype(dtype)
    has_torch = torch_available()
    methods = {}
    with threadpool_limits(limits=1, user_api="blas"):
        set_torch_threads(1)
        methods["ours"] = Ours(X, n_components, batch_size, args.estimator_threads)
        learning_rate = methods["ours"].model.learning_rate_
        methods["floor"] = GemmFloor(X, n_components, batch_size)
        if "required" in args.methods and batch_size > 1:
            # At batch 1 ours makes none of the products: no bound there.
            methods["required"] = RequiredFloor(X, n_components, batch_size)
        if "floor_py" in args.methods:
            methods["floor_py"] = GemmFloorPython(X, n_components, batch_size)
        if "unprojected" in args.methods:
            # What the decoder's re-projection costs: it is part of the algorithm
            # (and of the PyTorch versions), not of the floor's five products.
            methods["unprojected"] = Ours(X, n_components, batch_size, args.estimator_threads,
                                          project=False)
        if "unshuffled" in args.methods:
            methods["unshuffled"] = Ours(X, n_components, batch_size, args.estimator_threads,
                                         shuffle=False)
        if has_torch and "torch" in args.methods:
            methods["torch"] = TorchAutograd(X, n_components, batch_size, learning_rate)
        if has_torch and "torch_manual" in args.methods:
            methods["torch_manual"] = TorchManual(X, n_components, batch_size, learning_rate)
        if "mlp" in args.methods and not args.no_mlp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                methods["mlp"] = MLP(X, n_components, batch_size, learning_rate)
        # One sample count per method, from single-threaded runs; ours and the
        # floor share one so that their ratio compares identical work.
        sizes = {}
        for name, method in methods.items():
            if name in ("floor", "required", "unprojected", "unshuffled"):
                continue
            sizes[name] = calibrate(method, batch_size, n_max, args.target, 1, args.min_steps)
        sizes["floor"] = sizes["ours"]
        for variant in ("required", "unprojected", "unshuffled"):
            if variant in methods:
                sizes[variant] = sizes["ours"]

    # Untimed: a method's first run under a new limit pays one-off costs (ours'
    # epochs in parts load another kernel and start workers; new threads warm
    # their BLAS buffers) that must not land in its first timed run.
    for n_threads in threads:
        with threadpool_limits(limits=n_threads, user_api="blas"):
            set_torch_threads(n_threads)
            for name, method in methods.items():
                method.prepare(sizes[name])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    method.run()

    times = {t: {name: [] for name in methods} for t in threads}
    for _ in range(args.repeats):
        for n_threads in threads:
            with threadpool_limits(limits=n_threads, user_api="blas"):
                set_torch_threads(n_threads)
                for name, method in methods.items():
                    method.prepare(sizes[name])
                    _common.settle_other_threads()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # MLP's ConvergenceWarning
                        wall, cpu = _common.measure(method.run)
                    times[n_threads][name].append((wall / sizes[name], cpu / sizes[name]))
    return times, sizes, learning_rate


def estimator_threads(n_threads, batch_size, n_features, n_components, limit):
    """The thread counts the estimator's epochs may use under ``limit`` (an epoch
    with more than one runs in as many parts, each with one BLAS thread, unless
    its products are too small to split): ``[]`` where it calls no BLAS (batch
    size 1)."""
    if batch_size == 1:
        return []
    with threadpool_limits(limits=limit, user_api="blas"):
        return ThreadChoice(n_threads, batch_size, n_features, n_components, {}).candidates


def clock_column(clock):
    """Where ``clock``'s time sits in a (wall, cpu) pair."""
    return 0 if clock == "wall" else 1


def summarise(samples, clock):
    """Best and median seconds per sample for a list of (wall, cpu) per-sample times."""
    values = [pair[clock_column(clock)] for pair in samples]
    return min(values), statistics.median(values)


def fmt_rate(seconds_per_sample):
    rate = 1.0 / seconds_per_sample
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.0f}"


def time_ratio(row, name, reference):
    """``name``'s best time over ``reference``'s in one result row, or None if either is missing."""
    if name not in row or reference not in row:
        return None
    return row[name][0] / row[reference][0]


def paired_ratio(row, name, reference):
    """The median over the repeats of ``name``'s time over ``reference``'s in the
    same repeat, or None if either is missing.

    Within a repeat the methods run one after the other (ours, floor and
    required back to back, the others a few runs later), so each pair meets
    about the same load; one repeat that the load spared one method alone
    moves a ratio of best times, not this median."""
    if name not in row or reference not in row:
        return None
    column = clock_column(row["clock"])
    return statistics.median(
        timed[column] / other[column]
        for timed, other in zip(row["raw"][name], row["raw"][reference]))


def floor_spread(row):
    """The floor's slowest repeat over its fastest in one result row: how much the
    load moved the same work during the row's repeats."""
    column = clock_column(row["clock"])
    times = [pair[column] for pair in row["raw"]["floor"]]
    return max(times) / min(times)


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer batch sizes, repeats and shorter runs (about 2 minutes)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--shapes", nargs="+", default=None,
                        help="n_features:n_components pairs (default: 144:100 784:300 3072:300)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--target", type=float, default=None,
                        help="seconds of one measured run of each method")
    parser.add_argument("--min-steps", type=int, default=None,
                        help="minibatch steps per measured run at least, where --max-samples "
                        "and --max-bytes allow (default 16; 3 with --quick)")
    parser.add_argument("--clock", choices=["auto", "wall", "cpu"], default="auto")
    parser.add_argument("--no-mlp", action="store_true", help="skip MLPRegressor")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=DEFAULT_METHODS,
                        help="competitors to time (ours and floor always run; unshuffled only "
                        "when named)")
    parser.add_argument("--estimator-threads",
                        type=lambda v: v if v in ("auto", "timed") else int(v),
                        default="auto", help="the estimator's n_threads: auto (default), "
                        "timed, or an integer, which lets BLAS use up to that many threads "
                        "whatever the size")
    parser.add_argument("--blas", choices=["scipy", "mkl"], default="scipy",
                        help="the ?gemm that ours and the floor call: SciPy's (what the "
                        "estimator uses) or, to compare with PyTorch on its own library, MKL "
                        "from the mkl package")
    parser.add_argument("--max-samples", type=int, default=200_000)
    parser.add_argument("--max-bytes", type=float, default=150e6)
    parser.add_argument("--confirm-repeats", type=int, default=None,
                        help="repeats of the second measurement of the rows near a target "
                        "(default 14; 0, no second measurement, with --quick)")
    parser.add_argument("--confirm-band", type=float, default=0.03,
                        help="how near a target's limit a ratio must come, as a fraction of "
                        "the limit, for its row to be measured again (default 0.03)")
    parser.add_argument("--json", help="write the raw results to this file")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    if args.confirm_repeats is None:
        args.confirm_repeats = 0 if args.quick else 14
    args.target = args.target or (0.05 if args.quick else 0.2)
    args.min_steps = args.min_steps or (3 if args.quick else 16)
    shapes = ([tuple(int(v) for v in s.split(":")) for s in args.shapes]
              if args.shapes else SHAPES)
    has_torch = torch_available()
    if args.blas == "mkl":
        use_mkl_for_ours()
        args.methods = [name for name in args.methods if name != "floor_py"]  # SciPy's BLAS

    environment = _common.environment_report(extra_modules=["torch", "threadpoolctl"])
    print("# sksatae training benchmark: one epoch\n")
    _common.print_environment(environment)
    print(f"- command: python benchmarks/bench_training.py {' '.join(sys.argv[1:])}")
    if args.blas == "mkl":
        print("- ours and the floor call MKL's ?gemm (--blas mkl), not SciPy's")
    print(f"- repeats {args.repeats}, about {args.target:g} s per run and at least "
          f"{args.min_steps} steps where the data allows; clock: {args.clock} "
          "(auto: CPU time with 1 thread, wall time with more)\n", flush=True)

    rng = np.random.default_rng(0)
    results = []
    for n_features, n_components in shapes:
        for batch_size in args.batch_sizes or batch_sizes_for(n_features, args.quick):
            for dtype_name in args.dtypes:
                times, sizes, learning_rate = bench_configuration(
                    n_features, n_components, batch_size, np.dtype(dtype_name), args.threads,
                    args, rng)
                for n_threads in args.threads:
                    clock = args.clock if args.clock != "auto" else (
                        "cpu" if n_threads == 1 else "wall")
                    row = {"n_features": n_features, "n_components": n_components,
                           "batch_size": batch_size, "dtype": dtype_name,
                           "threads": n_threads, "clock": clock, "n_samples": sizes,
                           "learning_rate": learning_rate, "raw": times[n_threads],
                           "ours_threads": estimator_threads(
                               args.estimator_threads, batch_size, n_features,
                               n_components, n_threads)}
                    for name, samples in times[n_threads].items():
                        row[name] = summarise(samples, clock)
                    results.append(row)
                    print(f"  d={n_features} h={n_components} batch={batch_size} {dtype_name} "
                          f"threads={n_threads}: ours/floor {row['ours'][0] / row['floor'][0]:.3f}",
                          file=sys.stderr, flush=True)

    use_torch = has_torch and "torch" in args.methods
    confirmed, remeasured = confirm_near_targets(results, args, use_torch, rng)

    # ------------------------------------------------------------ tables
    header = ["d", "h", "batch", "dtype", "threads", "clock", "ours samples/s", "floor samples/s",
              "ours/floor (time)", "required/floor", "ours/floor-py", "unprojected/floor",
              "unshuffled/floor", "PyTorch/ours", "PyTorch/floor", "PyTorch/required",
              "PyTorch-manual/ours", "MLP/ours"]
    rows = []
    for row in results:
        ours = row["ours"][0]

        rows.append([
            row["n_features"], row["n_components"], row["batch_size"], row["dtype"],
            row["threads"], row["clock"], fmt_rate(ours), fmt_rate(row["floor"][0]),
            *(fmt_ratio(time_ratio(row, name, reference)) for name, reference in (
                ("ours", "floor"), ("required", "floor"), ("ours", "floor_py"),
                ("unprojected", "floor"), ("unshuffled", "floor"))),
            fmt_ratio(time_ratio(row, "torch", "ours")),
            fmt_ratio(time_ratio(row, "torch", "floor")),
            fmt_ratio(time_ratio(row, "torch", "required")),
            fmt_ratio(time_ratio(row, "torch_manual", "ours")),
            fmt_ratio(time_ratio(row, "mlp", "ours")),
        ])
    print("\n## Samples per second and time ratios (best of the repeats)\n")
    print(_common.markdown_table(header, rows))
    pairs = [("ours", "floor"), ("required", "floor"), ("ours", "required"), ("torch", "ours"),
             ("torch", "floor"), ("torch", "required"), ("torch_manual", "ours"), ("mlp", "ours")]
    print("\n## Time ratios: medians of the repeats' paired ratios\n")
    print("Each repeat's ratio of two methods timed in that repeat, the median over the "
          "repeats; \"floor spread\" is the floor's slowest repeat over its fastest.\n")
    print(_common.markdown_table(
        ["d", "h", "batch", "dtype", "threads", "floor spread",
         *(f"{LABELS[name]}/{LABELS[reference]}" for name, reference in pairs)],
        [[row["n_features"], row["n_components"], row["batch_size"], row["dtype"],
          row["threads"], f"{floor_spread(row):.2f}",
          *(fmt_ratio(paired_ratio(row, name, reference)) for name, reference in pairs)]
         for row in results]))
    if not has_torch:
        print("\nPyTorch columns: skipped: torch not installed")
    elif "torch" not in args.methods:
        print("\nPyTorch columns: skipped (--methods)")
    if args.no_mlp:
        print("\nMLP column: skipped (--no-mlp)")

    thread_rows = []
    if 1 in args.threads and len(args.threads) > 1:
        by_key = {(r["n_features"], r["n_components"], r["batch_size"], r["dtype"],
                   r["threads"]): r for r in results}
        for (d, h, b, dt, t), row in by_key.items():
            if t == 1:
                continue
            single = by_key[(d, h, b, dt, 1)]
            # Wall against wall: both runs were interleaved in the same loop.
            ratio = summarise(row["raw"]["ours"], "wall")[0] / summarise(
                single["raw"]["ours"], "wall")[0]
            floor_ratio = summarise(row["raw"]["floor"], "wall")[0] / summarise(
                single["raw"]["floor"], "wall")[0]
            used = " or ".join(str(n) for n in row["ours_threads"]) or "no BLAS"
            thread_rows.append([d, h, b, dt, t, used, f"{ratio:.2f}",
                                f"{floor_ratio:.2f}"])
        print("\n## More threads against one (wall-clock time ratio; < 1 means faster)\n")
        print(_common.markdown_table(
            ["d", "h", "batch", "dtype", "threads", "ours' threads", "ours n/1",
             "floor n/1"], thread_rows))

    spreads = sorted(floor_spread(row) for row in results)
    print("\n## Targets\n")
    print(f"The floor's slowest repeat over its fastest, per row: {spreads[0]:.2f} to "
          f"{spreads[-1]:.2f} (median {statistics.median(spreads):.2f}). Each target is "
          "judged twice: on ratios of best times, and on medians of paired ratios.\n")
    if args.quick:
        print("A --quick run (3 repeats of about 0.05 s) is a smoke test: ratios within a "
              "few hundredths of a target land on either side of it. The targets are judged "
              "on the full command.\n")
    print("### Best over best\n")
    for line in check_targets(results, use_torch, thread_rows,
                              time_ratio):
        print(line)
    print("\n### Paired medians\n")
    for line in check_targets(results, use_torch, None,
                              paired_ratio):
        print(line)

    if args.confirm_repeats:
        print_confirmation(results, confirmed, remeasured, args, use_torch)

    if args.json:
        with open(args.json, "w") as out:
            json.dump({"environment": environment, "args": vars(args), "results": results,
                       "confirmed": [row for row in confirmed if "confirmation" in row]},
                      out, indent=1)
        print(f"\nraw results written to {args.json}")
    return 0


def applicable_targets(row, has_torch):
    """(ratio's numerator, its denominator, limit, higher is better) of each target
    that judges ``row``."""
    checks = [("ours", "floor", limit, False)
              for _, limit, select in FLOOR_TARGETS if select(row)]
    if has_torch and "torch" in row:
        checks += [("torch", "ours", limit, True)
                   for _, limit, select in TORCH_TARGETS if select(row)]
    return checks


def near_limit(row, name, reference, limit, band):
    """Whether ``name``/``reference`` in ``row``, of best times or paired, lies within a
    factor ``1 + band`` of ``limit``, on either side."""
    values = (ratio(row, name, reference) for ratio in (time_ratio, paired_ratio))
    return any(value is not None and limit / (1 + band) <= value <= limit * (1 + band)
               for value in values)


def near_a_target(row, has_torch, band):
    """Whether a ratio that decides a target in ``row`` lies near the target's limit."""
    return any(near_limit(row, name, reference, limit, band)
               for name, reference, limit, _ in applicable_targets(row, has_torch))


def configuration(row):
    return row["n_features"], row["n_components"], row["batch_size"], row["dtype"]


def confirm_near_targets(results, args, use_torch, rng):
    """Measure again every configuration where a target's ratio came near its limit.

    One run's ratio moves by a few hundredths with the load, so a target whose
    ratio lies that near its limit is decided by the noise. Such a
    configuration is timed again, ``--confirm-repeats`` more repeats of the
    methods whose ratios decide targets (ours, the floor, PyTorch autograd),
    interleaved as in the first measurement, under the same thread limits.
    Returns copies of ``results`` in which those rows hold all the repeats of
    both measurements of these methods, and no other method; and the
    configurations timed again.
    """
    remeasured = []
    for row in results:
        if (args.confirm_repeats and configuration(row) not in remeasured
                and near_a_target(row, use_torch, args.confirm_band)):
            remeasured.append(configuration(row))
    again = argparse.Namespace(**vars(args))
    again.repeats = args.confirm_repeats
    again.methods = ["ours", "floor"] + (["torch"] if use_torch else [])
    again.no_mlp = True
    confirmed = [dict(row) for row in results]
    for n_features, n_components, batch_size, dtype_name in remeasured:
        print(f"  again: d={n_features} h={n_components} batch={batch_size} {dtype_name}",
              file=sys.stderr, flush=True)
        times, sizes, _ = bench_configuration(n_features, n_components, batch_size,
                                              np.dtype(dtype_name), args.threads, again, rng)
        for row in confirmed:
            if configuration(row) != (n_features, n_components, batch_size, dtype_name):
                continue
            for name in METHODS:
                row.pop(name, None)
            row["raw"] = {name: row["raw"][name] + samples
                          for name, samples in times[row["threads"]].items()}
            for name, samples in row["raw"].items():
                row[name] = summarise(samples, row["clock"])
            row["confirmation"] = {"repeats": args.confirm_repeats, "n_samples": sizes}
    return confirmed, remeasured


def print_confirmation(results, confirmed, remeasured, args, use_torch):
    print("\n## Targets, confirmed\n")
    if not remeasured:
        print(f"No target's ratio came within {args.confirm_band:.0%} of its limit: nothing "
              "was measured again, and the targets stand as judged above.")
        return
    print(f"Each configuration where a target's ratio, of best times or paired, came within "
          f"{args.confirm_band:.0%} of its limit was measured again: {args.confirm_repeats} "
          f"more repeats of ours, the floor{' and PyTorch autograd' if use_torch else ''}, "
          "interleaved as before, under the same thread limits. Below, those rows are judged "
          f"on all their repeats (the first {args.repeats} and these), the other rows as "
          "above; the threads' target stands as judged above.\n")
    table = []
    for first, pooled in zip(results, confirmed):
        if "confirmation" not in pooled:
            continue
        for name, reference, limit, _ in applicable_targets(pooled, use_torch):
            if not near_limit(first, name, reference, limit, args.confirm_band):
                continue
            table.append([
                first["n_features"], first["n_components"], first["batch_size"],
                first["dtype"], first["threads"], f"{LABELS[name]}/{LABELS[reference]}",
                f"{limit:g}",
                *(fmt_ratio(ratio(row, name, reference))
                  for row in (first, pooled) for ratio in (time_ratio, paired_ratio))])
    print(_common.markdown_table(
        ["d", "h", "batch", "dtype", "threads", "ratio", "limit", "first: best",
         "first: paired", "all: best", "all: paired"], table))
    for title, ratio in (("Best over best", time_ratio), ("Paired medians", paired_ratio)):
        print(f"\n### {title}, confirmed\n")
        for line in check_targets(confirmed, use_torch, None, ratio):
            if not line.startswith("- ("):  # asides on methods not measured again
                print(line)


def check_targets(results, has_torch, thread_rows, ratio):
    """One line per target: held or not, with the worst ratio that decides it.

    ``ratio(row, name, reference)`` is ``time_ratio`` or ``paired_ratio``; the
    threads' target (from ``thread_rows``, best times) is left out when
    ``thread_rows`` is None."""
    lines = []

    def report(name, ratios, limit, higher_is_better=False, ceilings=None,
               required_ceilings=None):
        if not ratios:
            lines.append(f"- {name}: not measured")
            return
        worst = min(ratios) if higher_is_better else max(ratios)
        worst_row = ratios[worst]
        held = worst >= limit if higher_is_better else worst <= limit
        line = (f"- {name}: {'HELD' if held else 'NOT HELD'} "
                f"(worst {worst:.2f} at {worst_row}; target "
                f"{'>=' if higher_is_better else '<='} {limit:g})")
        for bounds, reference, who in (
                (ceilings, "floor", "a kernel at the floor of the five products"),
                (required_ceilings, "required", "any implementation that makes the products, "
                 "the shuffled gather and a pass for the re-projection")):
            if bounds and not held:
                unreachable = sorted(row for ceiling, row in bounds.items() if ceiling < limit)
                line += (f"; out of reach of {who} (PyTorch/{reference} below the target) at "
                         f"{len(unreachable)} of {len(bounds)}: {', '.join(unreachable)}"
                         if unreachable else f"; within reach of {who} everywhere")
        lines.append(line)

    def key(row):
        return (f"d={row['n_features']} h={row['n_components']} batch={row['batch_size']} "
                f"{row['dtype']} {row['threads']} thread(s)")

    name, limit, select = FLOOR_TARGETS[0]
    report(name, {ratio(r, "ours", "floor"): key(r) for r in results if select(r)}, limit)
    required = [(ratio(r, "required", "floor"), ratio(r, "ours", "required"))
                for r in results if select(r) and "required" in r]
    if required:
        alone, rest = zip(*required)
        lines.append(f"- (of that distance, the required work alone, the shuffled gather and "
                     f"the re-projection: required/floor {min(alone):.2f} to {max(alone):.2f}; "
                     f"the rest of a step: ours/required {min(rest):.2f} to {max(rest):.2f})")
    fewer = [ratio(r, "ours", "floor") for r in results
             if r["batch_size"] >= 16 and fewer_threads(r)]
    if fewer:
        lines.append(f"- (not in the line above: {len(fewer)} rows where ours kept one thread "
                     f"by its size rule under a limit of more, which the floor's products "
                     f"could use: ours/floor {min(fewer):.2f} to {max(fewer):.2f})")
    name, limit, select = FLOOR_TARGETS[1]
    report(name, {ratio(r, "ours", "floor"): key(r) for r in results if select(r)}, limit)
    if has_torch:
        def speedups(select):
            return {ratio(r, "torch", "ours"): key(r) for r in results if select(r)}

        def ceilings(select, reference="floor"):
            # What a kernel exactly at the BLAS floor would reach; against "required",
            # the best that an implementation of this algorithm can reach.
            return {ratio(r, "torch", reference): key(r) for r in results
                    if select(r) and reference in r}

        for name, limit, select in TORCH_TARGETS:
            report(name, speedups(select), limit, True, ceilings(select),
                   ceilings(select, "required"))
        if any("torch_manual" in r for r in results):
            report("(not a target) never slower than hand-written PyTorch",
                   {ratio(r, "torch_manual", "ours"): key(r) for r in results
                    if "torch_manual" in r}, 1.0, True,
                   {ratio(r, "torch_manual", "floor"): key(r) for r in results
                    if "torch_manual" in r})
    else:
        lines.append("- PyTorch targets: skipped: torch not installed (or not in --methods)")
    def thread_ratios(more):
        # Column 5: the estimator's thread counts, "1" where it kept one thread
        # under the higher limit too, "no BLAS" at batch size 1.
        return [(float(row[6]),
                 f"d={row[0]} h={row[1]} batch={row[2]} {row[3]} {row[4]} threads")
                for row in thread_rows if (row[5] not in ("1", "no BLAS")) == more]

    if thread_rows is None:
        return lines
    report("more threads never slower than one, where ours used more (ours, wall time "
           "ratio, 5% noise margin)", dict(thread_ratios(True)), 1.05)
    same = [value for value, _ in thread_ratios(False)]
    if same:
        lines.append(f"- (the same computation under both limits: ours used one thread or "
                     f"none at {len(same)} rows, where the ratio is the noise of wall-clock "
                     f"time: {min(same):.2f} to {max(same):.2f})")
    return lines


if __name__ == "__main__":
    sys.exit(main())
