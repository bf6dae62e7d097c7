"""What `mlplab tune` may vary: config keys, each with choices or a numeric range.

A search space maps config keys (as ``--set`` takes them) to a spec:

- a list of choices: ``["relu", "tanh"]``, ``[[64], [128, 64]]`` (on the command line
  ``relu,tanh`` and ``[64],[128,64]``);
- a range ``"LOW..HIGH"``, or ``"LOW..HIGH:log"`` to draw on a log scale. Integer ends give
  integers (``32..256:log``) where the key holds integers; otherwise numbers.

Every choice and both ends of every range are checked against the config before a trial
runs, so a typo in a key or an impossible value is one error line, not a failed study.
Knows nothing of Optuna beyond turning a spec into one of its distributions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlplab.config import READ_ONLY_WITH, RunConfig, parse_value, toml_value
from mlplab.errors import ConfigError

if TYPE_CHECKING:
    import optuna

LOG = "log"
NOT_SEARCHABLE = ("name", "description")
# The settings others are read beside (train.momentum with optimizer sgd or rmsprop).
DEPENDED_ON = {f"train.{other}" for other, _ in READ_ONLY_WITH.values()} | {"train.teacher"}


@dataclass(frozen=True)
class Dimension:
    """One searched key. choices: the values to pick from (None for a range); low, high and
    log: the range (``integer`` when it draws integers)."""

    key: str
    choices: tuple[Any, ...] | None = None
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    @property
    def ends(self) -> tuple[float, float] | tuple[int, int]:
        """A range's two ends as the config holds them (integers for an integer key)."""
        return (int(self.low), int(self.high)) if self.integer else (self.low, self.high)

    @property
    def spec(self) -> Any:
        """As it is written in tune.toml: the list of choices, or "LOW..HIGH[:log]"."""
        if self.choices is not None:
            return [list(c) if isinstance(c, tuple) else c for c in self.choices]
        low, high = self.ends
        return f"{low}..{high}" + (f":{LOG}" if self.log else "")

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this key's value for ``trial`` (its config value: lists as tuples)."""
        if self.choices is not None:
            return self.value(trial.suggest_categorical(self.key, [label(c) for c in self.choices]))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def applies(self, base: RunConfig, drawn: Mapping[str, Any]) -> bool:
        """Whether some value of this key is valid beside the values ``drawn`` so far: with
        ``train.optimizer = "adam"`` drawn, ``train.momentum`` is not (it keeps the base
        config's value and is not drawn)."""
        for value in self.choices if self.choices is not None else self.ends:
            try:
                config = base.with_overrides({**drawn, self.key: value})
            except ConfigError:
                continue
            return reads(config, self.key)
        return False

    def value(self, drawn: Any) -> Any:
        """The config value of what the sampler drew (a choice's label, or a number)."""
        if self.choices is not None:
            return self.choices[[label(c) for c in self.choices].index(drawn)]
        return drawn


def label(value: Any) -> Any:
    """A choice as Optuna stores it: plain scalars as they are, lists as their TOML text."""
    return toml_value(value) if isinstance(value, (list, tuple)) else value


def shown(value: Any) -> str:
    """A drawn value for a line of text: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(label(value))


def spec_text(spec: Any) -> str:
    """A key's search as text: ``1e-4..1e-2:log``, or its choices ``{relu, tanh}``."""
    if isinstance(spec, str):
        return spec
    return "{" + ", ".join(shown(choice) for choice in spec) + "}"


def draw(trial: optuna.Trial, dimensions: Sequence[Dimension], base: RunConfig) -> dict[str, Any]:
    """The searched keys' values for ``trial``, drawn in order; a key that cannot apply beside
    the earlier draws (see :meth:`Dimension.applies`) is left out (Optuna's define-by-run
    conditional spaces: its sampler learns which keys go with which)."""
    values: dict[str, Any] = {}
    for dimension in dimensions:
        if dimension.applies(base, values):
            values[dimension.key] = dimension.suggest(trial)
    return values


