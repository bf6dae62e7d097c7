"""Typed, frozen run configuration: TOML in and out, ``--set`` overrides, strict validation.

A run is described by :class:`RunConfig`, made of :class:`DataConfig`, :class:`ModelConfig`,
:class:`TrainConfig` and :class:`AugmentConfig`. Every field is checked when the object is
built (from Python, TOML or overrides alike): a wrong type, an unknown choice or an
out-of-range value raises :class:`~mlplab.errors.ConfigError` with one line naming the key,
the value and what is valid.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import tomli_w

from mlplab.errors import ConfigError

SCALINGS = ("unit", "centered", "standardize")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "gelu", "elu", "selu", "leaky_relu")
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "random_normal",
    "random_uniform",
)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
MONITORS = ("val_loss", "val_accuracy")
SCHEDULES = ("constant", "step", "cosine", "one-cycle", "plateau")
CLASS_WEIGHTS = ("none", "balanced")
ENGINES = ("auto", "fit")
COLORS = ("auto", "grayscale", "rgb")

# Settings read only beside some values of another: {field: (that field, those values)}.
# A value of their own elsewhere is no error (switching --set train.schedule=constant on a
# step recipe must work), but training says it is not used, and compare shows "—".
READ_ONLY_WITH: dict[str, tuple[str, tuple[str, ...]]] = {
    "momentum": ("optimizer", ("sgd", "rmsprop")),
    "nesterov": ("optimizer", ("sgd",)),
    "decay": ("optimizer", ("sgd",)),
    "step_epochs": ("schedule", ("step",)),
    "step_factor": ("schedule", ("step", "plateau")),
    "plateau_patience": ("schedule", ("plateau",)),
    "min_learning_rate": ("schedule", ("plateau",)),
    "warmup_epochs": ("schedule", ("cosine",)),
}

# Keras' own default for AdamW; the other optimizers default to no weight decay.
ADAMW_DEFAULT_WEIGHT_DECAY = 0.004
# Knowledge distillation's defaults (train.teacher): chosen by measurement, docs/results.md.
DEFAULT_TEACHER_TEMPERATURE = 4.0
DEFAULT_TEACHER_WEIGHT = 0.9

Check = Callable[[Any], str | None]


def _opt(default: Any, help: str, *, choices: tuple = (), check: Check | None = None) -> Any:
    """A config field: its default, a one-line help, and what makes a value valid."""
    meta = {"help": help, "choices": choices, "check": check}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _degrees(v: float) -> str | None:
    return None if 0 <= v <= 180 else "must be >= 0 and <= 180"


def _unit_open(v: float) -> str | None:
    return None if 0 <= v < 1 else "must be >= 0 and < 1"


def _share(v: float) -> str | None:
    return None if 0 < v <= 1 else "must be > 0 and <= 1"


def _seed_range(v: int) -> str | None:
    # NumPy's seeded generators (the validation split's) take 0 .. 2**32 - 1.
    return None if 0 <= v < 2**32 else f"must be >= 0 and < {2**32}"


def _hidden_sizes(v: tuple[int, ...]) -> str | None:
    return None if all(n > 0 for n in v) else "every layer size must be > 0"


def _validation(v: float | str) -> str | None:
    if isinstance(v, str):
        return None if v.strip() else 'must be a fraction in [0, 1), "test", or a dataset path'
    return None if 0 <= v < 1 else 'must be a fraction in [0, 1), "test", or a dataset path'


def _class_names(v: tuple[str, ...]) -> str | None:
    names = [name.strip() for name in v]
    if not all(names):
        return "every name must have a character other than a space"
    if len(set(names)) != len(names):
        return "names must differ"
    return None


class _Section:
    """Shared validation for the config sections (frozen dataclasses)."""

    section: ClassVar[str]

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            key = f"{self.section}.{f.name}"
            value = _coerce(key, getattr(self, f.name), hints[f.name])
            object.__setattr__(self, f.name, value)
            choices = f.metadata.get("choices") or ()
            if choices and isinstance(value, str) and value not in choices:
                raise ConfigError(_bad_choice(key, value, choices))
            check = f.metadata.get("check")
            problem = check(value) if check and value is not None else None
            if problem:
                raise ConfigError(f"{key} = {_show(value)} is not valid: {problem}")
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve more than one field (override in a section)."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        if not isinstance(data, Mapping):
            raise ConfigError(f"[{cls.section}] must be a table of keys, not {_show(data)}")
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        for key in data:
            if key not in names:
                raise ConfigError(_unknown_key(f"{cls.section}.{key}", cls.section, names))
        return cls(**data)


@dataclass(frozen=True)
class DataConfig(_Section):
    """Which images to train on and how pixels become network inputs."""

    section: ClassVar[str] = "data"
    dataset: str = _opt("digits", "dataset name (`mlplab datasets list`) or a path")
    scaling: str = _opt(
        "unit",
        "unit: [0,1]; centered: [-0.5,0.5]; standardize: per-pixel mean, global std",
        choices=SCALINGS,
    )
    validation: float | str = _opt(
        0.1,
        'fraction of train held out (seeded, stratified), 0 for none, "test", or a path',
        check=_validation,
    )
    train_fraction: float = _opt(
        1.0,
        "share of the training images to train on (seeded by train.seed, stratified; "
        "validation and test unchanged): what mlplab learning-curve varies",
        check=lambda v: None if 0 < v <= 1 else "must be > 0 and <= 1",
    )
    image_size: tuple[int, ...] = _opt(
        (),
        "image folders and lists: [height, width] to resize to; [] = the most common size, "
        "scaled down to at most 64 pixels a side. Pixel CSVs: [height, width] of a row's "
        "image; [] = square",
        check=lambda v: (
            None
            if len(v) in (0, 2) and all(n > 0 for n in v)
            else "must be [] or [height, width] with sizes > 0"
        ),
    )
    color: str = _opt(
        "auto",
        "image folders, lists and pixel CSVs: grayscale, rgb, or auto (from the images; a "
        "CSV's from its column count)",
        choices=COLORS,
    )
    strict: bool = _opt(
        False, "image folders and lists: stop at an unreadable file instead of skipping it"
    )
    class_names: tuple[str, ...] = _opt(
        (),
        "names for the classes, in the order of their labels (a CSV's, .npz's or IDX's "
        'numbered classes: ["T-shirt", "Trouser", ...]); [] = the dataset\'s own',
        check=_class_names,
    )


@dataclass(frozen=True)
class ModelConfig(_Section):
    """A stack of Dense layers with a softmax output."""

    section: ClassVar[str] = "model"
    hidden: tuple[int, ...] = _opt(
        (128, 64), "hidden layer sizes; [] is softmax regression", check=_hidden_sizes
    )
    activation: str = _opt("relu", "hidden-layer activation", choices=ACTIVATIONS)
    kernel_initializer: str = _opt("glorot_uniform", "Dense kernel init", choices=INITIALIZERS)
    l2: float = _opt(0.0, "L2 penalty on every kernel: l2 * sum(w**2)", check=_non_negative)
    l1: float = _opt(
        0.0,
        "L1 penalty on every kernel: l1 * sum(|w|), which drives weights to 0",
        check=_non_negative,
    )
    dropout: float = _opt(0.0, "dropout rate after each hidden layer", check=_unit_open)
    batch_norm: bool = _opt(False, "batch normalisation before each hidden activation")
    init_from: str = _opt(
        "",
        "a run folder whose trained network this one starts from instead of random weights "
        "(to train it further, or fine-tune it on other images): its scaling and hidden "
        "layers, and its output layer when the classes are the same ('' = random)",
    )


@dataclass(frozen=True)
class TrainConfig(_Section):
    """How the network is fitted."""

    section: ClassVar[str] = "train"
    optimizer: str = _opt("adam", "optimizer", choices=OPTIMIZERS)
    learning_rate: float = _opt(0.001, "peak learning rate", check=_positive)
    momentum: float = _opt(0.0, "momentum (sgd, rmsprop)", check=_unit_open)
    nesterov: bool = _opt(False, "Nesterov momentum (sgd)")
    decay: float = _opt(0.0, "legacy Keras SGD decay: lr / (1 + decay * step)", check=_non_negative)
    weight_decay: float | None = _opt(
        None, "decoupled weight decay (default 0.004 for adamw, else 0)", check=_non_negative
    )
    clip_norm: float = _opt(0.0, "clip the global gradient norm (0: off)", check=_non_negative)
    batch_size: int = _opt(32, "samples per step", check=_positive)
    epochs: int = _opt(20, "passes over the training set", check=_positive)
    seed: int = _opt(
        0, "seed for initialisation, shuffling and the validation split", check=_seed_range
    )
    patience: int = _opt(
        0, "early stopping: epochs without improvement (0: off)", check=_non_negative
    )
    keep_best: bool = _opt(
        False,
        "end with the weights of the best epoch by train.monitor, as early stopping does, "
        "also when training runs to the end",
    )
    monitor: str = _opt(
        "val_loss",
        "what early stopping, the best epoch and the plateau schedule watch (without a "
        "validation split: loss or accuracy of the training images)",
        choices=MONITORS,
    )
    min_delta: float = _opt(
        0.0,
        "an epoch counts as better (for early stopping, the best epoch and the plateau "
        "schedule) only when train.monitor beats the best so far by more than this, as "
        "Keras' min_delta (0: any gain)",
        check=_non_negative,
    )
    schedule: str = _opt("constant", "learning-rate schedule", choices=SCHEDULES)
    step_epochs: int = _opt(10, "step schedule: epochs between drops", check=_positive)
    step_factor: float = _opt(
        0.1,
        "step and plateau schedules: multiply the rate by this",
        check=lambda v: _unit_open(v) or _positive(v),
    )
    plateau_patience: int = _opt(
        5,
        "plateau schedule: cut the rate after this many epochs without a better train.monitor",
        check=_positive,
    )
    min_learning_rate: float = _opt(
        0.0, "plateau schedule: never cut the rate below this", check=_non_negative
    )
    warmup_epochs: float = _opt(0.0, "cosine schedule: linear warm-up epochs", check=_non_negative)
    engine: str = _opt(
        "auto", "training engine (auto picks the fastest available)", choices=ENGINES
    )
    label_smoothing: float = _opt(
        0.0, "train on (1 - s) * one-hot + s / classes instead of one-hot", check=_unit_open
    )
    ema: float = _opt(
        0.0,
        "keep a moving average of the weights with this momentum (e.g. 0.999) and end "
        "with it (0: off)",
        check=_unit_open,
    )
    class_weight: str = _opt(
        "none",
        "weigh each training image's loss by its class: balanced = n / (classes x the "
        "class's count), so every class counts as much in total (for imbalanced data)",
        choices=CLASS_WEIGHTS,
    )
    calibrate: bool = _opt(
        False,
        "after training, fit a temperature on the validation split and fold it into the "
        "output layer, so that the probabilities are as sure as the network is right "
        "(temperature scaling; needs data.validation)",
    )
    teacher: str = _opt(
        "",
        "a run folder whose network teaches this one (knowledge distillation): each "
        "training image's loss also asks for the teacher's probabilities ('' = off)",
    )
    teacher_temperature: float = _opt(
        DEFAULT_TEACHER_TEMPERATURE,
        "distillation: soften the teacher's and this network's probabilities by this "
        "temperature before comparing them (higher: the runners-up count more)",
        check=_positive,
    )
    teacher_weight: float = _opt(
        DEFAULT_TEACHER_WEIGHT,
        "distillation: the share of the loss that matches the teacher (the rest is the "
        "labels' cross-entropy; 1: the teacher alone)",
        check=_share,
    )

    @property
    def tracks_best(self) -> bool:
        """Whether training holds on to the best epoch's weights (by ``monitor``): early
        stopping goes back to them, and ``keep_best`` ends with them."""
        return bool(self.patience or self.keep_best)

    def ends_at_best(self, status: str) -> bool:
        """Whether a run of this config that ended with ``status`` holds its best epoch's
        weights: an early stop went back to them, and ``keep_best`` puts them back after a
        complete run (not after a stop that may be resumed, a divergence or a pruning)."""
        return status == "early_stopped" or (self.keep_best and status == "complete")

    def unread_keys(self) -> list[str]:
        """The fields training never reads beside this config's other settings, in field
        order: ``step_epochs`` unless the schedule is "step", ``momentum`` with Adam, the
        distillation settings without a teacher. ``mlplab compare`` shows them as "—"."""
        unread = [
            name
            for name, (other, values) in READ_ONLY_WITH.items()
            if getattr(self, other) not in values
        ]
        if not self.teacher.strip():
            unread += ["teacher_temperature", "teacher_weight"]
        order = [f.name for f in dataclasses.fields(self)]
        return sorted(unread, key=order.index)

    def unused_settings(self) -> list[str]:
        """One line for each setting given a value of its own (not its default) that
        training will not read: ``train.step_epochs = 5 is not used: it applies to
        train.schedule "step" (this one is "constant")``. Empty for most configs."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return [
            f"train.{name} = {_show(getattr(self, name))} is not used: {self.unread_because(name)}"
            for name in self.unread_keys()
            if getattr(self, name) != defaults[name]
        ]

    def unread_because(self, name: str) -> str:
        """Why training does not read the field ``name`` (one of :meth:`unread_keys`):
        ``it applies to train.schedule "step" (this one is "constant")``."""
        if name not in READ_ONLY_WITH:
            return "it applies to distillation, with train.teacher (a run to learn from)"
        other, values = READ_ONLY_WITH[name]
        wanted = " or ".join(_show(value) for value in values)
        return f"it applies to train.{other} {wanted} (this one is {_show(getattr(self, other))})"

    def _check_together(self) -> None:
        if self.weight_decay is None:
            default = ADAMW_DEFAULT_WEIGHT_DECAY if self.optimizer == "adamw" else 0.0
            object.__setattr__(self, "weight_decay", default)
        if self.momentum and self.optimizer not in ("sgd", "rmsprop"):
            raise ConfigError(
                f"train.momentum = {self.momentum} is not valid with optimizer "
                f"'{self.optimizer}': momentum applies to sgd and rmsprop"
            )
        if self.nesterov and self.optimizer != "sgd":
            raise ConfigError(
                f"train.nesterov = true needs optimizer 'sgd', not '{self.optimizer}'"
            )
        if not self.teacher.strip():
            for key, default in (
                ("teacher_temperature", DEFAULT_TEACHER_TEMPERATURE),
                ("teacher_weight", DEFAULT_TEACHER_WEIGHT),
            ):
                if getattr(self, key) != default:
                    raise ConfigError(
                        f"train.{key} = {getattr(self, key):g} needs train.teacher: the run "
                        "whose network teaches this one"
                    )
        if self.schedule == "plateau" and self.min_learning_rate >= self.learning_rate:
            raise ConfigError(
                f"train.min_learning_rate = {self.min_learning_rate:g} leaves the plateau "
                f"schedule nothing to cut: it must be below train.learning_rate = "
                f"{self.learning_rate:g}"
            )
        if self.decay and (self.optimizer != "sgd" or self.schedule != "constant"):
            raise ConfigError(
                "train.decay (legacy SGD decay) needs optimizer 'sgd' and schedule 'constant'; "
                "use train.schedule for other decays"
            )


