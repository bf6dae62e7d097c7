"""A study folder: the trials of one search, kept in an Optuna journal beside their runs.

``<out>/<UTC time>-<name>-tune/`` holds::

    tune.toml       the search: [tune] objective, pruning, command; [search] key = spec
    base.toml       the config every trial starts from (each trial changes the searched keys)
    study.journal   Optuna's journal file: every trial's parameters, state and value; several
                    processes may share it (`mlplab tune --study DIR` in each)
    trials.csv      one row per trial, rewritten after each
    best.toml       the best trial's config, named as the base: `mlplab train best.toml`
    tune.png        objective per trial, and per searched key
    <UTC time>-<name>-trialNNN/   each trial's run directory (a normal run)

Trials are numbered from 1 (Optuna's number + 1) everywhere mlplab shows them.
"""

from __future__ import annotations

import itertools
import json
import tomllib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlplab._io import atomic_write_text
from mlplab.config import RunConfig, load_config, to_toml, toml_value
from mlplab.errors import ConfigError, RunError
from mlplab.tuning.space import Dimension, build_space, label
from mlplab.tuning.trials import TrialRecord, ranked, read_trial, trials_csv

if TYPE_CHECKING:
    import optuna

TUNE_FILE = "tune.toml"
BASE_FILE = "base.toml"
JOURNAL_FILE = "study.journal"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.toml"
PLOT_FILE = "tune.png"
PAGE_FILE = "study.html"
STUDY_NAME = "mlplab"
OBJECTIVES = {"val_accuracy": "maximize", "val_loss": "minimize"}


def import_optuna() -> Any:
    """``import optuna``, without the warning its import of ``tqdm.auto`` gives in a Jupyter
    notebook that lacks ipywidgets ("IProgress not found"): mlplab shows no tqdm bar."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import optuna
    return optuna


@dataclass(frozen=True)
class StudySettings:
    """What tune.toml records. specs: ``{key: list of choices or "LOW..HIGH[:log]"}``.
    trial_seeds: runs per trial (seeds ``train.seed`` onwards), judged by their mean.
    grid: every combination of the choices once (Optuna's GridSampler) instead of TPE."""

    specs: dict[str, Any]
    objective: str = "val_accuracy"
    prune: bool = True
    trial_seeds: int = 1
    grid: bool = False
    created: str = ""
    command: str = ""

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]

    def to_toml(self, meta: dict[str, str]) -> str:
        tune = {"objective": self.objective, "prune": self.prune, "trial_seeds": self.trial_seeds}
        tune |= {"grid": self.grid, "created": self.created}
        tune |= {"command": self.command, **meta}
        # Keys quoted: a bare train.epochs would be a table inside [search].
        search = [f"{json.dumps(key)} = {toml_value(spec)}" for key, spec in self.specs.items()]
        return to_toml({"tune": tune}) + "\n[search]\n" + "\n".join(search) + "\n"


@dataclass
class Study:
    """An open study folder: its settings, base config, searched dimensions and Optuna study."""

    path: Path
    settings: StudySettings
    base: RunConfig
    dimensions: list[Dimension]
    optuna_study: optuna.Study = field(repr=False)

    def records(self) -> list[TrialRecord]:
        """Every trial in the journal (those of other processes sharing it included)."""
        trials = self.optuna_study.get_trials(deepcopy=False)
        return [read_trial(trial, self.path, self.dimensions) for trial in trials]

    @property
    def grid_size(self) -> int:
        """How many different settings the searched choices make (ranges count as 0)."""
        return len(self.grid_points())

    def grid_points(self) -> list[dict[str, Any]]:
        """Every combination of the choices, as Optuna stores them (:func:`label`), in the
        dimensions' order (the keys others depend on first, then as given): the first key
        varies slowest. A key that does not apply beside the
        others' values (``train.step_epochs`` beside a constant schedule) is left out, as a
        trial would leave it out, so that combination comes once."""
        points: list[dict[str, Any]] = []
        choices = [d.choices or () for d in self.dimensions]
        for combination in itertools.product(*choices):
            applying: dict[str, Any] = {}
            for dimension, value in zip(self.dimensions, combination, strict=True):
                if dimension.applies(self.base, applying):
                    applying[dimension.key] = value
            point = {key: label(value) for key, value in applying.items()}
            if point not in points:
                points.append(point)
        return points

    def grid_left(self, records: Sequence[TrialRecord]) -> list[dict[str, Any]]:
        """The grid points no trial has settled, in order. A complete, pruned or skipped
        trial settles its point, and so does one being trained; a failed, interrupted or
        abandoned one does not, so its point is tried again. A key that did not apply in a
        trial (momentum beside adam) does not tell its points apart."""
        settled = [
            {key: label(value) for key, value in r.params.items()}
            for r in records
            if r.state in ("complete", "pruned", "skipped", "running") and r.params
        ]
        return [
            point
            for point in self.grid_points()
            if not any(all(point[k] == v for k, v in drawn.items()) for drawn in settled)
        ]

    def reseed(self, trial_number: int) -> None:
        """Seed TPE's draws for trial ``trial_number`` (Optuna's, from 0) with ``train.seed``
        plus that number: reproducible in one process, and never the same random draws in a
        study continued later or shared by two processes. (A grid is walked in order.)"""
        if not self.settings.grid:
            self.optuna_study.sampler = tpe_sampler(self.base.train.seed + trial_number)

    def best(self, records: Sequence[TrialRecord] | None = None) -> TrialRecord | None:
        """The best complete trial of ``records`` (default: read the journal now)."""
        leading = ranked(self.records() if records is None else records, self.settings.direction)
        return leading[0] if leading else None

    def write_tables(self, records: Sequence[TrialRecord] | None = None) -> None:
        """trials.csv, and best.toml when some trial is complete (``records`` as in best)."""
        records = self.records() if records is None else records
        atomic_write_text(self.path / TRIALS_FILE, trials_csv(records, self.dimensions))
        best = self.best(records)
        if best is not None:
            atomic_write_text(self.path / BEST_FILE, best_config_toml(self, best))


