import gzip
import pickle
import struct
import sys

import numpy as np
import pytest

from sksatae.datasets import (
    load_binary_digits,
    load_cifar10,
    load_mnist,
    load_natural_patches,
    make_manifold_2d,
)

# ---------------------------------------------------------------- make_manifold_2d


def _occupied_fraction(X, bins=20):
    counts, _, _ = np.histogram2d(X[:, 0], X[:, 1], bins=bins, range=[[-1, 1], [-1, 1]])
    return np.mean(counts > 0)


def test_manifold_shape_and_inside_square():
    X = make_manifold_2d(n_samples=300, noise=0.5, random_state=0)
    assert X.shape == (300, 2)
    assert X.dtype == np.float64
    # Heavy noise must still be clipped into the square.
    assert np.all(np.abs(X) <= 1.0)
    assert np.any(np.abs(X) == 1.0)


def test_manifold_lies_on_a_curve():
    X = make_manifold_2d(n_samples=2000, random_state=0)
    uniform = np.random.RandomState(0).uniform(-1, 1, size=(2000, 2))
    # As many uniform points occupy almost every cell; the curve only a few.
    assert _occupied_fraction(uniform) > 0.95
    assert _occupied_fraction(X) < 0.15
    # It does not collapse to a point either: it spans most of the square.
    assert np.ptp(X[:, 0]) > 1.0 and np.ptp(X[:, 1]) > 1.0


def test_manifold_is_locally_one_dimensional():
    X = make_manifold_2d(n_samples=2000, random_state=1)
    ratios = []
    for centre in X[::50]:
        neighbours = X[np.argsort(np.linalg.norm(X - centre, axis=1))[:20]]
        eigenvalues = np.linalg.eigvalsh(np.cov(neighbours.T))
        ratios.append(eigenvalues[0] / eigenvalues[1])
    assert np.max(ratios) < 1e-2


def test_manifold_noise_moves_points_by_about_noise():
    clean = make_manifold_2d(n_samples=5000, random_state=3)
    noisy = make_manifold_2d(n_samples=5000, noise=0.05, random_state=3)
    # Same positions along the curve, then noise of the requested scale.
    assert np.std(noisy - clean) == pytest.approx(0.05, rel=0.05)


def test_manifold_deterministic():
    a = make_manifold_2d(n_samples=50, noise=0.1, random_state=42)
    b = make_manifold_2d(n_samples=50, noise=0.1, random_state=42)
    c = make_manifold_2d(n_samples=50, noise=0.1, random_state=43)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"noise": -0.1}, "noise"),
        # bool is an int to Python, but not a number of samples.
        ({"n_samples": True}, r"'n_samples' parameter .* must be an int .* Got True instead"),
    ],
)
def test_manifold_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_manifold_2d(**kwargs)


# ---------------------------------------------------------------- natural patches


def test_patches_shape_and_standardised():
    X = load_natural_patches(patch_size=6, n_patches=3000, random_state=0)
    assert X.shape == (3000, 36)
    assert X.dtype == np.float64
    assert np.all(np.isfinite(X))
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(X.std(axis=0), 1.0, rtol=1e-10)


def test_patches_are_spatially_smooth():
    # Neighbouring pixels of natural images are strongly correlated; random
    # noise or scrambled pixels would not be.
    X = load_natural_patches(patch_size=4, n_patches=3000, random_state=0)
    patches = X.reshape(-1, 4, 4)
    horizontal = np.corrcoef(patches[:, :, 0].ravel(), patches[:, :, 1].ravel())[0, 1]
    far = np.corrcoef(patches[:, 0, 0].ravel(), patches[:, 3, 3].ravel())[0, 1]
    assert horizontal > 0.8
    assert far < horizontal