@dataclass(frozen=True)
class AugmentConfig(_Section):
    """Random changes to each training image, drawn anew every epoch.

    Done on the device inside the fused engine's compiled epoch, so they cost little.
    """

    section: ClassVar[str] = "augment"
    translate: int = _opt(
        0, "shift each image by up to this many pixels in x and y (0: off)", check=_non_negative
    )
    flip: bool = _opt(False, "mirror a random half of the images left-right (not for digits)")
    rotate: float = _opt(
        0.0,
        "turn each image by a random angle of up to this many degrees either way, about its "
        "centre (0: off; at most 180)",
        check=_degrees,
    )

    @property
    def active(self) -> bool:
        return bool(self.translate or self.flip or self.rotate)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. ``name`` names the run directory."""

    name: str = "run"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    SECTIONS: ClassVar[dict[str, type]] = {
        "data": DataConfig,
        "model": ModelConfig,
        "train": TrainConfig,
        "augment": AugmentConfig,
    }
    # Written into a run's config.toml by mlplab itself; read back but not part of the config.
    IGNORED: ClassVar[tuple[str, ...]] = ("meta",)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"name = {_show(self.name)} is not valid: must be a non-empty string")
        if not isinstance(self.description, str):
            raise ConfigError(f"description = {_show(self.description)} must be a string")
        validation = self.data.validation
        if self.train.calibrate and (not validation or validation == "test"):
            raise ConfigError(
                f"train.calibrate = true needs a validation split to fit the temperature on, "
                f"but data.validation = {_show(validation)}: set data.validation = 0.1 (the "
                "test split would then no longer measure the calibration honestly)"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        for section in self.SECTIONS:
            out[section] = getattr(self, section).to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        top = ["name", "description", *cls.SECTIONS]
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in cls.IGNORED:
                continue
            if key not in top:
                raise ConfigError(_unknown_key(key, "", top))
            section = cls.SECTIONS.get(key)
            kwargs[key] = section.from_dict(value) if section else value
        return cls(**kwargs)

    def to_toml(self, meta: Mapping[str, Any] | None = None) -> str:
        """TOML text; ``meta`` (versions, seed, ...) is written as a ``[meta]`` table first."""
        data = self.to_dict()
        if meta:
            data["meta"] = dict(meta)
        return to_toml(data)

    def differences(self, other: RunConfig) -> list[tuple[str, Any]]:
        """The ``section.key`` settings (not name or description) whose values here differ
        from ``other``'s, with the values here, in section and field order."""
        changed = []
        for section in self.SECTIONS:
            mine, theirs = getattr(self, section).to_dict(), getattr(other, section).to_dict()
            for key in mine.keys() | theirs.keys():
                if mine.get(key) != theirs.get(key):
                    changed.append((f"{section}.{key}", mine.get(key)))
        order = {key: index for index, key in enumerate(all_keys())}
        return sorted(changed, key=lambda item: order.get(item[0], len(order)))

    def with_overrides(self, overrides: Mapping[str, Any] | Iterable[str]) -> RunConfig:
        """A copy with ``{"train.epochs": 3}`` or ``["train.epochs=3"]`` applied."""
        if isinstance(overrides, Mapping):
            pairs = list(overrides.items())
        else:
            pairs = [parse_assignment(text) for text in overrides]
        data = self.to_dict()
        for key, value in pairs:
            _assign(data, key, value)
        return RunConfig.from_dict(data)


