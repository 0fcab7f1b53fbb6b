r"""The thesis's battery for any density model: train it on the thesis's Gaussians, evaluate the
three families, and judge claims C4–C11 beside the nulls.

The thesis asks whether *a RealNVP* fails as it says; a reader with a flow of their own asks
whether *theirs* does. Everything needed to answer is in the thesis study: Gaussians p with known
truth, the families of scaled, shifted, perturbed and outlier test distributions, calibrated
constants, estimators with standard errors, and claim checks with nulls. :func:`battery` runs that
same code for any ``torch.nn.Module`` with ``log_prob(x)`` in the RealNVP's place:

1. the training Gaussian p and its data for each (D, seed)
   (:func:`~flowcore.studies.debruin2024.training.training_data`);
2. training by :func:`flowcore.train.fit` with the thesis's early stopping
   (:func:`~flowcore.studies.debruin2024.training.trained_flow`), or a model trained elsewhere
   (:class:`Trained`);
3. the families scored by the truth, the model, the ML Gaussian :math:`\hat p` of the training set
   and the model at initialisation
   (:func:`~flowcore.studies.debruin2024.evaluation.results`);
4. every claim judged for the model and each null
   (:func:`~flowcore.studies.debruin2024.sensitivity.judged_rows`).

A failure claim needs a model that fits p: where the model's
:math:`\mathrm{KL}^*(p\|p_\theta)` exceeds the fit bound, the claim is *not testable here*. Each
step is cached under the model's ``key``, so a rerun with more seeds trains only the new ones.

Example:
    The true density in the model's place fits p exactly; it shows none of the thesis's failures,
    and where the test setting alone would make one appear the truth null masks it.

    >>> import tempfile, os
    >>> from unittest import mock
    >>> from flowcore.studies.debruin2024 import ThesisConfig
    >>> config = battery_config(library_n_train=[200], library_n_val=100, library_n_test=200,
    ...                         library_calibration_draws=200, library_max_epochs=1)
    >>> truth = Trained.truth(dim=3, config=config)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with mock.patch.dict(os.environ, {"FLOWCORE_CACHE": folder}):
    ...         runs = battery(truth, dims=[3], seeds=[0], config=config, scheduler="serial",
    ...                        progress=False)
    >>> runs.set_index("claim").loc["C4", "verdict"]  # a fit claim: the untrained null fails it
    'reproduced'
    >>> sorted(set(runs.loc[runs["claim"] != "C4", "verdict"]))
    ['not reproduced', 'not testable here']
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from flowcore.gaussians import Gaussian
from flowcore.libraries import MODELS as LIBRARY_MODELS
from flowcore.libraries import PINS, LibraryModel, available, library_model, require
from flowcore.studies.debruin2024 import claims
from flowcore.studies.debruin2024 import columns as col
from flowcore.studies.debruin2024.config import ThesisConfig
from flowcore.studies.debruin2024.evaluation import results
from flowcore.studies.debruin2024.sensitivity import (
    FAILED,
    HOLDS,
    failed_rows,
    judged_rows,
    testable,
    verdict_share,
)
from flowcore.studies.debruin2024.training import TrainedFlow, training_data
from flowcore.sweep import Job, summarise_over_seeds, wilson_interval
from flowcore.sweep import run as run_jobs
from flowcore.train import History
from flowcore.validation import check_int_list, check_seeds
from flowcore.verdicts import NULLS

__all__ = [
    "Model",
    "Trained",
    "GaussianDensity",
    "as_model",
    "battery_config",
    "data",
    "jobs",
    "judge",
    "battery",
    "installed_models",
    "library_battery",
    "VIEWS",
    "fit_summary",
    "claim_cells",
    "metric_summary",
    "by_kind",
    "contrasts",
]


@dataclass(frozen=True)
class Model:
    """A density model given by a builder: ``build(dim)`` returns the untrained ``nn.Module`` with
    ``log_prob(x)`` (torch's global RNG, seeded with the run's seed, draws its weights); ``name``
    names it in tables and cache keys, so two different models need two names.

    Example:
        >>> from flowcore.flows import RealNVP
        >>> model = Model("my RealNVP", lambda dim: RealNVP(dim, n_couplings=2, hidden=(8,)))
        >>> model.key, model.build(3).dim
        ({'model': 'my RealNVP'}, 3)
    """

    name: str
    build: Callable[[int], nn.Module]

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string naming the model, got {self.name!r}")
        if not callable(self.build):
            raise TypeError(f"build must be a callable dim -> nn.Module, got {self.build!r}")

    @property
    def key(self) -> dict:
        return {"model": self.name}


def _digest(module: nn.Module) -> str:
    """A hash of a module's state (names, shapes and bytes of every tensor)."""
    h = hashlib.sha256()
    for name, value in module.state_dict().items():
        tensor = value.detach().to("cpu").contiguous()
        h.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        h.update(tensor.numpy().tobytes() if tensor.dtype != torch.bfloat16 else b"")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Trained:
    """A model trained elsewhere on the thesis's data for one ``dim`` and seed (:func:`data`),
    and the same model at its initialisation (``untrained``: the null that shows what a model that
    has learned nothing does). Its cache key holds a hash of both models' weights.
    """

    name: str
    flow: nn.Module
    untrained: nn.Module
    dim: int

    def __post_init__(self):
        for field_name in ("flow", "untrained"):
            value = getattr(self, field_name)
            if not callable(getattr(value, "log_prob", None)):
                raise TypeError(f"{field_name} must be a module with log_prob(x), got {value!r}")

    @property
    def key(self) -> dict:
        return {
            "model": self.name,
            "weights": _digest(self.flow),
            "untrained": _digest(self.untrained),
        }

    def trained_flow(self, dim: int, config: ThesisConfig) -> TrainedFlow:
        """The :class:`~flowcore.studies.debruin2024.training.TrainedFlow` for ``config``'s data at
        ``dim`` (which must be this model's), with :math:`\\hat p` fitted to the same training
        set."""
        if dim != self.dim:
            raise ValueError(f"dims must be [{self.dim}] for a model trained at D = {self.dim}")
        p, x_train, _ = training_data(dim, config)
        return TrainedFlow(
            dim, p, Gaussian.fit(x_train), self.flow, History(), False, self.untrained
        )

    @classmethod
    def truth(cls, dim: int, config: ThesisConfig) -> Trained:
        """The true density p of ``config`` at ``dim`` as a "trained model" (and N(0, I) as its
        untrained self): what the battery gives a perfect model."""
        p, _, _ = training_data(dim, config)
        return cls(
            "truth p",
            GaussianDensity(p),
            GaussianDensity(Gaussian(torch.zeros(dim), torch.eye(dim))),
            dim,
        )


