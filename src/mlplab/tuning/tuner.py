"""The search loop: ask Optuna for a trial, train it as a normal run, tell Optuna how it did.

Each trial is :func:`mlplab.train` with the searched keys set, written as a run inside the
study folder. The objective is measured on the validation split, never the test split: the
kept model's validation accuracy (or loss), after an early stop's restore and EMA, as
``metrics.json`` records it. Trials that fall behind are pruned (stopped early) by Optuna's
MedianPruner, from the validation score it is told after every epoch. With several trial
seeds a trial trains one run per seed and is judged by their mean.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mlplab.api import ConfigLike, resolve_config
from mlplab.config import RunConfig, toml_value
from mlplab.errors import ConfigError, RunError
from mlplab.tuning.space import Dimension, build_space, draw, shown, spec_text
from mlplab.tuning.study import (
    BASE_FILE,
    OBJECTIVES,
    Study,
    StudySettings,
    create_study_folder,
    import_optuna,
    now_text,
    open_optuna_study,
    open_study,
    trial_name,
    write_study_files,
)
from mlplab.tuning.trials import (
    TrialRecord,
    claim,
    retire_abandoned,
    same_settings,
    score_text,
    tell_failure,
    tell_outcome,
    tell_repeat,
)

if TYPE_CHECKING:
    import optuna

    from mlplab.runs import Run


@dataclass
class TuneResult:
    """A study after :func:`tune`: ``path`` (its folder), ``trials`` (every trial so far, this
    call's and earlier ones'), ``best`` (the best complete trial, or None), ``objective``,
    ``direction`` ("maximize" or "minimize"), ``keys`` (the searched config keys), ``grid``,
    ``stopped`` (why the loop ended early: "interrupted", "timeout", or ""), ``importances``
    (each searched key's share of the objective's spread, largest first; see
    :func:`importances`)."""

    path: Path
    trials: list[TrialRecord]
    best: TrialRecord | None
    objective: str
    direction: str
    keys: list[str]
    grid: bool = False
    stopped: str = ""
    importances: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        best = self.best
        shown = "None" if best is None else f"trial {best.number}: {best.value:.4g} {best.params}"
        return (
            f"TuneResult({str(self.path)!r}, {self.direction} {self.objective}, "
            f"trials={len(self.trials)}, best={shown})"
        )

    def _repr_html_(self) -> str:
        """A card in Jupyter: the trials, the best one, and tune.png."""
        from mlplab.report.notebook import study_card

        return study_card(self)

    def best_run(self) -> Run:
        """The best trial's run (its model, metrics and report)."""
        from mlplab.runs import load_run

        if self.best is None or self.best.run is None:
            raise RunError(f"{self.path}: no trial is complete yet")
        return load_run(self.best.run)