def test_patches_deterministic():
    a = load_natural_patches(patch_size=5, n_patches=200, random_state=7)
    b = load_natural_patches(patch_size=5, n_patches=200, random_state=7)
    c = load_natural_patches(patch_size=5, n_patches=200, random_state=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_patches_single_patch_is_finite():
    X = load_natural_patches(patch_size=3, n_patches=1, random_state=0)
    assert X.shape == (1, 9)
    np.testing.assert_array_equal(X, 0.0)


def test_patches_largest_size():
    X = load_natural_patches(patch_size=427, n_patches=2, random_state=0)
    assert X.shape == (2, 427 * 427)


def test_patches_without_pillow_name_what_to_install(monkeypatch):
    # scikit-learn reads its sample photographs with Pillow, which sksatae's own
    # dependencies do not bring.
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="needs Pillow: pip install pillow"):
        load_natural_patches(patch_size=4, n_patches=10, random_state=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patch_size": 0}, "patch_size"),
        ({"patch_size": 428}, "patch_size must be at most 427"),
        ({"n_patches": 0}, "n_patches"),
        ({"patch_size": 2.5}, "patch_size"),
        ({"patch_size": True}, r"'patch_size' parameter .* must be an int .* Got True instead"),
        ({"n_patches": True}, r"'n_patches' parameter .* must be an int .* Got True instead"),
    ],
)
def test_patches_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_natural_patches(**kwargs)


# ---------------------------------------------------------------- binary digits


def test_binary_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    bunch = load_binary_digits()
    assert bunch.data.shape == (1797, 64)
    assert bunch.data.dtype == np.float64
    assert set(np.unique(bunch.data)) == {0.0, 1.0}
    np.testing.assert_array_equal(bunch.data == 1.0, digits.data > 8)
    np.testing.assert_array_equal(bunch.target, digits.target)
    assert bunch.images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(bunch.images[5], bunch.data[5].reshape(8, 8))
    assert "MNIST" in bunch.DESCR

    X, y = load_binary_digits(return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, digits.target)


# ---------------------------------------------------------------- MNIST (IDX files)


def _idx_bytes(array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path, content, gz):
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(content)
    else:
        path.write_bytes(content)
    return path


def _write_mnist(folder, prefix, images, labels, gz=False):
    _write(folder / f"{prefix}-images-idx3-ubyte", _idx_bytes(images, 0x803), gz)
    _write(folder / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels, 0x801), gz)


@pytest.fixture
def mnist_arrays():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(3, 28, 28)).astype(np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = np.array([7, 0, 9], dtype=np.uint8)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("kind, prefix", [("train", "train"), ("test", "t10k")])
def test_mnist_round_trip(tmp_path, mnist_arrays, gz, kind, prefix):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, prefix, images, labels, gz=gz)
    X, y = load_mnist(tmp_path, kind=kind)
    assert X.shape == (3, 784)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X * 255.0, images.reshape(3, 784).astype(np.float64))
    assert X[0, 0] == 0.0 and X[0, 1] == 1.0
    np.testing.assert_array_equal(y, [7, 0, 9])


def test_mnist_mixed_gz_and_plain_and_str_path(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(images, 0x803), gz=True)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labels, 0x801), gz=False)
    X, y = load_mnist(str(tmp_path))
    np.testing.assert_array_equal(X.reshape(3, 28, 28) * 255.0, images)
    np.testing.assert_array_equal(y, labels)


def test_mnist_missing_files(tmp_path, mnist_arrays):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*train-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    images, labels = mnist_arrays
    _write_mnist(tmp_path, "train", images, labels)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path, kind="test")
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte") as info:
        load_mnist(tmp_path)
    assert "train-images" not in str(info.value)


def test_mnist_misnamed_files_hint_the_rename(tmp_path, mnist_arrays):
    # Some copies (Kaggle's) have a dot for the hyphen before "idx"; with
    # plain and gzipped files, and a folder of the expected name in the way.
    images, labels = mnist_arrays
    _write(tmp_path / "train-images.idx3-ubyte", _idx_bytes(images, 0x803), gz=False)
    _write(tmp_path / "train-labels.idx1-ubyte", _idx_bytes(labels, 0x801), gz=True)
    with pytest.raises(FileNotFoundError, match="not found") as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "Found 'train-images.idx3-ubyte': rename it 'train-images-idx3-ubyte'." in message
    assert "Found 'train-labels.idx1-ubyte.gz': rename it 'train-labels-idx1-ubyte.gz'." in message
    (tmp_path / "train-images-idx3-ubyte").mkdir()
    with pytest.raises(FileNotFoundError,
                       match="rename it 'train-images-idx3-ubyte' once the folder "
                             "'train-images-idx3-ubyte' is out of the way"):
        load_mnist(tmp_path)
    (tmp_path / "train-images.idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError,
                       match="'train-images-idx3-ubyte' is a folder, not a file"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, kind="test")  # no t10k files of any name: no hint
    assert str(info.value).endswith("(or 't10k-labels-idx1-ubyte.gz').")
    (tmp_path / "train-images-idx3-ubyte").rmdir()
    (tmp_path / "train-labels.idx1-ubyte.gz").rename(tmp_path / "train-labels-idx1-ubyte.gz")
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(images, 0x803), gz=False)
    X, y = load_mnist(tmp_path)
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("loader", [load_mnist, load_cifar10])
def test_not_a_folder(tmp_path, loader):
    with pytest.raises(FileNotFoundError, match="'.*nowhere' does not exist"):
        loader(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="'.*file' is a file, not a folder"):
        loader(tmp_path / "file")


