r"""Profiles → validated configs: the one way a chapter, a rerun or a sweep gets its settings.

A *profile* (``notebooks/params/<name>.yaml``) holds every default, one section per study::

    # ci.yaml: states only what differs from the profile it inherits
    inherits: default
    debruin2024:
      dims: [4, 7]

Values are merged ``profile < overrides`` (overrides from ``pipeline.py -p``, papermill ``-p`` or a
notebook's parameters cell), every name is checked against the study's parameters (an unknown
one is an error that names the nearest known one), and every value is validated into the study's
config object, before any expensive work. Config classes keep the canonical form of each value,
so :func:`flowcore.cache.job_key` of a config is its cache key and its sweep job id.
"""

from __future__ import annotations

import ast
import difflib
import html
import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd
import torch

from flowcore.cache import CHECKOUT, canonical
from flowcore.devices import resolve_device
from flowcore.params import coerce, load_yaml
from flowcore.resources import Estimate, check_resources
from flowcore.validation import (
    check_bool,
    check_choice,
    check_int,
    check_int_list,
    check_positive,
    checked,
    validate_fields,
)

__all__ = [
    "Checked",
    "section_prefix",
    "FlowConfig",
    "StudyConfig",
    "profile_dir",
    "profile_names",
    "load_profile",
    "check_names",
    "resolve",
    "configure",
]

Config = TypeVar("Config", bound="StudyConfig")


# --- profiles ------------------------------------------------------------------------------------


def profile_dir() -> Path:
    """``$FLOWCORE_PROFILES`` if set, else ``notebooks/params`` of the checkout flowcore is imported
    from.

    Example:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"FLOWCORE_PROFILES": "/tmp/profiles"}):
        ...     profile_dir() == Path("/tmp/profiles")
        True
    """
    return Path(os.environ.get("FLOWCORE_PROFILES") or CHECKOUT / "notebooks" / "params")


def profile_names() -> tuple[str, ...]:
    """The profiles there are, e.g. ``('ci', 'default', 'paper')``.

    Example:
        >>> "default" in profile_names()
        True
    """
    return tuple(sorted(p.stem for p in profile_dir().glob("*.yaml")))


