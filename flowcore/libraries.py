r"""Other libraries' flows as density models: zuko, nflows, normflows and FrEIA, each built the way
its documentation shows, behind one interface: a ``torch.nn.Module`` with ``log_prob(x)``
(:math:`\log p_\theta(x)` in nats per sample, shape ``(batch,)``), the interface
:func:`flowcore.train.fit` trains and :mod:`flowcore.battery` judges.

Every adapter keeps the library's own computation: :class:`LibraryDensity` calls the library's
``log_prob`` (zuko, nflows, normflows) or, where the library has none (FrEIA), adds the standard
normal base's log-density to the log-determinant the library returns. The libraries are imported
only when a model is built; one that is not installed raises :class:`LibraryMissing`, naming the
pin to install.

The models (:data:`MODELS`) cover the axes on which the thesis's claims may differ between flows:

================== ============== ========= ================================================
model              structure      transform scale map (data → noise)
================== ============== ========= ================================================
zuko RealNVP       coupling       affine    exp of a soft-clipped log-scale, ``|log s| < 6.9``
zuko MAF           autoregressive affine    the same
zuko NSF           autoregressive spline    rational-quadratic on [−5, 5], identity outside
nflows RealNVP     coupling       affine    ``sigmoid(u + 2) + 1e-3``: contracts only
nflows MAF         autoregressive affine    ``softplus(u) + 1e-3``: unbounded above
normflows RealNVP  coupling       affine    ``exp(u)``: unbounded
FrEIA AllInOne     coupling       affine    ``exp(2·tanh(u/2))`` soft clamp, ``|log s| < 2``
================== ============== ========= ================================================

Every model has two hidden layers of ``hidden`` (64) units per conditioner and ``layers``
transforms: 8 couplings, 4 affine autoregressive layers (each transforms every coordinate, a
coupling half of them), or 2 spline autoregressive layers (zuko NSF, 4 bins each: at D = 50 a
training step still costs about 5× zuko MAF's).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from flowcore.validation import check_choice, check_int

__all__ = [
    "PINS",
    "MODELS",
    "LibraryMissing",
    "LibraryModel",
    "LibraryDensity",
    "library_model",
    "require",
    "available",
]

#: The versions this project pins (``requirements.txt``) and was tested with.
PINS = {"zuko": "1.6.0", "nflows": "0.14", "normflows": "1.7.3", "FrEIA": "0.2"}
#: The bins of zuko NSF's rational-quadratic splines.
NSF_BINS = 4
#: The module each library is imported as.
_MODULES = {"zuko": "zuko", "nflows": "nflows", "normflows": "normflows", "FrEIA": "FrEIA"}


class LibraryMissing(ImportError):
    """A flow library a model needs is not installed.

    Example:
        >>> issubclass(LibraryMissing, ImportError)
        True
    """


def _import(library: str, *submodules: str):
    """Import ``library`` (and ``library.submodule`` for each name), or raise
    :class:`LibraryMissing` with the pinned install command."""
    try:
        root = importlib.import_module(_MODULES[library])
        return [root] + [importlib.import_module(f"{_MODULES[library]}.{s}") for s in submodules]
    except ImportError as error:
        raise LibraryMissing(
            f"the {library} models need {library}=={PINS[library]}, which is not installed "
            f"({error}); install the project's requirements.txt "
            f"(`pip install -r requirements.txt`)"
        ) from error


def require(library: str) -> None:
    """Raise :class:`LibraryMissing`, naming the pin to install, unless ``library`` (a key of
    :data:`PINS`) can be imported.

    Example:
        >>> require("FrEIA") is None or "FrEIA is not installed"
        True
    """
    _import(check_choice("library", library, tuple(PINS)))


def available(library: str) -> bool:
    """Whether ``library`` (a key of :data:`PINS`) can be imported.

    Example:
        >>> available("zuko") in (True, False)
        True
    """
    try:
        require(library)
    except LibraryMissing:
        return False
    return True


class LibraryDensity(nn.Module):
    r"""A library's flow as a density model: ``log_prob(x)`` gives :math:`\log p_\theta(x)` per
    row, computed by ``log_prob_fn(module, x)`` from the library's own ``module``.

    Example:
        >>> base = torch.distributions.Normal(0.0, 1.0)
        >>> density = LibraryDensity(nn.Identity(), lambda m, x: base.log_prob(m(x)).sum(-1))
        >>> density.log_prob(torch.zeros(3, 2))  # -log 2π
        tensor([-1.8379, -1.8379, -1.8379])
    """

    def __init__(self, module: nn.Module, log_prob_fn: Callable[[nn.Module, Tensor], Tensor]):
        super().__init__()
        self.module = module
        self._log_prob_fn = log_prob_fn

    def log_prob(self, x: Tensor) -> Tensor:
        return self._log_prob_fn(self.module, x)

    def forward(self, x: Tensor) -> Tensor:
        return self.log_prob(x)


def _call_log_prob(module: nn.Module, x: Tensor) -> Tensor:
    return module.log_prob(x)


def _zuko_log_prob(module: nn.Module, x: Tensor) -> Tensor:
    return module().log_prob(x)  # a zuko flow is a module that returns its distribution


def _standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * math.log(2 * math.pi))


def _freia_log_prob(module: nn.Module, x: Tensor) -> Tensor:
    z, log_det = module(x)  # FrEIA's SequenceINN: data → latent, and log|det J|
    return _standard_normal_log_prob(z) + log_det


def _mlp(sizes: list[int], zero_last: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    net = nn.Sequential(*layers[:-1])
    if zero_last:
        nn.init.zeros_(net[-1].weight)
        nn.init.zeros_(net[-1].bias)
    return net


def _zuko(name: str, dim: int, layers: int, hidden: int) -> nn.Module:
    (zuko,) = _import("zuko")
    cls = {"RealNVP": zuko.flows.RealNVP, "MAF": zuko.flows.MAF, "NSF": zuko.flows.NSF}[name]
    # 4 bins, not zuko's default 8: at D = 50 a training step of the 8-bin spline costs 1.5× the
    # 4-bin one's, and two 4-bin layers fit the thesis's Gaussians within the fit premise.
    extra = {"bins": NSF_BINS} if name == "NSF" else {}
    flow = cls(features=dim, transforms=layers, hidden_features=(hidden, hidden), **extra)
    return LibraryDensity(flow, _zuko_log_prob)


def _nflows(name: str, dim: int, layers: int, hidden: int) -> nn.Module:
    (flows,) = _import("nflows", "flows")[1:]
    cls = {"RealNVP": flows.SimpleRealNVP, "MAF": flows.MaskedAutoregressiveFlow}[name]
    flow = cls(features=dim, hidden_features=hidden, num_layers=layers, num_blocks_per_layer=2)
    return LibraryDensity(flow, _call_log_prob)


def _normflows(dim: int, layers: int, hidden: int) -> nn.Module:
    # The RealNVP of normflows' README: masked affine couplings with alternating masks, scale and
    # translation MLPs whose last layers start at zero. The README's ActNorm layers are left out:
    # their data-dependent initialisation would set the untrained null from the first batch it
    # scores.
    (nf,) = _import("normflows")
    mask = torch.tensor([1.0 if i % 2 == 0 else 0.0 for i in range(dim)])
    flows = []
    for i in range(layers):
        s = nf.nets.MLP([dim, hidden, hidden, dim], init_zeros=True)
        t = nf.nets.MLP([dim, hidden, hidden, dim], init_zeros=True)
        flows.append(nf.flows.MaskedAffineFlow(mask if i % 2 == 0 else 1 - mask, t, s))
    base = nf.distributions.DiagGaussian(dim, trainable=False)
    return LibraryDensity(nf.NormalizingFlow(q0=base, flows=flows), _call_log_prob)


def _freia(dim: int, layers: int, hidden: int) -> nn.Module:
    # FrEIA's documented pattern: a SequenceINN of AllInOneBlocks with a fully connected subnet.
    # The blocks draw their soft permutations from NumPy's global RNG: seed it from torch's, so that
    # the model is determined by torch's seed like every other, and restore it after.
    ff, fm = _import("FrEIA", "framework", "modules")[1:]
    state = np.random.get_state()
    np.random.seed(int(torch.randint(2**31 - 1, ())))
    try:
        inn = ff.SequenceINN(dim)
        for _ in range(layers):
            inn.append(
                fm.AllInOneBlock,
                subnet_constructor=lambda c_in, c_out: _mlp([c_in, hidden, hidden, c_out], True),
                permute_soft=True,
            )
    finally:
        np.random.set_state(state)
    return LibraryDensity(inn, _freia_log_prob)


@dataclass(frozen=True)
class LibraryModel:
    """One library's flow: how to build it at a dimension, and what kind of flow it is.

    Attributes:
        name: The model's name in tables, e.g. ``"zuko NSF"``.
        library: A key of :data:`PINS`.
        structure: ``"coupling"`` or ``"autoregressive"``.
        transform: ``"affine"`` or ``"spline"``.
        scale: The scale map, in words.
        bounded: Whether the log-scale (or the spline's slopes) is bounded.
        layers: Transforms in the model.
        hidden: Units in each of the conditioners' two hidden layers.
    """

    name: str
    library: str
    structure: str
    transform: str
    scale: str
    bounded: bool
    layers: int
    hidden: int = 64

    @property
    def version(self) -> str:
        """The installed version of :attr:`library` (``"not installed"`` if it is absent)."""
        try:
            return importlib.metadata.version(self.library)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    @property
    def key(self) -> dict:
        """What makes this model this model in a cache key: the name, the pinned version and the
        sizes."""
        key = {
            "model": self.name,
            "version": PINS[self.library],
            "layers": self.layers,
            "hidden": self.hidden,
        }
        if self.transform == "spline":
            key["bins"] = NSF_BINS
        return key

    def build(self, dim: int) -> nn.Module:
        """The untrained model on ``dim`` features (torch's global RNG draws its weights)."""
        dim = check_int("dim", dim, minimum=2)
        return _BUILDERS[self.name](dim, self.layers, self.hidden)


_BUILDERS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "zuko RealNVP": functools.partial(_zuko, "RealNVP"),
    "zuko MAF": functools.partial(_zuko, "MAF"),
    "zuko NSF": functools.partial(_zuko, "NSF"),
    "nflows RealNVP": functools.partial(_nflows, "RealNVP"),
    "nflows MAF": functools.partial(_nflows, "MAF"),
    "normflows RealNVP": _normflows,
    "FrEIA AllInOne": _freia,
}

#: Every adapted model, by name (see the module docstring's table).
MODELS = {
    m.name: m
    for m in (
        LibraryModel("zuko RealNVP", "zuko", "coupling", "affine", "exp, soft-clipped", True, 8),
        LibraryModel("zuko MAF", "zuko", "autoregressive", "affine", "exp, soft-clipped", True, 4),
        LibraryModel("zuko NSF", "zuko", "autoregressive", "spline", "RQ spline", True, 2),
        LibraryModel(
            "nflows RealNVP", "nflows", "coupling", "affine", "sigmoid (contracts)", True, 8
        ),
        LibraryModel("nflows MAF", "nflows", "autoregressive", "affine", "softplus", False, 4),
        LibraryModel("normflows RealNVP", "normflows", "coupling", "affine", "exp", False, 8),
        LibraryModel("FrEIA AllInOne", "FrEIA", "coupling", "affine", "exp, tanh-clamped", True, 8),
    )
}


def library_model(name: str, layers: int | None = None, hidden: int | None = None) -> LibraryModel:
    """The model ``name`` of :data:`MODELS`, with other sizes if given.

    Example:
        >>> model = library_model("zuko MAF", hidden=32)
        >>> model.structure, model.layers, model.hidden
        ('autoregressive', 4, 32)
        >>> library_model("zuko GLOW")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: model must be one of 'zuko RealNVP', 'zuko MAF', ...; got 'zuko GLOW'
    """
    model = MODELS[check_choice("model", name, tuple(MODELS))]
    changes = {}
    if layers is not None:
        changes["layers"] = check_int("layers", layers, minimum=1)
    if hidden is not None:
        changes["hidden"] = check_int("hidden", hidden, minimum=1)
    return dataclasses.replace(model, **changes) if changes else model
