"""flowcore.flows.image: the masks are the paper's, every layer inverts, its log-dets match autograd
Jacobians (float64), a coupling changes only its change pixels, and -t is its prediction."""

import warnings

import pytest
import torch

from flowcore.flows import FastPathWarning, Flow
from flowcore.flows.checks import autograd_log_det as _jacobian_logdet
from flowcore.flows.checks import check_inverse_and_log_dets
from flowcore.flows.checks import randomize as _randomize
from flowcore.flows.image import (
    ConvSTNet,
    ImageAffineCoupling,
    Logit,
    checkerboard_mask,
    coupling_layers,
    cycle_masks,
    horizontal_mask,
    image_flow,
    mask_sequence,
)

SIZE = 4
D = SIZE * SIZE


def _inputs(gen, n=3):
    """Dequantised-looking images in (0, 1), kept away from the ends."""
    return 0.05 + 0.9 * torch.rand(n, D, generator=gen, dtype=torch.float64)


# ----------------------------------------------------------------------------------------- masks


def test_checkerboard_is_the_papers_pattern():
    i, j = torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij")
    b = ((i % 2) + j) % 2  # the paper's code, reverse=False: b = 1 conditions
    assert torch.equal(checkerboard_mask(5, 0), b == 1)
    assert torch.equal(checkerboard_mask(5, 1), b == 0)
    assert not checkerboard_mask(4, 0)[0, 0] and checkerboard_mask(4, 1)[0, 0]


