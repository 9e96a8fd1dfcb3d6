"""Outlier detection quality: ROC-AUC of the reconstruction energy of
SaturatingAutoEncoder against the detectors users would otherwise pick.

Two problems built from data that ships with scikit-learn:

- digits one-class: for each digit ``d``, train on half of the ``d`` images,
  then score held-out ``d`` images (inliers) against images of the other
  digits (outliers);
- breast cancer: train on benign samples, score held-out benign samples
  against malignant ones subsampled to 10% of the test set.

Every method sees the same splits and seeds, on inputs standardised by a
StandardScaler fitted on the training part. Each method with
hyperparameters gets a small grid; one configuration per method and problem
is chosen by the mean ROC-AUC on a validation split (inliers and outliers
disjoint from the test split), and only the chosen one is reported on the
test split. The score is ``score_samples`` (higher is more normal) for every
method, and minus the reconstruction error for PCA and PyOD's AutoEncoder.

Usage::

    python benchmarks/bench_anomaly.py            # full run (2 to 4 minutes)
    python benchmarks/bench_anomaly.py --quick    # seconds
"""

import _common

_common.scrub_blas_environment()

import argparse  # noqa: E402
import datetime  # noqa: E402
import itertools  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.neighbors import LocalOutlierFactor  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import OneClassSVM  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import sksatae  # noqa: E402
from sksatae import DivergenceError, SaturatingAutoEncoder  # noqa: E402

ACTIVATIONS = ("shrink", "relu", "satlinear")
CONTAMINATION = 0.1
REFERENCE = "IsolationForest"


# --------------------------------------------------------------------- data


def digits_tasks(seed):
    """One task per digit: (name, X_train, X_val, y_val, X_test, y_test), y=1 inlier."""
    digits = load_digits()
    rng = np.random.RandomState(seed)
    tasks = []
    for digit in range(10):
        inliers = rng.permutation(np.flatnonzero(digits.target == digit))
        outliers = rng.permutation(np.flatnonzero(digits.target != digit))
        n_train, n_val = len(inliers) // 2, len(inliers) // 4
        train = inliers[:n_train]
        val_in, test_in = inliers[n_train:n_train + n_val], inliers[n_train + n_val:]
        half = len(outliers) // 2
        tasks.append(_task(f"digit {digit}", digits.data, train, val_in, outliers[:half],
                           test_in, outliers[half:]))
    return tasks


def breast_cancer_tasks(seed):
    """Benign as inliers; malignant subsampled to CONTAMINATION of each scored split."""
    data = load_breast_cancer()
    rng = np.random.RandomState(seed)
    benign = rng.permutation(np.flatnonzero(data.target == 1))
    malignant = rng.permutation(np.flatnonzero(data.target == 0))
    n_train, n_val = int(0.6 * len(benign)), int(0.2 * len(benign))
    train = benign[:n_train]
    val_in, test_in = benign[n_train:n_train + n_val], benign[n_train + n_val:]
    n_val_out = _n_outliers(len(val_in))
    n_test_out = _n_outliers(len(test_in))
    val_out = malignant[:n_val_out]
    test_out = malignant[n_val_out:n_val_out + n_test_out]
    return [_task(f"seed {seed}", data.data, train, val_in, val_out, test_in, test_out)]


def _n_outliers(n_inliers):
    return max(2, round(n_inliers * CONTAMINATION / (1 - CONTAMINATION)))


def _task(name, X, train, val_in, val_out, test_in, test_out):
    scaler = StandardScaler().fit(X[train])

    def scored(inliers, outliers):
        Xs = scaler.transform(X[np.concatenate([inliers, outliers])])
        y = np.r_[np.ones(len(inliers)), np.zeros(len(outliers))]
        return Xs, y

    X_val, y_val = scored(val_in, val_out)
    X_test, y_test = scored(test_in, test_out)
    return name, scaler.transform(X[train]), X_val, y_val, X_test, y_test


# ------------------------------------------------------------------ methods


class _ReconstructionScore:
    """Minus the squared reconstruction error of a fitted model with
    ``transform`` and ``inverse_transform`` (PCA)."""

    def __init__(self, model):
        self.model = model

    def fit(self, X):
        self.model.fit(X)
        return self

    def score_samples(self, X):
        reconstruction = self.model.inverse_transform(self.model.transform(X))
        return -((X - reconstruction) ** 2).sum(axis=1)