def tune(
    config: ConfigLike = None,
    space: Mapping[str, Any] | None = None,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    study: str | Path | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    objective: str = "val_accuracy",
    prune: bool = True,
    trial_seeds: int = 1,
    grid: bool = False,
    out: str | Path = "runs",
    verbose: bool = True,
    train_verbose: bool = False,
    stream: TextIO | None = None,
    command: str | None = None,
    offline: bool | None = None,
    plot: bool = True,
) -> TuneResult:
    """Search ``space`` over ``trials`` trainings of ``config``; return the study.

    space: ``{"train.learning_rate": "1e-4..1e-2:log", "model.hidden": [[64], [128, 64]]}``:
    a key's choices, or a range "LOW..HIGH" ("...:log" for a log scale).
    study: go on with an existing study folder instead (its own config and space; do not
    pass them). Several processes may work on one study at once.
    timeout: start no trial after this many seconds (the first always runs).
    objective: "val_accuracy" (maximised) or "val_loss" (minimised), of the validation split,
    which must not be the test split.
    prune: stop trials that fall behind early (Optuna's MedianPruner).
    trial_seeds: train each trial with this many seeds (``train.seed`` onwards: each its own
    initialisation, shuffling and validation split) and judge it by their mean — slower, but
    a choice less driven by one split's luck.
    grid: try every combination of the choices once, in order (Optuna's GridSampler; ranges
    are refused; no pruning) — a full comparison rather than a search. trials: how many to
    run (default: 20, or the rest of the grid).
    A Ctrl-C stops the trial being trained (its run is written, the trial counts as failed)
    and ends the search; a second one aborts.
    """
    if trials is not None and trials < 0:
        raise ConfigError(f"--trials {trials}: must be 0 or more")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout {timeout}: must be above 0 seconds")
    stream = stream or sys.stderr
    import_optuna()  # first, quietly (see there); later imports find it loaded
    if study is not None:
        if config is not None or space or overrides:
            raise ConfigError(
                f"{study}: a study keeps its own config and search space; give only --study "
                "(and --trials, --timeout) to go on with it"
            )
        opened = open_study(study)
        abandoned = retire_abandoned(opened.optuna_study)
        if verbose:
            done = len(opened.records())
            noun = "trial" if done == 1 else "trials"
            print(f"study {opened.path}: {done} {noun} so far; {_describe(opened)}", file=stream)
            if abandoned:
                print(_abandoned_line(abandoned, opened.settings.grid), file=stream)
    else:
        settings = StudySettings(
            {},
            objective=objective,
            prune=prune and not grid,  # a comparison wants every setting trained in full
            trial_seeds=trial_seeds,
            grid=grid,
            created=now_text(),
            command=command or "mlplab.tune(...)",
        )
        opened = _new_study(config, space, overrides, settings, out)
        if verbose:
            print(f"study {opened.path}: {_describe(opened)}", file=stream, flush=True)
    trials = _trials_to_run(opened, trials, verbose, stream)
    stopped = _search(opened, trials, timeout, verbose, train_verbose, stream, offline)
    records = opened.records()
    opened.write_tables(records)
    shares = importances(opened, records)
    if plot:
        from mlplab.report.tuning import write_pictures

        write_pictures(opened, records, shares)
    return TuneResult(
        opened.path,
        records,
        opened.best(records),
        opened.settings.objective,
        opened.settings.direction,
        [d.key for d in opened.dimensions],
        opened.settings.grid,
        stopped,
        shares,
    )


def importances(
    study: Study, records: Sequence[TrialRecord], least_trials: int = 4
) -> dict[str, float]:
    """``{key: share}`` of the objective's spread that each searched key explains (Optuna's
    default evaluator, PED-ANOVA), largest first; {} with one key or fewer than
    ``least_trials`` complete ``records``, where it would say nothing."""
    import optuna

    complete = [r for r in records if r.state == "complete"]
    if len(study.dimensions) < 2 or len(complete) < least_trials:
        return {}
    try:
        with warnings.catch_warnings():
            # A key drawn in only some trials (train.step_epochs beside a step schedule)
            # makes PED-ANOVA warn on stderr that few trials had it; a short study always.
            warnings.filterwarnings("ignore", message="Some regimes for parameter")
            found = optuna.importance.get_param_importances(study.optuna_study)
    except (RuntimeError, ValueError):  # e.g. every complete trial scored the same
        return {}
    return {key: float(share) for key, share in found.items()}


def _new_study(
    config: ConfigLike,
    space: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | Iterable[str] | None,
    settings: StudySettings,
    out: str | Path,
) -> Study:
    """Check everything, then make the study folder (nothing is written for bad input)."""
    if settings.objective not in OBJECTIVES:
        raise ConfigError(
            f"objective {settings.objective!r}: choose one of {', '.join(OBJECTIVES)}"
        )
    base = resolve_config(config, overrides)
    _check_trial_seeds(settings.trial_seeds, base, space or {})
    validation = base.data.validation
    if validation == "test" or validation == 0:
        said = '"test"' if validation == "test" else "0"
        raise ConfigError(
            f"data.validation = {said}: tuning needs a validation split apart from the test "
            "split (choosing on the test split would make its accuracy a score you selected "
            "for); set data.validation = 0.1"
        )
    dimensions = build_space(dict(space or {}), base)
    if settings.grid:
        for dimension in dimensions:
            if dimension.choices is None:
                raise ConfigError(
                    f"search {dimension.key} = {dimension.spec!r}: --grid takes choices only "
                    f"(e.g. {dimension.key}={_three_points(dimension)}), not a range"
                )
    settings = dataclasses.replace(settings, specs={d.key: d.spec for d in dimensions})
    path = create_study_folder(out, base.name)
    write_study_files(path, settings, base)
    return Study(path, settings, base, dimensions, open_optuna_study(path, settings, base))


def _three_points(dimension: Dimension) -> str:
    """A range's ends and middle (geometric on a log scale) as choices: ``16,64,256``."""
    low, high = dimension.low, dimension.high
    middle = math.sqrt(low * high) if dimension.log else (low + high) / 2
    points = [low, middle, high]
    if dimension.integer:
        return ",".join(str(round(point)) for point in points)
    return ",".join(f"{point:.3g}" for point in points)


