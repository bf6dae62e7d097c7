"""The fused-epoch engine: same results as model.fit, and the mechanics fit gives for free."""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import mlplab
from mlplab import fused
from mlplab.config import ModelConfig, TrainConfig
from mlplab.data import make_splits, scaling_params
from mlplab.engine import (
    SilentListener,
    StopRequest,
    class_weights,
    get_trainer,
    steps_per_epoch,
)
from mlplab.model import build_model, compile_model, learning_rate


def fused_fit(digits_data, model_config, train_config, splits=None):
    splits = splits or make_splits(digits_data, 0.1, train_config.seed)
    keras.utils.set_random_seed(train_config.seed)
    model = build_model(
        model_config, digits_data.image_shape, 10, scaling_params(splits.x_train, "unit")
    )
    compile_model(
        model, train_config, steps_per_epoch(len(splits.y_train), train_config.batch_size)
    )
    trainer = get_trainer(train_config)
    assert trainer.name == "fused"
    result = trainer.fit(model, splits, train_config, SilentListener(), StopRequest())
    return model, trainer, splits, result


@pytest.mark.slow
def test_fused_and_fit_reach_the_same_accuracy_over_three_seeds(tmp_path):
    def mean_accuracy(engine):
        return np.mean(
            [
                mlplab.train(
                    overrides={"train.seed": seed, "train.engine": engine},
                    out=tmp_path,
                    verbose=False,
                ).metrics["test_accuracy"]
                for seed in (0, 1, 2)
            ]
        )

    fused, fit = mean_accuracy("auto"), mean_accuracy("fit")
    assert abs(fused - fit) <= 0.01, (fused, fit)


def test_the_engine_is_the_default_on_jax_and_fit_on_request(digits_run, tmp_path):
    assert digits_run.metrics["engine"] == "fused"
    assert digits_run.metrics["compile_seconds"] > 0
    run = mlplab.train(
        overrides={"train.engine": "fit", "train.epochs": 2}, out=tmp_path, verbose=False
    )
    assert run.metrics["engine"] == "fit"


def test_every_sample_counts_once_per_epoch_with_a_partial_last_batch(digits_data):
    # 1293 training samples in batches of 100: 12 full steps and one of 93.
    model, _, splits, result = fused_fit(
        digits_data, ModelConfig(hidden=(16,)), TrainConfig(batch_size=100, epochs=1)
    )
    assert len(splits.y_train) % 100 != 0
    assert int(model.optimizer.iterations.numpy()) == steps_per_epoch(len(splits.y_train), 100)
    assert 0 < result.history[0]["accuracy"] <= 1


def test_dropout_really_drops(digits_data):
    model, trainer, splits, result = fused_fit(
        digits_data,
        ModelConfig(hidden=(64,), dropout=0.9),
        TrainConfig(epochs=5, learning_rate=0.003),
    )
    train_accuracy = result.history[-1]["accuracy"]  # measured with dropout on
    inference = trainer.predict(model, splits.x_train).argmax(axis=1)
    assert np.mean(inference == splits.y_train) > train_accuracy + 0.05


def test_batch_norm_statistics_update(digits_data):
    model, *_ = fused_fit(
        digits_data, ModelConfig(hidden=(8,), batch_norm=True), TrainConfig(epochs=1)
    )
    norm = model.get_layer("batch_norm_1")
    assert np.abs(norm.moving_mean.numpy()).max() > 1e-3
    assert np.abs(norm.moving_variance.numpy() - 1).max() > 1e-3


def test_a_huge_learning_rate_diverges_and_keeps_finite_weights(tmp_path):
    run = mlplab.train(
        overrides={
            "train.optimizer": "sgd",
            "train.learning_rate": 1e30,
            "train.epochs": 5,
            "model.dropout": 0.0,
        },
        out=tmp_path,
        verbose=False,
    )
    assert run.status == "diverged" and "lower learning rate" in run.metrics["message"]
    assert all(np.isfinite(w).all() for w in run.model.get_weights())


