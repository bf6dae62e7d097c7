"""Ensembles: trained runs' networks averaged into one model, written as a run of its own.

Networks trained from different seeds make different mistakes; the mean of their
probabilities makes fewer than any of them (a "deep ensemble", Lakshminarayanan et al.
2017). :func:`ensemble` takes two or more finished runs on the same dataset and test split,
builds one Keras model that averages them (:func:`mlplab.model.ensemble_model`), measures it
on the test split, and writes a run directory like any other — ``model.keras``,
``metrics.json`` (with an ``ensemble`` table: each member's test scores, their mean and
spread, how often they disagree), ``test_predictions.npz``, the report — so that
``evaluate``, ``predict``, ``serve``, ``export``, ``report`` and ``compare`` take it as they
take a run. It has no history of its own: its report draws the members' curves instead.

Its ``config.toml`` is the first member's config under the ensemble's name (what ``predict``
and the report read: the dataset and its options); the ``[meta]`` table names the members
and the command that made it.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mlplab.config import RunConfig
from mlplab.data.dataset import Dataset
from mlplab.errors import RunError
from mlplab.record import RunRecord
from mlplab.runs import CONFIG_FILE, METRICS_FILE, Run, RunWriter, load_run, to_json

ENGINE = "ensemble"
MIN_MEMBERS = 2
# What must be equal in every member's metrics.json "dataset": the same images and classes,
# and the same test split, so that the ensemble's test score is a test score.
SAME_DATA = ("name", "image_shape", "class_names", "test_samples", "test_split")


def ensemble(
    runs: Sequence[Run | str | Path],
    *,
    name: str | None = None,
    out: str | Path = "runs",
    report: bool = True,
    verbose: bool = True,
    stream: TextIO | None = None,
    command: str | None = None,
    offline: bool | None = None,
) -> Run:
    """Average the networks of ``runs`` into one model and write it as a run under ``out``.

    runs: finished run directories (or loaded Runs), at least two, on the same dataset and
    test split; an ensemble is not a member (give its members). name: the run's name
    (default: the members' common name without its ``-seed<S>`` ending, plus
    ``-ensemble``). report: write the plots and report.html. verbose: one line on
    ``stream`` (stderr by default) before the test split is read. Returns the loaded Run;
    RunError naming the run and the reason when a member cannot be used (nothing is
    written then).
    """
    started = time.perf_counter()
    members = _members(runs)
    networks = [run.model for run in members]  # a damaged model.keras stops it here
    name = name or default_name([run.config.name for run in members])
    dataset = _test_split(members, offline)
    if verbose:
        print(
            f"ensemble of {len(members)} runs on {dataset.name}: {len(dataset.y_test)} test images",
            file=stream or sys.stderr,
            flush=True,
        )
    from mlplab.engine import get_predictor
    from mlplab.metrics import classification_metrics
    from mlplab.model import ensemble_model

    model = ensemble_model(networks, name)
    predictor = get_predictor()
    proba = predictor.predict(model, dataset.x_test)
    member_proba = [predictor.predict(network, dataset.x_test) for network in networks]
    summary: dict[str, Any] = {
        "status": "complete",
        "message": None,
        **classification_metrics(dataset.y_test, proba, dataset.class_names),
        "epochs_completed": 0,
        "best_epoch": None,
        "engine": ENGINE,
        # What the members took to train: the ensemble's cost.
        "train_seconds": sum(float(run.metrics.get("train_seconds") or 0.0) for run in members),
        "compile_seconds": None,
        "wall_seconds": None,
        "dataset": {
            **members[0].metrics["dataset"],
            "validation": "each member's own (the ensemble is not validated)",
            "validation_samples": 0,
        },
    }
    summary["ensemble"] = members_facts(
        members, member_proba, dataset.y_test, summary["test_accuracy"]
    )
    config = dataclasses.replace(
        members[0].config,
        name=name,
        description=f"the mean of {len(members)} networks' probabilities (see its members)",
    )
    return _write(
        config,
        model,
        summary,
        members,
        dataset,
        proba,
        predict=lambda x: predictor.predict(model, x),
        out=out,
        report=report,
        command=command or "mlplab.ensemble(...)",
        started=started,
    )


def _write(
    config: RunConfig,
    model: Any,
    summary: dict[str, Any],
    members: Sequence[Run],
    dataset: Dataset,
    proba: np.ndarray,
    *,
    predict: Callable[[np.ndarray], np.ndarray],
    out: str | Path,
    report: bool,
    command: str,
    started: float,
) -> Run:
    """The ensemble's run directory: config.toml, model.keras, the test predictions
    (``proba``: float32 (n, classes)), the report (with ``report``: its pictures,
    explanations and robustness, for which ``predict`` is the model's), and metrics.json
    (``summary``) last."""
    from mlplab.api import versions
    from mlplab.novelty import NOVELTY_FILE, reference_for
    from mlplab.report.build import (
        PREDICTIONS_FILE,
        ReportData,
        explain_mistakes,
        measure_robustness,
        predictions_npz,
        write_report,
    )
    from mlplab.summary import model_summary

    meta = {
        **versions(),
        "engine": ENGINE,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "members": [str(run.path) for run in members],
    }
    writer = RunWriter.create(out, config.name)
    writer.text(CONFIG_FILE, config.to_toml(meta))
    writer.model(model)
    writer.bytes(PREDICTIONS_FILE, predictions_npz(dataset.y_test, proba))
    # Its own novelty reference, from its members' last hidden layers together
    # (mlplab.novelty.feature_model), on the dataset's training images.
    novelty = reference_for(model, dataset.x_train, dataset.x_test, config.train.seed)
    if novelty is not None:
        writer.bytes(NOVELTY_FILE, novelty[0].to_npz())
        summary["novelty"] = novelty[0].facts(novelty[1])
    data = ReportData(
        RunRecord(writer.path, tomllib.loads(config.to_toml(meta)), config, [], summary),
        dataset.y_test,
        proba,
        dataset.x_test,
        dataset.x_train,
        dataset.y_train,
        members=[(run.path.name, run.history) for run in members],
    )
    data.model_summary = model_summary(model)
    summary["model"] = data.model_summary.totals()
    if report:
        explain_mistakes(data, model)
        measure_robustness(data, predict)
        summary["robustness"] = data.robustness
    summary["wall_seconds"] = time.perf_counter() - started  # for the report; final below
    write_report(data, writer, pictures=report)
    summary["wall_seconds"] = time.perf_counter() - started
    # Last, so that an ensemble with metrics.json is a whole one (as for a trained run).
    writer.text(METRICS_FILE, to_json(summary))
    return load_run(writer.path, model=model)


def _members(runs: Sequence[Run | str | Path]) -> list[Run]:
    """The runs loaded and checked: enough of them, each once, none an ensemble or
    diverged, all on the same dataset (RunError naming the run otherwise)."""
    if len(runs) < MIN_MEMBERS:
        raise RunError(f"an ensemble needs at least {MIN_MEMBERS} runs, got {len(runs)}")
    members: list[Run] = []
    seen: dict[Path, Path] = {}
    for given in runs:
        run = given if isinstance(given, Run) else load_run(given)
        where = run.path.resolve()
        if where in seen:
            raise RunError(f"{run.path}: given twice (as {seen[where]} too)")
        seen[where] = run.path
        if run.metrics.get("ensemble"):
            raise RunError(f"{run.path}: is an ensemble already; give its members instead")
        if run.status == "diverged":
            raise RunError(f"{run.path}: diverged (its loss became NaN or infinite); leave it out")
        first = members[0] if members else run
        for key in SAME_DATA:
            mine, theirs = run.metrics["dataset"].get(key), first.metrics["dataset"].get(key)
            if mine != theirs:
                raise RunError(
                    f"{run.path}: dataset {key} {_short(mine)} differs from {first.path}'s "
                    f"{_short(theirs)}: an ensemble's members must share the test split"
                )
        members.append(run)
    return members


def _test_split(members: Sequence[Run], offline: bool | None) -> Dataset:
    """The members' dataset, read now; RunError unless its test split is the one they were
    tested on (the same classes and labels as the first member's test_predictions.npz)."""
    from mlplab._backend import keras_importing
    from mlplab.api import read_dataset
    from mlplab.report.build import PREDICTIONS_FILE

    first = members[0]
    with keras_importing():  # the models' predictions need keras next
        dataset = read_dataset(first.config.data, offline=offline)
    recorded = first.metrics["dataset"]
    same = list(dataset.class_names) == list(recorded["class_names"])
    stored = first.path / PREDICTIONS_FILE
    if same and stored.is_file():
        with np.load(stored, allow_pickle=False) as saved:
            same = np.array_equal(saved["y_true"], dataset.y_test)
    if not same or len(dataset.y_test) != recorded["test_samples"]:
        raise RunError(
            f"{first.path}: the test split of {dataset.name} is not the one this run was "
            "tested on (the dataset changed since): the ensemble could not be scored on it"
        )
    return dataset


def members_facts(
    members: Sequence[Run],
    member_proba: Sequence[np.ndarray],
    y_test: np.ndarray,
    ensemble_accuracy: float,
) -> dict[str, Any]:
    """metrics.json's ``ensemble``: each member's run, name, seed, status and test scores
    (computed again here, on the same images as the ensemble's), their mean, sample
    standard deviation and best accuracy, the ensemble's gain over the mean, and the share
    of test images on which the members do not all predict the same class.

    member_proba: float32 (n, classes) per member; y_test: int (n,).
    """
    from mlplab.metrics import calibration, cross_entropy

    labels = np.stack([proba.argmax(axis=1) for proba in member_proba])  # (members, n)
    rows = []
    for run, proba, predicted in zip(members, member_proba, labels, strict=True):
        rows.append(
            {
                "run": str(run.path),
                "folder": run.path.name,
                "name": run.config.name,
                "seed": run.config.train.seed,
                "status": run.status,
                "test_accuracy": float(np.mean(predicted == y_test)),
                "test_loss": cross_entropy(y_test, proba),
                "calibration_error": calibration(y_test, proba)["ece"],
            }
        )
    accuracies = [row["test_accuracy"] for row in rows]
    mean = statistics.mean(accuracies)
    return {
        "members": rows,
        "member_accuracy_mean": mean,
        "member_accuracy_std": statistics.stdev(accuracies),
        "member_accuracy_best": max(accuracies),
        "gain": ensemble_accuracy - mean,
        "disagreement": float(np.mean((labels != labels[0]).any(axis=0))),
    }


def default_name(names: Sequence[str]) -> str:
    """The members' common name without a ``-seed<S>`` ending (as ``train --seeds`` names
    runs), plus ``-ensemble``; just ``ensemble`` when the names differ."""
    bases = {re.sub(r"-seed\d+$", "", name) for name in names}
    return f"{bases.pop()}-ensemble" if len(bases) == 1 else "ensemble"


def member_folder(record_path: Path, member: dict[str, Any]) -> Path | None:
    """Where a member recorded in ``metrics.json`` is now: its path as recorded (relative
    to where the ensemble was made), else a folder of its name beside the ensemble's; None
    when neither holds a run."""
    for candidate in (Path(str(member.get("run", ""))), record_path.parent / str(member["folder"])):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
