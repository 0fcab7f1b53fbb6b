"""The offline data of the Kirichenko et al. (2020) study: splits, OOD sets, dequantisation,
bits/dim, AUROC."""

import math

import numpy as np
import pytest
import torch

from flowcore import rng
from flowcore.studies.kirichenko2020 import data


@pytest.fixture(scope="module")
def splits():
    return data.digits_splits(seed=0)


@pytest.fixture(scope="module")
def sets(splits):
    return data.ood_sets(splits, seed=0)


def _rows(images):
    return {row.tobytes() for row in np.ascontiguousarray(images)}


# --- splits ---


def test_splits_shapes_ranges_and_fractions(splits):
    assert list(splits) == ["train", "val", "test"]
    n = {name: len(images) for name, images in splits.items()}
    total = sum(n.values())
    assert total == 1797 - 182 - 179  # every digit but the 1s and 7s
    for name, fraction in zip(splits, (0.7, 0.1, 0.2)):
        images = splits[name]
        assert images.ndim == 2 and images.shape[1] == 64
        assert np.issubdtype(images.dtype, np.integer)
        assert images.min() >= 0 and images.max() <= 16
        assert abs(n[name] / total - fraction) < 0.01


def test_splits_are_disjoint_and_stratified(splits):
    rows = {name: _rows(images) for name, images in splits.items()}
    assert sum(len(r) for r in rows.values()) == len(set().union(*rows.values()))
    labels = data.split_labels(seed=0)
    assert {name: len(v) for name, v in labels.items()} == {
        name: len(v) for name, v in splits.items()
    }
    for name, fraction in zip(labels, (0.7, 0.1, 0.2)):
        counts = np.bincount(labels[name], minlength=10)
        assert counts[1] == counts[7] == 0
        for c in data.IN_CLASSES:
            n_class = sum(np.count_nonzero(v == c) for v in labels.values())
            assert abs(counts[c] - fraction * n_class) <= 1  # rounded per class


def test_splits_are_deterministic_per_seed(splits):
    again = data.digits_splits(seed=0)
    other = data.digits_splits(seed=1)
    for name in splits:
        assert np.array_equal(splits[name], again[name])
    assert _rows(splits["test"]) != _rows(other["test"])


def test_splits_reject_bad_parameters():
    with pytest.raises(ValueError, match="fractions"):
        data.digits_splits(fractions=(0.5, 0.1, 0.2))
    with pytest.raises(ValueError, match="in_classes"):
        data.digits_splits(in_classes=(0, 10))
    with pytest.raises(ValueError, match="seed"):
        data.digits_splits(seed=-1)


# --- OOD sets ---


def test_ood_sets_names_shapes_and_ranges(splits, sets):
    assert tuple(sets) == data.OOD_NAMES
    n_test = len(splits["test"])
    for name, (images, description) in sets.items():
        assert images.ndim == 2 and images.shape[1] == 64, name
        assert np.issubdtype(images.dtype, np.integer), name
        assert images.min() >= 0 and images.max() <= 16, name
        assert isinstance(description, str) and len(description) > 20, name
    assert len(sets["class 1"][0]) == 182 and len(sets["class 7"][0]) == 179
    for name in (
        "flipped left–right",
        "flipped up–down",
        "inverted",
        "uniform noise",
        "photo patches",
    ):
        assert len(sets[name][0]) == n_test, name
    assert "CIFAR" in sets["photo patches"][1] and "MNIST" in sets["class 1"][1]


def test_held_out_classes_are_not_in_the_splits(splits, sets):
    seen = set().union(*(_rows(v) for v in splits.values()))
    assert not (_rows(sets["class 1"][0]) | _rows(sets["class 7"][0])) & seen


def test_class_1_has_more_zero_pixels_and_says_so(splits, sets):
    ones = sets["class 1"][0]
    in_zero = np.mean(np.concatenate(list(splits.values())) == 0)
    assert np.mean(ones == 0) > in_zero + 0.03
    assert f"{np.mean(ones == 0):.0%} zero pixels" in sets["class 1"][1]


def test_flips_and_inversion_are_what_they_say(splits, sets):
    test = splits["test"]
    lr, ud, inv = (sets[name][0] for name in ("flipped left–right", "flipped up–down", "inverted"))
    square = test.reshape(-1, 8, 8)
    assert np.array_equal(lr.reshape(-1, 8, 8)[:, 2, 1], square[:, 2, 6])
    assert np.array_equal(ud.reshape(-1, 8, 8)[:, 1, 2], square[:, 6, 2])
    assert np.array_equal(lr.reshape(-1, 8, 8)[:, :, ::-1].reshape(-1, 64), test)
    assert np.array_equal(ud.reshape(-1, 8, 8)[:, ::-1, :].reshape(-1, 64), test)
    assert np.array_equal(inv + test, np.full_like(test, 16))