def best_runs(path: str | Path, count: int) -> list[Path]:
    """The run folders of a study's ``count`` best complete trials by its objective on the
    validation split (best first; a trial's first run when it trained several seeds):
    what ``mlplab ensemble --study`` averages. RunError when it has none."""
    if count < 1:
        raise RunError(f"--best {count}: must be at least 1")
    study = open_study(path)
    leading = [record.run for record in ranked(study.records(), study.settings.direction)]
    found = [run for run in leading if run is not None and run.is_dir()][:count]
    if not found:
        raise RunError(f"{path}: no complete trial with a run folder to take")
    return found


def best_config_toml(study: Study, best: TrialRecord) -> str:
    """The best trial's config under the base config's name, saying where it came from."""
    config = study.base.with_overrides(
        {
            **best.params,
            "description": (
                f"tuned by mlplab tune: trial {best.number} of {study.path}, "
                f"{study.settings.objective} {best.value:.4f}"
            ),
        }
    )
    return config.to_toml()


def trial_name(base: RunConfig, number: int) -> str:
    return f"{base.name}-trial{number:03d}"


def create_study_folder(out: str | Path, name: str) -> Path:
    """``out/<UTC time>-<name>-tune``, made now (RunWriter's naming, so it sorts by time)."""
    from mlplab.runs import RunWriter

    return RunWriter.create(out, f"{name}-tune").path


def write_study_files(path: Path, settings: StudySettings, base: RunConfig) -> None:
    from mlplab.api import versions

    meta = {"mlplab": versions()["mlplab"]}
    atomic_write_text(path / BASE_FILE, base.to_toml())
    atomic_write_text(path / TUNE_FILE, settings.to_toml(meta))


def read_study_files(path: Path) -> tuple[StudySettings, RunConfig]:
    """tune.toml and base.toml of an existing study folder; RunError naming what is wrong."""
    tune_file = path / TUNE_FILE
    if not path.is_dir():
        raise RunError(f"{path}: no such study folder")
    if not tune_file.is_file() or not (path / BASE_FILE).is_file():
        raise RunError(f"{path}: not a study folder (no {TUNE_FILE} or {BASE_FILE})")
    try:
        data = tomllib.loads(tune_file.read_text(encoding="utf-8"))
        tune = data["tune"]
        settings = StudySettings(
            specs=dict(data["search"]),
            objective=tune["objective"],
            prune=bool(tune["prune"]),
            trial_seeds=int(tune.get("trial_seeds", 1)),
            grid=bool(tune.get("grid", False)),
            created=tune.get("created", ""),
            command=tune.get("command", ""),
        )
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise RunError(f"{tune_file}: damaged study file ({type(exc).__name__}: {exc})") from None
    if settings.objective not in OBJECTIVES:
        raise RunError(f"{tune_file}: unknown objective {settings.objective!r}")
    try:
        base = load_config(path / BASE_FILE)
    except ConfigError as exc:
        raise RunError(str(exc)) from None
    return settings, base


def open_optuna_study(path: Path, settings: StudySettings, base: RunConfig) -> optuna.Study:
    """The Optuna study in ``path/study.journal`` (created if new).

    Sampler: TPE, seeded with ``train.seed`` plus the number of trials already in the study
    (and reseeded for every trial: :meth:`Study.reseed`); a grid's trials come with their
    values (enqueued). Pruner: Optuna's
    MedianPruner when pruning: from half the base config's epochs on (at least epoch 1), a
    trial whose objective is worse than the median of earlier trials at the same epoch
    stops; the first 5 trials always run in full.
    """
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Early epochs say little (a one-cycle schedule is still warming up): judge from halfway.
    warmup = max(1, base.train.epochs // 2)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
        if settings.prune
        else optuna.pruners.NopPruner()
    )
    journal = path / JOURNAL_FILE
    try:
        study = optuna.create_study(
            storage=JournalStorage(JournalFileBackend(str(journal))),
            study_name=STUDY_NAME,
            direction=settings.direction,
            pruner=pruner,
            load_if_exists=True,
        )
        done = len(study.get_trials(deepcopy=False))
    except (ValueError, KeyError, TypeError, AssertionError) as exc:  # JSONDecodeError: ValueError
        raise RunError(f"{journal}: damaged Optuna journal ({type(exc).__name__})") from None
    except OSError as exc:
        raise RunError(f"{journal}: cannot open the study's journal: {exc.strerror}") from None
    # A grid's trials are enqueued with their point's values (Study.grid_left), so its
    # sampler never draws; TPE otherwise.
    if settings.grid:
        study.sampler = optuna.samplers.RandomSampler(base.train.seed)
    else:
        study.sampler = tpe_sampler(base.train.seed + done)
    return study


def tpe_sampler(seed: int) -> optuna.samplers.TPESampler:
    """Optuna's TPE sampler with ``group``: it models each set of keys drawn together (a key
    may apply to some trials only: momentum with sgd, not with adam)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group's
        return optuna.samplers.TPESampler(seed=seed, group=True)


def open_study(path: str | Path) -> Study:
    """An existing study folder, ready for more trials (or for reading)."""
    path = Path(path)
    settings, base = read_study_files(path)
    try:
        dimensions = build_space(settings.specs, base)
    except ConfigError as exc:
        raise RunError(f"{path / TUNE_FILE}: {exc}") from None
    return Study(path, settings, base, dimensions, open_optuna_study(path, settings, base))


def now_text() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")
