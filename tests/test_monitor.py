"""``train.monitor``: early stopping, the best epoch and the plateau schedule by val_loss or
val_accuracy."""

import types

import numpy as np
import pytest

import mlplab
from mlplab.checkpoint import watched, watched_name
from mlplab.cli import main
from mlplab.config import TrainConfig
from mlplab.engine import EpochMonitor, SilentListener, StopRequest
from mlplab.report.html import _history_table
from mlplab.report.plots import best_epoch

from .test_engine import FakeModel

# The validation loss is lowest at epoch 1; the validation accuracy highest at epoch 3.
EPOCHS = [
    {"loss": 1.0, "accuracy": 0.5, "val_loss": 0.40, "val_accuracy": 0.80},
    {"loss": 0.8, "accuracy": 0.6, "val_loss": 0.45, "val_accuracy": 0.85},
    {"loss": 0.6, "accuracy": 0.7, "val_loss": 0.50, "val_accuracy": 0.90},
    {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.55, "val_accuracy": 0.90},
    {"loss": 0.4, "accuracy": 0.9, "val_loss": 0.60, "val_accuracy": 0.88},
]


def _run(monitor, epochs=EPOCHS, **keys):
    model = FakeModel()
    model.optimizer = types.SimpleNamespace(learning_rate=0.1)
    config = TrainConfig(monitor=monitor, epochs=10, **keys)
    monitor_ = EpochMonitor(model, config, StopRequest())
    heard = []
    listener = SilentListener()
    listener.on_message = heard.append
    for epoch, stats in enumerate(epochs, start=1):
        model.weights = [np.array(float(epoch))]
        stop = monitor_.end_epoch({"epoch": epoch, "lr": model.optimizer.learning_rate, **stats})
        monitor_.tell(listener)
        if stop:
            break
    return monitor_.finish(), model, heard


@pytest.mark.parametrize(("monitor", "best"), [("val_loss", 1), ("val_accuracy", 3)])
def test_early_stopping_restores_the_best_epoch_by_the_monitor(monitor, best):
    result, model, _ = _run(monitor, patience=2)
    assert result.status == "early_stopped" and result.best_epoch == best
    assert float(model.weights[0]) == best  # its weights restored
    # An equal accuracy (epoch 4) is no gain: patience counts it.
    assert len(result.history) == best + 2
    assert f"no better {monitor} for 2 epochs; restored epoch {best}" in result.message


def test_without_validation_the_training_images_are_watched():
    epochs = [{k: v for k, v in row.items() if not k.startswith("val_")} for row in EPOCHS]
    accuracy = [-watched(stats, "val_accuracy") for stats in epochs]
    assert accuracy == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert watched_name(epochs[0], "val_accuracy") == "accuracy"
    assert watched_name(EPOCHS[0], "val_accuracy") == "val_accuracy"
    result, _, _ = _run("val_accuracy", epochs, patience=1)
    assert result.status == "complete" and result.best_epoch == 5


def test_the_plateau_schedule_watches_the_monitor():
    _, model, heard = _run("val_accuracy", schedule="plateau", plateau_patience=2, step_factor=0.5)
    # Epochs 4 and 5 are not above epoch 3's 0.90: the cut comes after epoch 5.
    assert heard == ["epoch 5: val_accuracy not above 0.9 for 2 epochs: learning rate 0.1 -> 0.05"]
    assert model.optimizer.learning_rate == 0.05


def test_the_report_marks_the_monitors_best_epoch():
    history = [{"epoch": i, **row} for i, row in enumerate(EPOCHS, start=1)]
    assert best_epoch(history)["epoch"] == 1
    assert best_epoch(history, "val_accuracy")["epoch"] == 3  # the first of the equal best
    page = _history_table(history, "val_accuracy")
    assert "Highlighted: the epoch with the best validation accuracy." in page
    [best_row] = [row for row in page.split("<tr") if 'class="best"' in row]
    assert ">3<" in best_row