def test_noise_and_patches_are_seeded(splits, sets):
    again = data.ood_sets(splits, seed=0)
    other = data.ood_sets(splits, seed=1)
    for name in ("uniform noise", "photo patches"):
        assert np.array_equal(sets[name][0], again[name][0]), name
        assert not np.array_equal(sets[name][0], other[name][0]), name
    noise = sets["uniform noise"][0]
    assert set(np.unique(noise).tolist()) == set(range(17))
    assert abs(noise.mean() - 8) < 0.2
    assert np.array_equal(
        sets["class 1"][0], other["class 1"][0]
    )  # the held-out classes do not depend on the seed


def test_photo_patches_are_smooth_and_validated():
    patches = data.photo_patches(200, seed=0).reshape(-1, 8, 8).astype(float)
    noise = rng.numpy_stream(0).integers(0, 17, (200, 8, 8)).astype(float)
    # natural images: neighbouring pixels are far more alike than in noise
    assert np.abs(np.diff(patches, axis=2)).mean() < 0.5 * np.abs(np.diff(noise, axis=2)).mean()
    assert data.photo_patches(3, seed=0, crop=8).shape == (3, 64)
    assert data.photo_patches(0).shape == (0, 64)
    with pytest.raises(ValueError, match="crop"):
        data.photo_patches(3, crop=12)


def test_ood_sets_refuse_splits_holding_a_held_out_class():
    with pytest.raises(ValueError, match="holds out"):
        data.ood_sets(data.digits_splits(in_classes=(0, 1), seed=0))
    with pytest.raises(ValueError, match="splits"):
        data.ood_sets({"train": np.zeros((2, 64), dtype=int)})


def test_ood_sets_default_splits(splits, sets):
    default = data.ood_sets(seed=0)
    assert np.array_equal(default["inverted"][0], sets["inverted"][0])


# --- dequantisation, bits/dim, scoring ---


def test_dequantize_range_cells_and_seeding(splits):
    images = splits["train"]
    x = data.dequantize(images, rng.generator(0))
    assert x.dtype == torch.float32 and x.shape == images.shape
    assert float(x.min()) >= 0 and float(x.max()) < 1
    assert torch.equal(torch.floor(x.double() * 17).long(), torch.from_numpy(images))
    assert torch.equal(x, data.dequantize(images, rng.generator(0)))
    assert not torch.equal(x, data.dequantize(images, rng.generator(1)))
    top = data.dequantize(np.full((2000, 64), 16), rng.generator(0))
    assert float(top.max()) < 1 and float(top.min()) >= 16 / 17 - 1e-6
    assert data.dequantize(images[:4], rng.generator(0), dtype=torch.float64).dtype == torch.float64


def test_dequantize_rejects_non_pixels():
    for bad in (np.array([[17]]), np.array([[-1]]), np.array([[0.5]]), np.array([[np.nan]])):
        with pytest.raises(ValueError, match="images"):
            data.dequantize(bad, rng.generator(0))


def test_bits_per_dim_sign_and_known_values():
    assert data.bits_per_dim(0.0) == pytest.approx(math.log2(17))  # uniform density on [0, 1)^64
    assert data.bits_per_dim(64 * math.log(17)) == pytest.approx(0.0, abs=1e-12)
    higher, lower = data.bits_per_dim(np.array([10.0, -10.0]))
    assert higher < lower  # more likely, fewer bits
    assert data.bits_per_dim(-64 * math.log(2)) == pytest.approx(math.log2(17) + 1)
    assert data.bits_per_dim(0.0, dim=1) == pytest.approx(math.log2(17))
    assert data.bits_per_dim(np.zeros((2, 3))).shape == (2, 3)


def test_mean_log_likelihood_is_seeded_and_batch_free(splits):
    images = splits["test"][:50]

    def log_prob(x):
        return -((x - 0.3) ** 2).sum(1)

    a = data.mean_log_likelihood(log_prob, images, n_draws=3, seed=0, batch_size=7)
    b = data.mean_log_likelihood(log_prob, images, n_draws=3, seed=0, batch_size=512)
    c = data.mean_log_likelihood(log_prob, images, n_draws=3, seed=1)
    assert a.shape == (50,) and a.dtype == np.float64
    assert np.allclose(a, b) and not np.allclose(a, c)
    expected = np.mean(
        [
            log_prob(
                data.dequantize(images, rng.stream(0, "kirichenko2020", "dequantize", k))
            ).numpy()
            for k in range(3)
        ],
        axis=0,
    )
    assert np.allclose(a, expected)
    with pytest.raises(ValueError, match="log_prob_fn"):
        data.mean_log_likelihood(lambda x: x, images)
    with pytest.raises(ValueError, match="n_draws"):
        data.mean_log_likelihood(log_prob, images, n_draws=0)


