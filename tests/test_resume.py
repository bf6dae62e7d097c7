"""Going on with a stopped run: Ctrl-C or a kill, then ``mlplab resume`` (digits, real training)."""

import io
import os
import signal
import time

import numpy as np
import pytest

import mlplab
from mlplab import RunError, progress
from mlplab.checkpoint import TrainingState
from mlplab.cli import main
from mlplab.config import TrainConfig
from mlplab.engine import EpochMonitor, StartPoint, StopRequest

from .test_engine import FakeModel

# Everything with random state or a step count in it: dropout, augmentation, a warm-up and
# cosine schedule, weight averaging.
HARD = {
    "train.epochs": 6,
    "model.dropout": 0.2,
    "augment.translate": 1,
    "train.schedule": "cosine",
    "train.warmup_epochs": 1.0,
    "train.ema": 0.9,
    "train.learning_rate": 0.01,
}


class _After:
    """Wraps the progress listener: calls ``action`` once epoch ``epoch`` has been shown."""

    def __init__(self, inner, epoch, action):
        self.inner, self.epoch, self.action = inner, epoch, action

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def on_epoch_end(self, stats):
        self.inner.on_epoch_end(stats)
        if stats["epoch"] == self.epoch:
            self.action()


def _stop_after(monkeypatch, epoch, action):
    real = progress.make_listener
    monkeypatch.setattr(progress, "make_listener", lambda *a: _After(real(*a), epoch, action))


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def crash():
    raise RuntimeError("simulated kill")


def _same_training(a: mlplab.Run, b: mlplab.Run) -> None:
    assert [row["loss"] for row in a.history] == [row["loss"] for row in b.history]
    assert [row.get("val_loss") for row in a.history] == [row.get("val_loss") for row in b.history]
    for x, y in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    return mlplab.train(
        overrides=HARD, out=tmp_path_factory.mktemp("unbroken"), verbose=False, report=False
    )


def test_ctrl_c_then_resume_equals_a_run_that_never_stopped(tmp_path, monkeypatch, unbroken):
    _stop_after(monkeypatch, 2, ctrl_c)
    stopped = mlplab.train(overrides=HARD, out=tmp_path, verbose=False, report=False)
    monkeypatch.undo()
    # The request comes after epoch 2 is shown; the fused engine finishes epoch 3 (one call).
    assert stopped.status == "interrupted" and len(stopped.history) == 3
    assert (stopped.path / "resume.npz").is_file()

    resumed = mlplab.resume(stopped.path, verbose=False, report=False, command="test")
    assert resumed.path == stopped.path and resumed.status == "complete"
    _same_training(resumed, unbroken)
    assert resumed.metrics["resumed_after_epoch"] == 3
    assert resumed.meta["resumed_after_epoch"] == 3 and resumed.meta["resume_command"] == "test"
    assert resumed.meta["command"] == "mlplab.train(...)"  # the first command stays
    assert not (resumed.path / "resume.npz").exists()
    with pytest.raises(RunError, match="ended with status 'complete'"):
        mlplab.resume(resumed.path, verbose=False)