def fit_in_one_batch(dataset, model_config, config, splits, **weighting):
    """The reference a fused model is held to (:func:`assert_same_weights`): Keras'
    model.fit on the same model, one batch per epoch and no shuffling (so no randomness),
    ``weighting`` (class_weight= or sample_weight=) passed on."""
    keras.utils.set_random_seed(0)
    model = build_model(
        model_config, dataset.image_shape, 10, scaling_params(splits.x_train, "unit")
    )
    compile_model(model, config, 1)
    model.fit(
        splits.x_train,
        keras.utils.to_categorical(splits.y_train, 10),
        batch_size=2000,
        epochs=config.epochs,
        verbose=0,
        shuffle=False,
        **weighting,
    )
    return model


def assert_same_weights(ours, theirs):
    for mine, fits in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(mine, fits, rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(
            optimizer="sgd",
            learning_rate=0.1,
            momentum=0.9,
            batch_size=2000,
            epochs=1,
            clip_norm=1.0,
            schedule="cosine",
            weight_decay=0.01,
        ),
        # Two full-batch steps: label smoothing in the loss, the weights' moving average
        # (momentum 0.5) moved into the model at the end.
        TrainConfig(
            optimizer="adam",
            learning_rate=0.01,
            batch_size=2000,
            epochs=2,
            label_smoothing=0.1,
            ema=0.5,
        ),
    ],
    ids=["sgd-momentum-clip-cosine-decay-l1l2", "adam-label-smoothing-ema-l1l2"],
)
def test_fused_matches_fit_step_for_step_without_randomness(digits_data, config):
    """No dropout and one batch per epoch (order within it does not matter): fused and fit
    make the same updates."""
    model_config = ModelConfig(hidden=(16,), l2=1e-3, l1=1e-4)
    fused_model, *_ = fused_fit(digits_data, model_config, config)
    splits = make_splits(digits_data, 0.1, 0)
    assert_same_weights(fused_model, fit_in_one_batch(digits_data, model_config, config, splits))


def test_class_weights_weigh_the_loss_as_kerass_class_weight_does(digits_data):
    """Balanced class weights on data where classes 5-9 are rare: the fused engine makes
    fit's updates (full batches, no randomness), and not the unweighted ones."""
    keep = (digits_data.y_train < 5) | (np.arange(len(digits_data.y_train)) % 10 == 0)
    rare = dataclasses.replace(
        digits_data, x_train=digits_data.x_train[keep], y_train=digits_data.y_train[keep]
    )
    splits = make_splits(rare, 0.1, 0)
    weights = class_weights(splits.y_train, 10, "balanced")
    counts = np.bincount(splits.y_train, minlength=10)
    np.testing.assert_allclose(weights, len(splits.y_train) / (10 * counts), rtol=1e-6)
    assert weights[9] > 4 * weights[0]
    model_config = ModelConfig(hidden=(16,))
    config = TrainConfig(learning_rate=0.01, batch_size=2000, epochs=2, class_weight="balanced")
    weighted, *_ = fused_fit(rare, model_config, config, splits)
    plain, *_ = fused_fit(
        rare, model_config, dataclasses.replace(config, class_weight="none"), splits
    )
    by_class = dict(enumerate(weights.tolist()))
    assert_same_weights(
        weighted, fit_in_one_batch(rare, model_config, config, splits, class_weight=by_class)
    )
    pairs = zip(weighted.get_weights(), plain.get_weights(), strict=True)
    assert max(np.abs(a - b).max() for a, b in pairs) > 1e-3


def test_sample_weights_weigh_the_loss_as_kerass_sample_weight_does(digits_data):
    """A weight per image (and balanced class weights on top): the fused engine makes fit's
    updates (full batches, no randomness), and not the unweighted ones."""
    splits = make_splits(digits_data, 0.1, 0)
    weights = np.random.default_rng(0).uniform(0, 3, len(splits.y_train)).astype(np.float32)
    weighted_splits = dataclasses.replace(splits, w_train=weights)
    model_config = ModelConfig(hidden=(16,))
    config = TrainConfig(learning_rate=0.01, batch_size=2000, epochs=2, class_weight="balanced")
    weighted, *_ = fused_fit(digits_data, model_config, config, weighted_splits)
    plain, *_ = fused_fit(digits_data, model_config, config, splits)
    per_image = weights * class_weights(splits.y_train, 10, "balanced")[splits.y_train]
    fit_model = fit_in_one_batch(  # fit takes class or sample weights, not both
        digits_data, model_config, config, splits, sample_weight=per_image
    )
    assert_same_weights(weighted, fit_model)
    pairs = zip(weighted.get_weights(), plain.get_weights(), strict=True)
    assert max(np.abs(a - b).max() for a, b in pairs) > 1e-3


