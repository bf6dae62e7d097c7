import keras
import numpy as np
import pytest

import mlplab
from mlplab.config import ModelConfig, TrainConfig
from mlplab.data import scaling_params
from mlplab.model import build_model, build_optimizer, first_layer_weights, learning_rate

X = np.random.default_rng(0).integers(0, 256, (20, 4, 4, 1), dtype=np.uint8)


def make(config: ModelConfig, classes: int = 3) -> keras.Model:
    return build_model(config, (4, 4, 1), classes, scaling_params(X, "standardize"))


def test_model_takes_uint8_pixels_and_returns_probabilities():
    model = make(ModelConfig(hidden=(8, 5), activation="tanh"))
    assert model.input_shape == (None, 4, 4, 1)
    assert model.inputs[0].dtype == "uint8"
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [8, 5, 3]
    assert dense[0].activation.__name__ == "tanh"
    proba = np.asarray(model.predict(X, verbose=0))
    assert proba.shape == (20, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_scaling_is_inside_the_model():
    model = make(ModelConfig(hidden=()))
    scaled = keras.Model(model.inputs[0], model.get_layer("scaling").output)
    expected = scaling_params(X, "standardize").apply(X)
    np.testing.assert_allclose(np.asarray(scaled(X)), expected, rtol=1e-4, atol=1e-4)


def test_empty_hidden_is_softmax_regression():
    model = make(ModelConfig(hidden=()))
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Normalization", "Dense"]


@pytest.mark.parametrize(("hidden", "is_output"), [((8, 5), False), ((), True)])
def test_first_layer_weights_count_as_much_as_their_pixels_vary(hidden, is_output):
    x = X.copy()
    x[:, 0, 0] = 7  # a pixel that never changes
    model = build_model(ModelConfig(hidden=hidden), (4, 4, 1), 3, scaling_params(x, "unit"))
    weights, output = first_layer_weights(model, x)
    kernel = np.asarray(model.layers[2].kernel)
    assert output is is_output and weights.shape == kernel.shape and weights.dtype == np.float32
    spread = x.reshape(20, -1).std(axis=0) / 255.0  # the std of each scaled input
    np.testing.assert_allclose(weights, kernel * spread[:, None], rtol=1e-5)
    assert not weights[0].any()


def test_dropout_batch_norm_and_l2():
    model = make(ModelConfig(hidden=(6,), dropout=0.3, batch_norm=True, l2=0.01))
    names = [type(layer).__name__ for layer in model.layers]
    assert names == [
        "Flatten",
        "Normalization",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dropout",
        "Dense",
    ]
    assert model.layers[2].use_bias is False  # batch norm supplies the shift
    assert model.layers[2].kernel_regularizer is not None
    assert model.layers[-1].kernel_regularizer is not None


@pytest.mark.parametrize(
    ("l1", "l2", "kind"), [(0.01, 0.0, "L1"), (0.0, 0.01, "L2"), (0.01, 0.02, "L1L2")]
)
def test_l1_and_l2_penalties_are_kerass_own_and_add_up(l1, l2, kind):
    model = make(ModelConfig(hidden=(6,), l1=l1, l2=l2))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [type(layer.kernel_regularizer).__name__ for layer in dense] == [kind, kind]
    kernels = [np.asarray(layer.kernel, np.float64) for layer in dense]
    expected = sum(l1 * np.abs(k).sum() + l2 * np.square(k).sum() for k in kernels)
    penalty = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert penalty == pytest.approx(expected, rel=1e-5)
    assert make(ModelConfig(hidden=(6,))).losses == []  # no penalty at all by default


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "gelu", "elu", "selu", "leaky_relu"])
def test_every_activation_builds(activation):
    make(ModelConfig(hidden=(4,), activation=activation))


def schedule_at(config: TrainConfig, step: int, steps_per_epoch: int = 10) -> float:
    lr = learning_rate(config, steps_per_epoch)
    return float(lr(step)) if callable(lr) else lr


def test_constant_and_legacy_decay():
    assert schedule_at(TrainConfig(learning_rate=0.1), 50) == 0.1
    decayed = TrainConfig(optimizer="sgd", learning_rate=0.1, decay=0.01)
    assert schedule_at(decayed, 100) == pytest.approx(0.1 / (1 + 0.01 * 100))


def test_step_schedule_drops_every_step_epochs():
    config = TrainConfig(learning_rate=0.1, schedule="step", step_epochs=2, step_factor=0.5)
    assert schedule_at(config, 19) == pytest.approx(0.1)
    assert schedule_at(config, 20) == pytest.approx(0.05)
    assert schedule_at(config, 45) == pytest.approx(0.025)


def test_cosine_with_warmup_rises_then_falls_to_zero():
    config = TrainConfig(learning_rate=0.1, schedule="cosine", epochs=10, warmup_epochs=1)
    assert schedule_at(config, 0) == pytest.approx(0.0)
    assert schedule_at(config, 10) == pytest.approx(0.1)
    assert schedule_at(config, 100) == pytest.approx(0.0, abs=1e-6)


def test_one_cycle_starts_low_peaks_at_30_percent_and_ends_near_zero():
    config = TrainConfig(learning_rate=0.1, schedule="one-cycle", epochs=10)
    assert schedule_at(config, 0) == pytest.approx(0.1 / 25)
    assert schedule_at(config, 30) == pytest.approx(0.1)
    assert schedule_at(config, 100) == pytest.approx(0.1 / 1e4, rel=1e-3)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", keras.optimizers.SGD),
        ("adam", keras.optimizers.Adam),
        ("adamw", keras.optimizers.AdamW),
        ("rmsprop", keras.optimizers.RMSprop),
    ],
)
def test_optimizers(name, cls):
    optimizer = build_optimizer(TrainConfig(optimizer=name, clip_norm=1.0), 10)
    assert isinstance(optimizer, cls)
    assert optimizer.global_clipnorm == 1.0


def test_sgd_momentum_and_nesterov():
    optimizer = build_optimizer(TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True), 10)
    assert optimizer.momentum == 0.9 and optimizer.nesterov


def test_switching_a_recipe_to_adamw_by_override_builds_its_optimizer():
    # The default recipe resolves weight_decay to 0.0 for adam; --set train.optimizer=adamw
    # keeps that 0.0, which AdamW must accept (it refuses None).
    config = mlplab.resolve_config(None, ['train.optimizer="adamw"'])
    assert config.train.weight_decay == 0.0
    optimizer = build_optimizer(config.train, 10)
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.weight_decay == 0.0
