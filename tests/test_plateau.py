"""``train.schedule = "plateau"``: the rule, the monitor that applies it, and both engines."""

import types

import numpy as np
import pytest

import mlplab
from mlplab.cli import main
from mlplab.config import TrainConfig
from mlplab.engine import EpochMonitor, SilentListener, StartPoint, StopRequest
from mlplab.errors import ConfigError
from mlplab.plateau import PlateauCutter

from .test_engine import FakeModel
from .test_resume import _stop_after, ctrl_c


def test_the_rate_is_cut_after_patience_epochs_without_a_new_lowest_loss():
    cutter = PlateauCutter(patience=2, factor=0.5)
    decisions = [cutter.after_epoch(loss, 1.0) for loss in [1.0, 0.9, 0.95, 0.9]]
    # 0.9 equal to the best is not a fall.
    assert decisions == [None, None, None, 0.5]
    # The count starts again after a cut; the lowest loss stays.
    assert [cutter.after_epoch(loss, 0.5) for loss in [0.91, 0.92]] == [None, 0.25]
    # A new lowest loss resets the count.
    assert [cutter.after_epoch(loss, 0.25) for loss in [0.8, 0.85, 0.7]] == [None, None, None]


def test_a_cut_stops_at_the_floor():
    cutter = PlateauCutter(patience=1, factor=0.1, floor=0.003)
    assert cutter.after_epoch(1.0, 0.01) is None
    assert cutter.after_epoch(1.0, 0.01) == 0.003
    # The optimizer keeps the rate as float32: the floor it holds counts as reached.
    assert cutter.after_epoch(1.0, float(np.float32(0.003))) is None
    assert cutter.after_epoch(1.0, float(np.float32(0.003))) is None


class _Heard(SilentListener):
    def __init__(self):
        self.lines = []

    def on_message(self, text):
        self.lines.append(text)


def _plateau_config(**keys):
    settings = {"plateau_patience": 2, "step_factor": 0.5, "epochs": 6, "learning_rate": 0.1}
    return TrainConfig(schedule="plateau", **{**settings, **keys})


def _model_with_rate(rate):
    model = FakeModel()
    model.optimizer = types.SimpleNamespace(learning_rate=rate)
    return model


def _end(monitor, model, epoch, val_loss, listener):
    stop = monitor.end_epoch(
        {"epoch": epoch, "loss": 1.0, "val_loss": val_loss, "lr": model.optimizer.learning_rate}
    )
    monitor.tell(listener)
    return stop


def test_the_monitor_cuts_the_optimizers_rate_and_says_so_after_the_epoch():
    model, heard = _model_with_rate(0.1), _Heard()
    monitor = EpochMonitor(model, _plateau_config(), StopRequest())
    for epoch, val_loss in enumerate([1.0, 1.1, 1.2], start=1):
        assert not _end(monitor, model, epoch, val_loss, heard)
    assert model.optimizer.learning_rate == 0.05 and monitor.rate_cut == 0.05
    assert heard.lines == ["epoch 3: val_loss not below 1 for 2 epochs: learning rate 0.1 -> 0.05"]
    _end(monitor, model, 4, 0.5, heard)
    assert monitor.rate_cut is None and len(heard.lines) == 1
    result = monitor.finish()
    assert [row["lr"] for row in result.history] == [0.1, 0.1, 0.1, 0.05]


def test_no_cut_after_the_last_epoch_and_none_with_other_schedules():
    model = _model_with_rate(0.1)
    monitor = EpochMonitor(model, _plateau_config(epochs=3), StopRequest())
    for epoch, val_loss in enumerate([1.0, 1.1, 1.2], start=1):
        _end(monitor, model, epoch, val_loss, SilentListener())
    assert model.optimizer.learning_rate == 0.1
    model = _model_with_rate(0.1)
    monitor = EpochMonitor(model, TrainConfig(epochs=6), StopRequest())
    for epoch, val_loss in enumerate([1.0, 1.1, 1.2, 1.3], start=1):
        _end(monitor, model, epoch, val_loss, SilentListener())
    assert model.optimizer.learning_rate == 0.1