@pytest.mark.parametrize("loader", [load_mnist, load_cifar10])
def test_empty_path_is_refused(tmp_path, monkeypatch, mnist_arrays, loader):
    # Not read as the current folder, even when that holds the files.
    monkeypatch.chdir(tmp_path)
    _write_mnist(tmp_path, "train", *mnist_arrays)
    _write_cifar(tmp_path)
    with pytest.raises(ValueError, match="path must name a folder, got an empty string"):
        loader("")


def test_mnist_bad_kind(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        load_mnist(tmp_path, kind="validation")


def test_mnist_bad_magic(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, "train", images, labels)
    # A labels file where the images file belongs.
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(images, 0x801), gz=False)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*magic number 0x00000801"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("cut", [-1, 1])
def test_mnist_wrong_size(tmp_path, mnist_arrays, cut):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, "train", images, labels)
    content = _idx_bytes(images, 0x803)
    content = content[:cut] if cut < 0 else content + b"\x00" * cut
    _write(tmp_path / "train-images-idx3-ubyte", content, gz=False)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*wrong size"):
        load_mnist(tmp_path)


def test_mnist_truncated_header(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, "train", images, labels)
    _write(tmp_path / "train-labels-idx1-ubyte", b"\x00\x00\x08", gz=False)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*too short"):
        load_mnist(tmp_path)


def test_mnist_count_mismatch(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, "train", images, labels[:2])
    with pytest.raises(ValueError, match="3 images.*2 labels"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("content", [
    b"this is not gzip",
    # A gzip header, then a deflate block of the reserved type: zlib.error.
    b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 20,
])
def test_mnist_corrupt_gzip(tmp_path, mnist_arrays, content):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, "train", images, labels)
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(content)
    with pytest.raises(ValueError, match="Could not read '.*train-images-idx3-ubyte.gz'"):
        load_mnist(tmp_path)


def test_mnist_gzip_without_suffix_says_so(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, "train", images, labels)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(gzip.compress(_idx_bytes(images, 0x803)))
    with pytest.raises(ValueError, match="magic number 0x1f8b.* It is gzip-compressed: name it "
                                         "'train-images-idx3-ubyte.gz'"):
        load_mnist(tmp_path)


def test_mnist_huge_header_dimensions(tmp_path, mnist_arrays):
    # 4 x 2**31 x 2**31 bytes: a product that int64 arithmetic wraps to 0.
    _, labels = mnist_arrays
    _write(tmp_path / "train-images-idx3-ubyte",
           struct.pack(">IIII", 0x803, 4, 2 ** 31, 2 ** 31), gz=False)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(np.zeros(4, np.uint8), 0x801),
           gz=False)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte' has the wrong size: .*"
                                         rf"\(4, 2147483648, 2147483648\), so {16 + 2 ** 64} "
                                         "bytes, but it has 16"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------- CIFAR-10 (pickles)


def _write_batch(path, data, labels):
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"test", b"data": data, b"labels": labels, b"filenames": []}, f)


def _cifar_arrays(n, seed):
    rng = np.random.RandomState(seed)
    data = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
    labels = [int(label) for label in rng.randint(0, 10, size=n)]
    return data, labels


