"""The adapters of other libraries' flows, :mod:`flowcore.libraries`, for every model of ``MODELS``:

- ``log_prob`` is the change of variables through the library's own data → latent map: the
  standard normal's log-density at f(x) plus log|det| of f's autograd Jacobian (float64, weights
  perturbed off the identity the models start at), rel. 1e-8 (what they reach: 1e-15; FrEIA's
  float32-rounded permutations, which it counts as orthogonal, are taken out first);
- at D = 2 the density integrates to one on a grid (rel. 1e-3; the errors are 1e-6 or less, zuko
  NSF's 2e-4: the Riemann sum over its spline's knots);
- a build is determined by torch's seed alone (FrEIA's, which draws from NumPy, leaves NumPy's
  global RNG as it found it);
- a library that is not installed is named with its pin, an unknown model with the allowed ones;
- :func:`flowcore.train.fit` trains every model: three epochs lower the validation NLL.

The library maps (checked against the pinned sources): zuko's flow module returns its
distribution, whose ``transform`` maps data to latent; nflows' ``Flow._transform(x)`` returns
``(z, log|det|)``; normflows' ``NormalizingFlow.inverse`` maps data to latent; FrEIA's
``SequenceINN(x)`` returns ``(z, log|det|)``.
"""

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from flowcore import libraries
from flowcore.libraries import MODELS, LibraryMissing, available, library_model
from flowcore.rng import seeded
from flowcore.train import TrainConfig, fit

NAMES = list(MODELS)
MODEL = pytest.mark.parametrize("name", NAMES)
DIM = 3


def _build(name: str, dim: int, seed: int = 0) -> libraries.LibraryDensity:
    """A small model ``name`` on ``dim`` features, its weights drawn under ``seed``."""
    with seeded(seed):
        return library_model(name, layers=2, hidden=8).build(dim)


def _perturbed(name: str, dim: int, noise: float, seed: int = 0) -> libraries.LibraryDensity:
    """The model in float64, eval mode, with ``noise``-sized Gaussian noise added to every trainable
    parameter, so that zero-initialised last layers no longer make it the identity. (FrEIA's
    permutation matrices are frozen parameters: perturbing them would make them non-orthogonal,
    which the block's log-det assumes, so only trainable parameters move.)"""
    density = _build(name, dim, seed).double().eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in density.parameters():
            if p.requires_grad:
                p.add_(noise * torch.randn(p.shape, dtype=p.dtype, generator=generator))
    return density


def _data_to_latent(name: str, module: nn.Module) -> Callable[[Tensor], Tensor]:
    """The library's own data → latent map f of ``module``, on a batch of shape (n, D)."""
    library = MODELS[name].library
    if library == "zuko":
        return lambda x: module().transform(x)
    if library == "nflows":
        return lambda x: module._transform(x)[0]
    if library == "normflows":
        return module.inverse
    if library == "FrEIA":
        return lambda x: module(x)[0]
    raise AssertionError(f"no data → latent map for {library}")


