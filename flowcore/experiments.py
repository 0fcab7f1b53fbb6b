r"""Validated experiment configs, cached training, and the evaluations behind the book's tables.

A chapter's notebook parameters go through :meth:`ExperimentConfig.from_params`, which raises a
``ValueError`` naming any bad parameter before anything is trained. Then
:func:`trained_flow` draws :math:`p`, trains a RealNVP on it (or loads it from the cache), and
:func:`baseline` evaluates it on repeated test sets from :math:`p` (thesis §4).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd
import torch

from flowcore.cache import cached
from flowcore.estimators import Estimate, cross_entropy_mc, kl_mc, log_likelihoods, mean_estimate, overlap_coefficient
from flowcore.families import FAMILIES
from flowcore.flows import RealNVP, resolve_device
from flowcore.gaussians import Gaussian, GaussianRecipe, training_gaussian
from flowcore.train import History, TrainConfig, fit
from flowcore.validation import check_choice, check_int, check_int_list, check_positive, check_probability, check_real, check_real_list

__all__ = [
    "SCALES",
    "SHIFTS",
    "FAMILIES",
    "FlowConfig",
    "ExperimentConfig",
    "TrainedFlow",
    "BaselineRun",
    "config_from",
    "stream",
    "trained_flow",
    "baseline",
    "baseline_summary",
    "baseline_metrics",
    "baseline_quantities",
]

#: The thesis's scales S and shifts T (§5.1).
SCALES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.75)
SHIFTS = (0.0, 0.25, 0.5, 0.75)


@dataclass(frozen=True)
class FlowConfig:
    """The RealNVP's architecture (the thesis states none of it; these are ours).

    Attributes:
        n_couplings: Number of affine coupling layers.
        hidden: Hidden widths of each coupling's st-network.
        log_scale_bound: Soft bound ``b`` on each coupling's log-scale.
    """

    n_couplings: int = 8
    hidden: tuple[int, ...] = (128, 128)
    log_scale_bound: float = 3.0

    def __post_init__(self):
        check_int("n_couplings", self.n_couplings, minimum=1)
        object.__setattr__(self, "hidden", check_int_list("hidden", self.hidden, minimum=1))
        check_positive("log_scale_bound", self.log_scale_bound)

    def build(self, dim: int) -> RealNVP:
        return RealNVP(dim, self.n_couplings, self.hidden, self.log_scale_bound)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a chapter needs, built from its flat notebook parameters by :meth:`from_params`.

    Attributes:
        dims: Dimensions D to study (each ≥ 2).
        recipe: How p is drawn.
        flow: The flow's architecture.
        train: Training settings; ``train.seed`` is the experiment's seed.
        n_test: Test-set size N per test distribution.
        n_repeats: Number K of independent test sets for the repeated-test-set spread (≥ 2).
        scales, shifts: The sets S and T of s and t values (s > 0).
        families: Test-distribution families to evaluate.
        tpr: Target true-positive rate of the bound detector, in (0, 1).
        alpha, beta: Perturbation strengths of Λ^δ (Eq. 21); ``None``: calibrated (see
            :mod:`flowcore.calibration`).
        outlier_offset, outlier_cov_scale: The outlier recipe of Λ^out (:class:`flowcore.families.OutlierRecipe`);
            ``None``: calibrated.
        calibration_dim: The dimension the calibration targets refer to (the thesis's D = 50).
        calibration_draws: Draws of each rate in the calibration's search (its check uses 10×).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        chunk_size: Samples per evaluation chunk.
    """

    dims: tuple[int, ...] = (10, 20, 50, 100)
    recipe: GaussianRecipe = field(default_factory=GaussianRecipe)
    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    n_test: int = 100_000
    n_repeats: int = 10
    scales: tuple[float, ...] = SCALES
    shifts: tuple[float, ...] = SHIFTS
    families: tuple[str, ...] = FAMILIES
    tpr: float = 0.975
    alpha: float | None = None
    beta: float | None = None
    outlier_offset: float | None = None
    outlier_cov_scale: float | None = None
    calibration_dim: int = 50
    calibration_draws: int = 20_000
    device: str = "auto"
    chunk_size: int = 4_096

    def __post_init__(self):
        object.__setattr__(self, "dims", check_int_list("dims", self.dims, minimum=2))
        check_int("n_test", self.n_test, minimum=2)
        check_int("n_repeats", self.n_repeats, minimum=2)
        object.__setattr__(self, "scales", check_real_list("scales", self.scales, positive=True))
        object.__setattr__(self, "shifts", check_real_list("shifts", self.shifts))
        if isinstance(self.families, str) or not self.families:
            raise ValueError(f"families must be a non-empty list drawn from {FAMILIES}, got {self.families!r}")
        object.__setattr__(self, "families", tuple(check_choice("families", f, FAMILIES) for f in self.families))
        check_probability("tpr", self.tpr)
        for name in ("alpha", "beta", "outlier_offset", "outlier_cov_scale"):
            value = getattr(self, name)
            if value is not None and (check_real(name, value) < 0 or (name == "outlier_cov_scale" and value == 0)):
                bound = "> 0" if name == "outlier_cov_scale" else "≥ 0"
                raise ValueError(f"{name} must be a number {bound}, or null to calibrate it; got {value!r}")
        check_int("calibration_dim", self.calibration_dim, minimum=2)
        check_int("calibration_draws", self.calibration_draws, minimum=100)
        resolve_device(self.device)
        check_int("chunk_size", self.chunk_size, minimum=1)

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    @classmethod
    def parameter_names(cls) -> dict[str, str | None]:
        """Each flat parameter name and the section it belongs to: ``None`` (this class), or
        ``"recipe"``, ``"flow"``, ``"train"``."""
        names: dict[str, str | None] = {f.name: None for f in fields(cls) if f.name not in ("recipe", "flow", "train")}
        for section, klass in (("recipe", GaussianRecipe), ("flow", FlowConfig), ("train", TrainConfig)):
            names.update({f.name: section for f in fields(klass)})
        return names

    @classmethod
    def from_params(cls, **params) -> ExperimentConfig:
        """Build a config from flat notebook parameters (``dims``, ``n_train``, ``eig_min``, ``s``...).

        Raises:
            ValueError: For an unknown parameter name, or any value out of range or of the
                wrong type; the message names the parameter and what is allowed.
        """
        names = cls.parameter_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(names))}")
        sections: dict[str | None, dict] = {None: {}, "recipe": {}, "flow": {}, "train": {}}
        for name, value in params.items():
            sections[names[name]][name] = value
        return cls(
            recipe=GaussianRecipe(**sections["recipe"]),
            flow=FlowConfig(**sections["flow"]),
            train=TrainConfig(**sections["train"]),
            **sections[None],
        )

    def as_params(self) -> dict:
        """The flat parameters this config was built from (after validation)."""
        flat = {k: v for k, v in asdict(self).items() if k not in ("recipe", "flow", "train")}
        for section in ("recipe", "flow", "train"):
            flat.update(asdict(getattr(self, section)))
        return flat

    def table(self) -> pd.DataFrame:
        """The effective parameters as a two-column table, for the book."""
        return pd.DataFrame({"parameter": list(self.as_params()), "value": [str(v) for v in self.as_params().values()]}).set_index("parameter")