def test_a_run_stopped_by_val_accuracy_keeps_its_most_accurate_epoch(tmp_path):
    keys = {
        "train.monitor": "val_accuracy",
        "train.patience": 2,
        "train.epochs": 30,
        "train.learning_rate": 0.01,
        "model.dropout": 0.0,
    }
    run = mlplab.train(overrides=keys, out=tmp_path, verbose=False, report=False)
    accuracy = [row["val_accuracy"] for row in run.history]
    assert run.status == "early_stopped"
    assert run.metrics["best_epoch"] == int(np.argmax(accuracy)) + 1
    assert run.config.train.monitor == "val_accuracy"


def test_a_bad_monitor_is_one_line(capsys, tmp_path):
    assert main(["train", "--set", "train.monitor=accuracy", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.monitor" in err and "val_accuracy" in err


def test_the_checkpointer_keeps_the_monitors_best_weights(tmp_path):
    import keras

    from mlplab.checkpoint import Checkpointer, TrainingState
    from mlplab.runs import RunWriter

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    saver = Checkpointer(
        SilentListener(), RunWriter(tmp_path), model, 3600.0, 1, monitor="val_accuracy"
    )
    for epoch, stats in enumerate(EPOCHS[:3], start=1):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        saver.on_epoch_end({"epoch": epoch, **stats})
    saver.finish("interrupted")
    state = TrainingState.read(tmp_path / "resume.npz")
    assert (state.best_weights[0] == 3.0).all()  # the most accurate; val_loss was lowest at 1


@pytest.mark.parametrize(("monitor", "best"), [("val_loss", 1), ("val_accuracy", 3)])
def test_keep_best_ends_a_whole_run_with_the_best_epochs_weights(monitor, best):
    result, model, _ = _run(monitor, keep_best=True)
    assert result.status == "complete" and len(result.history) == 5
    assert float(model.weights[0]) == best and result.best_epoch == best
    assert (
        result.message == f"kept the weights of epoch {best}, the best {monitor} (train.keep_best)"
    )
    result, model, _ = _run(monitor)  # without it: the last epoch's
    assert float(model.weights[0]) == 5 and result.message == ""


def test_keep_best_leaves_a_stopped_run_as_it_was_for_resume():
    model = FakeModel()
    stop = StopRequest()
    monitor = EpochMonitor(model, TrainConfig(keep_best=True, epochs=10), stop)
    for epoch, stats in enumerate(EPOCHS[:3], start=1):
        model.weights = [np.array(float(epoch))]
        if epoch == 3:
            stop.set()
        monitor.end_epoch({"epoch": epoch, "lr": 0.1, **stats})
    result = monitor.finish()
    assert result.status == "interrupted" and float(model.weights[0]) == 3.0


def test_a_keep_best_run_is_tested_with_its_best_epoch(tmp_path):
    keys = {"train.keep_best": True, "train.epochs": 12, "train.learning_rate": 0.01}
    keys["model.dropout"] = 0.0
    kept = mlplab.train(overrides=keys, out=tmp_path / "kept", verbose=False)
    last = mlplab.train(
        overrides={**keys, "train.keep_best": False},
        out=tmp_path / "last",
        verbose=False,
        report=False,
    )
    losses = [row["val_loss"] for row in kept.history]
    best = int(np.argmin(losses)) + 1
    assert kept.metrics["best_epoch"] == best < 12, "the test needs a best epoch before the last"
    assert "kept the weights of epoch" in kept.metrics["message"]
    status = (kept.path / "report.txt").read_text().splitlines()[1]
    assert status == f"status: complete ({kept.metrics['message']})"
    # The same training (deterministic); only the model it ends with differs.
    assert [r["loss"] for r in kept.history] == [r["loss"] for r in last.history]
    assert kept.metrics["test_loss"] != last.metrics["test_loss"]


def test_a_resumed_keep_best_run_ends_with_the_same_best_epoch(tmp_path, monkeypatch):
    from .test_resume import _same_training, _stop_after, ctrl_c

    # Too high a rate: the validation loss is lowest at epoch 1 and never as low again.
    keys = {"train.keep_best": True, "train.epochs": 8, "train.learning_rate": 0.03}
    unbroken = mlplab.train(overrides=keys, out=tmp_path / "a", verbose=False, report=False)
    assert unbroken.metrics["best_epoch"] <= 3, "the test needs the best epoch before the stop"
    _stop_after(monkeypatch, 2, ctrl_c)
    stopped = mlplab.train(overrides=keys, out=tmp_path / "b", verbose=False, report=False)
    monkeypatch.undo()
    assert stopped.status == "interrupted"
    resumed = mlplab.resume(stopped.path, verbose=False, report=False)
    _same_training(resumed, unbroken)  # the weights too: the best epoch's, kept across


# --- train.min_delta: a gain must be larger than this to count ----------------------------

# Small gains in val_loss (0.005 an epoch from epoch 2 on) after a large one.
CREEPING = [
    {"loss": 1.0 - 0.1 * i, "accuracy": 0.5, "val_loss": value, "val_accuracy": 0.8}
    for i, value in enumerate([0.50, 0.40, 0.395, 0.390, 0.385, 0.380])
]


def test_min_delta_ignores_gains_below_it_for_early_stopping_and_the_best_epoch():
    result, model, _ = _run("val_loss", CREEPING, patience=2)
    assert result.status == "complete" and result.best_epoch == 6  # every gain counts
    result, model, _ = _run("val_loss", CREEPING, patience=2, min_delta=0.01)
    # Epochs 3 and 4 beat epoch 2's 0.40 by less than 0.01: patience runs out after 4.
    assert result.status == "early_stopped" and result.best_epoch == 2
    assert float(model.weights[0]) == 2 and len(result.history) == 4
    assert "no better val_loss by more than 0.01 (train.min_delta) for 2 epochs" in (result.message)
    # The report marks the epoch training kept, not the lowest value (epoch 4's).
    history = result.history
    assert best_epoch(history, "val_loss", 0.01)["epoch"] == 2
    assert best_epoch(history, "val_loss")["epoch"] == 4
    # Had it gone on: epoch 5 (0.385) beats epoch 2's 0.40 by more than 0.01.
    whole = [{"epoch": i, **row} for i, row in enumerate(CREEPING, start=1)]
    assert best_epoch(whole, "val_loss", 0.01)["epoch"] == 5
    page = _history_table(history, "val_loss", 0.01)
    [best_row] = [row for row in page.split("<tr") if 'class="best"' in row]
    assert ">2<" in best_row


def test_min_delta_holds_back_the_plateau_schedule():
    _, _, heard = _run("val_loss", CREEPING, schedule="plateau", plateau_patience=2, min_delta=0.01)
    assert heard == [
        "epoch 4: val_loss not below 0.4 by more than 0.01 (train.min_delta) for 2 epochs: "
        "learning rate 0.1 -> 0.01"
    ]
    _, _, heard = _run("val_loss", CREEPING, schedule="plateau", plateau_patience=2)
    assert heard == []


def test_min_delta_is_kept_through_a_resume(tmp_path, monkeypatch):
    from .test_resume import _same_training, _stop_after, ctrl_c

    keys = {"train.epochs": 8, "train.patience": 2, "train.min_delta": 0.02}
    unbroken = mlplab.train(overrides=keys, out=tmp_path, verbose=False, report=False)
    _stop_after(monkeypatch, 2, ctrl_c)
    stopped = mlplab.train(overrides=keys, out=tmp_path, verbose=False, report=False)
    monkeypatch.undo()
    resumed = mlplab.resume(stopped.path, verbose=False, report=False)
    _same_training(unbroken, resumed)
    assert resumed.metrics["best_epoch"] == unbroken.metrics["best_epoch"]


def test_a_negative_min_delta_is_one_line(capsys):
    assert main(["train", "--set", "train.min_delta=-0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlplab: error: train.min_delta = -0.1") and len(err.splitlines()) == 1