def _change_of_variables(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """log N(f(x); 0, I) + log|det J_f(x)| at one point x of shape (D,), J by autograd."""
    z = f(x[None])[0]
    jacobian = torch.autograd.functional.jacobian(lambda point: f(point[None])[0], x)
    log_base = -0.5 * (z.square().sum() + len(x) * math.log(2 * math.pi))
    return log_base + torch.linalg.slogdet(jacobian).logabsdet


def _log_det_the_library_leaves_out(name: str, module: nn.Module) -> Tensor:
    """What the library's log-det leaves out of the map's: FrEIA's AllInOneBlock counts its soft
    permutation as orthogonal (log|det| = 0), but stores it rounded to float32, so in float64 its
    log|det| is a few 1e-8 (rel. ~1e-8 of log p, the size of the tolerance). Zero elsewhere."""
    if MODELS[name].library != "FrEIA":
        return torch.zeros((), dtype=torch.float64)
    permutations = [block.w_perm.reshape(block.w_perm.shape[:2]) for block in module.module_list]
    return sum(torch.linalg.slogdet(w).logabsdet for w in permutations)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether ``a`` and ``b`` have bitwise equal state dicts (the same keys, the same tensors)."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@MODEL
def test_log_prob_is_the_change_of_variables_of_the_library_map(name: str) -> None:
    """log p(x) is the base log-density of the library's f(x) plus log|det| of f's autograd
    Jacobian: the adapter scores with the library's own map and log-det, in the right direction."""
    density = _perturbed(name, DIM, noise=0.3)
    f = _data_to_latent(name, density.module)
    x = 1.5 * torch.randn(5, DIM, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        log_p = density.log_prob(x)
    assert log_p.shape == (len(x),) and log_p.dtype == torch.float64
    left_out = _log_det_the_library_leaves_out(name, density.module)
    assert abs(left_out.item()) < 1e-6
    expected = torch.stack([_change_of_variables(f, point) for point in x]) - left_out
    with torch.no_grad():
        assert not torch.allclose(f(x), x, atol=1e-3)  # the perturbed flow is not the identity
    torch.testing.assert_close(log_p, expected, rtol=1e-8, atol=1e-10)


#: Half-width of the integration grid, [−h, h]², 9 unless named. nflows MAF's data → latent scale
#: ``softplus(u) + 1e-3`` starts at about 0.69 per layer, so its density starts wider than the
#: base's (std ≈ 2 to 3 here) and [−9, 9]² leaves 3e-3 of its mass out; [−21, 21]² leaves 4e-6.
GRID_HALF_WIDTH = {"nflows MAF": 21.0}
GRID_SPACING = 0.06


@MODEL
def test_the_density_integrates_to_one_at_two_dimensions(name: str) -> None:
    """exp(log p) sums to one (rel. 1e-3) on a grid of spacing 0.06 over [−9, 9]² (wider where the
    model's mass reaches further): the adapter adds the base's whole normalisation and the log-det
    with the right sign."""
    density = _perturbed(name, 2, noise=0.1)
    half = GRID_HALF_WIDTH.get(name, 9.0)
    axis = torch.linspace(-half, half, round(2 * half / GRID_SPACING) + 1, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        p = density.log_prob(grid).exp()
    cell = (axis[1] - axis[0]) ** 2
    assert (p.sum() * cell).item() == pytest.approx(1.0, rel=1e-3)


@MODEL
def test_a_build_is_determined_by_the_torch_seed(name: str) -> None:
    """Two builds under seed 0 have bitwise equal weights; builds under seeds 0 and 1 do not."""
    first, again, other = _build(name, DIM, 0), _build(name, DIM, 0), _build(name, DIM, 1)
    assert _same_weights(first, again)
    assert not _same_weights(first, other)


def test_the_freia_build_leaves_numpys_global_rng_alone() -> None:
    """FrEIA's blocks draw their permutations from NumPy's global RNG; the build restores it."""
    np.random.seed(12345)
    before = np.random.get_state()
    _build("FrEIA AllInOne", DIM)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def test_a_missing_library_names_its_pin(zuko_missing) -> None:
    """A library that cannot be imported raises LibraryMissing naming the pin to install, and
    ``available`` says it is absent."""
    with pytest.raises(LibraryMissing, match=r"zuko==1\.6\.0"):
        MODELS["zuko MAF"].build(DIM)
    assert available("zuko") is False


def test_an_unknown_model_names_the_allowed_ones() -> None:
    """``library_model`` refuses a name not in MODELS, quoting it and every allowed name."""
    with pytest.raises(ValueError) as error:
        library_model("nope")
    assert "'nope'" in str(error.value)
    assert all(repr(name) in str(error.value) for name in NAMES)


def _gaussian_sample(n: int, seed: int) -> Tensor:
    """n draws from a 3-D Gaussian with mean (1, −1, 0.5) and a correlated, unequal covariance."""
    mixing = torch.tensor([[2.0, 0.0, 0.0], [1.2, 0.5, 0.0], [-0.3, 0.4, 1.5]])
    noise = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    return noise @ mixing.T + torch.tensor([1.0, -1.0, 0.5])


@MODEL
def test_fit_trains_the_model(name: str) -> None:
    """Three epochs of :func:`flowcore.train.fit` lower the validation NLL of the untrained model
    on a Gaussian that is not the standard normal: the adapter's parameters are reachable and its
    ``log_prob`` differentiable."""
    density = _build(name, DIM)
    x_train, x_val = _gaussian_sample(512, 0), _gaussian_sample(256, 1)
    with torch.no_grad():
        initial = -density.eval().log_prob(x_val).mean().item()
    config = TrainConfig(max_epochs=3, batch_size=64, stopping="fixed")
    history = fit(density, x_train, x_val, config, progress=False)
    assert len(history.val_nll) == 3 and math.isfinite(initial)
    assert history.val_nll[-1] < initial