def test_an_interrupted_epoch_still_cuts_and_a_resume_carries_the_count_on():
    model, stop = _model_with_rate(0.1), StopRequest()
    monitor = EpochMonitor(model, _plateau_config(), stop)
    _end(monitor, model, 1, 1.0, SilentListener())
    _end(monitor, model, 2, 1.1, SilentListener())
    stop.set()
    assert _end(monitor, model, 3, 1.2, SilentListener())
    # The run that goes on has the cut rate: the stopped one cut it before stopping.
    assert model.optimizer.learning_rate == 0.05
    history = monitor.finish().history
    resumed = EpochMonitor(model, _plateau_config(), StopRequest(), StartPoint(history))
    _end(resumed, model, 4, 1.3, SilentListener())
    assert model.optimizer.learning_rate == 0.05  # one epoch of the new count
    _end(resumed, model, 5, 1.4, SilentListener())
    assert model.optimizer.learning_rate == 0.025


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"train.schedule": "plateau", "train.min_learning_rate": 0.01},
            "train.min_learning_rate = 0.01 leaves the plateau schedule nothing to cut: it "
            "must be below train.learning_rate = 0.001",
        ),
        ({"train.plateau_patience": 0}, "train.plateau_patience"),
        ({"train.step_factor": 1.5}, "train.step_factor"),
    ],
)
def test_bad_plateau_settings_are_one_line(capsys, tmp_path, keys, message):
    sets = [arg for key, value in keys.items() for arg in ("--set", f"{key}={value}")]
    assert main(["train", *sets, "--out", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not list(tmp_path.iterdir())
    with pytest.raises(ConfigError):
        mlplab.train(overrides=keys, out=tmp_path, verbose=False)


# lr 0.01 without dropout: the digits network's validation loss stops falling within a few
# epochs; a cut to a millionth then all but freezes the weights.
CUTTING = {
    "train.schedule": "plateau",
    "train.plateau_patience": 1,
    "train.step_factor": 1e-6,
    "train.learning_rate": 0.01,
    "train.epochs": 8,
    "model.dropout": 0.0,
}


@pytest.mark.parametrize("engine", ["auto", "fit"])
def test_both_engines_train_at_the_cut_rate(tmp_path, engine):
    run = mlplab.train(
        overrides={**CUTTING, "train.engine": engine}, out=tmp_path, verbose=False, report=False
    )
    rates = [row["lr"] for row in run.history]
    # The history's rates are the rule's, replayed over its validation losses.
    cutter, expected = PlateauCutter(patience=1, factor=1e-6), [0.01]
    for row in run.history[:-1]:
        cut = cutter.after_epoch(row["val_loss"], expected[-1])
        expected.append(expected[-1] if cut is None else float(np.float32(cut)))
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    first_cut = next(i for i, rate in enumerate(rates) if rate < 0.01)
    assert first_cut < len(rates) - 1, "the test needs a cut before the last two epochs"
    # Trained at 1e-8, the network no longer moves; at 0.01 it did every epoch.
    frozen = [row["val_loss"] for row in run.history[first_cut:]]
    assert max(frozen) - min(frozen) < 1e-4
    moving = [row["val_loss"] for row in run.history[: first_cut + 1]]
    assert max(moving) - min(moving) > 1e-2


def test_a_plateau_run_resumed_after_a_cut_equals_one_that_never_stopped(tmp_path, monkeypatch):
    keys = {**CUTTING, "train.step_factor": 0.3, "train.epochs": 7}
    unbroken = mlplab.train(overrides=keys, out=tmp_path / "a", verbose=False, report=False)
    rates = [row["lr"] for row in unbroken.history]
    # Cuts on both sides of the stop (the fused engine stops after epoch 3).
    assert rates[3] < rates[0] and rates[-1] < rates[3]
    _stop_after(monkeypatch, 2, ctrl_c)
    stopped = mlplab.train(overrides=keys, out=tmp_path / "b", verbose=False, report=False)
    monkeypatch.undo()
    assert stopped.status == "interrupted" and len(stopped.history) == 3
    resumed = mlplab.resume(stopped.path, verbose=False, report=False)
    assert [row["lr"] for row in resumed.history] == rates
    assert [row["val_loss"] for row in resumed.history] == [
        row["val_loss"] for row in unbroken.history
    ]


def test_the_cut_is_a_line_after_its_epoch(capsys, tmp_path):
    sets = [arg for key, value in CUTTING.items() for arg in ("--set", f"{key}={value}")]
    assert main(["train", *sets, "--out", str(tmp_path), "--no-report"]) == 0
    lines = capsys.readouterr().err.splitlines()
    [at] = [i for i, line in enumerate(lines) if "learning rate 0.01 -> 1e-08" in line]
    epoch = lines[at].split(":")[0]  # "epoch N"
    assert lines[at - 1].startswith(epoch + "/8 ")


@pytest.mark.parametrize("engine", ["auto", "fit"])
def test_the_history_records_the_rate_each_epoch_trained_at(tmp_path, engine):
    # A step schedule's cut after epoch 2 shows from epoch 3 on, with either engine (fit's
    # optimizer.learning_rate is the next step's rate: it showed the cut one epoch early).
    keys = {"train.schedule": "step", "train.step_epochs": 2, "train.epochs": 4}
    run = mlplab.train(
        overrides={**keys, "train.engine": engine}, out=tmp_path, verbose=False, report=False
    )
    np.testing.assert_allclose([row["lr"] for row in run.history], [1e-3, 1e-3, 1e-4, 1e-4])


def test_the_curves_mark_the_cuts_of_step_and_plateau_schedules():
    from mlplab.report.plots import rate_cuts

    history = [{"epoch": e, "lr": lr} for e, lr in enumerate([0.1, 0.1, 0.01, 0.01, 1e-3], 1)]
    assert rate_cuts(history, "plateau") == rate_cuts(history, "step") == [2, 4]
    assert rate_cuts(history, "cosine") == []


def test_the_reports_history_table_shows_small_rates():
    from mlplab.report.html import _history_table

    page = _history_table(
        [{"epoch": 1, "loss": 1.0, "lr": 0.001}, {"epoch": 2, "loss": 1.0, "lr": 1e-8}]
    )
    assert ">0.001<" in page and ">1e-08<" in page  # not 0.000000


def test_a_patience_of_one_is_one_epoch():
    model, heard = _model_with_rate(0.1), _Heard()
    monitor = EpochMonitor(model, _plateau_config(plateau_patience=1), StopRequest())
    _end(monitor, model, 1, 1.0, heard)
    _end(monitor, model, 2, 1.0, heard)
    assert heard.lines == ["epoch 2: val_loss not below 1 for 1 epoch: learning rate 0.1 -> 0.05"]


def test_the_curves_get_a_learning_rate_panel_when_the_rate_changed():
    import io

    from PIL import Image

    from mlplab.report.plots import curves_png, rate_cuts

    def width(rates):
        history = [
            {"epoch": e, "loss": 1.0 / e, "accuracy": 0.5, "lr": lr}
            for e, lr in enumerate(rates, 1)
        ]
        return Image.open(io.BytesIO(curves_png(history, "t", rate_cuts(history, "step")))).width

    constant, cut = width([0.1, 0.1, 0.1]), width([0.1, 0.1, 0.01])
    assert cut > constant * 1.2  # the third panel
    assert width([0.1, 0.05, 0.01]) == cut  # a schedule that changes every epoch too