def toml_value(value: Any) -> str:
    """A value as TOML text, lists on one line: ``[128, 64]``, ``"relu"``, ``0.001``, ``true``.

    tomli_w writes (and escapes) every scalar; it would put each list item on its own line.
    """
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).partition(" = ")[2].rstrip("\n")


def to_toml(data: Mapping[str, Any]) -> str:
    """TOML for top-level keys and one level of tables, with lists kept on one line."""

    def lines(table: Mapping[str, Any]) -> list[str]:
        return [f"{k} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, Mapping)]

    out = lines(data)
    for name, table in data.items():
        if isinstance(table, Mapping):
            out += ["", f"[{name}]", *lines(table)]
    return "\n".join(out) + "\n"


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"train.epochs=3"`` -> ``("train.epochs", 3)``; values are TOML, else plain strings."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.epochs=3")
    return key, parse_value(raw.strip())


def parse_value(raw: str) -> Any:
    """A command-line value as TOML (``3``, ``0.1``, ``[256, 128]``, ``true``), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def load_config(path: str | Path) -> RunConfig:
    """Read a TOML file into a :class:`RunConfig`; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    try:
        return RunConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def all_keys() -> list[str]:
    """Every settable ``section.field`` key."""
    return [
        f"{name}.{f.name}"
        for name, section in RunConfig.SECTIONS.items()
        for f in dataclasses.fields(section)
    ]


