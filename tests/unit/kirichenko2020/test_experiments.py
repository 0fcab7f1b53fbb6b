"""The co-adaptation measurements of the Kirichenko study and its untrained null, on small cases
whose answer is known."""

import numpy as np
import pandas as pd
import pytest
import torch

from flowcore import rng
from flowcore.flows.image import coupling_layers, image_flow
from flowcore.studies.kirichenko2020 import analysis, experiments
from flowcore.studies.kirichenko2020.experiments import edge_correlation, layer_r2, r2, swap_r2


def _perturb(flow, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return flow


def test_an_identity_first_coupling_leaks_nothing_to_the_swap():
    torch.manual_seed(0)
    flow = image_flow(size=8, n_couplings=2, mask="checkerboard", channels=4, n_blocks=1)
    first, second = coupling_layers(flow)
    _perturb(second)  # the first coupling stays the identity (zero-initialised output)
    x = torch.rand(64, 64, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    normal, swapped = layer_r2(flow, x)[1], swap_r2(flow, x, seed=0)[1]
    assert normal == pytest.approx(swapped, abs=1e-9)


def test_a_first_coupling_that_encodes_the_conditioning_pixels_is_caught_by_the_swap():
    torch.manual_seed(0)
    flow = _perturb(
        image_flow(size=8, n_couplings=2, mask="checkerboard", channels=4, n_blocks=1), scale=0.5
    )
    x = torch.rand(64, 64, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    assert abs(layer_r2(flow, x)[1] - swap_r2(flow, x, seed=0)[1]) > 1e-3


def test_r2_is_one_for_a_perfect_prediction_and_zero_for_the_mean():
    y = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([True, True, False, True])
    assert r2(y, y, mask) == pytest.approx(1.0) and r2(
        y, y.mean(0).expand_as(y), mask
    ) == pytest.approx(0.0, abs=1e-6)


def test_edges_are_found_in_the_latent_when_they_are_there():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 17, size=(40, 64))
    from flowcore.studies.kirichenko2020.experiments import edge_map

    matched, mismatched = edge_correlation(
        edge_map(images) + 0.1 * rng.normal(size=(40, 64)), images
    )
    assert matched > 0.9 and abs(mismatched) < 0.3


def test_the_untrained_flow_is_the_trained_flows_initialisation(tiny_config):
    config = tiny_config(seed=3)
    flow = experiments.untrained_image_flow(config, mask="horizontal")
    with rng.seeded(3):
        fresh = image_flow(**experiments.architecture(config, "horizontal"))
    assert all(
        torch.equal(a, b) for a, b in zip(flow.state_dict().values(), fresh.state_dict().values())
    )
    other = experiments.untrained_image_flow(config.at_seed(4), mask="horizontal")
    assert not all(
        torch.equal(a, b) for a, b in zip(flow.state_dict().values(), other.state_dict().values())
    )
    # Zero-initialised couplings: t = 0, so every coupling "predicts" 0.
    x = torch.rand(5, 64, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    assert all(c.parts(x)["prediction"].abs().max() == 0 for c in coupling_layers(flow))


def test_architecture_takes_the_config_and_the_variant(tiny_config):
    config = tiny_config()
    assert experiments.architecture(config) == {
        "size": 8,
        "n_couplings": 2,
        "mask": "checkerboard",
        "channels": 2,
        "n_blocks": 1,
        "bottleneck": None,
    }
    assert (
        experiments.architecture(config, "cycle", 4)["mask"] == "cycle"
        and experiments.architecture(config, "cycle", 4)["bottleneck"] == 4
    )


def test_untrained_measures_read_pixel_magnitude_and_no_neighbours(tiny_config):
    config = tiny_config()
    d = experiments.digits(config)
    flow = experiments.untrained_image_flow(config)
    measures = analysis.coupling_measures(config, flow, d, layer=1)
    assert measures.layer == 1 and np.isnan(measures.neighbour_corr)
    assert (measures.r2.to_numpy() <= 1e-9).all()  # predicting 0 explains nothing
    # With t = 0 the prediction error is the mean squared value (after the logit) of the changed
    # pixels.
    h = flow.transform.transforms[0](analysis._logit_images(config, d.splits["test"], "test"))[
        0
    ]  # the logit
    change = coupling_layers(flow)[1].change_mask
    expected = (h[:, change] ** 2).mean(1).numpy()
    assert np.allclose(
        measures.errors.loc[measures.errors["set"] == "test", "prediction error"],
        expected,
        rtol=1e-5,
    )
    assert set(measures.errors["set"]) == {"test", *d.ood} and set(measures.edges.index) == {
        "test",
        *(k for k in d.ood if k != "uniform noise"),
    }
    with pytest.raises(ValueError, match="layer"):
        analysis.coupling_measures(config, flow, d, layer=5)


def test_prediction_rho_interval_and_paired_difference():
    g = np.random.default_rng(0)
    x = g.normal(size=400)
    strong = pd.DataFrame({"prediction error": x, "log-likelihood": -x + 0.1 * g.normal(size=400)})
    weak = pd.DataFrame({"prediction error": x, "log-likelihood": -x + 3.0 * g.normal(size=400)})
    out = analysis.prediction_rho(strong, weak, n_boot=100, seed=1)
    assert out["CI low"] <= out["ρ"] <= out["CI high"] < 0
    assert out["Δρ"] < 0 and out["Δρ CI high"] < 0  # strong is more negative than weak, paired
    assert analysis.prediction_rho(strong, weak, n_boot=100, seed=1) == out  # seeded
    assert "Δρ" not in analysis.prediction_rho(weak, n_boot=20)
    with pytest.raises(ValueError, match="same images"):
        analysis.prediction_rho(strong, weak.iloc[:10], n_boot=20)
    with pytest.raises(ValueError, match="columns"):
        analysis.prediction_rho(strong.rename(columns={"log-likelihood": "ll"}), n_boot=20)