def config_from(namespace: dict) -> ExperimentConfig:
    """Validate a notebook's parameters: every name of :meth:`ExperimentConfig.parameter_names` found in
    ``namespace`` (a notebook passes ``globals()`` right after its parameters cell)."""
    return ExperimentConfig.from_params(**{k: namespace[k] for k in ExperimentConfig.parameter_names() if k in namespace})


def stream(seed: int, *names) -> torch.Generator:
    """A CPU generator for one named random stream, e.g. ``stream(seed, "test", D, repeat)``.

    Streams with different names are independent, and each is reproducible on its own.
    """
    digest = hashlib.sha256(repr((seed, *names)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@dataclass
class TrainedFlow:
    """A flow trained on ``p``, with its training history and whether it came from the cache."""

    dim: int
    p: Gaussian
    flow: RealNVP
    history: History
    from_cache: bool


def trained_flow(dim: int, config: ExperimentConfig, progress: bool | None = None, callback=None) -> TrainedFlow:
    """Draw :math:`p` for ``dim``, and train a RealNVP on it or load it from the cache.

    The cache key covers ``dim``, the recipe, the architecture and every training setting
    (including the seed); the device is not part of it, so a CPU-trained flow serves a GPU run.
    """
    dim = check_int("dim", dim, minimum=2)
    device = config.torch_device
    p = training_gaussian(dim, config.recipe, config.seed)
    key = {"dim": dim, "recipe": asdict(config.recipe), "flow": asdict(config.flow), "train": asdict(config.train)}

    def build() -> RealNVP:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            return config.flow.build(dim)

    def train() -> dict:
        flow = build().to(device)
        x_train = p.sample(config.train.n_train, stream(config.seed, "train", dim), dtype=torch.float32).to(device)
        x_val = p.sample(config.train.n_val, stream(config.seed, "val", dim), dtype=torch.float32).to(device)
        history = fit(flow, x_train, x_val, config.train, progress=progress, callback=callback, description=f"D={dim}")
        return {"state_dict": {k: v.cpu() for k, v in flow.state_dict().items()}, "history": history.as_dict()}

    def loads(entry) -> bool:
        try:
            build().load_state_dict(entry["state_dict"])
            History(**entry["history"])
            return True
        except Exception:
            return False

    entry, from_cache = cached("flow", key, train, validate=loads)
    flow = build()
    flow.load_state_dict(entry["state_dict"])
    flow = flow.to(device).eval()
    return TrainedFlow(dim, p, flow, History(**entry["history"]), from_cache)


@dataclass
class BaselineRun:
    """§4 for one D: the trained flow, log-likelihoods over the main test set from p, and repeats.

    Attributes:
        loglik: ``{"truth": log p, "model": log pθ, "gaussian": log p̂}`` over the first test set,
            where p̂ is the maximum-likelihood Gaussian of the training set (the best linear flow).
        repeat_means: For each name, the mean log-likelihood over each of the K test sets.
        gaussian_fit: p̂.
        eval_seconds: Time of the evaluation (all K test sets).
    """

    trained: TrainedFlow
    loglik: dict[str, np.ndarray]
    repeat_means: dict[str, np.ndarray]
    gaussian_fit: Gaussian
    eval_seconds: float

    @property
    def dim(self) -> int:
        return self.trained.dim

    @property
    def p(self) -> Gaussian:
        return self.trained.p


def baseline(config: ExperimentConfig, progress: bool | None = None) -> dict[int, BaselineRun]:
    """Thesis §4 for every D in ``config.dims``: train (or load) the flow and evaluate it on p.

    Each D gets K = ``n_repeats`` independent test sets :math:`\\mathcal Q^N(p)`; the first one
    feeds the tables and KDEs, and all K give the repeated-test-set spread.
    """
    runs = {}
    for dim in config.dims:
        trained = trained_flow(dim, config, progress=progress)
        p = trained.p
        # The training set again, from its own stream (the flow may come from the cache): the
        # maximum-likelihood Gaussian of the very samples the flow saw is the linear control.
        p_hat = Gaussian.fit(p.sample(config.train.n_train, stream(config.seed, "train", dim)))
        densities = {"truth": p.log_prob, "model": trained.flow, "gaussian": p_hat.log_prob}
        start = time.perf_counter()
        repeats = []
        for r in range(config.n_repeats):
            samples = p.iter_samples(config.n_test, stream(config.seed, "test", dim, "p", r), config.chunk_size)
            repeats.append(log_likelihoods(samples, densities, device=config.torch_device))
        runs[dim] = BaselineRun(
            trained=trained,
            loglik=repeats[0],
            repeat_means={name: np.array([rep[name].mean() for rep in repeats]) for name in densities},
            gaussian_fit=p_hat,
            eval_seconds=time.perf_counter() - start,
        )
    return runs


def baseline_metrics(run: BaselineRun) -> dict[str, Estimate | float]:
    """The numbers of §4 for one D, in nats; Monte-Carlo ones as :class:`Estimate` with their SE."""
    p, ll = run.p, run.loglik
    n = ll["truth"].size
    h_p = p.entropy()
    sigma_model = float(np.std(run.repeat_means["model"], ddof=1))
    return {
        "H(p)": h_p,
        "H*(p,p)": cross_entropy_mc(ll["truth"]),
        "H*(p,pθ)": cross_entropy_mc(ll["model"]),
        "KL*(p‖pθ)": kl_mc(ll["model"], h_p),
        "KL*(p‖pθ) paired": mean_estimate(ll["truth"] - ll["model"]),
        "KL(p‖p̂)": p.kl(run.gaussian_fit),
        "KL*(p‖p̂)": kl_mc(ll["gaussian"], h_p),
        "σ repeats E[log pθ]": sigma_model,
        "σ repeats E[log p]": float(np.std(run.repeat_means["truth"], ddof=1)),
        "σ at N=1e6 (scaled)": sigma_model * np.sqrt(n / 1e6),
        "√(D/2N)": float(np.sqrt(run.dim / (2 * n))),
        "OVL": overlap_coefficient(ll["model"], ll["truth"]),
    }


#: How each quantity of :func:`baseline_metrics` is obtained, for the per-D tables.
HOW = {
    "H(p)": "analytic, ½ log det(2πe Σ_p)",
    "H*(p,p)": "Monte Carlo, Eq. 14",
    "H*(p,pθ)": "Monte Carlo, Eq. 14",
    "KL*(p‖pθ)": "H*(p,pθ) − H(p), §3.2.2",
    "KL*(p‖pθ) paired": "mean of log p − log pθ (same samples)",
    "KL(p‖p̂)": "analytic, Proposition 1 (p̂: ML Gaussian)",
    "KL*(p‖p̂)": "H*(p,p̂) − H(p), §3.2.2",
    "σ repeats E[log pθ]": "std of the K test-set means",
    "σ repeats E[log p]": "std of the K test-set means",
    "σ at N=1e6 (scaled)": "σ × √(N / 10⁶)",
    "√(D/2N)": "exact SE of H*(p,p): Var log p = D/2",
    "OVL": "overlap of the KDEs of log pθ and log p",
}


def baseline_quantities(run: BaselineRun) -> pd.DataFrame:
    """One D's table: each quantity of §4, how it is obtained, its value and standard error (nats)."""
    rows = []
    for name, value in baseline_metrics(run).items():
        est = value if isinstance(value, Estimate) else Estimate(float(value), float("nan"))
        rows.append((name, HOW[name], est.value, est.stderr))
    return pd.DataFrame(rows, columns=["quantity", "how", "value", "stderr"]).set_index("quantity")


def baseline_summary(runs: dict[int, BaselineRun]) -> pd.DataFrame:
    """One row per D with the numbers the claims C1–C3 rest on (nats); SEs in ``SE …`` columns."""
    rows = []
    for dim, run in runs.items():
        row: dict = {"D": dim, "N": run.loglik["truth"].size, "K": run.repeat_means["model"].size}
        for name, value in baseline_metrics(run).items():
            if isinstance(value, Estimate):
                row[name], row[f"SE {name}"] = value.value, value.stderr
            else:
                row[name] = value
        # How many standard errors each estimate is from its closed form (C2, C3 and the notebook read these).
        row["z H*(p,p)"] = (row["H*(p,p)"] - row["H(p)"]) / row["SE H*(p,p)"]
        row["z KL*(p‖p̂)"] = (row["KL*(p‖p̂)"] - row["KL(p‖p̂)"]) / row["SE KL*(p‖p̂)"]
        history, h_p = run.trained.history, run.p.entropy()
        row.update(
            {
                "epochs": len(history.val_nll),
                "kept epoch": history.best_epoch + 1,
                "training NLL − H(p)": history.train_nll[history.best_epoch] - h_p,
                "validation NLL − H(p)": history.val_nll[history.best_epoch] - h_p,
                "train s": history.seconds,
                "from cache": run.trained.from_cache,
                "eval s": run.eval_seconds,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("D")