class GaussianDensity(nn.Module):
    """A Gaussian as a module with ``log_prob`` (its float64 closed form, returned in the input's
    dtype): the truth, or the ML Gaussian p̂, in a model's place.

    Example:
        >>> density = GaussianDensity(Gaussian(torch.zeros(2), torch.eye(2)))
        >>> density.log_prob(torch.zeros(1, 2))  # -log 2π
        tensor([-1.8379])
    """

    def __init__(self, gaussian: Gaussian):
        super().__init__()
        self.register_buffer("mean", gaussian.mean.clone())
        self.register_buffer("cov", gaussian.cov.clone())
        self._gaussian = gaussian

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self._gaussian.log_prob(x.to(torch.float64)).to(x.dtype)


def as_model(model, name: str | None = None) -> LibraryModel | Model | Trained:
    """What :func:`battery` accepts as a model, as an object with ``key``: the name of a library
    model (:data:`flowcore.libraries.MODELS`), a :class:`~flowcore.libraries.LibraryModel`, a
    :class:`Model` or :class:`Trained`, or a builder ``dim -> nn.Module`` with its ``name``.

    Example:
        >>> as_model("zuko NSF").structure, as_model(lambda d: None, name="mine").key
        ('autoregressive', {'model': 'mine'})
        >>> as_model(torch.nn.Linear(2, 2))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: model must be a library model's name, ... Trained(name, flow, untrained, dim)
    """
    if isinstance(model, str):
        return library_model(model)
    if isinstance(model, (LibraryModel, Model, Trained)):
        return model
    if isinstance(model, nn.Module) or not callable(model):
        raise TypeError(
            "model must be a library model's name, a LibraryModel, a Model, a Trained or a builder "
            "dim -> nn.Module; a module alone is neither: give its builder (with name=...) or wrap "
            "a trained one as Trained(name, flow, untrained, dim)"
        )
    if name is None:
        raise ValueError("name must name a model given as a builder (it joins the cache keys)")
    return Model(name, model)