def _check_trial_seeds(count: int, base: RunConfig, space: Mapping[str, Any]) -> None:
    if count < 1:
        raise ConfigError(f"--trial-seeds {count}: must be 1 or more")
    if count > 1:
        if "train.seed" in space:
            raise ConfigError(
                "search train.seed: with --trial-seeds every trial already runs several seeds"
            )
        try:
            base.with_overrides({"train.seed": base.train.seed + count - 1})
        except ConfigError as exc:
            raise ConfigError(f"--trial-seeds {count}: {exc}") from None


def _trials_to_run(study: Study, asked: int | None, verbose: bool, stream: TextIO) -> int:
    """--trials, or its default: 20, or what is left of the grid (never more than that)."""
    if not study.settings.grid:
        return 20 if asked is None else asked
    left = len(study.grid_left(study.records()))
    if left <= 0 and verbose:
        print(f"the grid is complete: all {study.grid_size} settings were tried", file=stream)
    return max(0, left if asked is None else min(asked, left))


def _abandoned_line(numbers: Sequence[int], grid: bool) -> str:
    listed = ", ".join(str(n) for n in numbers)
    if len(numbers) == 1:
        line = f"trial {listed}: abandoned, its process ended without finishing it"
        return line + (" (its setting is tried again)" if grid else "")
    line = f"trials {listed}: abandoned, their processes ended without finishing them"
    return line + (" (their settings are tried again)" if grid else "")


def _describe(study: Study) -> str:
    keys = ", ".join(f"{d.key} {spec_text(d.spec)}" for d in study.dimensions)
    pruning = "pruning trials that fall behind" if study.settings.prune else "no pruning"
    seeds = study.settings.trial_seeds
    mean = f" (mean of {seeds} seeds)" if seeds > 1 else ""
    over = f"every one of {study.grid_size} settings of" if study.settings.grid else "over"
    return f"{study.settings.direction} {study.settings.objective}{mean} {over} {keys}; {pruning}"


def _search(
    study: Study,
    trials: int,
    timeout: float | None,
    verbose: bool,
    train_verbose: bool,
    stream: TextIO,
    offline: bool | None,
) -> str:
    """Run up to ``trials`` trials; the reason it stopped early, or ""."""
    say = _Say(verbose, stream)
    deadline = time.monotonic() + timeout if timeout else None
    for count in range(1, trials + 1):
        if count > 1 and deadline is not None and time.monotonic() >= deadline:
            say(f"--timeout: {count - 1} trials in the time given")
            return "timeout"
        if study.settings.grid:
            left = study.grid_left(study.records())
            if not left:  # another process sharing the study took the last points
                return ""
            study.optuna_study.enqueue_trial(left[0])
        trial = study.optuna_study.ask()
        claim(trial)
        try:
            state = _one_trial(study, trial, f"{count} of {trials}", say, train_verbose, offline)
        except BaseException as exc:  # Ctrl-C twice, a data error: the trial did not finish
            tell_failure(study.optuna_study, trial, exc)
            study.write_tables()
            raise
        if state == "interrupted":
            say(f"  interrupted: the search stops here; go on: mlplab tune --study {study.path}")
            return "interrupted"
    return ""


class _Say:
    """Prints a progress line to ``stream`` when verbose."""

    def __init__(self, verbose: bool, stream: TextIO) -> None:
        self.verbose, self.stream = verbose, stream

    def __call__(self, line: str) -> None:
        if self.verbose:
            print(line, file=self.stream, flush=True)


def _one_trial(
    study: Study,
    trial: optuna.Trial,
    which: str,
    say: _Say,
    train_verbose: bool,
    offline: bool | None,
) -> str:
    """Draw, train and judge one trial (or reuse an earlier one's result); its state."""
    number = trial.number + 1
    study.reseed(trial.number)
    values = draw(trial, study.dimensions, study.base)
    drawn = "  ".join(f"{key}={shown(value)}" for key, value in values.items())
    say(f"trial {number} ({which})  {drawn}")
    earlier = same_settings(study.records(), number, values)
    if earlier is not None:
        tell_repeat(study.optuna_study, trial, earlier)
        say(f"  same settings as trial {earlier.number}: its result, not trained again")
        return earlier.state
    try:
        configs = _trial_configs(study, number, values)
    except ConfigError as exc:  # an impossible combination (momentum with adam)
        tell_outcome(study.optuna_study, trial, "skipped", note=str(exc))
        say(f"  skipped: {exc}")
        return "skipped"
    runs = _train_trial(study, trial, configs, values, train_verbose, say.stream, offline)
    state = _judge(study, trial, runs)
    if state != "interrupted":
        records = study.records()
        study.write_tables(records)
        say("  " + _outcome(study, records, records[trial.number]))
    return state