def _merge(base: Mapping, update: Mapping) -> dict:
    """``base`` updated by ``update``, recursively for nested mappings (a study's section)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
            else value
        )
    return out


def load_profile(name: str) -> dict[str, dict]:
    """The profile ``name`` with its ``inherits`` chain resolved: ``{study: {parameter: value}}``.

    Raises:
        ValueError: For an unknown profile, a cycle of ``inherits``, or a file that is not a
            mapping.

    Example:
        >>> ci, default = load_profile("ci"), load_profile("default")
        >>> ci["debruin2024"]["max_epochs"] < default["debruin2024"]["max_epochs"]
        True
    """
    chain: list[str] = []
    values: dict = {}
    while name is not None:
        names = profile_names()
        if not isinstance(name, str) or name not in names:
            raise ValueError(f"profile must be one of {', '.join(map(repr, names))}; got {name!r}")
        if name in chain:
            raise ValueError(
                f"profile {chain[0]!r} inherits in a cycle: {' → '.join([*chain, name])}"
            )
        chain.append(name)
        data = load_yaml(profile_dir() / f"{name}.yaml") or {}
        if not isinstance(data, Mapping) or not all(
            isinstance(v, Mapping) for k, v in data.items() if k != "inherits"
        ):
            raise ValueError(
                f"profile {name!r} must map each study to its parameters "
                f"(see {profile_dir() / 'default.yaml'})"
            )
        values = _merge({k: v for k, v in data.items() if k != "inherits"}, values)
        name = data.get("inherits")
    return values


# --- names ----------------------------------------------------------------------------------------


def check_names(given, known, what: str = "parameter") -> None:
    """Raise a ``ValueError`` for every name in ``given`` that is not in ``known``, suggesting the
    nearest.

    Example:
        >>> check_names(["n_trian"], ["n_train", "n_val"])
        Traceback (most recent call last):
        ...
        ValueError: unknown parameter 'n_trian' (did you mean 'n_train'?); known: n_train, n_val
    """
    known = sorted(known)
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    plural = "s" if len(unknown) > 1 else ""
    raise ValueError(f"unknown {what}{plural} {', '.join(parts)}; known: {', '.join(known)}")


# --- config classes -------------------------------------------------------------------------------

#: Each section class → the prefixes the :attr:`StudyConfig.SECTIONS` of the study configs give it.
_PREFIXES: dict[type, set[str]] = {}
#: The section class :meth:`StudyConfig.from_params` is building, and the prefix of its study.
_BUILDING: ContextVar[tuple[type, str] | None] = ContextVar(
    "flowcore_building_section", default=None
)


def section_prefix(klass: type) -> str:
    """The prefix the flat parameters of the config class ``klass`` carry, as
    :attr:`StudyConfig.SECTIONS` gives it: that of the study whose config is being built, else the
    one prefix every study gives ``klass``; ``""`` for a class that is no section (or is one under
    several prefixes).

    Example:
        >>> from flowcore.studies.debruin2024 import Sweep, ThesisConfig
        >>> section_prefix(Sweep), section_prefix(ThesisConfig)
        ('sweep_', '')
    """
    building = _BUILDING.get()
    if building is not None and building[0] is klass:
        return building[1]
    prefixes = _PREFIXES.get(klass, ())
    return next(iter(prefixes)) if len(prefixes) == 1 else ""


class Checked:
    """Base of a frozen config dataclass whose fields declare their own checks.

    Each field states its check once,
    ``lr: float = field(default=1e-3, metadata=checked(check_positive))``
    (:func:`flowcore.validation.checked`); this ``__post_init__`` runs them all, naming each
    parameter by its flat name (the field's name behind the prefix :func:`section_prefix` finds in
    SECTIONS), and keeps the canonical values. A check that involves two fields goes into the
    subclass's ``__post_init__``, after ``super().__post_init__()``.

    Example:
        >>> from flowcore.validation import checked, check_int
        >>> @dataclass(frozen=True)
        ... class Sizes(Checked):
        ...     n_train: int = field(default=100, metadata=checked(check_int, minimum=2))
        ...     n_val: int = field(default=10, metadata=checked(check_int, minimum=2))
        ...
        ...     def __post_init__(self):
        ...         super().__post_init__()
        ...         if self.n_val > self.n_train:
        ...             raise ValueError(
        ...                 f"n_val must be ≤ n_train, got {self.n_val} > {self.n_train}"
        ...             )
        >>> Sizes(n_train=1000.0)
        Sizes(n_train=1000, n_val=10)
        >>> Sizes(n_val=1)
        Traceback (most recent call last):
        ...
        ValueError: n_val must be an integer ≥ 2, got 1
    """

    def __post_init__(self):
        validate_fields(self, section_prefix(type(self)))


@dataclass(frozen=True)
class FlowConfig(Checked):
    """The RealNVP's architecture (the thesis states none of it; these are ours). Defaults: the
    ``default`` profile. See :class:`flowcore.flows.RealNVP` for what each option means.

    Attributes:
        n_couplings: Number of affine coupling layers.
        hidden: Hidden widths of each coupling's st-network.
        log_scale: The log-scale map: ``"tanh"`` (soft bound), ``"exp"`` (unbounded, thesis Eq. 3)
            or ``"sigmoid"`` (nflows).
        log_scale_bound: Soft bound ``b`` on each coupling's log-scale (``log_scale="tanh"``).
        mask: Which coordinates a coupling copies: ``"halves"`` or ``"alternating"``.
        permutation: Between couplings: ``"random"`` (fixed), ``"reverse"`` or ``"none"``.
        zero_init: Start each st-network's last layer at zero (the flow starts as the identity).

    Example:
        >>> FlowConfig(n_couplings=2, hidden=[16]).build(4).dim
        4
    """

    LOG_SCALES: ClassVar[tuple[str, ...]] = ("tanh", "exp", "sigmoid")
    MASKS: ClassVar[tuple[str, ...]] = ("halves", "alternating")
    PERMUTATIONS: ClassVar[tuple[str, ...]] = ("random", "reverse", "none")

    n_couplings: int = field(default=8, metadata=checked(check_int, minimum=1))
    hidden: tuple[int, ...] = field(default=(64, 64), metadata=checked(check_int_list, minimum=1))
    log_scale: str = field(default="tanh", metadata=checked(check_choice, allowed=LOG_SCALES))
    log_scale_bound: float = field(default=3.0, metadata=checked(check_positive))
    mask: str = field(default="halves", metadata=checked(check_choice, allowed=MASKS))
    permutation: str = field(default="random", metadata=checked(check_choice, allowed=PERMUTATIONS))
    zero_init: bool = field(default=True, metadata=checked(check_bool))

    def build(self, dim: int):
        """A fresh :class:`flowcore.flows.RealNVP` of dimension ``dim`` (weights from the global
        RNG)."""
        from flowcore.flows import RealNVP

        return RealNVP(
            dim,
            n_couplings=self.n_couplings,
            hidden=self.hidden,
            mask=self.mask,
            permutation=self.permutation,
            log_scale=self.log_scale,
            log_scale_bound=self.log_scale_bound,
            zero_init=self.zero_init,
        )


@dataclass(frozen=True)
class StudyConfig(Checked):
    """Base of a study's config: a frozen dataclass of validated fields, some of them *sections*.

    A section is a config object of its own (:class:`FlowConfig`,
    :class:`flowcore.train.TrainConfig`, …) listed in :attr:`SECTIONS` with the prefix its
    parameters carry in the flat namespace of a profile and a notebook (``""`` for none); a section
    that is :class:`Checked` names its parameters with that prefix in its errors. An optional third
    entry names fields of the section that are no parameters of the study (they keep the value of
    the study's default section: the seed of a study whose runs each take one of its ``seeds``).
    A study's config subclasses this, adds its fields (each declaring its check, see
    :class:`Checked`) and sections (each with its default, the study's, as the field's default),
    and names its :attr:`STUDY` (the profile section it reads).

    Example:
        >>> from dataclasses import field
        >>> @dataclass(frozen=True)
        ... class Study(StudyConfig):
        ...     STUDY = "mystudy"
        ...     SECTIONS = {"flow": (FlowConfig, "flow_", ("zero_init",))}
        ...     n_test: int = 1000
        ...     flow: FlowConfig = field(default_factory=lambda: FlowConfig(n_couplings=4))
        >>> config = Study.from_params(n_test=500, flow_hidden=[8])
        >>> config.n_test, config.flow.n_couplings, config.as_params()["flow_hidden"]
        (500, 4, [8])
        >>> "flow_zero_init" in Study.parameter_names()
        False
    """

    STUDY: ClassVar[str] = ""
    SECTIONS: ClassVar[dict[str, tuple]] = {}

    #: Where the study's sweeps run their jobs (:func:`flowcore.sweep.check_scheduler`): ``""`` (the
    #: pipeline's ``--scheduler`` through ``$FLOWCORE_SCHEDULER``, else ``"local"``), ``"local"`` (a
    #: LocalCluster of one worker process per core), ``"serial"``, or a scheduler address such as
    #: ``"tcp://10.0.0.5:8786"``. It says where, not what, so it is no part of any cache key.
    scheduler: str = field(default="", metadata={"key": False}, kw_only=True)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for klass, prefix, _ in cls.sections().values():
            _PREFIXES.setdefault(klass, set()).add(prefix)

    @classmethod
    def sections(cls) -> dict[str, tuple[type, str, tuple[str, ...]]]:
        """Each section → ``(class, prefix, fields that are no parameters)``, from :attr:`SECTIONS`.

        Example:
            >>> from flowcore.studies.song2024 import SongConfig
            >>> SongConfig.sections()["train"][1:]
            ('', ('seed',))
        """
        return {
            name: (spec[0], spec[1], tuple(spec[2]) if len(spec) > 2 else ())
            for name, spec in cls.SECTIONS.items()
        }

    @classmethod
    def parameter_names(cls) -> dict[str, tuple[str | None, str]]:
        """Each flat parameter name → ``(section or None, field name)``, in the order of the
        config's fields (a section's parameters where the section is declared).

        Example:
            >>> from flowcore.studies.debruin2024 import ThesisConfig
            >>> names = ThesisConfig.parameter_names()
            >>> names["dims"], names["n_train"], names["lr"], names["sweep_dim"]
            ((None, 'dims'), (None, 'n_train'), ('train', 'lr'), ('sweep', 'dim'))
        """
        sections = cls.sections()
        names: dict[str, tuple[str | None, str]] = {}
        for f in fields(cls):  # in the order the config declares them, a section's in its place
            if f.name not in sections:
                names[f.name] = (None, f.name)
                continue
            klass, prefix, hidden = sections[f.name]
            names.update(
                {prefix + g.name: (f.name, g.name) for g in fields(klass) if g.name not in hidden}
            )
        return names

    @classmethod
    def from_params(cls: type[Config], **params) -> Config:
        """Build the config from flat parameters; unknown names and bad values raise ``ValueError``.

        Example:
            >>> from flowcore.studies.debruin2024 import ThesisConfig
            >>> config = ThesisConfig.from_params(dims=[4], n_train=1000.0, n_couplings=2)
            >>> config.dims, config.n_train, config.flow.n_couplings
            ((4,), 1000, 2)
            >>> ThesisConfig.from_params(n_train=1)
            Traceback (most recent call last):
            ...
            ValueError: n_train must be an integer ≥ 2, got 1
        """
        names = cls.parameter_names()
        check_names(params, names)
        parts: dict[str | None, dict] = {None: {}, **{s: {} for s in cls.SECTIONS}}
        for name, value in params.items():
            section, field_name = names[name]
            parts[section][field_name] = value
        defaults = {f.name: f for f in fields(cls)}
        sections = {
            s: _build_section(klass, prefix, parts[s], _default(defaults[s]))
            for s, (klass, prefix, _) in cls.sections().items()
        }
        if "scheduler" in parts[None]:
            from flowcore.sweep.execution import check_scheduler

            parts[None]["scheduler"] = check_scheduler(parts[None]["scheduler"])
        return cls(**sections, **parts[None])

    def as_params(self) -> dict[str, Any]:
        """The flat parameters of this config (validated, canonical values).

        Example:
            >>> from flowcore.studies.debruin2024 import ThesisConfig
            >>> params = ThesisConfig.from_params(dims=(4, 7), n_train=1000.0).as_params()
            >>> params["dims"], params["n_train"]
            ([4, 7], 1000)
            >>> same = ThesisConfig.from_params(dims=[4, 7], n_train=1000)
            >>> ThesisConfig.from_params(**params) == same
            True
        """
        return {
            name: canonical(getattr(getattr(self, s), f) if s else getattr(self, f))
            for name, (s, f) in self.parameter_names().items()
        }

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(getattr(self, "device", "auto"))

    def resources(self) -> Estimate | None:
        """What this config will allocate and compute (:mod:`flowcore.resources`); ``None``: not
        estimated. :func:`resolve` checks it against the machine before any work."""
        return None

    def table(self) -> pd.DataFrame:
        """Every parameter in effect, its value and where it came from (after :func:`configure`).

        Example:
            >>> from flowcore.studies.debruin2024 import ThesisConfig
            >>> ThesisConfig.from_params(n_train=1000).table().loc["n_train"].tolist()
            ['1000', 'profile (none)']
        """
        return getattr(self, "_resolved", Resolved(self, "(none)", {})).table()


def _default(f):
    """The default of the dataclass field ``f`` (``None`` if it has none)."""
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None if f.default is MISSING else f.default


def _build_section(klass: type, prefix: str, values: dict, default=None):
    """``default`` (the study's section; ``klass()`` if ``None``) with ``values`` in place, its
    errors naming its parameters with ``prefix`` (see :func:`section_prefix`)."""
    token = _BUILDING.set((klass, prefix))
    try:
        return klass(**values) if default is None else replace(default, **values)
    finally:
        _BUILDING.reset(token)


# --- resolving ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """A validated config, the profile it came from and the parameters that overrode the profile.

    Example:
        >>> from flowcore.studies.debruin2024 import ThesisConfig
        >>> resolved = resolve(ThesisConfig, "ci", {"n_train": 1000})
        >>> resolved.profile, resolved.overrides, resolved.config.n_train
        ('ci', {'n_train': 1000}, 1000)
    """

    config: StudyConfig
    profile: str
    overrides: dict[str, Any]

    def table(self) -> pd.DataFrame:
        """Every parameter in effect, its value and where it came from.

        Example:
            >>> from flowcore.studies.debruin2024 import ThesisConfig
            >>> table = resolve(ThesisConfig, "ci", {"n_train": 1000}).table()
            >>> table.loc["n_train"].tolist(), table.loc["dims", "source"]
            (['1000', 'override'], 'profile ci')
        """
        params = self.config.as_params()
        return pd.DataFrame(
            {
                "value": [str(v) for v in params.values()],
                "source": [
                    "override" if k in self.overrides else f"profile {self.profile}" for k in params
                ],
            },
            index=pd.Index(list(params), name="parameter"),
        )

    def summary(self) -> str:
        """One line: the profile and the overrides.

        Example:
            >>> from flowcore.studies.debruin2024 import ThesisConfig
            >>> resolve(ThesisConfig, "ci").summary()
            'Parameters: profile ci, no overrides.'
            >>> resolve(ThesisConfig, "ci", {"n_train": 1000}).summary()
            'Parameters: profile ci; overridden: n_train = 1000.'
        """
        if not self.overrides:
            return f"Parameters: profile {self.profile}, no overrides."
        return (
            f"Parameters: profile {self.profile}; overridden: "
            + ", ".join(f"{k} = {v!r}" for k, v in self.overrides.items())
            + "."
        )

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        """The summary line, and the full table of values in effect folded under it."""
        return (
            f"<details><summary>{html.escape(self.summary())}</summary>"
            f"{self.table().to_html()}</details>"
        )


def resolve(
    config_class: type[Config], profile: str = "default", overrides: Mapping[str, Any] | None = None
) -> Resolved:
    """Merge the study's section of ``profile`` with ``overrides`` and validate them into
    ``config_class``.

    Raises:
        ValueError: For an unknown profile, an unknown parameter (naming the nearest known one), a
            bad value (naming the parameter and what is allowed), or sizes whose estimated peak
            memory exceeds what the machine has (naming the parameters that drive it). Text values
            are read as people type them (:func:`flowcore.params.coerce`: ``"1e-3"`` is 0.001).

    Example:
        >>> from flowcore.studies.debruin2024 import ThesisConfig
        >>> resolve(ThesisConfig, "ci", {"n_train": 5000.0}).config.n_train
        5000
        >>> resolve(ThesisConfig, "ci", {"n_trian": 5000})
        Traceback (most recent call last):
        ...
        ValueError: unknown parameter 'n_trian' (did you mean 'n_train'?); known: ...
    """
    overrides = {name: coerce(name, value) for name, value in (overrides or {}).items()}
    check_names(overrides, config_class.parameter_names())
    values = load_profile(profile).get(config_class.STUDY)
    if values is None:
        raise ValueError(f"profile {profile!r} has no section {config_class.STUDY!r}")
    check_names(values, config_class.parameter_names(), what=f"parameter in profile {profile!r}")
    config = config_class.from_params(**{**values, **overrides})
    estimate = config.resources()
    if estimate is not None:
        check_resources(estimate, gpu=config.torch_device.type == "cuda")
    return Resolved(config, profile, overrides)


# --- notebooks ------------------------------------------------------------------------------------

#: The comment that opens papermill's injected-parameters cell.
_PAPERMILL_MARK = "# Parameters"


def _injected_names() -> set[str] | None:
    """Names assigned in papermill's injected-parameters cell, if the cell run just before this one
    is it.

    ``None`` outside IPython; an empty set when no parameters were injected.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    history = shell.user_ns.get("In", [])
    previous = history[-2] if len(history) >= 2 else ""
    if not previous.lstrip().startswith(_PAPERMILL_MARK):
        return set()
    tree = ast.parse(previous)
    return {
        t.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }


def configure(
    config_class: type[Config], namespace: Mapping[str, Any], show: bool = True
) -> Config:
    """A notebook's one call after its parameters cell:
    ``config = configure(ThesisConfig, globals())``.

    The notebook's ``profile`` picks the profile. A parameter overrides it when papermill injected
    it (pipeline ``-p`` or plain ``papermill -p``), or when the notebook's own value differs from
    the ``default`` profile's (a reader who edits a knob of the parameters cell). An injected name
    that is not a parameter is an error naming the nearest known one. With ``show``, the profile and
    the overrides are displayed, with the table of every value in effect folded under them.

    Example:
        >>> from flowcore.studies.debruin2024 import ThesisConfig
        >>> default_epochs = load_profile("default")["debruin2024"]["max_epochs"]
        >>> namespace = {"profile": "ci", "n_train": 1000, "max_epochs": default_epochs}
        >>> config = configure(ThesisConfig, namespace, show=False)
        >>> config.n_train, config.table().loc["n_train", "source"]
        (1000, 'override')
        >>> # the default profile's value: not an override
        >>> config.table().loc["max_epochs", "source"]
        'profile ci'
    """
    profile = namespace.get("profile", "default")
    names = config_class.parameter_names()
    injected = _injected_names() or set()
    check_names(injected - {"profile"}, names)
    defaults = load_profile("default").get(config_class.STUDY, {})
    overrides = {
        name: namespace[name]
        for name in names
        if name in namespace
        and (name in injected or canonical(namespace[name]) != canonical(defaults.get(name)))
    }
    resolved = resolve(config_class, profile, overrides)
    if show:
        try:
            from IPython.display import display

            display(resolved)
        except ImportError:
            print(resolved.summary())
    object.__setattr__(resolved.config, "_resolved", resolved)
    return resolved.config