def battery_config(base: ThesisConfig | None = None, **params) -> ThesisConfig:
    """The thesis config the battery runs with: ``base`` (default: the default profile's values)
    with the ``library_…`` parameters (any given here first) as the training and test sizes (the
    training-set size of the largest D; :func:`jobs` sets each D's own).

    Example:
        >>> c = battery_config(library_n_train=[2000])
        >>> c.n_train, c.train.max_epochs, c.n_test, c.trainer
        (2000, 10, 1000, 'single')
    """
    base = ThesisConfig() if base is None else base
    if params:
        base = base.replace(**params)
    lib = base.library
    return base.replace(
        n_train=lib.n_train_at(max(lib.dims)),  # each job sets its own D's (jobs)
        n_val=lib.n_val,
        max_epochs=lib.max_epochs,
        n_test=lib.n_test,
        calibration_draws=lib.calibration_draws,
        trainer="single",
        # recalibrated for each seed's own Σ_p, as in the regime search
        alpha=None,
        beta=None,
        outlier_offset=None,
        outlier_cov_scale=None,
    )


def data(
    dim: int, seed: int, config: ThesisConfig | None = None
) -> tuple[Gaussian, torch.Tensor, torch.Tensor]:
    """``(p, x_train, x_val)``: the training Gaussian and the data a model judged at ``dim`` and
    ``seed`` trains on (with the sizes of :func:`battery_config`): what to train a model on
    elsewhere before judging it as :class:`Trained`.

    Example:
        >>> p, x_train, x_val = data(20, seed=0)
        >>> p.dim, len(x_train), len(x_val)
        (20, 10000, 2000)
    """
    return training_data(dim, _run_config(battery_config(config), dim, seed))


def _run_config(config: ThesisConfig, dim: int, seed: int) -> ThesisConfig:
    """The config of one run at ``dim`` and ``seed``, with that D's training-set size."""
    return config.replace(seed=seed, dims=[dim], n_train=config.library.n_train_at(dim))


def jobs(
    models: Sequence, config: ThesisConfig, dims: Sequence[int], seeds: Sequence[int]
) -> list[Job]:
    """One job per model × D × seed, labelled ``model``, ``D`` and ``seed``, each with its D's
    training-set size (:meth:`~flowcore.studies.debruin2024.config.Libraries.n_train_at`)."""
    return [
        Job({"model": model.name, "D": dim, "seed": seed}, _run_config(config, dim, seed))
        for model in models
        for dim in dims
        for seed in seeds
    ]


def judge(model, config: ThesisConfig, progress: bool | None = None) -> list[dict]:
    """Train (or load) ``model`` on ``config``'s data at its one D, evaluate the families and judge
    every claim (:func:`~flowcore.studies.debruin2024.sensitivity.judged_rows`, with each null's
    metric); a run whose training diverges or whose log-density overflows is recorded as failed."""
    try:
        res = results(config, progress=progress, model=model)
    except FloatingPointError as error:
        return failed_rows(error)
    rows = judged_rows(res, null_metrics=True)
    return [{**row, "seconds": res.trained[config.dims[0]].history.seconds} for row in rows]