def _trial_configs(study: Study, number: int, values: Mapping[str, Any]) -> list[RunConfig]:
    """The configs a trial trains: the base with the drawn values, once per trial seed
    (``<name>-trialNNN``, or ``<name>-trialNNN-seedS`` with several)."""
    name = trial_name(study.base, number)
    count = study.settings.trial_seeds
    if count == 1:
        return [study.base.with_overrides({**values, "name": name})]
    first = study.base.train.seed
    return [
        study.base.with_overrides({**values, "train.seed": seed, "name": f"{name}-seed{seed}"})
        for seed in range(first, first + count)
    ]


def _train_trial(
    study: Study,
    trial: optuna.Trial,
    configs: list[RunConfig],
    values: Mapping[str, Any],
    train_verbose: bool,
    stream: TextIO,
    offline: bool | None,
) -> list[Run]:
    """Train a trial's runs in the study folder, in order, until one is pruned or stopped.

    The pruner follows the first run's epochs (the later seeds are only trained if it was
    not pruned).
    """
    from mlplab.api import train

    objective = study.settings.objective

    def prune(stats: dict[str, float]) -> str | None:
        score = stats.get(objective)
        if score is None or not math.isfinite(score):
            return None
        trial.report(score, int(stats["epoch"]))
        if trial.should_prune():
            return f"{objective} {score:.4f} is behind the median of earlier trials at this epoch"
        return None

    runs: list[Run] = []
    for config in configs:
        run = train(
            config,
            out=study.path,
            verbose=train_verbose,
            stream=stream,
            command=_trial_command(study, config, values),
            offline=offline,
            report=False,
            prune=prune if study.settings.prune and not runs else None,
        )
        runs.append(run)
        if run.status in ("pruned", "interrupted"):
            break
    return runs


def _judge(study: Study, trial: optuna.Trial, runs: list[Run]) -> str:
    """Tell Optuna how the trial's runs did; its state. The value is the mean objective over
    the trial's seeds."""
    objective = study.settings.objective

    def tell(state: str, note: str = "", value: float | None = None) -> str:
        tell_outcome(
            study.optuna_study, trial, state, runs=runs, objective=objective, value=value, note=note
        )
        return state

    if runs[-1].status == "interrupted":
        return tell("interrupted", "Ctrl-C")
    if runs[0].status == "pruned":
        return tell("pruned", runs[0].metrics.get("message", ""))
    scores = [run.metrics.get(objective) for run in runs]
    if any(score is None or not math.isfinite(score) for score in scores):
        statuses = ", ".join(sorted({run.status for run in runs}))
        return tell("failed", f"{statuses}: no finite objective")
    return tell("complete", value=statistics.fmean(scores))


def _outcome(study: Study, records: Sequence[TrialRecord], record: TrialRecord) -> str:
    """``val_accuracy 0.9722  (best 0.9750: trial 1)  20 epochs  4.1s`` or the pruned line."""
    seconds = record.seconds or 0.0
    if record.state == "pruned":
        return f"pruned after epoch {record.epochs}  {seconds:.1f}s"
    if record.state != "complete":
        return f"{record.state}: {record.note}"
    best = study.best(records)
    mark = "  new best" if best is not None and best.number == record.number else ""
    if best is not None and not mark:
        mark = f"  (best {best.value:.4f}: trial {best.number})"
    seeds = f" over {len(record.runs)} seeds" if len(record.runs) > 1 else ""
    return (
        f"{study.settings.objective} {score_text(record)}{seeds}{mark}  "
        f"{record.epochs} epochs  {seconds:.1f}s"
    )


def _trial_command(study: Study, config: RunConfig, values: Mapping[str, Any]) -> str:
    """The command that trains this run alone, from the study's base.toml."""
    argv = ["mlplab", "train", str(study.path / BASE_FILE)]
    for key, value in values.items():
        argv += ["--set", f"{key}={toml_value(value)}"]
    if config.train.seed != study.base.train.seed and "train.seed" not in values:
        argv += ["--seed", str(config.train.seed)]
    return shlex.join([*argv, "--name", config.name])
