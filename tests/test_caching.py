"""Compilation is lazy, cached on disk, switchable, and survives an uncachable install."""

import json
import os
import subprocess
import sys
from pathlib import Path

FIT_AND_REPORT = """
import json, numpy as np
from sksatae import SaturatingAutoEncoder, _kernels
X = np.random.default_rng(0).standard_normal((50, 6))
SaturatingAutoEncoder(n_components=3, max_iter=1, alpha_step=None).fit(X)
stats = _kernels.sgd_epoch.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def run_python(code, cache_dir, **extra_env):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), **extra_env}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)
    return done


def cache_files(cache_dir):
    return sorted(p.name for p in Path(cache_dir).rglob("*.nbi"))


def test_import_compiles_nothing(tmp_path):
    code = (
        "import sksatae, json;"
        "from sksatae import SaturatingAutoEncoder, _kernels;"
        "print(json.dumps([len(f.signatures) for f in (_kernels.sgd_epoch, _kernels.encode,"
        " _kernels.energy)]))"
    )
    assert json.loads(run_python(code, tmp_path).stdout) == [0, 0, 0]
    assert cache_files(tmp_path) == []


def test_compiled_kernels_are_cached_across_processes(tmp_path):
    first = json.loads(run_python(FIT_AND_REPORT, tmp_path).stdout)
    assert first["misses"] >= 1
    assert any(name.startswith("_kernels.sgd_epoch") for name in cache_files(tmp_path))
    second = json.loads(run_python(FIT_AND_REPORT, tmp_path).stdout)
    assert second == {"hits": 1, "misses": 0}


def test_environment_variable_switches_caching_off(tmp_path):
    run_python(FIT_AND_REPORT, tmp_path, SKSATAE_NUMBA_CACHE="0")
    assert cache_files(tmp_path) == []


def test_no_writable_cache_location_falls_back_to_compiling(tmp_path):
    # What numba does on a read-only install with no writable user cache folder: it finds no
    # cache locator and refuses cache=True when the function is decorated.
    code = (
        "import numba.core.caching as caching;"
        "impl = getattr(caching, 'CacheImpl', None) or caching._CacheImpl;"
        "impl._locator_classes = [];"
        + FIT_AND_REPORT
    )
    done = run_python(code, tmp_path)
    assert json.loads(done.stdout.strip().splitlines()[-1])["hits"] == 0
    assert done.stderr.count("compiling without a cache") == 1
    assert cache_files(tmp_path) == []


def test_each_kernel_compiles_once_per_dtype(tmp_path):
    # A literal argument (a constant True, or a module constant) makes numba compile a function
    # once per value: 0.1 to 0.3 s of the first fit each time. Counted from numba's compile
    # events, which subroutines (compiled into their callers, no dispatcher of their own)
    # raise too. No function compiles numba's C-callable wrapper, which nothing here calls.
    code = """
import collections, json, numpy as np
from numba.core import event, lowering
from sksatae import SaturatingAutoEncoder

compiled = collections.Counter()


class CountCompilations(event.Listener):
    def on_start(self, ev):
        pass

    def on_end(self, ev):
        compiled[ev.data["dispatcher"].py_func.__name__] += 1


event.register("numba:compile", CountCompilations())
wrapped = []
create_cfunc_wrapper = lowering.Lower.create_cfunc_wrapper


def count_wrapper(self, *args, **kwargs):  # a C-callable wrapper: nothing here calls one
    if self.fndesc.modname.startswith("sksatae"):  # numba's own overloads have theirs
        wrapped.append(self.fndesc.qualname)
    return create_cfunc_wrapper(self, *args, **kwargs)


lowering.Lower.create_cfunc_wrapper = count_wrapper
X = np.random.default_rng(0).standard_normal((50, 6))
for dtype in (np.float64, np.float32):
    model = SaturatingAutoEncoder(3, activation="sigmoid", max_iter=1, alpha_step=None)
    model.fit(X.astype(dtype)).transform(X.astype(dtype))
    model.score_samples(X.astype(dtype))
    model.set_params(batch_size=1).fit(X.astype(dtype))
names = ["gemm", "sgd_epoch", "sgd_epoch_single_sample", "encode", "energy", "_respond_all",
         "_tabulated_response", "_variations_outside", "_load_batch", "_residual",
         "_hidden_gradient", "_normalize_rows", "encoder_pass", "residual_pass", "decoder_pass",
         "wait_for_parts"]
print(json.dumps({"wrapped": wrapped, **{name: compiled[name] for name in names}}))
"""
    counts = json.loads(run_python(code, tmp_path, SKSATAE_NUMBA_CACHE="0").stdout)
    assert counts.pop("wrapped") == []
    assert counts == {"gemm": 2, "sgd_epoch": 2, "sgd_epoch_single_sample": 2, "encode": 2,
                      "energy": 2, "_respond_all": 2, "_tabulated_response": 1,
                      "_variations_outside": 1, "_load_batch": 2, "_residual": 2,
                      "_hidden_gradient": 2, "_normalize_rows": 2, "encoder_pass": 2,
                      "residual_pass": 2, "decoder_pass": 2,
                      "wait_for_parts": 0}  # an epoch in one part compiles none of the parts' code


def test_float32_fit_compiles_no_float64_response_loop(tmp_path):
    # A tabulated activation's accuracy check and the divergence test's reference figures
    # run through the training kernel's own compiled code: in float64 they would compile a
    # response loop that a float32 fit never uses (0.3 s of its start-up, or more).
    code = """
import json, numpy as np
from sksatae import SaturatingAutoEncoder, _kernels
X = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32)
for activation in ("sigmoid", "shrink"):
    SaturatingAutoEncoder(3, activation=activation, max_iter=1, alpha_step=None).fit(X)
print(json.dumps([str(signature[2]) for signature in _kernels._respond_all.signatures]))
"""
    buffers = json.loads(run_python(code, tmp_path, SKSATAE_NUMBA_CACHE="0").stdout)
    assert len(buffers) == 2  # one for the closed forms, one for the tabulated activations
    assert all("float32" in buffer for buffer in buffers), buffers


def test_one_row_partial_fit_compiles_no_single_sample_kernel(tmp_path):
    # A stream of one-row partial_fit calls at batch_size > 1 runs the minibatch kernel on a
    # batch of one: the single-sample kernel would cost a second compilation (1.8 s) for the
    # same step.
    code = """
import copy, json, numpy as np
from sksatae import SaturatingAutoEncoder, _kernels
X = np.random.default_rng(0).standard_normal((50, 6))
model = SaturatingAutoEncoder(3, max_iter=1, alpha_step=None, random_state=0).fit(X)
streamed = copy.deepcopy(model).partial_fit(X[:1])
compiled = len(_kernels.sgd_epoch_single_sample.signatures)
plain = copy.deepcopy(model).set_params(batch_size=1).partial_fit(X[:1])
print(json.dumps({"compiled": compiled, "moved": float(abs(streamed.components_
                  - model.components_).max()), "apart": max(float(abs(getattr(streamed, name)
                  - getattr(plain, name)).max()) for name in ("components_",
                  "encoder_weights_", "intercept_hidden_", "intercept_visible_"))}))
"""
    report = json.loads(run_python(code, tmp_path, SKSATAE_NUMBA_CACHE="0").stdout)
    assert report["compiled"] == 0
    assert report["moved"] > 1e-4  # the step was taken...
    assert report["apart"] < 1e-12  # ...and is the single-sample kernel's