def describe_keys() -> list[tuple[str, str, str]]:
    """(key, default, help) for every settable key, for ``--help`` and docs."""
    rows = []
    for name, section in RunConfig.SECTIONS.items():
        defaults = section()
        for f in dataclasses.fields(section):
            help_text = f.metadata["help"]
            if f.metadata["choices"]:
                help_text += f" ({', '.join(f.metadata['choices'])})"
            rows.append((f"{name}.{f.name}", _show(getattr(defaults, f.name)), help_text))
    return rows


# --- helpers ---------------------------------------------------------------------------


def _assign(data: dict[str, Any], key: str, value: Any) -> None:
    section, dot, name = key.partition(".")
    if not dot:
        if key in ("name", "description"):
            data[key] = value
            return
        raise ConfigError(_unknown_key(key, "", ["name", "description", *all_keys()]))
    if section not in RunConfig.SECTIONS:
        raise ConfigError(_unknown_key(key, "", ["name", "description", *all_keys()]))
    data.setdefault(section, {})[name] = value


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a field's type; ints pass as floats, lists become tuples."""
    options = (
        typing.get_args(annotation)
        if typing.get_origin(annotation)
        in (
            typing.Union,
            _UnionType,
        )
        else (annotation,)
    )
    for option in options:
        ok, converted = _convert(value, option)
        if ok:
            return converted
    wanted = " or ".join(_type_name(o) for o in options if o is not type(None))
    raise ConfigError(f"{key} = {_show(value)} is not valid: expected {wanted}")


