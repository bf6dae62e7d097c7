"""The library's entry points: train, evaluate, predict. The CLI is a thin layer over these.

Data flows one way: config -> data -> model -> engine -> metrics -> report/runs.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import platform
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from mlplab._io import write_named_file
from mlplab._version import __version__
from mlplab.checkpoint import Checkpointer, ResumePoint, open_resumable
from mlplab.config import DataConfig, RunConfig, load_config, toml_value
from mlplab.data import (
    Dataset,
    ScalingParams,
    Splits,
    load_dataset,
    make_splits,
    scaling_params,
)
from mlplab.data.images import CLEAR_BACKGROUND, border_brightness, content_fraction
from mlplab.embedding import SAMPLE, LayerViews
from mlplab.errors import ConfigError, DataError, RunError
from mlplab.recipes import DEFAULT_RECIPE, load_recipe
from mlplab.record import RunRecord
from mlplab.running import marked_training
from mlplab.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RESUME_FILE,
    Run,
    RunWriter,
    history_csv,
    load_model,
    load_run,
)
from mlplab.summary import model_summary

if TYPE_CHECKING:
    from mlplab.report.build import ReportData

ENGINE_NAMES = {"fused": "fused JAX epochs", "fit": "Keras model.fit"}
ConfigLike = RunConfig | str | Path | Mapping[str, Any] | None


def resolve_config(
    config: ConfigLike = None, overrides: Mapping[str, Any] | Iterable[str] | None = None
) -> RunConfig:
    """A RunConfig from a recipe name, a ``.toml`` path, a dict, or a RunConfig.

    None means the default recipe (``digits-mlp``). ``overrides`` is ``{"train.epochs": 3}``
    or ``["train.epochs=3"]``.
    """
    if config is None:
        resolved = load_recipe(DEFAULT_RECIPE)
    elif isinstance(config, RunConfig):
        resolved = config
    elif isinstance(config, Mapping):
        resolved = RunConfig.from_dict(config)
    else:
        text = str(config)
        looks_like_path = text.endswith(".toml") or "/" in text or Path(text).is_file()
        resolved = load_config(text) if looks_like_path else load_recipe(text)
    if not overrides:
        return resolved
    changed = resolved.with_overrides(overrides)
    if changed.data.dataset != resolved.data.dataset and changed.name == resolved.name:
        # A recipe run on another dataset says so in its name (and its run folder's).
        from mlplab.data.pixel_csv import csv_stem, is_csv

        given = Path(changed.data.dataset)
        stem = csv_stem(given) if is_csv(given) else Path(given.name.removesuffix(".tar.gz")).stem
        changed = dataclasses.replace(changed, name=f"{resolved.name}-{stem}")
    differences = changed.differences(resolved)
    if resolved.description and changed.description == resolved.description and differences:
        # The recipe's words describe the recipe ("64-256-128-10 relu MLP..."): the report
        # of a run that changed it says what changed, rather than describe another network.
        listed = ", ".join(f"{key} = {toml_value(value)}" for key, value in differences)
        changed = dataclasses.replace(
            changed, description=f"{resolved.description}; changed: {listed}"
        )
    return changed


def read_dataset(
    data: DataConfig,
    spec: str | None = None,
    offline: bool | None = None,
    verbose: bool = False,
    whole: bool = False,
) -> Dataset:
    """The dataset ``data.dataset`` (or ``spec``) names, read with the config's options
    (whole: see :func:`mlplab.data.load_dataset`), its classes named by ``data.class_names``
    when given: always for the config's own dataset, and for another (``spec``) when its
    classes are as many and only numbers (a validation or test file of the same kind)."""
    dataset = load_dataset(
        spec or data.dataset,
        offline=offline,
        image_size=data.image_size,
        color=data.color,
        strict=data.strict,
        verbose=verbose,
        whole=whole,
        key=None if spec else "data.dataset",
    )
    if not data.class_names:
        return dataset
    if spec is None:
        return _renamed(dataset, data.class_names)
    numbered = all(name.lstrip("-").isdigit() for name in dataset.class_names)
    if numbered and len(dataset.class_names) == len(data.class_names):
        return _renamed(dataset, data.class_names)
    return dataset


def _renamed(dataset: Dataset, names: tuple[str, ...]) -> Dataset:
    if len(names) != len(dataset.class_names):
        raise ConfigError(
            f"data.class_names: {len(names)} names, but {dataset.name} has "
            f"{len(dataset.class_names)} classes ({', '.join(dataset.class_names[:12])}"
            f"{', ...' if len(dataset.class_names) > 12 else ''})"
        )
    return dataclasses.replace(dataset, class_names=tuple(name.strip() for name in names))


def read_splits(
    cfg: RunConfig, offline: bool | None = None, verbose: bool = False
) -> tuple[Dataset, Splits, ScalingParams]:
    """The config's dataset, its train/validation/test splits (seeded by ``train.seed``) and
    the scaling fitted on the training split; keras is imported meanwhile (a few seconds, on
    another thread), since every caller builds a model next."""
    from mlplab._backend import keras_importing

    with keras_importing():
        dataset, external = read_datasets(cfg.data, offline, verbose)
        splits = make_splits(
            dataset, cfg.data.validation, cfg.train.seed, external, cfg.data.train_fraction
        )
        scaling = scaling_params(splits.x_train, cfg.data.scaling)
    return dataset, splits, scaling


def read_datasets(
    data: DataConfig, offline: bool | None = None, verbose: bool = False
) -> tuple[Dataset, Dataset | None]:
    """What ``make_splits`` splits: the config's dataset, and the validation dataset when
    ``data.validation`` names a path (else None)."""
    dataset = read_dataset(data, offline=offline, verbose=verbose)
    external = None
    if isinstance(data.validation, str) and data.validation != "test":
        shaped = at_shape(data, dataset.image_shape)
        external = read_dataset(shaped, data.validation, offline, verbose)
    return dataset, external


def at_shape(data: DataConfig, shape: tuple[int, int, int]) -> DataConfig:
    """``data`` set to read an image folder or pixel CSV at (height, width, channels)
    ``shape``: a folder of images checked against a model, or validating it, is read at the
    size and colour the model takes, whatever size its own images are, and a CSV's rows as
    images of that shape (other forms of dataset ignore these two options)."""
    height, width, channels = shape
    color = "grayscale" if channels == 1 else "rgb"
    return dataclasses.replace(data, image_size=(height, width), color=color)


def versions() -> dict[str, str]:
    """Versions of what a run depends on, for its records."""
    import keras

    found = {
        "mlplab": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    try:
        import jax

        found["jax"] = jax.__version__
    except ImportError:  # another backend without JAX installed
        pass
    return found


def train(
    config: ConfigLike = None,
    *,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    out: str | Path = "runs",
    verbose: bool = True,
    stream: TextIO | None = None,
    command: str | None = None,
    offline: bool | None = None,
    checkpoint_seconds: float = 60.0,
    report: bool = True,
    prune: Callable[[dict[str, float]], str | None] | None = None,
) -> Run:
    """Train a network and write its run directory under ``out``; return the loaded Run.

    config: a recipe name, a TOML path, a dict, a RunConfig, or None for the default recipe.
    verbose: show progress on ``stream`` (stderr by default): a bar on a terminal, one line per
    epoch otherwise. The first Ctrl-C stops training after the current compiled call (fused
    engine: the epoch, or ~1 s of a long one) or step (model.fit) and still writes the run
    (status ``interrupted``, which :func:`resume` can go on from); a second one aborts (while
    the pictures are drawn, it skips them: the run is written without them).
    offline: never download (default: ``MLPLAB_OFFLINE``). checkpoint_seconds: save
    checkpoint.keras, resume.npz and history.csv after an epoch when this long has passed since
    the last save (removed once the run is written, resume.npz kept if it was interrupted).
    report: write the plots and the self-contained report.html (report.txt is always written).
    prune: called after each epoch with its stats (``epoch``, ``loss``, ``val_accuracy``, ...);
    a reason it returns stops training there and writes the run with status ``pruned`` (how
    :func:`mlplab.tune` drops unpromising trials).
    """
    started = time.perf_counter()
    cfg = resolve_config(config, overrides)
    return _train_and_write(
        cfg,
        out,
        started=started,
        verbose=verbose,
        stream=stream or sys.stderr,
        command=command or "mlplab.train(...)",
        offline=offline,
        checkpoint_seconds=checkpoint_seconds,
        report=report,
        prune=prune,
    )


def resume(
    run: str | Path,
    *,
    verbose: bool = True,
    stream: TextIO | None = None,
    command: str | None = None,
    offline: bool | None = None,
    checkpoint_seconds: float = 60.0,
    report: bool = True,
) -> Run:
    """Go on training a run that was interrupted (Ctrl-C) or killed, in its own directory.

    run: the run directory, or "last" for the newest one under ./runs that can go on. It
    trains the rest of the epochs of the run's own config.toml from the last saved epoch
    (resume.npz: weights, optimizer state, random state), then writes the run as ``train``
    does. With the fused engine the result is the same as a run that never stopped; with
    ``train.engine = 'fit'`` Keras shuffles the later epochs differently. RunError when the
    run cannot go on (it finished, or stopped before its first checkpoint). Other arguments
    as in :func:`train`.
    """
    started = time.perf_counter()
    point = open_resumable(run)
    return _train_and_write(
        point.config,
        None,
        point,
        started=started,
        verbose=verbose,
        stream=stream or sys.stderr,
        command=command or "mlplab.resume(...)",
        offline=offline,
        checkpoint_seconds=checkpoint_seconds,
        report=report,
    )


def _train_and_write(
    cfg: RunConfig,
    out: str | Path | None,
    point: ResumePoint | None = None,
    *,
    started: float,
    verbose: bool,
    stream: TextIO,
    command: str,
    offline: bool | None,
    checkpoint_seconds: float,
    report: bool,
    prune: Callable[[dict[str, float]], str | None] | None = None,
) -> Run:
    """train() and resume(): train ``cfg`` and write the run into a new directory under
    ``out``, or into the directory of the resumed run ``point``."""
    from mlplab._backend import backend_note, importing

    dataset, splits, scaling = read_splits(cfg, offline, verbose)
    teacher = None
    if cfg.train.teacher:
        cfg, teacher = taught(cfg, dataset, splits, stream if verbose else None)
    starting = None
    if cfg.model.init_from:
        if point is None:
            cfg, starting = warm_started(cfg, dataset)
            scaling = starting.scaling
        else:  # scaled as it started: the stopped run's model says how (killed: its checkpoint)
            from mlplab.model import scaling_of

            saved = point.path / MODEL_FILE
            saved = saved if saved.is_file() else point.path / CHECKPOINT_FILE
            scaling = scaling_of(load_model(saved))

    from mlplab.engine import StartPoint, StopRequest
    from mlplab.metrics import classification_metrics, cross_entropy, predicted_labels
    from mlplab.novelty import NOVELTY_FILE, reference_for
    from mlplab.progress import make_listener
    from mlplab.report.build import (
        DRAWING_MODULES,
        HTML_FILE,
        PLOT_FILES,
        PREDICTIONS_FILE,
        ReportData,
        drawing_early,
        measure_model,
        predictions_npz,
        write_report,
    )

    trainer, model = trainer_and_model(
        cfg,
        dataset.image_shape,
        dataset.num_classes,
        scaling,
        len(splits.y_train),
        teacher.network(splits.x_train) if teacher else None,
    )
    if starting is not None:
        starting.apply(model)
    start = None
    if point is not None:
        point.state.apply(model, point.path / RESUME_FILE)
        start = StartPoint(point.history, point.state.best_weights)

    note = backend_note()
    if note and verbose:
        print(note, file=stream)

    if point is None:
        meta = {
            **versions(),
            "engine": trainer.name,
            "seed": cfg.train.seed,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command,
        }
        # Only now: a config the trainer or model refuses leaves no run directory behind.
        writer = RunWriter.create(out or "runs", cfg.name)
    else:
        # The first command stays; the resume is added (the last one, if it happens again).
        meta = {
            **point.meta,
            "resumed_after_epoch": point.state.epoch,
            "resumed": datetime.now(UTC).isoformat(timespec="seconds"),
            "resume_command": command,
        }
        writer = RunWriter(point.path)
    # Marked as being trained until it is written: `mlplab resume` refuses it meanwhile.
    # Ctrl-C stops training, and then waits for the run to be written (never half a run).
    stop = StopRequest(prune=prune)
    with (
        frozen_heap(),
        marked_training(writer.path),
        _stop_on_ctrl_c(stop, stream) as ctrl_c,
    ):
        if point is not None:
            # Unfinished again until it is written: a stale metrics.json would say otherwise,
            # and the stopped run's pictures would outlive a resume with --no-report.
            for name in (METRICS_FILE, HTML_FILE, *PLOT_FILES.values()):
                (writer.path / name).unlink(missing_ok=True)
        writer.text(CONFIG_FILE, cfg.to_toml(meta))
        architecture = model_summary(model)
        if verbose:
            action = "run" if point is None else f"resuming after epoch {point.state.epoch}:"
            print(
                f"{action} {writer.path}: {cfg.name} on {dataset.name} "
                f"({len(splits.y_train)} train, {len(splits.y_test)} test images; "
                f"{architecture.parameters:,} parameters; engine: {ENGINE_NAMES[trainer.name]})",
                file=stream,
            )
            if starting is not None:
                print(starting.describe(dataset.num_classes), file=stream)
            if point is None:  # said once, when the run starts
                for line in cfg.train.unused_settings():
                    print(f"note: {line}", file=stream)

        checkpoints = Checkpointer(
            make_listener(verbose, stream),
            writer,
            model,
            checkpoint_seconds,
            cfg.train.tracks_best,
            (point.state, point.history) if point else None,
            cfg.train.monitor,
            cfg.train.min_delta,
        )
        # Training runs mostly outside the GIL: matplotlib (~1 s) imports meanwhile for the report.
        with importing(*(DRAWING_MODULES if report else ())):
            result = trainer.fit(model, splits, cfg.train, checkpoints, stop, start)
        ctrl_c.message = (
            "training is over: writing the run first (a few seconds; Ctrl-C again to skip its "
            "pictures)"
        )
        if result.message and verbose:
            print(result.message, file=stream)

        val_proba, temperature = validate_and_calibrate(trainer, model, cfg, splits)
        proba = trainer.predict(model, splits.x_test)
        metrics = classification_metrics(splits.y_test, proba, dataset.class_names)
        if val_proba is not None:
            # The kept model's (after an early stop's restore, or EMA; before a temperature
            # fitted on these very images): what tuning maximises.
            metrics["val_loss"] = cross_entropy(splits.y_val, val_proba)
            metrics["val_accuracy"] = float(np.mean(predicted_labels(val_proba) == splits.y_val))
        if temperature is not None:
            metrics["temperature"] = temperature

        writer.text(HISTORY_FILE, history_csv(result.history))
        writer.model(model)
        checkpoints.finish(result.status)
        writer.bytes(PREDICTIONS_FILE, predictions_npz(splits.y_test, proba))
        # Epochs trained before a resume count in train_seconds (their compile time is lost).
        earlier_seconds = sum(row.get("seconds", 0.0) for row in point.history) if point else 0.0
        summary = {
            "status": result.status,
            "message": result.message,
            **metrics,
            "epochs_completed": len(result.history),
            "best_epoch": result.best_epoch,
            "engine": trainer.name,
            "train_seconds": result.train_seconds + earlier_seconds,
            "compile_seconds": result.compile_seconds,
            "xla_options": result.compiler_options,
            "wall_seconds": time.perf_counter() - started,
            "resumed_after_epoch": point.state.epoch if point else None,
            "dataset": _dataset_facts(dataset, splits),
            "model": architecture.totals(),
        }
        if cfg.model.init_from:
            # A resumed run went on from its own weights: the run it started from is only
            # described (as it is now, if it is still there).
            summary["init_from"] = (starting or described_start(cfg, dataset)).facts()
        if teacher is not None:
            summary["teacher"] = teacher.facts(splits.x_train, splits.y_train, cfg.train)
            summary["teacher"]["test_agreement"] = teacher.agreement(splits.x_test, proba)
        report_data = ReportData(
            RunRecord(writer.path, tomllib.loads(cfg.to_toml(meta)), cfg, result.history, summary),
            splits.y_test,
            proba,
            splits.x_test,
            splits.x_train,
            splits.y_train,
        )
        report_data.model_summary = architecture
        try:
            # The plots are drawn on another thread while the novelty reference and the
            # measurements below (compiled JAX calls and NumPy, mostly) run.
            with drawing_early(report_data, draw=report) as drawing:
                novelty = reference_for(model, splits.x_train, splits.x_test, cfg.train.seed)
                if novelty is not None:
                    writer.bytes(NOVELTY_FILE, novelty[0].to_npz())
                    summary["novelty"] = novelty[0].facts(novelty[1])
                if report:  # only what a picture needs: tune's trials (report=False) skip it
                    measure_model(
                        report_data,
                        model,
                        lambda x: trainer.predict(model, x),
                        dataset.x_train,
                        dataset.y_train,
                        drawing,
                    )
                    _measured_facts(report_data, summary)
            write_report(report_data, writer, pictures=report, drawing=drawing)
        except KeyboardInterrupt:
            # Ctrl-C again while the pictures are measured and drawn (most of the writing):
            # everything else is saved, so the run is finished without them, not lost.
            if report:
                _measured_facts(report_data, summary)  # those measured before it
            write_report(report_data, writer, pictures=False)  # report.txt, if not yet
            writer.json(METRICS_FILE, summary)
            print(
                f"\nthe run is written without its pictures: draw them with "
                f"mlplab report {writer.path}",
                file=stream,
                flush=True,
            )
            raise
        # Last, so that a run with metrics.json is a finished run (the report is part of it).
        summary["wall_seconds"] = time.perf_counter() - started
        writer.json(METRICS_FILE, summary)
        return load_run(writer.path, model=model)


def _measured_facts(data: ReportData, summary: dict[str, Any]) -> None:
    """Copy into metrics.json's ``summary`` what :func:`measure_model` measured into
    ``data`` (robustness, gradients, what each layer sees), as far as it got."""
    summary["robustness"] = data.robustness
    if data.gradients is not None:
        summary["gradients"] = data.gradients.as_dict()
    if data.layer_views is not None:
        summary["layer_views"] = data.layer_views.as_dict()


def taught(
    cfg: RunConfig, dataset: Dataset, splits: Splits, stream: TextIO | None
) -> tuple[RunConfig, Any]:
    """``train.teacher``: the config with the teacher's run folder as an absolute path (so
    that ``resume`` finds it from anywhere), and the :class:`~mlplab.teacher.Teacher`,
    checked to fit the dataset; said on ``stream`` (None: quiet). Used by ``train`` and by
    the learning-rate finder."""
    from mlplab.teacher import load_teacher

    teacher = load_teacher(cfg.train.teacher, dataset.class_names, dataset.image_shape)
    train = dataclasses.replace(cfg.train, teacher=os.path.abspath(teacher.path))
    cfg = dataclasses.replace(cfg, train=train)
    if stream is not None:
        print(
            teacher.describe(splits.x_train, splits.y_train, cfg.train, dataset.name), file=stream
        )
    return cfg, teacher


def warm_started(cfg: RunConfig, dataset: Dataset) -> tuple[RunConfig, Any]:
    """``model.init_from``: the config with the run's folder as an absolute path (so that
    the run's config.toml says where it started from anywhere), and its
    :class:`~mlplab.warm_start.StartingWeights`, checked to fit the network and dataset.
    Used by ``train`` and by the learning-rate finder."""
    from mlplab.warm_start import load_starting_weights

    starting = load_starting_weights(
        cfg, dataset.name, list(dataset.class_names), dataset.image_shape
    )
    model = dataclasses.replace(cfg.model, init_from=os.path.abspath(starting.path))
    return dataclasses.replace(cfg, model=model), starting


def described_start(cfg: RunConfig, dataset: Dataset) -> Any:
    """A resumed run's ``model.init_from``, for its metrics: the run's starting weights as
    :func:`warm_started` checks them, or, when that run is gone or changed, just its path."""
    from mlplab.warm_start import StartingWeights

    try:
        return warm_started(cfg, dataset)[1]
    except ConfigError:
        return StartingWeights.unread(cfg.model.init_from)


def trainer_and_model(
    cfg: RunConfig,
    image_shape: tuple[int, int, int],
    num_classes: int,
    scaling: ScalingParams,
    train_samples: int,
    teacher: Any = None,
) -> tuple[Any, Any]:
    """The trainer ``train.engine`` asks for and the config's new, compiled network: what
    train, resume and ``MLPClassifier.fit`` start from. teacher: ``train.teacher`` as an
    :class:`~mlplab.engine.TeacherNetwork`, or None."""
    from mlplab.engine import get_trainer, steps_per_epoch
    from mlplab.model import new_model

    # The trainer first: the fused one turns on JAX's persistent compilation cache, which
    # then also serves the small programs that initialise the weights (~2.5 s to compile).
    trainer = get_trainer(cfg.train, cfg.augment, teacher)
    steps = steps_per_epoch(train_samples, cfg.train.batch_size)
    return trainer, new_model(cfg, image_shape, num_classes, scaling, steps)


def validate_and_calibrate(
    trainer: Any, model: Any, cfg: RunConfig, splits: Splits
) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """After training: the validation split's probabilities (None without one), and with
    ``train.calibrate`` a temperature fitted on them and folded into the model
    (:mod:`mlplab.temperature`) — what ``metrics.json`` records of it; None when not asked,
    or when the probabilities are not finite (a diverged run)."""
    if splits.x_val is None or splits.y_val is None:
        return None, None
    val_proba = trainer.predict(model, splits.x_val)
    if not cfg.train.calibrate or not np.isfinite(val_proba).all():
        return val_proba, None
    from mlplab.temperature import calibrate

    return val_proba, calibrate(model, val_proba, splits.y_val)


def _dataset_facts(dataset: Dataset, splits: Splits) -> dict[str, Any]:
    """metrics.json's "dataset": what was trained on, and what predict needs to make a
    user's image look like these (background, content fraction: see data.images)."""
    background = border_brightness(dataset.x_train)
    dark_strokes = background < CLEAR_BACKGROUND and dataset.image_shape[-1] == 1
    return {
        "name": dataset.name,
        "source": dataset.source,
        "image_shape": list(dataset.image_shape),
        "class_names": list(dataset.class_names),
        "train_samples": len(splits.y_train),
        "validation_samples": 0 if splits.y_val is None else len(splits.y_val),
        "test_samples": len(splits.y_test),
        "validation": splits.validation,
        "test_split": dataset.test_split,
        "background": background,
        "content_fraction": content_fraction(dataset.x_train) if dark_strokes else None,
    }


