"""Feature quality: digit classification accuracy of a logistic regression on
SaturatingAutoEncoder codes, against BernoulliRBM codes, PCA and raw pixels.

The setting of scikit-learn's example "Restricted Boltzmann Machine features
for digit classification": the 8x8 digits, each also shifted by one pixel in
four directions (5 times the data), min-max scaled to [0, 1], split 80/20
into train and test with a fixed seed. Every learned representation has 100
components (PCA: all 64, the most the data allow).

Every method is a Pipeline ending in StandardScaler + LogisticRegression.
Standardising the features before the classifier lets L-BFGS converge at its
default ``tol=1e-4`` in a few hundred iterations for every representation,
where the example's ``tol=1`` stops long before convergence. The feature
learner's main knob (SATAE ``alpha``, RBM ``learning_rate``) and
LogisticRegression's ``C`` are tuned by GridSearchCV (cv=3, accuracy) on the
training part only; the test part is scored once, with the chosen
parameters. The SATAE pipelines standardise the pixels first (the paper's
preprocessing; the RBM needs inputs in [0, 1] and gets them as they are).
SATAE follows the paper's alpha schedule (steps of 0.1 from 0) with its
30 epochs per stage.

Usage::

    python benchmarks/bench_features.py            # full run (2 to 4 minutes)
    python benchmarks/bench_features.py --quick    # seconds
"""

import _common

_common.scrub_blas_environment()

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.neural_network import BernoulliRBM  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler, minmax_scale  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import sksatae  # noqa: E402
from sksatae import SaturatingAutoEncoder  # noqa: E402

N_COMPONENTS = 100
SEED = 0
ACTIVATIONS = ("shrink", "relu", "satlinear")


def nudged_digits():
    """The digits and their copies shifted by one pixel up, down, left and right."""
    digits = load_digits()
    images = digits.images
    shifted = [images]
    for axis in (1, 2):
        for step in (-1, 1):
            moved = np.roll(images, step, axis=axis)
            edge = 0 if step == 1 else -1
            index = [slice(None)] * 3
            index[axis] = edge
            moved[tuple(index)] = 0  # the row or column that wrapped around
            shifted.append(moved)
    X = np.concatenate(shifted).reshape(-1, 64)
    y = np.tile(digits.target, len(shifted))
    return minmax_scale(X, feature_range=(0, 1)), y


def classifier():
    return [("scale_features", StandardScaler()),
            ("classifier", LogisticRegression(max_iter=2000))]


def methods(quick, scale_pixels=True):
    """{name: (pipeline, parameter grid)}."""
    c_grid = [1.0, 10.0] if quick else [0.1, 1.0, 10.0, 100.0]
    alphas = [1.0] if quick else [0.3, 0.5, 1.0, 2.0]
    found = {}
    for activation in ACTIVATIONS:
        autoencoder = SaturatingAutoEncoder(N_COMPONENTS, activation=activation,
                                            max_iter=10 if quick else 30, random_state=SEED)
        pixels = [("scale_pixels", StandardScaler())] if scale_pixels else []
        found[f"SATAE {activation}"] = (
            Pipeline([*pixels, ("features", autoencoder), *classifier()]),
            {"features__alpha": alphas, "classifier__C": c_grid},
        )
    rbm = BernoulliRBM(n_components=N_COMPONENTS, learning_rate=0.06, n_iter=10,
                       random_state=SEED)
    found["BernoulliRBM"] = (
        Pipeline([("features", rbm), *classifier()]),
        {"features__learning_rate": [0.06] if quick else [0.01, 0.03, 0.06, 0.1],
         "classifier__C": c_grid},
    )
    found["PCA (64, all)"] = (
        Pipeline([("features", PCA(64, random_state=SEED)), *classifier()]),
        {"classifier__C": c_grid},
    )
    found["raw pixels"] = (Pipeline(classifier()), {"classifier__C": c_grid})
    return found


def progress_scorer(name, keys):
    """Accuracy, printing one line per fitted candidate to standard error."""
    started = [time.perf_counter()]

    def score(estimator, X, y):
        accuracy = accuracy_score(y, estimator.predict(X))
        params = estimator.get_params()
        shown = ", ".join(f"{k.split('__')[-1]}={params[k]:g}" for k in keys)
        now = time.perf_counter()
        print(f"[features] {name} ({shown}): fold accuracy {accuracy:.4f} "
              f"({now - started[0]:.1f}s)", file=sys.stderr, flush=True)
        started[0] = now
        return accuracy

    return score


def environment():
    cpu = _common.cpu_model()
    return (f"{datetime.date.today().isoformat()}, {cpu}, sksatae {sksatae.__version__}, "
            f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
            f"Python {platform.python_version()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller grids (one alpha, one RBM learning rate, two C)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for every method (default 1)")
    parser.add_argument("--unscaled-pixels", action="store_true",
                        help="feed SATAE the [0, 1] pixels without standardising them")
    args = parser.parse_args(argv)

    X, y = nudged_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2,
                                                        random_state=SEED)
    started = time.perf_counter()
    rows = []
    with threadpool_limits(args.threads), tempfile.TemporaryDirectory() as cache:
        for name, (pipeline, grid) in methods(args.quick, not args.unscaled_pixels).items():
            pipeline.set_params(memory=cache)
            search = GridSearchCV(pipeline, grid, cv=3,
                                  scoring=progress_scorer(name, list(grid)), refit=True)
            fit_started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=FutureWarning)
                search.fit(X_train, y_train)
            accuracy = accuracy_score(y_test, search.predict(X_test))
            chosen = ", ".join(f"{k.split('__')[-1]}={v:g}"
                               for k, v in search.best_params_.items())
            rows.append((name, accuracy, search.best_score_, chosen,
                         time.perf_counter() - fit_started))
            print(f"[features] {name}: test accuracy {accuracy:.4f} with {chosen}",
                  file=sys.stderr, flush=True)

    rbm_accuracy = next(acc for name, acc, *_ in rows if name == "BernoulliRBM")
    print(f"# Digit classification on learned features{' (--quick)' if args.quick else ''}\n")
    print(f"{environment()}, {args.threads} thread(s)\n")
    if args.unscaled_pixels:
        print("SATAE is fed the [0, 1] pixels without a StandardScaler.\n")
    print(f"Nudged digits: {len(X_train)} train, {len(X_test)} test samples; "
          f"{N_COMPONENTS} components per learned representation.\n")
    print("| method | test accuracy | vs BernoulliRBM | CV accuracy (train) | chosen "
          "parameters | search time |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for name, accuracy, cv_accuracy, chosen, seconds in rows:
        print(f"| {name} | {accuracy:.4f} | {accuracy - rbm_accuracy:+.4f} | "
              f"{cv_accuracy:.4f} | {chosen} | {seconds:.0f}s |")
    print(f"\nTotal time {time.perf_counter() - started:.0f}s.")


if __name__ == "__main__":
    main()