def parse_cli_spec(text: str) -> tuple[str, Any]:
    """``--search KEY=SPEC`` -> (key, spec): ``a,b,c`` becomes a list of choices (values read
    as TOML, as ``--set`` reads them; commas inside brackets or quotes do not split), and
    ``LOW..HIGH[:log]`` stays a string."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise ConfigError(
            f"--search {text!r}: expected KEY=CHOICES or KEY=LOW..HIGH[:log], "
            "e.g. model.activation=relu,tanh or train.learning_rate=1e-4..1e-2:log"
        )
    if ".." in raw and not raw.startswith(("[", '"', "'")):
        return key, raw
    return key, [parse_value(part) for part in _split_top_level(raw)]


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``[64],[128, 64]`` -> two parts."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def build_space(specs: Mapping[str, Any], base: RunConfig) -> list[Dimension]:
    """Dimensions from ``{key: spec}``, each checked against ``base`` (ConfigError, one line,
    naming the key, when a key is unknown or a choice or end of a range is not valid).

    A value may depend on another searched key (``train.momentum`` needs optimizer sgd or
    rmsprop): it passes if some choice of the other searched keys accepts it; trials then draw
    it only where it applies (see :func:`draw`).
    """
    if not specs:
        raise ConfigError(
            "nothing to search: give --search KEY=SPEC at least once, "
            "e.g. --search train.learning_rate=1e-4..1e-2:log"
        )
    for key in specs:
        _current_value(key, base)
    contexts = _contexts(specs)
    # The keys others depend on are drawn first, whatever order they were given in.
    ordered = sorted(specs, key=lambda key: key not in DEPENDED_ON)
    return [_dimension(key, specs[key], base, contexts) for key in ordered]


def reads(config: RunConfig, key: str) -> bool:
    """Whether training ``config`` reads ``key``: ``train.step_epochs`` only beside a step
    schedule (:meth:`~mlplab.config.TrainConfig.unread_keys`)."""
    section, _, name = key.partition(".")
    return section != "train" or name not in config.train.unread_keys()


def _contexts(specs: Mapping[str, Any], limit: int = 64) -> list[dict[str, Any]]:
    """Up to ``limit`` combinations of the searched choices (the first being none), to check
    a value against settings it depends on."""
    contexts: list[dict[str, Any]] = [{}]
    for key, spec in specs.items():
        if isinstance(spec, (list, tuple)):
            contexts += [{**c, key: v} for c in contexts for v in spec][: limit - len(contexts)]
    return contexts


def _dimension(key: str, spec: Any, base: RunConfig, contexts: list[dict[str, Any]]) -> Dimension:
    current = _current_value(key, base)
    if isinstance(spec, (list, tuple)):
        choices = tuple(_checked(key, value, base, contexts) for value in spec)
        if len(set(map(label, choices))) < 2:
            raise ConfigError(f"search {key}: give two or more different choices, not {spec}")
        return Dimension(key, choices=choices)
    if not isinstance(spec, str) or ".." not in spec:
        raise ConfigError(
            f"search {key} = {spec!r}: expected a list of choices or 'LOW..HIGH[:log]'"
        )
    bounds, _, scale = spec.partition(":")
    if scale not in ("", LOG):
        raise ConfigError(f"search {key} = {spec!r}: the only scale is ':{LOG}', not ':{scale}'")
    low_text, _, high_text = bounds.partition("..")
    low, high = parse_value(low_text.strip()), parse_value(high_text.strip())
    for end in (low, high):
        if isinstance(end, bool) or not isinstance(end, (int, float)) or not math.isfinite(end):
            raise ConfigError(f"search {key} = {spec!r}: the ends of a range must be numbers")
    if not low < high:
        raise ConfigError(f"search {key} = {spec!r}: LOW must be below HIGH")
    log = scale == LOG
    if log and low <= 0:
        raise ConfigError(f"search {key} = {spec!r}: a log range must start above 0")
    integer = isinstance(current, int) and not isinstance(current, bool)
    if integer and not (isinstance(low, int) and isinstance(high, int)):
        raise ConfigError(f"search {key} = {spec!r}: {key} takes integers, so must its range")
    for end in (low, high):
        _checked(key, end, base, contexts)
    return Dimension(key, low=float(low), high=float(high), log=log, integer=integer)


def _current_value(key: str, base: RunConfig) -> Any:
    """The base config's value of ``key``; ConfigError (with the config's own did-you-mean)
    when it is not a setting."""
    if key in NOT_SEARCHABLE:
        raise ConfigError(f"search {key}: only settings can be searched, not the run's {key}")
    section, _, name = key.partition(".")
    if section in RunConfig.SECTIONS and name in _field_names(section):
        return getattr(getattr(base, section), name)
    try:
        base.with_overrides({key: None})
    except ConfigError as exc:
        raise ConfigError(f"search {key}: {exc}") from None
    raise ConfigError(f"search {key}: not a setting")  # pragma: no cover (caught above)


def _field_names(section: str) -> set[str]:
    return {f.name for f in dataclasses.fields(RunConfig.SECTIONS[section])}


def _checked(key: str, value: Any, base: RunConfig, contexts: list[dict[str, Any]]) -> Any:
    """``value`` as the config holds it (lists as tuples); ConfigError with the base config's
    reason when no combination of the other searched choices accepts it."""
    first: ConfigError | None = None
    for context in contexts:
        try:
            changed = base.with_overrides({**context, key: value})
        except ConfigError as exc:
            first = first or exc
            continue
        section, _, name = key.partition(".")
        if not reads(changed, key):  # valid, but no trial would train with it
            first = first or ConfigError(
                f"{key} = {toml_value(value)} is not used: {changed.train.unread_because(name)}"
            )
            continue
        return getattr(getattr(changed, section), name)
    raise ConfigError(f"search {key}: {first}") from None
