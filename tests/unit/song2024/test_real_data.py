"""The real-data analogue of Tables 1–2 (MNIST and FashionMNIST): its parameters, the inputs it
builds from the data sets (on tiny stand-in arrays), and the one code path it shares with the
digits."""

import numpy as np
import pytest

from flowcore import datasets
from flowcore.studies.kirichenko2020.config import KirichenkoConfig
from flowcore.studies.song2024 import claims, digits
from flowcore.studies.song2024.config import SongConfig
from flowcore.train import TrainConfig


@pytest.mark.parametrize(
    "params, message",
    [
        ({"mnist_size": 9}, "^mnist_size must be 7, 14 or 28"),
        ({"mnist_datasets": ["cifar10"]}, "^mnist_datasets must be a non-empty list"),
        ({"mnist_datasets": ["mnist", "mnist"]}, "^mnist_datasets must be a non-empty list"),
        ({"mnist_classes": [3, 3]}, "^mnist_classes must be 2 to 10 distinct labels"),
        ({"mnist_classes": [0, 10]}, "^mnist_classes must be 2 to 10 distinct labels"),
        ({"mnist_per_class": 5}, "^mnist_per_class must be an integer ≥ 10"),
        ({"mnist_test": 20_000}, "^mnist_test must be an integer"),
        ({"mnist_fraction": 0.0}, r"^mnist_fraction must be a fraction in \(0, 1\]"),
        ({"mnist_outlier_fraction": 1.0}, r"^mnist_outlier_fraction must hold fractions"),
        ({"mnist_alpha": 0.0}, "^mnist_alpha must be"),
        ({"mnist_n_boot": 10}, "^mnist_n_boot must be an integer ≥ 100"),
    ],
)
def test_a_bad_real_data_setting_names_its_parameter(params, message):
    with pytest.raises(ValueError, match=message):
        SongConfig.from_params(**params)


def test_the_klj_weight_is_alpha_per_pixel_and_the_flows_follow_the_knobs():
    config = SongConfig.from_params(mnist_size=7, mnist_alpha=0.02, mnist_channels=3)
    assert config.mnist_klj_weight == pytest.approx(0.98)
    k = config.mnist_config()
    assert (k.channels, k.n_blocks, k.train.max_epochs) == (3, 1, config.mnist_epochs)


#: Stand-in arrays: 28×28 images, 4 classes in turn, whose top two rows hold the image's index and
#: whose other pixels hold its class × 20 (+ 1 in "fashion_mnist"), so that a test can tell where
#: each image came from (both survive 2×2 block means).
_N = {"train": 240, "test": 60}


def _fake(name, split):
    n = _N[split]
    labels = (np.arange(n) % 4).astype(np.uint8)
    images = np.empty((n, 28, 28), dtype=np.uint8)
    images[:] = (labels * 20 + (name == "fashion_mnist"))[:, None, None]
    images[:, :2, :] = np.arange(n)[:, None, None]
    return images, labels


@pytest.fixture
def fake_load(monkeypatch):
    monkeypatch.setattr(datasets, "load", _fake)


def test_inputs_hold_seeded_disjoint_class_subsets_and_the_other_set(fake_load):
    x = digits.dataset_inputs("mnist", classes=(1, 3), size=14, per_class=20, n_test=10, seed=0)
    assert x.side == 14 and x.levels == 256 and x.classes == (1, 3)
    assert {k: v.shape for k, v in x.splits.items()} == {
        "train": (40, 196),
        "val": (12, 196),  # 10 per class at least, but the validation pool holds 6
        "test": (10, 196),
    }
    for split in ("train", "val"):
        assert (
            sorted(np.unique(x.labels[split], return_counts=True)[1])
            == [len(x.splits[split]) // 2] * 2
        )
    assert set(x.labels["test"]) <= {1, 3}
    for split in x.splits:  # each image carries its own label
        assert np.array_equal(x.splits[split][:, -1], x.labels[split] * 20)
    # training and validation images are different images of the training split
    assert not set(x.splits["train"][:, 0]) & set(x.splits["val"][:, 0])
    assert list(x.ood) == ["FashionMNIST", "transposed", "noisy"]
    assert len(x.ood["FashionMNIST"]) == 10 and (x.ood["FashionMNIST"][:, -1] % 20 == 1).all()
    square = x.splits["test"].reshape(-1, 14, 14)
    assert np.array_equal(x.ood["transposed"], square.transpose(0, 2, 1).reshape(-1, 196))
    assert np.abs(x.ood["noisy"] - x.splits["test"]).max() <= 48
    assert x.ood["noisy"].min() >= 0 and x.ood["noisy"].max() <= 255
    again = digits.dataset_inputs("mnist", classes=(1, 3), size=14, per_class=20, n_test=10)
    other = digits.dataset_inputs("mnist", (1, 3), size=14, per_class=20, n_test=10, seed=1)
    assert all(np.array_equal(x.splits[s], again.splits[s]) for s in x.splits)
    assert not np.array_equal(x.splits["train"], other.splits["train"])
    assert (
        x.tag
        == "mnist 14×14, 20 per class"
        != digits.dataset_inputs("fashion_mnist", (1, 3), size=14, per_class=20, n_test=10).tag
    )


def test_a_class_with_fewer_images_than_asked_uses_them_all(fake_load):
    # 60 images per class in the stand-in: 6 kept for validation, 54 to train on
    x = digits.dataset_inputs("fashion_mnist", classes=(0, 2), size=7, per_class=1000, n_test=500)
    assert len(x.splits["train"]) == 2 * 54 and len(x.splits["val"]) == 2 * 6
    assert len(x.splits["test"]) == 30 and len(x.ood["MNIST"]) == 60


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dataset": "cifar10"}, "^dataset must be one of"),
        ({"classes": (1,)}, "^classes must be 2 to 10 distinct labels"),
        ({"size": 9}, "^size must divide 28"),
        ({"per_class": 0}, "^per_class must be an integer ≥ 1"),
    ],
)
def test_bad_inputs_name_their_argument(fake_load, kwargs, message):
    with pytest.raises(ValueError, match=message):
        digits.dataset_inputs(**{"dataset": "mnist", **kwargs})


def test_the_real_data_runs_the_digits_code_path_end_to_end(fake_load):
    """Tiny flows (4×4 images, one epoch) through the same training, scoring and claims as the
    digits: 256 levels, the data set's tag in the flows' names, every model scored on every set."""
    x = digits.dataset_inputs("mnist", classes=(0, 1), size=4, per_class=12, n_test=8)
    k = KirichenkoConfig(
        channels=1, n_blocks=1, n_couplings=2, n_draws=1, train=TrainConfig(max_epochs=1)
    )
    scores = digits.digits_scores(k, 0.5, 0.25, 0.5, progress=False, inputs=x)
    table = digits.digits_table(scores)
    assert len(table) == 6 and list(scores.ood) == ["FashionMNIST", "transposed", "noisy"]
    assert all(np.isfinite(s).all() for log_px in scores.log_px for s in log_px.values())
    draws = digits.paired_bootstrap(scores, n_boot=100)
    found = claims.s_digits(table, draws)
    check = claims.assess("S11", found["S11"], data="MNIST")
    assert check.claim == "S11 · MNIST" and set(found) == {"S11", "S12", "S13", "S14"}
    changes = digits.klj_changes(table, draws)
    assert len(changes) == 3 * 5 and (changes["CI low"] <= changes["CI high"]).all()