class _PyODScore:
    """A PyOD detector with scikit-learn's sign: higher is more normal."""

    def __init__(self, model):
        self.model = model

    def fit(self, X):
        self.model.fit(X)
        return self

    def score_samples(self, X):
        return -self.model.decision_function(X)


def _pyod_autoencoder():
    """PyOD's AutoEncoder class, or None when PyOD (with torch) is not installed."""
    try:
        import torch
        from pyod.models.auto_encoder import AutoEncoder
    except ImportError:
        return None
    torch.set_num_threads(1)
    return AutoEncoder


def method_grids(n_features, seed, quick):
    """{method name: [(config label, factory)]}: the grid each method is tuned over."""
    sizes = (n_features // 4,) if quick else (n_features // 4, n_features // 2, n_features)
    alphas = (0.0, 0.3, 1.0) if quick else (0.0, 0.1, 0.3, 1.0, 3.0)
    grids = {}
    for activation in ACTIVATIONS:
        grids[f"SATAE {activation}"] = [
            (f"n_components={k}, alpha={a:g}",
             lambda k=k, a=a, act=activation: SaturatingAutoEncoder(
                 k, activation=act, alpha=a, random_state=seed))
            for k, a in itertools.product(sizes, alphas)
        ]
    grids["IsolationForest"] = [
        ("defaults", lambda: IsolationForest(random_state=seed)),
    ]
    grids["LocalOutlierFactor"] = [
        (f"n_neighbors={k}", lambda k=k: LocalOutlierFactor(n_neighbors=k, novelty=True))
        for k in (10, 20, 35)
    ]
    grids["OneClassSVM"] = [
        (f"nu={nu}", lambda nu=nu: OneClassSVM(gamma="scale", nu=nu)) for nu in (0.1, 0.5)
    ]
    grids["PCA reconstruction"] = [
        (f"n_components={k}", lambda k=k: _ReconstructionScore(PCA(k, random_state=seed)))
        for k in (n_features // 8, n_features // 4, n_features // 2)
    ]
    autoencoder = _pyod_autoencoder()
    if autoencoder is not None:
        grids["PyOD AutoEncoder"] = [
            (f"epoch_num={e}",
             lambda e=e: _PyODScore(autoencoder(epoch_num=e, random_state=seed, verbose=0)))
            for e in ((30,) if quick else (30, 100))
        ]
    return grids


# ---------------------------------------------------------------- running


def evaluate(problem, tasks_by_seed, n_features, quick):
    """ROC-AUC on validation and test of every configuration, for every task.

    Returns {method: {config: {"val": [...], "test": [...], "names": [...]}}}.
    Each model is fitted once, on the training part, and scores both splits.
    """
    results = {}
    for seed, tasks in tasks_by_seed:
        grids = method_grids(n_features, seed, quick)
        for name, X_train, X_val, y_val, X_test, y_test in tasks:
            for method, grid in grids.items():
                for config, make in grid:
                    started = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            model = make().fit(X_train)
                        except DivergenceError:
                            model = None
                        if model is None:
                            val = test = np.nan
                        else:
                            val = roc_auc_score(y_val, model.score_samples(X_val))
                            test = roc_auc_score(y_test, model.score_samples(X_test))
                    entry = results.setdefault(method, {}).setdefault(
                        config, {"val": [], "test": [], "names": []})
                    entry["val"].append(val)
                    entry["test"].append(test)
                    entry["names"].append((seed, name))
                    outcome = ("diverged" if np.isnan(val)
                               else f"val {val:.3f} test {test:.3f}")
                    print(f"[{problem}] seed={seed} {name} {method} ({config}): {outcome} "
                          f"({time.perf_counter() - started:.2f}s)",
                          file=sys.stderr, flush=True)
    return results


def choose(results):
    """The configuration of each method with the best mean validation ROC-AUC.

    A configuration whose training diverged on any task is never chosen.
    """
    def mean_or_worst(entry):
        value = np.mean(entry["val"])
        return -np.inf if np.isnan(value) else value

    return {method: max(configs, key=lambda c: mean_or_worst(configs[c]))
            for method, configs in results.items()}


def validation_table(results, chosen):
    lines = ["| method | configuration | mean validation ROC-AUC | chosen |",
             "| --- | --- | ---: | :---: |"]
    for method, configs in results.items():
        for config, entry in configs.items():
            mark = "yes" if config == chosen[method] else ""
            diverged = int(np.isnan(entry["val"]).sum())
            value = (f"{np.mean(entry['val']):.3f}" if not diverged else
                     f"diverged in {diverged} of {len(entry['val'])} fits")
            lines.append(f"| {method} | {config} | {value} | {mark} |")
    return "\n".join(lines)


def digits_table(results, chosen):
    methods = list(results)
    header = "| digit | " + " | ".join(methods) + " |"
    lines = [header, "| --- |" + " ---: |" * len(methods)]
    per_method = {m: results[m][chosen[m]] for m in methods}
    names = per_method[methods[0]]["names"]
    for digit in range(10):
        cells = []
        for m in methods:
            scores = [s for s, (_, n) in zip(per_method[m]["test"], names)
                      if n == f"digit {digit}"]
            cells.append(f"{np.mean(scores):.3f}")
        lines.append(f"| {digit} | " + " | ".join(cells) + " |")
    means = [np.mean(per_method[m]["test"]) for m in methods]
    best = max(means)
    lines.append("| **mean** | " + " | ".join(
        f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in means) + " |")
    reference = means[methods.index(REFERENCE)]
    lines.append(f"| mean vs {REFERENCE} | " + " | ".join(
        f"{v - reference:+.3f}" for v in means) + " |")
    lines.append("| chosen on validation | " + " | ".join(chosen[m] for m in methods) + " |")
    return "\n".join(lines)


def seeds_table(results, chosen):
    lines = [f"| method | chosen on validation | test ROC-AUC mean | std | min | "
             f"mean vs {REFERENCE} |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    reference = np.mean(results[REFERENCE][chosen[REFERENCE]]["test"])
    for method in results:
        scores = results[method][chosen[method]]["test"]
        lines.append(f"| {method} | {chosen[method]} | {np.mean(scores):.3f} | "
                     f"{np.std(scores):.3f} | {np.min(scores):.3f} | "
                     f"{np.mean(scores) - reference:+.3f} |")
    return "\n".join(lines)


def environment():
    cpu = _common.cpu_model()
    versions = [f"sksatae {sksatae.__version__}", f"scikit-learn {sklearn.__version__}",
                f"numpy {np.__version__}", f"Python {platform.python_version()}"]
    try:
        import pyod
        import torch
        versions += [f"pyod {pyod.__version__}", f"torch {torch.__version__}"]
    except ImportError:
        versions.append("pyod not installed")
    return (f"{datetime.date.today().isoformat()}, {cpu}, " + ", ".join(versions))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="two digits seeds, five breast cancer seeds, smaller grids")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for every method (default 1)")
    args = parser.parse_args(argv)
    digit_seeds = range(2) if args.quick else range(5)
    cancer_seeds = range(5) if args.quick else range(20)

    started = time.perf_counter()
    print(f"# Outlier detection ROC-AUC{' (--quick)' if args.quick else ''}\n")
    print(f"{environment()}, {args.threads} thread(s)\n")
    if _pyod_autoencoder() is None:
        print("PyOD AutoEncoder: skipped: pyod not installed\n")
    with threadpool_limits(args.threads):
        digits = evaluate("digits", [(s, digits_tasks(s)) for s in digit_seeds], 64, args.quick)
        digits_chosen = choose(digits)
        cancer = evaluate("breast cancer", [(s, breast_cancer_tasks(s)) for s in cancer_seeds],
                          30, args.quick)
        cancer_chosen = choose(cancer)

    print(f"## Digits one-class: test ROC-AUC per digit (seeds {list(digit_seeds)}, "
          "mean over seeds)\n")
    print(digits_table(digits, digits_chosen) + "\n")
    print(f"## Breast cancer, {CONTAMINATION:.0%} contamination: test ROC-AUC over "
          f"{len(cancer_seeds)} seeds\n")
    print(seeds_table(cancer, cancer_chosen) + "\n")
    print("## Validation grids: digits\n")
    print(validation_table(digits, digits_chosen) + "\n")
    print("## Validation grids: breast cancer\n")
    print(validation_table(cancer, cancer_chosen) + "\n")
    print(f"Total time {time.perf_counter() - started:.0f}s.")


if __name__ == "__main__":
    main()