def test_mean_log_likelihood_runs_without_grad(splits):
    weight = torch.ones(64, requires_grad=True)
    seen = []

    def log_prob(x):
        out = (x * weight).sum(1)
        seen.append(out.requires_grad)
        return out

    data.mean_log_likelihood(log_prob, splits["test"][:5], n_draws=1)
    assert seen == [False]


# --- AUROC ---


def test_auroc_ci_separable_identical_and_reversed():
    g = rng.numpy_stream(0)
    low_scores, high_scores = g.normal(0, 1, 300), g.normal(10, 1, 300)
    value, lo, hi = data.auroc_ci(high_scores, low_scores, n_boot=100)
    assert value == pytest.approx(1.0) and lo > 0.99 and hi == pytest.approx(1.0)
    same = g.normal(0, 1, 400)
    value, lo, hi = data.auroc_ci(same, g.permutation(same), n_boot=200)  # identical sets
    assert value == 0.5 and lo < 0.5 < hi and hi - lo < 0.15
    # independent draws of one distribution: within 4 standard errors of 0.5 (Hanley–McNeil under
    # H0), and the interval about as wide as ±1.96 of them
    se = math.sqrt((400 + 400 + 1) / (12 * 400 * 400))
    value, lo, hi = data.auroc_ci(g.normal(0, 1, 400), g.normal(0, 1, 400), n_boot=200)
    assert abs(value - 0.5) < 4 * se and 0.6 < (hi - lo) / (2 * 1.96 * se) < 1.5
    value, lo, hi = data.auroc_ci(
        g.normal(0, 1, 300), g.normal(1, 1, 300), n_boot=100
    )  # OOD rated more likely
    assert value < 0.35 and hi < 0.5 and lo <= value <= hi


def test_auroc_ci_ties_seed_and_infinities():
    assert data.auroc_ci([1.0, 1.0, 1.0], [1.0, 1.0], n_boot=10)[0] == 0.5
    a, b = [0.0, 1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 1.5]
    assert data.auroc_ci(a, b, seed=3) == data.auroc_ci(a, b, seed=3)
    finite = data.auroc_ci(a, b, n_boot=50, seed=0)
    infinite = data.auroc_ci(a, [-np.inf, 0.5, 1.5], n_boot=50, seed=0)
    assert finite == infinite  # only ranks matter
    with pytest.raises(ValueError, match="ood_scores"):
        data.auroc_ci(a, [np.nan, 1.0])
    with pytest.raises(ValueError, match="level"):
        data.auroc_ci(a, b, level=1.0)


# --- tabular ---


@pytest.mark.parametrize("name", data.TABULAR)
def test_tabular_one_class_both_directions(name):
    first, second = data.tabular_one_class(name, seed=0)
    n_first = len(first.train) + len(first.val) + len(first.test)
    n_second = len(second.train) + len(second.val) + len(second.test)
    assert n_first == len(second.ood) and n_second == len(first.ood)
    assert (first.in_label, first.out_label) == (second.out_label, second.in_label)
    for split in (first, second):
        assert np.allclose(split.train.mean(0), 0) and np.allclose(split.train.std(0), 1)
        assert not np.allclose(split.ood.mean(0), 0)  # the other class, in this class's units
        parts = [split.train, split.val, split.test]
        assert sum(len(p) for p in parts) == len(_rows(np.concatenate(parts)))
        raw_train = split.train * split.scale + split.mean
        assert np.allclose(raw_train.mean(0), split.mean)
    again, _ = data.tabular_one_class(name, seed=0)
    other, _ = data.tabular_one_class(name, seed=1)
    assert np.array_equal(first.test, again.test) and not np.array_equal(first.test, other.test)


def test_tabular_one_class_labels_and_errors():
    malignant, benign = data.tabular_one_class("breast_cancer")
    assert (malignant.in_label, benign.in_label) == ("malignant", "benign")
    assert len(malignant.ood) == 357 and len(benign.ood) == 212
    with pytest.raises(ValueError, match="name"):
        data.tabular_one_class("iris")
