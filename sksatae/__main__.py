"""Command line: ``python -m sksatae demo`` and ``python -m sksatae reproduce``."""

import argparse
import math
import sys


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text!r}")
    return value


def _folder(text):
    if not text:
        raise argparse.ArgumentTypeError("must name a folder, got an empty string")
    return text


def demo(args):
    """Fit a SATAE with each activation (shrink, relu, satlinear) on scikit-learn's bundled
    digits and print what each learned."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sksatae import SaturatingAutoEncoder

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    print(f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test images of 8x8 pixels")
    for activation in ("shrink", "relu", "satlinear"):
        model = make_pipeline(
            StandardScaler(),
            SaturatingAutoEncoder(n_components=args.n_components, activation=activation,
                                  alpha=args.alpha, max_iter=args.max_iter, random_state=0),
            LogisticRegression(max_iter=2000),
        )
        model.fit(X_train, y_train)
        satae = model[1]
        codes = satae.transform(model[0].transform(X_test))
        energy = satae.energy(model[0].transform(X_test))
        print(
            f"{activation:>9}: alpha path {np.round(satae.alpha_path_, 3).tolist()}, "
            f"final loss {satae.loss_curve_[-1]:.3f}, "
            f"saturated codes {np.mean((codes <= 0) | (codes >= 1) if activation == 'satlinear' else codes == 0):.0%}, "
            f"mean test energy {energy.mean():.3f}, "
            f"test accuracy of the codes + logistic regression {model.score(X_test, y_test):.3f}"
        )


def reproduce(args):
    """Run the paper's experiments on bundled data; write figures, metrics.json and report.html."""
    from .reproduce import _prepare, _Progress, _run, summary

    progress = _Progress(sys.stderr)
    try:
        # Only the checks of the folders given and the reading of the data sets: an error
        # there is the user's, while one in the experiments keeps its traceback.
        prepared = _prepare(args.out, args.quick, args.mnist, args.cifar10)
    except (OSError, ValueError) as error:
        args.parser.exit(2, f"{args.parser.prog}: error: {error}\n")
    metrics = _run(*prepared, progress)
    print(f"{summary(metrics)}; report: {args.out}/report.html")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sksatae",
        description="Saturating auto-encoders: a demo on scikit-learn's digits, and the "
                    "reproduction of Goroshin & LeCun (2013). Run 'python -m sksatae COMMAND "
                    "--help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo_parser = commands.add_parser("demo", help=demo.__doc__, description=demo.__doc__)
    demo_parser.add_argument("--n-components", type=_positive_int, default=64, metavar="N",
                             help="hidden units of each model (default: %(default)s)")
    demo_parser.add_argument("--alpha", type=_non_negative_float, default=0.1,
                             help="final saturation strength, reached in steps from 0 "
                                  "(default: %(default)s)")
    demo_parser.add_argument("--max-iter", type=_positive_int, default=30, metavar="N",
                             help="epochs at each alpha stage (default: %(default)s)")
    demo_parser.set_defaults(run=demo)
    reproduce_parser = commands.add_parser("reproduce", help=reproduce.__doc__,
                                           description=reproduce.__doc__)
    reproduce_parser.add_argument("--out", type=_folder, default="reproduce_out", metavar="DIR",
                                  help="output folder, created if needed; before the "
                                       "experiments start, the figures, metrics.json and "
                                       "report.html that an earlier run left in it are "
                                       "deleted, other files are left alone (default: "
                                       "%(default)s)")
    reproduce_parser.add_argument("--quick", action="store_true",
                                  help="smaller experiments, about a third of the full run's time")
    reproduce_parser.add_argument("--mnist", type=_folder, default=None, metavar="DIR",
                                  help="folder with MNIST's IDX files, read before the "
                                       "experiments start (Figure 4 MNIST panels; skipped "
                                       "when not given)")
    reproduce_parser.add_argument("--cifar10", type=_folder, default=None, metavar="DIR",
                                  help="folder with CIFAR-10's python batches, read before the "
                                       "experiments start (Figure 4 CIFAR panels; skipped when "
                                       "not given)")
    reproduce_parser.set_defaults(run=reproduce, parser=reproduce_parser)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