_UnionType = type(int | str)


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (``np.int64(64)`` -> 64), a 1-d array as
    a list; anything else as it is. scikit-learn's searches hand parameters over as NumPy
    values (``randint(16, 256)`` draws ``np.int64``), and the config keeps plain ones."""
    ndim = getattr(value, "ndim", None)
    if ndim == 0 and hasattr(value, "item"):
        return value.item()
    if ndim == 1 and hasattr(value, "tolist"):
        return value.tolist()
    return value


def _convert(value: Any, kind: Any) -> tuple[bool, Any]:
    value = _plain(value)
    if kind is type(None):
        return value is None, value
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return math.isfinite(value), float(value)
        return False, value
    if kind is str:
        return isinstance(value, str), value
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        if isinstance(value, (list, tuple)):
            results = [_convert(v, item) for v in value]
            if all(ok for ok, _ in results):
                return True, tuple(v for _, v in results)
        return False, value
    raise TypeError(f"unsupported config type {kind!r}")


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        plural = {int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural[typing.get_args(kind)[0]]}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(kind, str(kind))


def _show(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def _bad_choice(key: str, value: str, choices: tuple[str, ...]) -> str:
    message = f"{key} = {_show(value)} is not valid: choose one of {', '.join(choices)}"
    close = difflib.get_close_matches(value, choices, n=1)
    return message + (f" (did you mean '{close[0]}'?)" if close else "")


def _unknown_key(key: str, section: str, names: Iterable[str]) -> str:
    names = list(names)
    short = key.partition(".")[2] if section else key
    close = difflib.get_close_matches(short, names, n=1, cutoff=0.6)
    if not close and not section:
        close = difflib.get_close_matches(key, all_keys(), n=1, cutoff=0.6)
    hint = ""
    if close:
        hint = f" (did you mean '{section + '.' if section else ''}{close[0]}'?)"
    where = f" in [{section}]" if section else ""
    return f"unknown key '{key}'{hint}; valid keys{where}: {', '.join(names)}"
