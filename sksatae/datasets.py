"""Data sets for the experiments of Goroshin & LeCun (2013).

Generated or bundled data, usable without a network:

- :func:`make_manifold_2d`: the 2-D toy data of Figures 2 and 3, points on a
  1-D curve inside ``[-1, 1]^2``;
- :func:`load_natural_patches`: standardised grayscale patches from the
  photographs bundled with scikit-learn (Figure 4, natural image patches);
- :func:`load_binary_digits`: scikit-learn's 8x8 digits, binarised, the
  stand-in for binary MNIST.

Readers for files the user already has on disk (nothing is downloaded):

- :func:`load_mnist`: the IDX files of MNIST;
- :func:`load_cifar10`: the python batches of CIFAR-10.
"""

import gzip
import math
import os
import pickle
import zlib
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = [
    "make_manifold_2d",
    "load_natural_patches",
    "load_binary_digits",
    "load_mnist",
    "load_cifar10",
]

_LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114])
"""ITU-R BT.601 weights of R, G and B in the gray level."""

_SPIRAL_TURN = 1.75 * np.pi
_SPIRAL_RADII = (0.25, 0.8)


class _IntInterval(Interval):
    """An interval of integers that, unlike ``Interval(Integral, ...)``, refuses bools."""

    def __init__(self, left, right, *, closed):
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