def test_balanced_class_weights_leave_absent_classes_at_zero():
    assert class_weights(np.array([0, 0, 0, 1]), 3, "none") is None
    np.testing.assert_allclose(
        class_weights(np.array([0, 0, 0, 1]), 3, "balanced"), [4 / 9, 4 / 3, 0]
    )


def test_the_compilation_cache_is_used_by_the_second_run(tmp_path):
    script = (
        "import jax.monitoring as m, json, mlplab\n"
        "hits = []\n"
        "m.register_event_listener(lambda name, **kw: hits.append(name) "
        "if name == '/jax/compilation_cache/cache_hits' else None)\n"
        f"mlplab.train(overrides={{'train.epochs': 1}}, out={str(tmp_path / 'runs')!r}, "
        "verbose=False)\n"
        "print(json.dumps(len(hits)))\n"
    )
    env = {**os.environ, "MLPLAB_JAX_CACHE": str(tmp_path / "jax-cache")}

    def hits() -> int:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert hits() == 0  # a fresh cache: everything compiles
    assert any((tmp_path / "jax-cache").iterdir())
    assert hits() > 0  # the second process loads the compiled epoch instead


def test_epochs_after_the_first_compile_nothing(digits_data):
    """Every program is compiled by the first epoch: a longer run lowers no more of them
    (a learning-rate schedule read eagerly would add one per epoch)."""
    import jax.monitoring

    lowered = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, *_, **__: (
            lowered.append(name)
            if name == "/jax/core/compile/jaxpr_to_mlir_module_duration"
            else None
        )
    )

    def count(epochs: int) -> tuple[int, list[float], TrainConfig, int]:
        before = len(lowered)
        config = TrainConfig(epochs=epochs, optimizer="adamw", schedule="one-cycle")
        _, _, splits, result = fused_fit(digits_data, ModelConfig(hidden=(16,)), config)
        steps = steps_per_epoch(len(splits.y_train), config.batch_size)
        return len(lowered) - before, [row["lr"] for row in result.history], config, steps

    count(1)  # the process's first run also compiles the weight initialisers
    one, _, _, _ = count(1)
    four, rates, config, steps = count(4)
    assert one == four > 0
    # The history still logs the schedule's rate, at each epoch's last step.
    schedule = learning_rate(config, steps)
    expected = [float(schedule(epoch * steps - 1)) for epoch in range(1, 5)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


class _Model:
    def __init__(self, params: int) -> None:
        self.params = params

    def count_params(self) -> int:
        return self.params


@pytest.mark.parametrize("steps", [1, 7, 37, 469, 1563])
@pytest.mark.parametrize("params", [1_000, 200_000, 3_700_000])
def test_epoch_calls_cover_the_epoch_with_less_padding_than_one_call(steps, params):
    calls, per_call = fused.epoch_calls(_Model(params), 32, steps)
    assert calls >= 1 and per_call >= 1
    assert steps <= calls * per_call < steps + per_call
    epoch_flop = 6 * 32 * params * steps
    if epoch_flop <= fused.SINGLE_CALL_FLOP:
        assert (calls, per_call) == (1, steps)
    else:  # each call does about CHUNK_FLOP of work (or one step, if a step is more)
        assert 6 * 32 * params * (per_call - 1) < fused.CHUNK_FLOP or per_call == 1


def _split_epochs(monkeypatch, model_config: ModelConfig, config: TrainConfig, per_call: int):
    """Make the fused engine split every epoch into calls of about ``per_call`` steps."""
    inputs, classes = 64, 10  # digits
    params, width = 0, inputs
    for units in (*model_config.hidden, classes):
        params, width = params + width * units + units, units
    monkeypatch.setattr(fused, "SINGLE_CALL_FLOP", 0.0)
    monkeypatch.setattr(fused, "CHUNK_FLOP", 6.0 * config.batch_size * params * per_call)


def test_an_epoch_split_into_calls_trains_as_one_call(digits_data, monkeypatch):
    """Split epochs (with padding steps at the end of the last call) see the same steps in
    the same order: the same history and weights, and no extra optimizer step."""
    model_config = ModelConfig(hidden=(16,), dropout=0.2)
    config = TrainConfig(epochs=2, batch_size=32, optimizer="adamw", schedule="one-cycle")
    whole, _, splits, whole_result = fused_fit(digits_data, model_config, config)
    steps = steps_per_epoch(len(splits.y_train), config.batch_size)
    _split_epochs(monkeypatch, model_config, config, per_call=10)
    calls, per_call = fused.epoch_calls(whole, config.batch_size, steps)
    assert calls > 1 and calls * per_call > steps  # the last call is padded
    split, _, _, split_result = fused_fit(digits_data, model_config, config)
    assert int(split.optimizer.iterations.numpy()) == 2 * steps
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        np.testing.assert_allclose(
            [row[key] for row in split_result.history],
            [row[key] for row in whole_result.history],
            rtol=1e-5,
            err_msg=key,
        )
    for a, b in zip(split.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


class _StopAfterSteps(SilentListener):
    """Records progress; asks to stop once epoch ``epoch`` has reached ``step``."""

    def __init__(self, stop: StopRequest, epoch: int, step: int) -> None:
        self.stop, self.epoch, self.step = stop, epoch, step
        self.progress: list[tuple[int, int]] = []

    def on_batch_end(self, epoch: int, step: int) -> None:
        self.progress.append((epoch, step))
        if (epoch, step) >= (self.epoch, self.step):
            self.stop.set()


def test_a_stop_request_ends_a_split_epoch_at_the_next_call(digits_data, monkeypatch):
    """Ctrl-C during a long epoch answers after the current call, not the whole epoch; the
    cut epoch is not recorded (as with model.fit) and the progress bar moved call by call."""
    model_config = ModelConfig(hidden=(16,))
    config = TrainConfig(epochs=3, batch_size=32)
    _split_epochs(monkeypatch, model_config, config, per_call=10)
    splits = make_splits(digits_data, 0.1, config.seed)
    steps = steps_per_epoch(len(splits.y_train), config.batch_size)
    keras.utils.set_random_seed(config.seed)
    model = build_model(
        model_config, digits_data.image_shape, 10, scaling_params(splits.x_train, "unit")
    )
    compile_model(model, config, steps)
    calls, per_call = fused.epoch_calls(model, config.batch_size, steps)
    assert calls > 2
    stop = StopRequest()
    listener = _StopAfterSteps(stop, epoch=2, step=1)
    result = get_trainer(config).fit(model, splits, config, listener, stop)
    assert result.status == "interrupted" and "during epoch 2" in result.message
    assert [row["epoch"] for row in result.history] == [1]
    assert int(model.optimizer.iterations.numpy()) == steps + per_call
    first_epoch = [(1, per_call * call) for call in range(1, calls)] + [(1, steps)]
    assert listener.progress == [*first_epoch, (2, per_call)]


def test_step_losses_train_as_the_first_epoch_does(digits_data):
    """The learning-rate finder's sweep is the engine's training: with full batches only, its
    per-step losses average to the first epoch's loss, and the model is left untouched."""
    model_config = ModelConfig(hidden=(16,), dropout=0.2)
    config = TrainConfig(epochs=1, batch_size=32)
    splits = make_splits(digits_data, 0.1, config.seed)
    splits = dataclasses.replace(
        splits, x_train=splits.x_train[:1280], y_train=splits.y_train[:1280]
    )
    steps = 1280 // 32
    _, trainer, _, result = fused_fit(digits_data, model_config, config, splits)
    keras.utils.set_random_seed(config.seed)
    model = build_model(
        model_config, digits_data.image_shape, 10, scaling_params(splits.x_train, "unit")
    )
    compile_model(model, config, steps)
    before = model.get_weights()
    losses = trainer.step_losses(model, splits.x_train, splits.y_train, config, steps)
    assert losses.shape == (steps,) and losses.dtype == np.float32
    np.testing.assert_allclose(losses.mean(), result.history[0]["loss"], rtol=1e-5)
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations.numpy()) == 0


def test_step_losses_run_past_an_epoch_and_stop_when_told(digits_data, monkeypatch):
    model_config = ModelConfig(hidden=(16,))
    config = TrainConfig(batch_size=100)
    splits = make_splits(digits_data, 0.1, config.seed)
    per_pass = len(splits.y_train) // 100
    keras.utils.set_random_seed(config.seed)
    model = build_model(
        model_config, digits_data.image_shape, 10, scaling_params(splits.x_train, "unit")
    )
    compile_model(model, config, per_pass)
    trainer = get_trainer(config)
    losses = trainer.step_losses(model, splits.x_train, splits.y_train, config, 3 * per_pass)
    assert len(losses) == 3 * per_pass and np.isfinite(losses).all()
    assert losses[-per_pass:].mean() < losses[:per_pass].mean()  # it learns across passes
    _split_epochs(monkeypatch, model_config, config, per_call=10)
    asked = []

    def enough(so_far):
        asked.append(len(so_far))
        return len(so_far) >= 20

    cut = trainer.step_losses(model, splits.x_train, splits.y_train, config, 3 * per_pass, enough)
    calls, per_call = fused.epoch_calls(model, 100, 3 * per_pass)
    assert calls > 3 and asked == [per_call, 2 * per_call, 3 * per_call]
    np.testing.assert_allclose(cut, losses[: 3 * per_call], rtol=1e-5)


def test_small_steps_compile_with_xlas_own_kernels_and_large_ones_without():
    scheduler = fused.SCHEDULER_OPTION
    small = fused.epoch_compiler_options(55_050, 32)  # 784-64-64-10 at batch 32
    assert small == {**scheduler, **fused.OWN_KERNELS_OPTION}
    assert fused.epoch_compiler_options(1_863_690, 128) == scheduler  # 784-1024-1024-10


def test_no_xla_options_off_the_cpu(monkeypatch):
    monkeypatch.setattr(fused.jax, "default_backend", lambda: "gpu")
    assert fused.epoch_compiler_options(1000, 32) == {}


def test_a_run_records_the_xla_options_of_its_epoch(digits_run):
    # The default recipe's network at its batch size is a small step.
    options = {**fused.SCHEDULER_OPTION, **fused.OWN_KERNELS_OPTION}
    assert digits_run.metrics["xla_options"] == options


def test_an_option_this_jaxlib_does_not_know_is_dropped_and_training_goes_on(
    digits_data, monkeypatch
):
    monkeypatch.setattr(fused, "SCHEDULER_OPTION", {"xla_cpu_no_such_option": "1"})
    monkeypatch.setattr(fused, "_options_refused", False)
    config = TrainConfig(epochs=2)
    *_, result = fused_fit(digits_data, ModelConfig(hidden=(16,)), config)
    assert len(result.history) == 2 and np.isfinite(result.history[-1]["loss"])
    assert result.compiler_options == {}  # what the epoch was really compiled with
    assert fused.epoch_compiler_options(1000, 32) == {}  # and from then on


def test_prediction_compiles_with_both_options_and_without_a_refused_one(digits_data, monkeypatch):
    assert fused.predict_compiler_options() == {
        **fused.SCHEDULER_OPTION,
        **fused.OWN_KERNELS_OPTION,
    }
    model, trainer, splits, _ = fused_fit(
        digits_data, ModelConfig(hidden=(16,)), TrainConfig(epochs=1)
    )
    expected = model.predict(splits.x_test, verbose=0)
    np.testing.assert_allclose(trainer.predict(model, splits.x_test), expected, atol=1e-6)
    monkeypatch.setattr(fused, "SCHEDULER_OPTION", {"xla_cpu_no_such_option": "1"})
    monkeypatch.setattr(fused, "_options_refused", False)
    fresh = fused.FusedTrainer()
    np.testing.assert_allclose(fresh.predict(model, splits.x_test), expected, atol=1e-6)
    assert fused.predict_compiler_options() == {}
