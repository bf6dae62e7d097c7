"""EpochMonitor decides the same way for every trainer: tested with a stand-in model."""

import math

import numpy as np

import mlplab
from mlplab.config import TrainConfig
from mlplab.engine import (
    PREDICT_BATCH,
    EpochMonitor,
    FitTrainer,
    StopRequest,
    padded_length,
    steps_per_epoch,
)


class FakeModel:
    """Weights are one number: the epoch whose end they were saved at."""

    def __init__(self):
        self.weights = [np.array(0.0)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]


def run_epochs(monitor, model, losses):
    for epoch, loss in enumerate(losses, start=1):
        model.weights = [np.array(float(epoch))]
        if monitor.end_epoch({"epoch": epoch, "loss": loss, "val_loss": loss}):
            break
    return monitor.finish()


def test_early_stopping_restores_the_best_epoch():
    model = FakeModel()
    monitor = EpochMonitor(model, TrainConfig(patience=2), StopRequest())
    result = run_epochs(monitor, model, [1.0, 0.5, 0.6, 0.7, 0.1])
    assert result.status == "early_stopped" and result.best_epoch == 2
    assert len(result.history) == 4
    assert float(model.weights[0]) == 2.0


def test_without_patience_training_runs_to_the_end():
    model = FakeModel()
    result = run_epochs(EpochMonitor(model, TrainConfig(), StopRequest()), model, [1, 2, 3])
    assert result.status == "complete" and result.best_epoch == 1 and len(result.history) == 3
    assert float(model.weights[0]) == 3.0


def test_nan_loss_stops_and_keeps_the_last_finite_weights():
    model = FakeModel()
    monitor = EpochMonitor(model, TrainConfig(), StopRequest())
    result = run_epochs(monitor, model, [1.0, 0.9, float("nan"), 0.1])
    assert result.status == "diverged" and "lower learning rate" in result.message
    assert len(result.history) == 3
    assert float(model.weights[0]) == 2.0


def test_a_cut_short_epoch_is_not_recorded():
    model = FakeModel()
    stop = StopRequest()
    monitor = EpochMonitor(model, TrainConfig(), stop)
    monitor.end_epoch({"epoch": 1, "loss": 1.0})
    stop.set()
    assert monitor.end_epoch({"epoch": 2, "loss": 0.5}, cut_short=True)
    result = monitor.finish()
    assert result.status == "interrupted" and len(result.history) == 1


def test_a_stop_between_epochs_keeps_the_finished_epoch():
    model = FakeModel()
    stop = StopRequest()
    monitor = EpochMonitor(model, TrainConfig(), stop)
    assert not monitor.end_epoch({"epoch": 1, "loss": 1.0})
    stop.set()
    assert monitor.end_epoch({"epoch": 2, "loss": 0.5})
    result = monitor.finish()
    assert result.status == "interrupted" and len(result.history) == 2
    assert result.message == "interrupted after epoch 2"


def test_steps_per_epoch_counts_the_partial_batch():
    assert steps_per_epoch(100, 32) == 4
    assert steps_per_epoch(96, 32) == 3
    assert steps_per_epoch(0, 32) == 1


def test_predict_pads_to_few_shapes_and_answers_each_image_alone(digits_run, digits_data):
    assert [padded_length(n) for n in (1, 2, 3, 5, 1000, 1024)] == [1, 2, 4, 8, 1024, 1024]
    x = np.concatenate([digits_data.x_test] * 3)[: PREDICT_BATCH + 3]  # a partial last batch
    assert len(x) == PREDICT_BATCH + 3
    together = FitTrainer().predict(digits_run.model, x)
    assert together.shape == (len(x), 10) and together.dtype == np.float32
    for i in (0, 1, 2, len(x) - 1):
        alone = FitTrainer().predict(digits_run.model, x[i : i + 1])
        np.testing.assert_allclose(alone[0], together[i], atol=1e-5)


def test_a_runs_predict_is_the_fused_engines_compiled_one_with_kerass_numbers(
    digits_run, digits_data
):
    """Run.predict on JAX: model.predict's probabilities (measured identical), compiled once
    per power-of-two batch shape and kept with the run."""
    from mlplab.fused import FusedTrainer

    run = mlplab.load_run(digits_run.path)
    x = digits_data.x_test
    for n in (1, 3, 3, 5, 360):
        expected = FitTrainer().predict(run.model, x[:n])
        np.testing.assert_allclose(run.predict(x[:n]), expected, rtol=0, atol=1e-6)
    assert isinstance(run._predictor, FusedTrainer)
    assert run._predictor._predict_fn._cache_size() == 4  # 1, 4, 8 and 512 images


def test_a_prune_hook_stops_training_as_pruned():
    model = FakeModel()
    seen = []

    def prune(stats):
        seen.append(stats["epoch"])
        return "behind the median" if stats["epoch"] == 2 else None

    monitor = EpochMonitor(model, TrainConfig(epochs=5), StopRequest(prune=prune))
    result = run_epochs(monitor, model, [1.0, 0.9, 0.8, 0.7, 0.6])
    assert result.status == "pruned" and len(result.history) == 2 and seen == [1, 2]
    assert result.message == "pruned after epoch 2: behind the median"
    assert float(model.weights[0]) == 2.0  # the pruned epoch's weights are kept


def test_a_prune_in_the_last_epoch_leaves_the_run_complete():
    monitor = EpochMonitor(FakeModel(), TrainConfig(epochs=2), StopRequest(prune=lambda s: "x"))
    result = run_epochs(monitor, FakeModel(), [1.0, 0.9])
    assert result.status == "pruned" and len(result.history) == 1
    monitor = EpochMonitor(
        FakeModel(), TrainConfig(epochs=2), StopRequest(prune=lambda s: "x" * (s["epoch"] == 2))
    )
    result = run_epochs(monitor, FakeModel(), [1.0, 0.9])
    assert result.status == "complete" and len(result.history) == 2


def test_a_diverged_epoch_is_not_asked_about_pruning():
    asked = []
    stop = StopRequest(prune=lambda stats: asked.append(stats["epoch"]))
    result = run_epochs(
        EpochMonitor(FakeModel(), TrainConfig(), stop), FakeModel(), [1.0, math.nan]
    )
    assert result.status == "diverged" and asked == [1]