@validate_params(
    {
        "n_samples": [_IntInterval(1, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_manifold_2d(n_samples=200, noise=0.0, random_state=None):
    """Generate 2-D points on a 1-D curve: the toy data of Figures 2 and 3.

    The curve is an arc of an Archimedean spiral centred on the origin: at
    angle ``theta`` in ``[0, 7 pi / 4]`` its radius grows linearly from 0.25 to
    0.8. It lies well inside ``[-1, 1]^2`` and covers a small part of it, so
    an energy landscape drawn over the square shows whether the model's
    low-energy region hugs the curve or spreads over the plane.

    Parameters
    ----------
    n_samples : int, default=200
        Number of points.

    noise : float, default=0.0
        Standard deviation of the gaussian noise added to each coordinate.
        Noisy points are clipped to ``[-1, 1]^2``.

    random_state : int, RandomState instance or None, default=None
        Controls the positions along the curve and the noise. Pass an int for
        reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
        The points, all inside ``[-1, 1]^2``.

    Examples
    --------
    >>> from sksatae.datasets import make_manifold_2d
    >>> X = make_manifold_2d(n_samples=100, noise=0.02, random_state=0)
    >>> X.shape
    (100, 2)
    >>> bool((abs(X) <= 1).all())
    True
    """
    rng = check_random_state(random_state)
    position = rng.uniform(0.0, 1.0, size=n_samples)
    theta = _SPIRAL_TURN * position
    inner, outer = _SPIRAL_RADII
    radius = inner + (outer - inner) * position
    X = np.column_stack([radius * np.cos(theta), radius * np.sin(theta)])
    if noise > 0:
        X += rng.normal(scale=noise, size=X.shape)
    return np.clip(X, -1.0, 1.0)


def _gray_sample_images():
    from sklearn.datasets import load_sample_images

    try:
        images = load_sample_images().images
    except ImportError as exc:  # scikit-learn reads the JPEGs with Pillow
        raise ImportError(
            "load_natural_patches reads scikit-learn's sample photographs, which needs "
            "Pillow: pip install pillow (or sksatae's [plot] extra, which brings it with "
            "matplotlib).") from exc
    return [image @ _LUMINANCE_WEIGHTS / 255.0 for image in images]


@validate_params(
    {
        "patch_size": [_IntInterval(1, None, closed="left")],
        "n_patches": [_IntInterval(1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def load_natural_patches(patch_size=12, n_patches=10000, random_state=None):
    """Standardised grayscale patches of natural images (Section 4, Figure 4).

    Square patches are cut at random positions from the photographs bundled
    with scikit-learn (:func:`~sklearn.datasets.load_sample_images`: two
    427x640 images), after converting them to gray with the ITU-R BT.601
    luminance weights (0.299 R + 0.587 G + 0.114 B, on a 0-1 scale). Each
    patch picks one of the images with equal probability and a uniformly
    random position inside it.

    The patches are then standardised **per pixel**, as
    :class:`~sklearn.preprocessing.StandardScaler` does: every pixel position
    (feature) has the mean over the drawn patches subtracted and is divided
    by its standard deviation over them. This is the usual reading of the
    paper's "normalized by subtracting the mean and dividing by the standard
    deviation of the dataset", and the feature scaling the estimator is
    designed for. Natural images are close to stationary, so the per-pixel
    statistics barely differ from the global ones and the patches keep their
    look. A pixel with zero variance (possible only with very few patches)
    is centred and left unscaled.

    Parameters
    ----------
    patch_size : int, default=12
        Side of the square patches, in pixels; at most the images' smaller
        side (427).

    n_patches : int, default=10000
        Number of patches.

    random_state : int, RandomState instance or None, default=None
        Controls the images and positions drawn. Pass an int for reproducible
        output.

    Returns
    -------
    X : ndarray of shape (n_patches, patch_size ** 2), dtype float64
        One flattened patch per row (row-major, reshape to
        ``(patch_size, patch_size)`` to view it), every column with mean 0 and
        standard deviation 1.

    Examples
    --------
    >>> from sksatae.datasets import load_natural_patches
    >>> X = load_natural_patches(patch_size=8, n_patches=500, random_state=0)
    >>> X.shape
    (500, 64)
    """
    images = _gray_sample_images()
    largest = min(min(image.shape) for image in images)
    if patch_size > largest:
        raise ValueError(
            f"patch_size must be at most {largest}, the smaller side of the sample "
            f"images, got {patch_size}."
        )
    rng = check_random_state(random_state)
    which = rng.randint(len(images), size=n_patches)
    patches = np.empty((n_patches, patch_size, patch_size))
    for index, image in enumerate(images):
        chosen = np.flatnonzero(which == index)
        rows = rng.randint(image.shape[0] - patch_size + 1, size=chosen.size)
        cols = rng.randint(image.shape[1] - patch_size + 1, size=chosen.size)
        windows = np.lib.stride_tricks.sliding_window_view(image, (patch_size, patch_size))
        patches[chosen] = windows[rows, cols]
    X = patches.reshape(n_patches, -1)
    X -= X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    X /= scale
    return X


@validate_params({"return_X_y": ["boolean"]}, prefer_skip_nested_validation=True)
def load_binary_digits(return_X_y=False):
    """scikit-learn's 8x8 digits, binarised: the stand-in for binary MNIST.

    The paper's Figure 4 (a) and (b) are learned on binary MNIST; this
    bundled data set (:func:`~sklearn.datasets.load_digits`, 1797 images of
    8x8 pixels with gray levels 0-16) plays its part without a download. A
    pixel is 1 when its level is above 8 (more than half of 16), else 0.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With ``data`` (ndarray of shape (1797, 64), float64, values 0 and 1),
        ``target`` (ndarray of shape (1797,), the digit), ``images`` (ndarray
        of shape (1797, 8, 8), ``data`` as images), ``target_names`` and
        ``DESCR``.

    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sksatae.datasets import load_binary_digits
    >>> X, y = load_binary_digits(return_X_y=True)
    >>> X.shape, sorted(set(X.ravel().tolist()))
    ((1797, 64), [0.0, 1.0])
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = (digits.data > 8).astype(np.float64)
    if return_X_y:
        return data, digits.target
    return Bunch(
        data=data,
        target=digits.target,
        images=data.reshape(-1, 8, 8),
        target_names=digits.target_names,
        DESCR=(
            "scikit-learn's 8x8 digits (load_digits) binarised: pixel level > 8 "
            "(of 16) -> 1, else 0. A small stand-in for binary MNIST."
        ),
    )


def _check_folder(path):
    if os.fspath(path) == "":
        raise ValueError("path must name a folder, got an empty string.")
    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"The folder {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{str(folder)!r} is a file, not a folder.")
    return folder


_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"


def _find_mnist_file(folder, name):
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _mnist_hints(folder, missing):
    """What the folder holds in place of the missing files: copies of MNIST
    whose names have dots or underscores for hyphens (``train-images.idx3-ubyte``,
    as on Kaggle), or a folder of the expected name."""
    hints = []
    for name in missing:
        in_the_way = (folder / name).is_dir()
        misnamed = []
        for file in sorted(folder.iterdir()):
            stem, gz = (file.name[:-3], ".gz") if file.name.endswith(".gz") else (file.name, "")
            if stem != name and stem.replace(".", "-").replace("_", "-") == name and file.is_file():
                misnamed.append(f"Found {file.name!r}: rename it {name + gz!r}")
        if in_the_way:
            misnamed = [f"{hint} once the folder {name!r} is out of the way" for hint in misnamed]
        hints += misnamed or ([f"{name!r} is a folder, not a file"] if in_the_way else [])
    return "".join(f" {hint}." for hint in hints)


def _read_idx(file, magic, n_dims):
    """The dimensions and unsigned bytes of an IDX file of the given magic number."""
    opener = gzip.open if file.suffix == ".gz" else open
    try:
        with opener(file, "rb") as f:
            content = f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"Could not read {str(file)!r}: {error}.") from error
    header_size = 4 + 4 * n_dims
    if len(content) < header_size:
        raise ValueError(
            f"{str(file)!r} is too short for an IDX header: {len(content)} bytes, "
            f"expected at least {header_size}."
        )
    found_magic = int.from_bytes(content[:4], "big")
    if found_magic != magic:
        hint = ""
        if content[:2] == _GZIP_MAGIC and opener is open:
            hint = f" It is gzip-compressed: name it {file.name + '.gz'!r}."
        raise ValueError(
            f"{str(file)!r} has magic number 0x{found_magic:08x}, expected "
            f"0x{magic:08x} (unsigned bytes, {n_dims} dimension(s)).{hint}"
        )
    dims = tuple(
        int.from_bytes(content[4 + 4 * axis: 8 + 4 * axis], "big") for axis in range(n_dims)
    )
    expected = header_size + math.prod(dims)
    if len(content) != expected:
        raise ValueError(
            f"{str(file)!r} has the wrong size: its header announces dimensions {dims}, "
            f"so {expected} bytes, but it has {len(content)}."
        )
    return dims, np.frombuffer(content, dtype=np.uint8, offset=header_size)


@validate_params(
    {"path": [str, os.PathLike], "kind": [StrOptions({"train", "test"})]},
    prefer_skip_nested_validation=True,
)
def load_mnist(path, kind="train"):
    """Read MNIST from its IDX files in a local folder.

    Nothing is downloaded: ``path`` must hold the standard files, each plain
    or gzipped (with a ``.gz`` suffix):

    - ``kind="train"``: ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``;
    - ``kind="test"``: ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``.

    Parameters
    ----------
    path : str or path-like
        The folder holding the files.

    kind : {"train", "test"}, default="train"
        Which split to read.

    Returns
    -------
    X : ndarray of shape (n_samples, rows * cols), dtype float64
        Pixel levels divided by 255, in ``[0, 1]``; one image per row in
        row-major order, so ``(n_samples, 784)`` for MNIST's 28x28 images.

    y : ndarray of shape (n_samples,), dtype int64
        The labels.

    Raises
    ------
    FileNotFoundError
        When the folder or a file is missing; the message names the expected
        files, and the renames that would give them to files named with dots or
        underscores for hyphens (``train-images.idx3-ubyte``).
    NotADirectoryError
        When ``path`` is a file.
    ValueError
        When ``path`` is empty, a file is malformed (not readable, wrong magic
        number, size not matching its header) or the numbers of images and
        labels differ.

    See Also
    --------
    load_binary_digits : A bundled stand-in for binary MNIST.
    """
    folder = _check_folder(path)
    prefix = "train" if kind == "train" else "t10k"
    images_name = f"{prefix}-images-idx3-ubyte"
    labels_name = f"{prefix}-labels-idx1-ubyte"
    images_file = _find_mnist_file(folder, images_name)
    labels_file = _find_mnist_file(folder, labels_name)
    missing = [name for name, file in ((images_name, images_file), (labels_name, labels_file))
               if file is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST {kind} files not found in {str(folder)!r}: expected "
            + " and ".join(f"{name!r} (or {name + '.gz'!r})" for name in missing)
            + "."
            + _mnist_hints(folder, missing)
        )
    (n_images, rows, cols), pixels = _read_idx(images_file, _IDX_IMAGES_MAGIC, 3)
    (n_labels,), labels = _read_idx(labels_file, _IDX_LABELS_MAGIC, 1)
    if n_images != n_labels:
        raise ValueError(
            f"{str(images_file)!r} holds {n_images} images but {str(labels_file)!r} "
            f"holds {n_labels} labels."
        )
    X = pixels.reshape(n_images, rows * cols) / 255.0
    return X, labels.astype(np.int64)


_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_BINARY_FOLDER = "cifar-10-batches-bin"
_CIFAR_N_FEATURES = 3 * 32 * 32


def _cifar_batch_names(kind):
    if kind == "train":
        return [f"data_batch_{number}" for number in range(1, 6)]
    return ["test_batch"]


def _read_cifar_batch(file):
    try:
        with open(file, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as error:
        raise ValueError(f"Could not unpickle {str(file)!r}: {error!r}.") from error
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(
            f"{str(file)!r} is not a CIFAR-10 batch: expected a dict with keys "
            "b'data' and b'labels'."
        )
    arrays = {}
    for key in (b"data", b"labels"):
        try:
            arrays[key] = np.asarray(batch[key])
        except (ValueError, TypeError) as error:  # ragged nested lists
            raise ValueError(f"{str(file)!r}: b{key.decode()!r} is not an array: {error}") \
                from error
    data, labels = arrays[b"data"], arrays[b"labels"]
    if data.ndim != 2 or data.shape[1] != _CIFAR_N_FEATURES:
        raise ValueError(
            f"{str(file)!r}: b'data' must have shape (n_images, {_CIFAR_N_FEATURES}), "
            f"got {data.shape}."
        )
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise ValueError(
            f"{str(file)!r} holds {data.shape[0]} images but {labels.size} labels."
        )
    if data.shape[0] == 0:
        raise ValueError(f"{str(file)!r} holds no images.")
    if data.dtype.kind not in "iu" or data.size and (data.min() < 0 or data.max() > 255):
        raise ValueError(f"{str(file)!r}: b'data' must hold integer pixel levels 0-255.")
    if labels.dtype.kind not in "iu" or labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{str(file)!r}: b'labels' must hold integer classes 0-9.")
    return data, labels


@validate_params(
    {"path": [str, os.PathLike], "kind": [StrOptions({"train", "test"})]},
    prefer_skip_nested_validation=True,
)
def load_cifar10(path, kind="train"):
    """Read CIFAR-10 from its python batches in a local folder.

    Nothing is downloaded. ``path`` is the extracted ``cifar-10-batches-py``
    folder or the folder containing it, holding ``data_batch_1`` to
    ``data_batch_5`` (``kind="train"``) or ``test_batch`` (``kind="test"``).

    .. warning::
        The batches are Python pickles, and unpickling can run arbitrary
        code. Only load files from a source you trust.

    Parameters
    ----------
    path : str or path-like
        The folder holding the batches, or the folder containing
        ``cifar-10-batches-py``.

    kind : {"train", "test"}, default="train"
        Which split to read; the training batches are concatenated in order.

    Returns
    -------
    X : ndarray of shape (n_samples, 3072), dtype float64
        Pixel levels divided by 255, in ``[0, 1]``, in CIFAR's channel-major
        order: the 1024 red values (row-major 32x32), then green, then blue.
        ``X.reshape(-1, 3, 32, 32)`` gives the images channel first, and
        ``.transpose(0, 2, 3, 1)`` then gives them channel last.

    y : ndarray of shape (n_samples,), dtype int64
        The classes, 0-9.

    Raises
    ------
    FileNotFoundError
        When the folder or a batch is missing; the message names the expected
        files, says to extract ``cifar-10-python.tar.gz`` first when the
        folder holds only the archive, and that only the python version is
        read when it finds the binary one (``data_batch_1.bin``).
    NotADirectoryError
        When ``path`` is a file.
    ValueError
        When ``path`` is empty, or a batch is malformed: not unpicklable, not
        a dict with ``b"data"`` and ``b"labels"``, data not of shape (n, 3072)
        with levels 0-255, no images, labels not matching the images or
        outside 0-9.
    """
    given = folder = _check_folder(path)
    names = _cifar_batch_names(kind)
    if not (folder / names[0]).is_file() and (folder / _CIFAR_FOLDER).is_dir():
        folder = folder / _CIFAR_FOLDER
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        hint = ""
        if (given / _CIFAR_ARCHIVE).is_file():
            hint = (
                f" Found {_CIFAR_ARCHIVE!r}: extract it first (tar -xzf {_CIFAR_ARCHIVE}) "
                f"and pass the {_CIFAR_FOLDER!r} folder it creates, or the folder "
                "containing it."
            )
        binary = [f"{name}.bin" for name in missing if (folder / f"{name}.bin").is_file()]
        if binary or (given / _CIFAR_BINARY_FOLDER).is_dir():
            found = repr(binary[0]) if binary else repr(_CIFAR_BINARY_FOLDER)
            hint += (
                f" Found {found}, from CIFAR-10's binary version: only the python version "
                f"({_CIFAR_ARCHIVE!r}, which extracts to {_CIFAR_FOLDER!r}) is read."
            )
        raise FileNotFoundError(
            f"CIFAR-10 {kind} batches not found in {str(folder)!r}: missing "
            f"{', '.join(repr(name) for name in missing)}"
            + ("." if len(missing) == len(names) else
               f" (expected {', '.join(repr(name) for name in names)}).") + hint
        )
    batches = [_read_cifar_batch(folder / name) for name in names]
    X = np.concatenate([data for data, _ in batches]) / 255.0
    y = np.concatenate([labels for _, labels in batches]).astype(np.int64)
    return X, y