def battery(
    model,
    dims: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    config: ThesisConfig | None = None,
    *,
    name: str | None = None,
    scheduler: str = "serial",
    progress: bool | None = None,
) -> pd.DataFrame:
    """Judge the thesis's claims C4–C11 for ``model`` (see :func:`as_model` for what it may be) at
    each D in ``dims`` and seed in ``seeds`` (default: ``config``'s ``library_dims`` and
    ``library_seeds``), with the sizes of :func:`battery_config` (``config``: a thesis config, by
    default the default profile's).

    Returns one row per (D, seed, claim): ``verdict`` (the model's, masked by the nulls: what the
    truth or p̂ also shows is not the model's failure), each null's own verdict (``truth``, ``p̂``,
    ``untrained``), the number the claim rests on for the model and each null (``metric``,
    ``metric <null>``), and the fit: ``KL*(p‖pθ)/D`` beside ``KL*(p‖p̂)/D``, ``fits p``. The jobs run
    on ``scheduler`` (``"serial"`` here; ``"local"`` or a Dask address to spread them).
    """
    model = as_model(model, name)
    config = battery_config(config)
    dims = check_int_list("dims", config.library.dims if dims is None else dims, minimum=2)
    seeds = check_seeds("seeds", config.library.seeds if seeds is None else seeds, distinct=1)
    if isinstance(model, Trained):
        if len(dims) != 1 or len(seeds) != 1:
            raise ValueError(
                "a Trained model is judged at its one D and seed: give one dim and seed"
            )
        if dims[0] != model.dim:
            raise ValueError(f"dims must be [{model.dim}] for a model trained at D = {model.dim}")
    return run_jobs(
        jobs([model], config, dims, seeds),
        lambda job: judge(model, job.config, progress=False),
        progress=progress,
        description=f"battery: {model.name}",
        scheduler=scheduler,
    )


def installed_models(config: ThesisConfig) -> tuple[dict[str, LibraryModel], list[str]]:
    """The models of ``config.library.models`` whose library can be imported, and the libraries
    that cannot (each named once, with its pin), so that a chapter can run the others and say
    which it left out instead of stopping.

    Example:
        >>> from flowcore.studies.debruin2024 import ThesisConfig
        >>> models, missing = installed_models(ThesisConfig())
        >>> len(models) + len(missing) >= 1, missing == [] or "==" in missing[0]
        (True, True)
    """
    models, missing = {}, []
    for name in config.library.models:
        model = LIBRARY_MODELS[name]
        if available(model.library):
            models[name] = model
        elif f"{model.library}=={PINS[model.library]}" not in missing:
            missing.append(f"{model.library}=={PINS[model.library]}")
    return models, missing