def test_horizontal_conditions_on_top_then_bottom():
    for size in (4, 5):
        top = horizontal_mask(size, 0)
        assert top[: size // 2].all() and not top[size // 2 :].any()
        assert torch.equal(horizontal_mask(size, 1), ~top)


def test_cycle_goes_tl_tr_br_bl_and_leaves_two_quadrants_alone():
    pairs = cycle_masks(SIZE)
    h = SIZE // 2
    quadrant = {
        name: torch.zeros(SIZE, SIZE, dtype=torch.bool) for name in ("TL", "TR", "BR", "BL")
    }
    quadrant["TL"][:h, :h] = quadrant["TR"][:h, h:] = quadrant["BR"][h:, h:] = quadrant["BL"][
        h:, :h
    ] = True
    order = ["TL", "TR", "BR", "BL"]
    assert len(pairs) == 4
    for k, (condition, change) in enumerate(pairs):
        assert torch.equal(condition, quadrant[order[k]]) and torch.equal(
            change, quadrant[order[(k + 1) % 4]]
        )
        assert (~(condition | change)).sum() == D // 2  # two quadrants pass through
    seq = mask_sequence("cycle", SIZE, 6)
    assert all(
        torch.equal(seq[k][1], seq[k + 1][0]) for k in range(5)
    )  # each layer reads what the last wrote


@pytest.mark.parametrize("kind", ["checkerboard", "horizontal"])
def test_alternating_sequences_change_the_complement(kind):
    seq = mask_sequence(kind, SIZE, 3)
    for k, (condition, change) in enumerate(seq):
        assert torch.equal(change, ~condition)
        assert torch.equal(condition, seq[0][0] if k % 2 == 0 else ~seq[0][0])


# -------------------------------------------------------------------------- Jacobians, inverses


@pytest.mark.parametrize("bottleneck", [None, 3])
@pytest.mark.parametrize("kind", ["checkerboard", "horizontal", "cycle"])
def test_flow_inverts_and_log_dets_match_autograd(kind, bottleneck, gen):
    flow = _randomize(
        image_flow(
            SIZE, n_couplings=4, mask=kind, channels=3, n_blocks=2, bottleneck=bottleneck
        ).double(),
        gen,
    )
    x = _inputs(gen)
    z, log_det = flow.transform(x)
    check_inverse_and_log_dets(flow.transform, x, z, log_det, inverse_atol=1e-10, log_det_atol=1e-9)


@pytest.mark.parametrize("kind", ["checkerboard", "horizontal", "cycle"])
def test_each_coupling_inverts_and_log_dets_match_autograd(kind, gen):
    for condition, change in mask_sequence(kind, SIZE, 2):
        layer = _randomize(
            ImageAffineCoupling(condition, change, channels=3, n_blocks=1).double(), gen, scale=0.5
        )
        x = torch.randn(3, D, generator=gen, dtype=torch.float64)
        log_scales = []
        y, log_det = layer(x, log_scales=log_scales)
        assert not torch.allclose(y, x)  # not the identity, so the checks mean something
        (s,) = log_scales
        assert s.shape == (3, int(change.sum())) and torch.allclose(s.sum(-1), log_det, atol=1e-12)
        check_inverse_and_log_dets(layer, x, y, log_det, inverse_atol=1e-12, log_det_atol=1e-10)


def test_logit_log_det_matches_autograd_and_inverts(gen):
    for alpha in (0.05, 0.0):
        logit = Logit(alpha)
        x = _inputs(gen, n=2)[:, :5]
        y, log_det = logit(x)
        x_back, inv_log_det = logit.inverse(y)
        assert torch.allclose(x_back, x, atol=1e-12) and torch.allclose(
            inv_log_det, -log_det, atol=1e-12
        )
        u = alpha + (1 - 2 * alpha) * x
        assert torch.allclose(y, torch.log(u / (1 - u)), atol=1e-12)
        for i in range(len(x)):
            assert torch.allclose(_jacobian_logdet(logit, x[i]), log_det[i], atol=1e-10)
            assert torch.allclose(_jacobian_logdet(logit.inverse, y[i]), inv_log_det[i], atol=1e-10)


def test_leading_batch_dims_are_kept(gen):
    layer = _randomize(
        ImageAffineCoupling(checkerboard_mask(SIZE), channels=2, n_blocks=1).double(), gen
    )
    x = torch.randn(2, 3, D, generator=gen, dtype=torch.float64)
    log_scales = []
    y, log_det = layer(x, log_scales=log_scales)
    assert y.shape == x.shape and log_det.shape == (2, 3) and log_scales[0].shape == (2, 3, D // 2)
    assert torch.allclose(log_det[1], layer(x[1])[1], atol=1e-12)
    assert layer.inverse(y)[1].shape == (2, 3)


# ---------------------------------------------------------------------- what a coupling changes


@pytest.mark.parametrize("kind", ["checkerboard", "horizontal", "cycle"])
def test_only_change_pixels_move_and_minus_t_is_the_prediction(kind, gen):
    condition, change = mask_sequence(kind, SIZE, 1)[0]
    layer = _randomize(
        ImageAffineCoupling(condition, change, channels=3, n_blocks=2, bottleneck=2).double(),
        gen,
        scale=0.5,
    )
    assert torch.equal(layer.change_mask, change.flatten()) and torch.equal(
        layer.condition_mask, condition.flatten()
    )
    c = layer.change_mask
    x = torch.randn(4, D, generator=gen, dtype=torch.float64)
    y, log_det = layer(x)
    assert torch.equal(y[:, ~c], x[:, ~c])  # condition and pass-through pixels exactly unchanged
    assert (y[:, c] != x[:, c]).all()
    parts = layer.parts(x)
    assert set(parts) == {"input", "output", "s", "t", "prediction"}
    assert all(v.shape == (4, D) for v in parts.values())
    assert torch.equal(parts["input"], x) and torch.allclose(parts["output"], y, atol=1e-14)
    assert torch.equal(parts["prediction"], -parts["t"])
    assert (parts["s"][:, ~c] == 0).all() and (parts["t"][:, ~c] == 0).all()
    assert torch.allclose(parts["s"].sum(-1), log_det, atol=1e-12)
    assert torch.allclose(
        parts["output"][:, c], (x[:, c] + parts["t"][:, c]) * parts["s"][:, c].exp(), atol=1e-12
    )
    # s and t read only the condition pixels: set the change pixels to the prediction and the
    # output there is exactly zero, y_c = (x_c + t)·e^s.
    x_pred = torch.where(c, parts["prediction"], x)
    assert torch.allclose(layer.parts(x_pred)["t"], parts["t"], atol=1e-14)
    assert torch.allclose(
        layer(x_pred)[0][:, c], torch.zeros(4, int(c.sum()), dtype=torch.float64), atol=1e-12
    )


def test_bottleneck_has_no_skip_connection(gen):
    # Everything passes through the l numbers of the bottleneck, so by the chain rule the
    # network's Jacobian has rank ≤ l; without a bottleneck it has full rank.
    x = torch.randn(1, 1, SIZE, SIZE, generator=gen, dtype=torch.float64)
    for bottleneck, n_blocks in ((2, 2), (2, 1), (None, 2)):
        net = _randomize(
            ConvSTNet(SIZE, channels=3, n_blocks=n_blocks, bottleneck=bottleneck).double(), gen
        )
        assert (
            len(net.blocks_before) == n_blocks // 2
            and len(net.blocks_after) == n_blocks - n_blocks // 2
        )
        jac = torch.autograd.functional.jacobian(lambda u: net(u).flatten(), x).reshape(2 * D, D)
        rank = torch.linalg.matrix_rank(jac).item()
        assert rank <= 2 if bottleneck else rank == D


# ---------------------------------------------------------------------------------------- flows


def test_image_flow_log_prob_is_finite_and_starts_at_the_logit_density(gen):
    flow = image_flow(
        size=8, n_couplings=4, mask="checkerboard", channels=4, n_blocks=2, bottleneck=4
    )
    assert isinstance(flow, Flow) and len(coupling_layers(flow)) == 4
    assert all(isinstance(c, ImageAffineCoupling) for c in coupling_layers(flow))
    x = torch.rand(5, 64, generator=gen).clamp(1e-3, 1 - 1e-3)
    log_p = flow.log_prob(x)
    assert log_p.shape == (5,) and torch.isfinite(log_p).all()
    y, logit_log_det = Logit(0.05)(x)  # every coupling starts as the identity
    assert torch.allclose(log_p, flow.base.log_prob(y) + logit_log_det, atol=1e-4)
    log_p2, log_scales = flow.log_prob_and_log_scales(x)
    assert torch.equal(log_p2, log_p) and [s.shape for s in log_scales] == [(5, 32)] * 4
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error", FastPathWarning
        )  # autograd_only: no fast path by design, no warning
        with torch.no_grad():
            assert torch.allclose(flow.log_prob(x), log_p.detach())


def test_image_flow_trains_and_samples(gen):
    flow = image_flow(size=SIZE, n_couplings=4, mask="cycle", channels=2, n_blocks=1)
    x = torch.rand(6, D, generator=gen)
    (-flow.log_prob(x).mean()).backward()
    assert all(p.grad is not None for p in flow.parameters())
    sample = flow.sample(7, generator=gen)
    # The inverse logit maps R onto (-α/(1-2α), 1 + α/(1-2α)), slightly wider than (0, 1).
    margin = 0.05 / 0.9
    assert sample.shape == (7, D) and ((sample > -margin) & (sample < 1 + margin)).all()


# --------------------------------------------------------------------------------- bad arguments


def _bad(fn, *args, **kwargs):
    return lambda: fn(*args, **kwargs)


@pytest.mark.parametrize(
    "make, match",
    [
        (
            _bad(image_flow, mask="diagonal"),
            "mask must be one of 'checkerboard', 'horizontal', 'cycle'",
        ),
        (_bad(image_flow, bottleneck=0), "bottleneck"),
        (_bad(image_flow, size=3, mask="cycle"), "size must be an even"),
        (_bad(image_flow, size=1), "size"),
        (_bad(image_flow, n_couplings=0), "n_couplings"),
        (_bad(image_flow, channels=0), "channels"),
        (_bad(image_flow, n_blocks=-1), "n_blocks"),
        (_bad(image_flow, alpha=0.5), "alpha"),
        (_bad(image_flow, alpha=-0.1), "alpha"),
        (_bad(image_flow, bottleneck=2.5), "bottleneck"),
        (_bad(mask_sequence, "diagonal", 4, 2), "mask must be one of"),
        (_bad(mask_sequence, "checkerboard", 4, 0), "n_layers"),
        (_bad(checkerboard_mask, 4, parity=2), "parity"),
        (_bad(horizontal_mask, 1), "size"),
        (_bad(cycle_masks, 5), "size"),
        (_bad(ImageAffineCoupling, torch.ones(4, 4)), "condition_mask"),
        (_bad(ImageAffineCoupling, torch.ones(4, 4, dtype=torch.bool)), "change_mask"),
        (_bad(ImageAffineCoupling, *cycle_masks(4)[0][:1], cycle_masks(4)[0][0]), "disjoint"),
        (_bad(ImageAffineCoupling, checkerboard_mask(4), horizontal_mask(6)), "change_mask"),
        (_bad(ConvSTNet, 4, bottleneck=0), "bottleneck"),
        (_bad(Logit, 1.0), "alpha"),
    ],
)
def test_bad_arguments_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_input_width_is_an_error(gen):
    layer = ImageAffineCoupling(checkerboard_mask(SIZE), channels=2, n_blocks=0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 16\)"):
        layer(torch.randn(2, 15, generator=gen))