def _write_cifar(folder, kinds=("train", "test")):
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    if "train" in kinds:
        parts = [_cifar_arrays(2 + number % 2, seed=number) for number in range(1, 6)]
        for number, (data, labels) in enumerate(parts, start=1):
            _write_batch(folder / f"data_batch_{number}", data, labels)
        written["train"] = (
            np.concatenate([data for data, _ in parts]),
            np.concatenate([labels for _, labels in parts]),
        )
    if "test" in kinds:
        data, labels = _cifar_arrays(3, seed=99)
        _write_batch(folder / "test_batch", data, labels)
        written["test"] = (data, np.array(labels))
    return written


@pytest.mark.parametrize("kind", ["train", "test"])
@pytest.mark.parametrize("nested", [False, True])
def test_cifar_round_trip(tmp_path, kind, nested):
    folder = tmp_path / "cifar-10-batches-py" if nested else tmp_path
    data, labels = _write_cifar(folder)[kind]
    X, y = load_cifar10(tmp_path, kind=kind)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert X.shape == (data.shape[0], 3072)
    np.testing.assert_array_equal(X * 255.0, data.astype(np.float64))
    np.testing.assert_array_equal(y, labels)


def test_cifar_channel_major_layout(tmp_path):
    data = np.zeros((2, 3072), dtype=np.uint8)
    data[0, :1024] = 255  # first image: all red
    data[1, 2048:] = 255  # second image: all blue
    _write_batch(tmp_path / "test_batch", data, [3, 5])
    X, y = load_cifar10(tmp_path, kind="test")
    images = X.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(images[0, 10, 20], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(images[1, 10, 20], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(y, [3, 5])


def test_cifar_missing_batches(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1.*data_batch_5") as caught:
        load_cifar10(tmp_path)
    assert str(caught.value).count("data_batch_1") == 1  # all missing: listed once
    _write_cifar(tmp_path, kinds=("train",))
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(tmp_path, kind="test")
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing 'data_batch_4' \(expected 'data_batch_1'"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nowhere")


def test_cifar_archive_only_hints_extraction(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b\x08\x00")
    for kind in ("train", "test"):
        with pytest.raises(FileNotFoundError,
                           match="not found.*Found 'cifar-10-python.tar.gz': extract it first"):
            load_cifar10(tmp_path, kind=kind)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path / "empty")
    assert "extract" not in str(info.value) and "binary" not in str(info.value)


def test_cifar_binary_version_is_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{number}.bin" for number in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(bytes(2 * 3073))
    hint = "from CIFAR-10's binary version: only the python version"
    with pytest.raises(FileNotFoundError, match=f"Found 'data_batch_1.bin', {hint}"):
        load_cifar10(folder)
    with pytest.raises(FileNotFoundError, match=f"Found 'test_batch.bin', {hint}"):
        load_cifar10(folder, kind="test")
    with pytest.raises(FileNotFoundError, match=f"Found 'cifar-10-batches-bin', {hint}"):
        load_cifar10(tmp_path)


def test_cifar_bad_kind(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        load_cifar10(tmp_path, kind="all")


def _bad_batch(tmp_path, content):
    _write_cifar(tmp_path, kinds=("test",))
    path = tmp_path / "test_batch"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with open(path, "wb") as f:
            pickle.dump(content, f)


def test_cifar_not_a_pickle(tmp_path):
    _bad_batch(tmp_path, b"not a pickle at all")
    with pytest.raises(ValueError, match="Could not unpickle.*test_batch"):
        load_cifar10(tmp_path, kind="test")


@pytest.mark.parametrize(
    "content, match",
    [
        ([1, 2, 3], "not a CIFAR-10 batch"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "not a CIFAR-10 batch"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, "not a CIFAR-10 batch"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, r"shape \(n_images, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, "2 images but 3 labels"),
        ({b"data": np.full((2, 3072), 300), b"labels": [0, 1]}, "levels 0-255"),
        ({b"data": np.full((2, 3072), 0.5), b"labels": [0, 1]}, "levels 0-255"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "classes 0-9"),
        ({b"data": [[0] * 3072, [0] * 5], b"labels": [0, 1]}, "b'data' is not an array"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, [1]]},
         "b'labels' is not an array"),
        ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "holds no images"),
    ],
)
def test_cifar_malformed_batch(tmp_path, content, match):
    _bad_batch(tmp_path, content)
    with pytest.raises(ValueError, match=match) as info:
        load_cifar10(tmp_path, kind="test")
    assert "test_batch" in str(info.value)