def test_a_killed_run_goes_on_from_its_last_checkpoint(tmp_path, monkeypatch, capsys, unbroken):
    _stop_after(monkeypatch, 3, crash)
    with pytest.raises(RuntimeError, match="simulated kill"):
        mlplab.train(overrides=HARD, out=tmp_path, verbose=False, checkpoint_seconds=0)
    monkeypatch.undo()
    [run_dir] = list(tmp_path.iterdir())
    # Killed while epoch 3 was being shown: epochs 1-2 were saved.
    names = {p.name for p in run_dir.iterdir()}
    assert names == {"config.toml", "history.csv", "checkpoint.keras", "resume.npz"}
    assert TrainingState.read(run_dir / "resume.npz").epoch == 2
    with pytest.raises(RunError, match=f"go on with: mlplab resume {run_dir}"):
        mlplab.load_run(run_dir)
    assert main(["runs", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "incomplete" in listing and f"`mlplab resume RUN`: {run_dir.name}" in listing

    resumed = mlplab.resume(run_dir, verbose=False, command="mlplab resume X")
    assert resumed.status == "complete" and resumed.metrics["resumed_after_epoch"] == 2
    _same_training(resumed, unbroken)
    page = (run_dir / "report.html").read_text()
    assert "resumed after epoch 2" in page and "mlplab resume X" in page
    assert not (run_dir / "checkpoint.keras").exists()


def test_a_fit_engine_run_resumes_from_its_last_complete_epoch(tmp_path, monkeypatch):
    overrides = {"train.epochs": 4, "train.engine": "fit", "model.dropout": 0.2}
    _stop_after(monkeypatch, 2, ctrl_c)
    stopped = mlplab.train(overrides=overrides, out=tmp_path, verbose=False, report=False)
    monkeypatch.undo()
    # model.fit stops within epoch 3, which is then left out.
    assert stopped.status == "interrupted" and len(stopped.history) == 2
    resumed = mlplab.resume(stopped.path, verbose=False, report=False)
    assert resumed.status == "complete" and [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[:2] == stopped.history
    assert resumed.metrics["test_accuracy"] > 0.8


def test_resume_from_the_command_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _stop_after(monkeypatch, 1, ctrl_c)
    code = main(["train", "--epochs", "3", "-q"])
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    out = capsys.readouterr().out
    assert code == 130 and "go on with: mlplab resume runs/" in out
    code = main(["resume", "last", "-q", "--no-report"])
    out = capsys.readouterr().out
    assert code == 0 and "status: complete" in out and "go on with" not in out
    [run_dir] = list((tmp_path / "runs").iterdir())
    resumed = mlplab.load_run(run_dir)
    assert len(resumed.history) == 3
    # "last" is recorded as the run it named: repeated later, it must not take another run.
    relative = run_dir.relative_to(tmp_path)
    assert resumed.meta["resume_command"] == f"mlplab resume {relative} -q --no-report"
    # The interrupted run's pictures went with it (this resume drew none).
    assert not (run_dir / "report.html").exists() and not (run_dir / "curves.png").exists()
    # Nothing left to go on from:
    code = main(["resume", "last"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no interrupted or aborted runs here to take as 'last'" in err


def test_a_stop_during_the_last_epoch_leaves_a_complete_run(tmp_path, monkeypatch):
    # Ctrl-C while epoch 3 of 3 runs (as one compiled call): it finishes, nothing is left.
    _stop_after(monkeypatch, 2, ctrl_c)
    run = mlplab.train(overrides={"train.epochs": 3}, out=tmp_path, verbose=False, report=False)
    assert run.status == "complete" and len(run.history) == 3
    assert "the stop came during the last epoch (3)" in run.metrics["message"]
    assert not (run.path / "resume.npz").exists()


class _AtLastBatch(_After):
    """Calls ``action`` once the last batch of epoch ``epoch`` has ended (fit engine)."""

    def on_train_begin(self, epochs, steps_per_epoch):
        self.steps = steps_per_epoch
        self.inner.on_train_begin(epochs, steps_per_epoch)

    def on_batch_end(self, epoch, step):
        self.inner.on_batch_end(epoch, step)
        if epoch == self.epoch and step == self.steps:
            self.action()

    def on_epoch_end(self, stats):
        self.inner.on_epoch_end(stats)


@pytest.mark.parametrize(
    ("stop_in", "status", "epochs"), [(1, "interrupted", 1), (3, "complete", 3)]
)
def test_with_the_fit_engine_a_stop_in_an_epochs_last_batch_keeps_that_epoch(
    tmp_path, monkeypatch, stop_in, status, epochs
):
    real = progress.make_listener
    monkeypatch.setattr(
        progress, "make_listener", lambda *a: _AtLastBatch(real(*a), stop_in, ctrl_c)
    )
    overrides = {"train.epochs": 3, "train.engine": "fit"}
    run = mlplab.train(overrides=overrides, out=tmp_path, verbose=False, report=False)
    assert run.status == status and [r["epoch"] for r in run.history] == list(range(1, epochs + 1))


def test_a_ctrl_c_while_the_run_is_written_waits_for_it(tmp_path, monkeypatch):
    from mlplab.report import build

    real = build.write_report

    def interrupted_write(*args, **kwargs):
        ctrl_c()
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "write_report", interrupted_write)
    said = io.StringIO()
    run = mlplab.train(overrides={"train.epochs": 1}, out=tmp_path, stream=said, report=False)
    assert "training is over: writing the run first" in said.getvalue()
    assert run.status == "complete" and (run.path / "metrics.json").is_file()


@pytest.mark.parametrize(
    "drawing",
    # The plots of the predictions and those of the measurements (both drawn on a thread
    # during the measurements after training), and a measurement itself.
    ["prediction_plots", "measured_plots", "measure_robustness"],
)
def test_a_second_ctrl_c_while_the_pictures_are_drawn_keeps_the_run(tmp_path, monkeypatch, drawing):
    from mlplab.report import build

    def two_ctrl_cs(*args, **kwargs):
        ctrl_c()  # the first: training is over, the run is being written
        # Apart, as a person presses them: two signals sent at once from another thread
        # reach the main thread's handler as one.
        time.sleep(0.3)
        ctrl_c()  # the second: give up the pictures
        time.sleep(5)  # on the drawing thread, the main thread gets the KeyboardInterrupt
        raise AssertionError("not reached: the second Ctrl-C raises KeyboardInterrupt")

    monkeypatch.setattr(build, drawing, two_ctrl_cs)
    said = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        mlplab.train(overrides={"train.epochs": 1}, out=tmp_path, stream=said)
    [path] = tmp_path.iterdir()
    assert f"the run is written without its pictures: draw them with mlplab report {path}" in (
        said.getvalue()
    )
    run = mlplab.load_run(path)
    assert run.status == "complete" and len(run.history) == 1
    assert (path / "report.txt").is_file() and not (path / "report.html").exists()
    monkeypatch.undo()
    assert mlplab.report_run(path).html.is_file()


@pytest.fixture
def stopped_run(tmp_path, monkeypatch):
    """A digits run interrupted after 2 of 4 epochs."""
    _stop_after(monkeypatch, 1, ctrl_c)
    run = mlplab.train(overrides={"train.epochs": 4}, out=tmp_path, verbose=False, report=False)
    monkeypatch.undo()
    assert run.status == "interrupted" and len(run.history) == 2
    return run.path


def test_a_damaged_resume_state_is_one_clear_error(capsys, stopped_run):
    (stopped_run / "resume.npz").write_bytes(b"PK\x03\x04 not really")
    capsys.readouterr()  # the fixture's Ctrl-C message
    code = main(["resume", str(stopped_run), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"{stopped_run / 'resume.npz'}: unreadable resume state" in err


def test_an_edited_config_does_not_resume(stopped_run):
    config = stopped_run / "config.toml"
    config.write_text(config.read_text().replace("hidden = [", "hidden = [32, "))
    with pytest.raises(RunError, match="does not fit the network .* config.toml edited"):
        mlplab.resume(stopped_run, verbose=False)


def test_a_history_that_lost_epochs_does_not_resume(stopped_run):
    history = stopped_run / "history.csv"
    history.write_text(history.read_text().splitlines()[0] + "\n")
    with pytest.raises(RunError, match="does not hold the 2 epochs"):
        mlplab.resume(stopped_run, verbose=False)


def test_runs_that_cannot_go_on_say_why(tmp_path, digits_run):
    with pytest.raises(RunError, match="ended with status 'complete'"):
        mlplab.resume(digits_run.path, verbose=False)
    aborted = tmp_path / "aborted"
    aborted.mkdir()
    (aborted / "config.toml").write_text((digits_run.path / "config.toml").read_text())
    with pytest.raises(RunError, match="stopped before its first checkpoint"):
        mlplab.resume(aborted, verbose=False)
    with pytest.raises(RunError, match="no such run directory"):
        mlplab.resume(tmp_path / "nothing", verbose=False)


def test_early_stopping_carries_on_across_a_resume():
    """Patience counts the epochs before the resume; the best weights come from the state."""
    model = FakeModel()
    history = [{"epoch": e, "loss": v, "val_loss": v} for e, v in ((1, 1.0), (2, 0.5), (3, 0.6))]
    start = StartPoint(history, best_weights=[np.array(2.0)])
    monitor = EpochMonitor(model, TrainConfig(patience=2), StopRequest(), start)
    model.weights = [np.array(4.0)]
    assert monitor.end_epoch({"epoch": 4, "loss": 0.7, "val_loss": 0.7})
    result = monitor.finish()
    assert result.status == "early_stopped" and result.best_epoch == 2
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert float(model.weights[0]) == 2.0


def test_the_checkpointer_keeps_the_best_weights_and_keeps_state_only_when_interrupted(
    tmp_path,
):
    import keras

    from mlplab.checkpoint import Checkpointer
    from mlplab.engine import SilentListener
    from mlplab.runs import RunWriter

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    saver = Checkpointer(SilentListener(), RunWriter(tmp_path), model, 3600.0, track_best=True)
    for epoch, loss in ((1, 1.0), (2, 2.0)):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        saver.on_epoch_end({"epoch": epoch, "loss": loss})
    assert not (tmp_path / "resume.npz").exists()  # the next save is an hour away
    saver.finish("interrupted")
    state = TrainingState.read(tmp_path / "resume.npz")
    assert state.epoch == 2 and (state.variables[0] == 2.0).all()
    assert (state.best_weights[0] == 1.0).all()  # epoch 1 had the lower loss
    assert len(state.optimizer) == len(model.optimizer.variables)
    saver.finish("complete")
    assert not (tmp_path / "resume.npz").exists()