def library_battery(
    config: ThesisConfig,
    progress: bool | None = None,
    scheduler: str | None = None,
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """:func:`battery` for every model of ``models`` (default: ``config.library.models``) at the
    config's library dims and seeds, as one sweep on ``scheduler`` (default: ``config.scheduler``):
    the chapter's runs. A model whose library is not installed raises
    :class:`~flowcore.libraries.LibraryMissing` before any work (:func:`installed_models` finds
    them)."""
    config = battery_config(config)
    lib = config.library
    models = {name: library_model(name) for name in (lib.models if models is None else models)}
    for model in models.values():
        require(model.library)  # before any work
    return run_jobs(
        jobs(list(models.values()), config, lib.dims, lib.seeds),
        lambda job: judge(models[job.labels["model"]], job.config, progress=False),
        progress=progress,
        description="libraries",
        scheduler=config.scheduler if scheduler is None else scheduler,
    )


# --- summaries of a battery's runs (one row per model, D, seed and claim) -------------------------

#: The views of a run whose metric the summaries carry: the model, then the nulls.
VIEWS = {"model": "metric", **{null: f"metric {null}" for null in NULLS}}


def fit_summary(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per model and D: the fit :math:`\\mathrm{KL}^*(p\\|\\cdot)/D` (nats per dimension, mean
    over seeds with a Student-t interval) of the model, beside p̂'s and the untrained model's, the
    fit premise's bound per dimension, and in how many seeds the model fits p."""
    per_run = runs.drop_duplicates(["model", "D", "seed"])
    per_run = per_run[per_run["verdict"] != FAILED]
    by = ["model", "D"]
    out = summarise_over_seeds(per_run, by, col.KL_PER_DIM, confidence)
    for column in ("KL*(p‖p̂)/D", "KL*(p‖pθ₀)/D"):
        out[column] = per_run.groupby(by, sort=False)[column].mean().to_numpy()
    out["bound/D"] = [claims.fit_bound(int(d)) / int(d) for d in out["D"]]
    fits = per_run.groupby(by, sort=False)["fits p"].agg(lambda f: f"{int(f.sum())}/{len(f)}")
    out["fits p"] = fits.to_numpy()
    return out


def claim_cells(runs: pd.DataFrame, view: str = "model") -> pd.DataFrame:
    """Per model and D (rows) and claim (columns): the share of seeds in which the view's verdict
    holds (:func:`~flowcore.studies.debruin2024.sensitivity.verdict_share`; ``"model"``: the
    model's, masked by the nulls; or a null of :data:`~flowcore.verdicts.NULLS`, judged on its
    own)."""
    column = "verdict" if view == "model" else view
    cells = runs.groupby(["model", "D", "claim"], sort=False)[column].apply(verdict_share)
    return cells.unstack("claim")[[c for c in runs["claim"].unique()]]


def metric_summary(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per claim, model, D and view (the model and each null): the mean over seeds of the number
    the claim rests on (:data:`~flowcore.studies.debruin2024.sensitivity.METRICS`), with a
    Student-t interval."""
    judged = runs[runs["verdict"] != FAILED]
    long = pd.concat(
        [judged.assign(view=view, metric=judged[column]) for view, column in VIEWS.items()],
        ignore_index=True,
    )
    return summarise_over_seeds(long, ["claim", "model", "D", "view"], "metric", confidence)


def by_kind(
    runs: pd.DataFrame, models: Mapping[str, LibraryModel], confidence: float = 0.95
) -> pd.DataFrame:
    """Which claims hold for which kind of flow: per claim and level of each kind
    (``structure``: coupling / autoregressive; ``transform``: affine / spline; ``log-scale``:
    bounded / unbounded), of the runs where the claim is testable for the model (so its flow fits
    p), in how many it holds at least partly, with a Wilson interval."""
    kinds = {
        "structure": lambda m: m.structure,
        "transform": lambda m: m.transform,
        "log-scale": lambda m: "bounded" if m.bounded else "unbounded",
    }
    rows = []
    for kind, level_of in kinds.items():
        levels = runs["model"].map(lambda name: level_of(models[name]))
        for (claim, level), group in runs.groupby([runs["claim"], levels], sort=False):
            judged = testable(group["verdict"])
            held = int(group.loc[judged, "verdict"].isin(HOLDS).sum())
            low, high = wilson_interval(held, int(judged.sum()), confidence)
            rows.append(
                {
                    "claim": claim,
                    "kind": kind,
                    "level": level,
                    "models": ", ".join(sorted(set(group["model"]))),
                    "testable runs": int(judged.sum()),
                    "holds": held,
                    "share": held / judged.sum() if judged.any() else float("nan"),
                    "CI low": low,
                    "CI high": high,
                }
            )
    return pd.DataFrame(rows)


def contrasts(kinds: pd.DataFrame) -> pd.DataFrame:
    """Per claim and kind of flow (:func:`by_kind`), with two levels, whether the claim holds more
    often at one level than at the other: ``separated`` when the two Wilson intervals do not
    overlap (then ``more often`` names the level), else the data do not tell them apart. Claims
    that hold in no testable run, or that are testable at only one level, are left out.

    Example:
        >>> kinds = pd.DataFrame({
        ...     "claim": ["C4", "C4"], "kind": "structure", "level": ["coupling", "autoregressive"],
        ...     "testable runs": [24, 18], "holds": [6, 16],
        ...     "CI low": [0.12, 0.67], "CI high": [0.45, 0.97]})
        >>> contrasts(kinds)[["claim", "kind", "separated", "more often"]].values.tolist()
        [['C4', 'structure', True, 'autoregressive']]
    """
    rows = []
    for (claim, kind), group in kinds.groupby(["claim", "kind"], sort=False):
        group = group[group["testable runs"] > 0]
        if len(group) != 2 or group["holds"].sum() == 0:
            continue
        first, second = (group.iloc[i] for i in range(2))
        separated = bool(first["CI high"] < second["CI low"] or second["CI high"] < first["CI low"])
        higher = (
            first
            if first["holds"] / first["testable runs"] > second["holds"] / second["testable runs"]
            else second
        )
        rows.append(
            {
                "claim": claim,
                "kind": kind,
                "levels": " vs ".join(
                    f"{r['level']} {int(r['holds'])}/{int(r['testable runs'])} "
                    f"({r['CI low']:.2f}–{r['CI high']:.2f})"
                    for r in (first, second)
                ),
                "separated": separated,
                "more often": higher["level"] if separated else "",
            }
        )
    return pd.DataFrame(rows, columns=["claim", "kind", "levels", "separated", "more often"])