def evaluate(
    run: Run | str | Path,
    dataset: str | None = None,
    offline: bool | None = None,
    robustness: bool = False,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Metrics of a run's model on the test split of its dataset, or on ``dataset``.

    Another dataset is evaluated on its test split, or, when it has none of its own (a
    folder of class sub-folders, a CSV, an .npz), on all its images. Its classes are
    matched to the model's by name (it may hold only some of them, even one), else by
    position when it has as many; DataError when neither fits.

    Returns classification_metrics' dict plus ``report`` (text), ``dataset`` (name),
    ``images`` ("test split" or "all images") and ``classes`` (how they were matched:
    "same", "by name" or "by position"); for a run with a novelty reference,
    ``unlike_training``: the share of the images unlike its training images (``share``),
    the ``threshold``, and the share of its own test images above it (``test_share``:
    about 0.05; far more on new images says they differ from what it learned); with
    ``robustness``, also ``robustness``: the
    accuracy on shifted, rotated and noisy test images
    (:func:`mlplab.robustness.robustness`). out: also write the evaluation's pictures and
    ``evaluation.html`` into this folder (:mod:`mlplab.report.evaluation`); ``files`` then
    lists them.
    """
    from mlplab.data.dataset import WHOLE_SPLIT
    from mlplab.metrics import classification_metrics, report_text

    run = run if isinstance(run, Run) else load_run(run)
    data, y_test, matched = _images_to_judge(run, dataset, offline)
    # Scored and averaged over the dataset's classes: a model's other classes, never the
    # true one here, would only add rows of zeros.
    labels = sorted(set(y_test.tolist())) if matched == "by name" else None
    proba = run.predict(data.x_test)
    result = {
        "dataset": data.name,
        "images": "all images" if data.test_split == WHOLE_SPLIT else "test split",
        "classes": matched,
        **classification_metrics(y_test, proba, run.class_names, labels),
        "report": report_text(y_test, proba, run.class_names, labels),
    }
    distances = run.novelty(data.x_test)
    if distances is not None:
        threshold = run.novelty_reference.threshold
        result["unlike_training"] = {
            "share": float(np.mean(distances > threshold)),
            "threshold": threshold,
            # What the threshold was set to flag: of the run's own test images.
            "test_share": (run.metrics.get("novelty") or {}).get("test_flagged"),
        }
    if robustness:
        from mlplab.robustness import robustness as measure

        result["robustness"] = measure(run.predict, data.x_test, y_test)
    if out is not None:
        from mlplab.report.evaluation import write_evaluation

        files = write_evaluation(
            Path(out),
            result,
            run.config.name,
            run.class_names,
            data.x_test,
            y_test,
            proba,
            data.image_names("test"),
        )
        result["files"] = [str(path) for path in files]
    return result


def _images_to_judge(
    run: Run, dataset: str | None, offline: bool | None
) -> tuple[Dataset, np.ndarray, str]:
    """The images a run's model is judged on: its dataset's test split, or ``dataset``'s
    (all its images when it has no test split of its own). Returns the dataset (its
    ``x_test``: uint8 (n, h, w, c)), those images' labels as the model's classes (int64
    (n,)) and how the classes were matched ("same", "by name", "by position");
    DataError when the images' shape or classes do not fit the model."""
    from mlplab._backend import keras_importing

    other = dataset is not None and not _same_dataset(dataset, run.config.data.dataset)
    options = at_shape(run.config.data, run.image_shape) if other else run.config.data
    with keras_importing():  # the model needs keras; the data is read meanwhile
        data = read_dataset(options, dataset, offline, whole=other)
    if data.image_shape != run.image_shape:
        raise DataError(
            f"dataset {data.name} has {data.image_shape} images but the model takes "
            f"{run.image_shape} (h, w, c)"
        )
    matched, to_model = _match_classes(data, run.class_names)
    return data, to_model[data.y_test], matched


def embed(
    run: Run | str | Path,
    dataset: str | None = None,
    method: str = "pca",
    sample: int = SAMPLE,
    out: str | Path | None = None,
    offline: bool | None = None,
) -> tuple[LayerViews, Path]:
    """What each layer of a run's model sees (:func:`mlplab.embedding.layer_views`): a
    seeded sample of up to ``sample`` test images (or ``dataset``'s, as :func:`evaluate`
    picks them) placed by their pixels and by each hidden layer's outputs, with ``method``
    "pca" or "tsne", and the k-NN accuracy there. Writes the maps as a PNG to ``out``
    (default RUN/layer_views-METHOD.png, written whole or not at all) and returns the views
    and that path. RunError for an ensemble (its members have the layers)."""
    from mlplab.data.dataset import WHOLE_SPLIT
    from mlplab.embedding import METHODS, layer_views
    from mlplab.model import is_ensemble
    from mlplab.report.plots import layer_views_png

    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if sample < 10:
        raise ConfigError(f"the maps need at least 10 images, not {sample}")
    run = run if isinstance(run, Run) else load_run(run)
    if is_ensemble(run.model):
        raise RunError(f"{run.path} is an ensemble: its members have the layers; embed one of them")
    data, labels, _ = _images_to_judge(run, dataset, offline)
    if not len(labels):
        raise DataError(f"dataset {data.name} has no images to place")
    which = "images" if data.test_split == WHOLE_SPLIT else "test images"
    views = layer_views(run.model, data.x_test, labels, method, sample, which=which)
    path = Path(out) if out is not None else run.path / f"layer_views-{method}.png"
    title = f"{run.config.name} on {data.name}"
    write_named_file(path, layer_views_png(views, run.class_names, title))
    return views, path


def _same_dataset(spec: str, trained_on: str) -> bool:
    """Whether ``spec`` names the dataset the run trained on (then its test split is the
    one images the model has not seen)."""
    from mlplab.data import looks_like_path

    if spec == trained_on:
        return True
    if looks_like_path(spec) and looks_like_path(trained_on):
        return Path(spec).resolve() == Path(trained_on).resolve()
    return False


def _match_classes(data: Dataset, model_classes: Sequence[str]) -> tuple[str, np.ndarray]:
    """How the dataset's classes are the model's ("same", "by name", "by position") and
    the model's label for each of the dataset's: int64 (dataset classes,)."""
    names = [str(name) for name in data.class_names]
    model = [str(name) for name in model_classes]
    if names == model:
        return "same", np.arange(len(model), dtype=np.int64)
    # A folder cannot be named "T-shirt/top": "T-shirt_top" or "t-shirt top" match it too,
    # where that loose form names one class of the model's only.
    loose: dict[str, list[int]] = {}
    for index, name in enumerate(model):
        loose.setdefault(_loose(name), []).append(index)
    found = [_model_class(name, model, loose) for name in names]
    if all(index is not None for index in found):
        return "by name", np.array(found, dtype=np.int64)
    if len(names) == len(model):
        return "by position", np.arange(len(model), dtype=np.int64)
    unknown = ", ".join(
        repr(name) for name, index in zip(names, found, strict=True) if index is None
    )
    known = ", ".join(model[:MODEL_CLASSES_SHOWN]) + (
        ", ..." if len(model) > MODEL_CLASSES_SHOWN else ""
    )
    raise DataError(
        f"dataset {data.name} has classes the model does not know: {unknown} (the model's "
        f"{len(model)}: {known})"
    )


# How many of the model's class names an error about unknown classes lists.
MODEL_CLASSES_SHOWN = 12


def _model_class(name: str, model: list[str], loose: dict[str, list[int]]) -> int | None:
    """The model's class called ``name``, exactly or loosely (:func:`_loose`) if that
    names one class only; None if none."""
    if name in model:
        return model.index(name)
    matches = loose.get(_loose(name), [])
    return matches[0] if len(matches) == 1 else None


def _loose(name: str) -> str:
    """A class name without case, spaces or punctuation: "T-shirt/top" -> "tshirttop"."""
    return "".join(character for character in name.casefold() if character.isalnum())


def predict(
    run: Run | str | Path,
    images: Sequence[str | Path],
    top: int = 3,
    invert: str = "auto",
    frame: bool = True,
    show: str | Path | None = None,
    explain: str | Path | None = None,
    min_probability: float | None = None,
    target_accuracy: float | None = None,
) -> list[dict[str, Any]]:
    """Classify image files with a run's model: one dict per file (see Run.predict_files;
    with ``min_probability``, each says whether it is ``sure``: its probability reaches it;
    ``target_accuracy`` instead picks that threshold as the lowest probability at which the
    run's test answers were this right, :meth:`Run.threshold_for_accuracy`).

    images: image files, or folders of them (every PNG/JPEG/BMP/GIF/WebP under a folder, sorted).
    A file found in a folder that cannot be read is left out with a
    :class:`~mlplab.errors.SkippedFilesWarning` (one for all of them); a file named itself
    that cannot be read is a DataError, as is a folder with nothing readable. Or one CSV of
    pixel rows (:mod:`mlplab.data.pixel_csv`; a label column is left out): a result per
    row, its ``file`` "test.csv:7" and its ``row`` 7 (from 1, as Kaggle's ImageId). Or one
    CSV listing image files (:mod:`mlplab.data.file_list`): a result per listed file (each
    must be there), with its ``row`` and its ``id`` as the list writes it.
    show: also write a PNG here of the images as the model saw them (inverted, levelled,
    framed, resized), each captioned with its file and prediction. explain: also write a PNG
    here of each image beside what its pixels contributed to the predicted class
    (:meth:`Run.explain`).
    """
    from mlplab.data.images import image_files

    if min_probability is not None and target_accuracy is not None:
        raise ConfigError("min_probability and target_accuracy: choose one")
    run = run if isinstance(run, Run) else load_run(run)
    if target_accuracy is not None:
        min_probability, _ = run.threshold_for_accuracy(target_accuracy)
    kind = csv_kind(images)
    if kind == "pixels":
        if show is not None or explain is not None:
            raise ConfigError("show and explain take image files (a CSV's rows are the pixels)")
        sources, pixels = _csv_rows(run, Path(images[0]))
        results = run.classify(sources, pixels, [False] * len(pixels), top, min_probability)
        for row, result in enumerate(results, start=1):
            result["row"] = row
        return results
    ids: list[str] = []
    if kind == "files":
        from mlplab.data.file_list import files_to_predict

        _, rows = files_to_predict(Path(images[0]))
        files, ids = [row.file for row in rows], [row.name for row in rows]
    else:
        files = image_files(images)
    named = {Path(path) for path in images if not Path(path).is_dir()}
    if ids:  # every listed file is named: one missing would shift a submission's rows
        named |= set(files)
    images, pixels, inverted = _readable(run, files, named, invert, frame)
    results = run.classify(images, pixels, inverted, top, min_probability)
    if ids:  # a file list: every file was read (named), so results and ids align
        for row, (result, listed_as) in enumerate(zip(results, ids, strict=True), start=1):
            result["row"], result["id"] = row, listed_as
    captions = [
        f"{Path(r['file']).name}\n{'unsure: ' if r.get('sure') is False else ''}"
        f"{r['label']} {r['probability']:.2f}"
        for r in results
    ]
    height, width = run.image_shape[:2]
    if show is not None:
        from mlplab.report.mosaic import captioned_png

        title = f"{run.config.name}: the images as the model saw them ({height}x{width})"
        write_named_file(Path(show), captioned_png(pixels, captions, title))
    if explain is not None:
        from mlplab.report.mosaic import explained_png

        _, contributions = run.explain(pixels)  # the predicted classes, as in results
        title = (
            f"{run.config.name}: what each pixel contributed to the predicted class "
            f"({height}x{width}; gradient times input)"
        )
        write_named_file(Path(explain), explained_png(pixels, contributions, captions, title))
    return results


def csv_kind(paths: Sequence[str | Path]) -> str | None:
    """What ``predict`` is given: "pixels" (one CSV of pixel rows), "files" (one CSV listing
    image files, :mod:`mlplab.data.file_list`), or None (image files and folders)."""
    from mlplab.data.pixel_csv import is_csv

    if not any(is_csv(path) for path in paths):
        return None
    if len(paths) != 1:
        raise ConfigError("predict takes one CSV at a time, or image files")
    from mlplab.data.file_list import is_file_list

    path = Path(paths[0])
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return "files" if is_file_list(path) else "pixels"


def _csv_rows(run: Run, path: Path) -> tuple[list[str], np.ndarray]:
    """A CSV's rows as the run's images: names "FILE:ROW" (ROW from 1), uint8 (n, h, w, c)."""
    from mlplab.data.pixel_csv import read_pixel_csv

    images = read_pixel_csv(path, labeled=None, image_shape=run.image_shape).images
    return [f"{path}:{row}" for row in range(1, len(images) + 1)], images


def _readable(
    run: Run, files: list[Path], named: set[Path], invert: str, frame: bool
) -> tuple[list[Path], np.ndarray, list[bool]]:
    """``files`` read as :meth:`Run.read_images` does, leaving out those found in a folder
    that cannot be read (one SkippedFilesWarning for them all, as a folder of training
    images skips them), so that one broken file among hundreds costs only itself. Returns
    the files read, their pixels (uint8 (n, h, w, c)) and which were inverted."""
    import warnings

    from mlplab.errors import SkippedFilesWarning

    kept, pixels, inverted, skipped = [], [], [], []
    for file in files:
        try:
            one, flipped = run.read_images([file], invert, frame)
        except DataError as exc:
            if file in named:
                raise
            skipped.append((file, str(exc).split(": ", 1)[-1]))
            continue
        kept.append(file)
        pixels.append(one)
        inverted += flipped
    if skipped:
        path, reason = skipped[0]
        message = f"skipped {len(skipped)} unreadable file(s) (first: {path}: {reason})"
        if not kept:
            raise DataError(f"no readable images: {message}")
        warnings.warn(message, SkippedFilesWarning, stacklevel=3)
    if not pixels:  # no files at all
        return kept, np.zeros((0, *run.image_shape), np.uint8), inverted
    return kept, np.concatenate(pixels), inverted


@dataclass
class _CtrlC:
    """What the first Ctrl-C says: it changes once training is over."""

    message: str = (
        "stopping after this step (within about a second) and writing the run "
        "(Ctrl-C again to abort)"
    )


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave everything alive so far (Keras, JAX, the data: millions of objects) out of
    Python's garbage collections until the block ends.

    Tracing and drawing a run make much short-lived garbage, and each full collection
    would walk that whole heap: 0.5 s of a 7.6 s ``mlplab train`` of Fashion-MNIST went to
    six of them (docs/performance.md). The objects are handed back to the collector at the
    end (``gc.unfreeze``), so a process that trains many runs (``tune``, a notebook) leaks
    nothing: what died meanwhile is collected then."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _stop_on_ctrl_c(stop: Any, stream: TextIO) -> Iterator[_CtrlC]:
    """First Ctrl-C: ask the trainer to stop after this step, and say so. Second: abort
    (KeyboardInterrupt). Set the yielded ``message`` for what the first one says."""
    said = _CtrlC()
    if threading.current_thread() is not threading.main_thread():
        yield said
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if stop.requested:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()
        print(f"\n{said.message}", file=stream, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield said
    finally:
        signal.signal(signal.SIGINT, previous)
