"""Config -> a Keras model (a Sequential stack of Dense layers) and its optimizer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from mlplab.config import ModelConfig, RunConfig, TrainConfig
from mlplab.data.scaling import ScalingParams

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule


def build_model(
    config: ModelConfig,
    input_shape: Sequence[int],
    num_classes: int,
    scaling: ScalingParams,
    name: str = "mlp",
) -> keras.Sequential:
    """A Sequential MLP that takes raw pixels and returns class probabilities.

    Input: uint8 (batch, h, w, c). Flatten and scaling are layers of the model, so the saved
    ``.keras`` file needs nothing from mlplab: feed it pixels as they are stored. Output:
    float32 (batch, num_classes), softmax probabilities.
    """
    regularizer = kernel_penalty(config.l1, config.l2)
    layers: list[keras.layers.Layer] = [
        keras.Input(shape=tuple(input_shape), dtype="uint8", name="pixels"),
        keras.layers.Flatten(name="flatten"),
        # (x - offset) / scale per feature: unit, centered and standardize are all this form.
        keras.layers.Normalization(mean=scaling.offset, variance=scaling.scale**2, name="scaling"),
    ]
    for i, units in enumerate(config.hidden, start=1):
        dense = keras.layers.Dense(
            units,
            kernel_initializer=config.kernel_initializer,
            bias_initializer="zeros",
            kernel_regularizer=regularizer,
            use_bias=not config.batch_norm,
            activation=None if config.batch_norm else config.activation,
            name=f"dense_{i}",
        )
        layers.append(dense)
        if config.batch_norm:
            layers.append(keras.layers.BatchNormalization(name=f"batch_norm_{i}"))
            layers.append(
                keras.layers.Activation(config.activation, name=f"{config.activation}_{i}")
            )
        if config.dropout:
            layers.append(keras.layers.Dropout(config.dropout, name=f"dropout_{i}"))
    layers.append(
        keras.layers.Dense(
            num_classes,
            activation="softmax",
            kernel_initializer=config.kernel_initializer,
            kernel_regularizer=regularizer,
            name="softmax",
        )
    )
    return keras.Sequential(layers, name=name)


def kernel_penalty(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    """Keras' own regularizer for ``l1 * sum(|w|) + l2 * sum(w**2)`` on a kernel (L1, L2 or
    L1L2, so that a saved model names the one it used); None when both are 0."""
    if l1 and l2:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1:
        return keras.regularizers.L1(l1)
    return keras.regularizers.L2(l2) if l2 else None


def learning_rate(config: TrainConfig, steps_per_epoch: int) -> LearningRate:
    """The learning rate, or a built-in Keras schedule over optimizer steps.

    step: multiply by ``step_factor`` every ``step_epochs`` epochs. cosine: optional linear
    warm-up from 0, then cosine decay to 0 at the last step. one-cycle: linear warm-up over the
    first 30% of steps from lr/25 to lr, then cosine decay to lr/1e4 (PyTorch OneCycleLR's
    defaults). decay (legacy Keras SGD): lr / (1 + decay * step). plateau: the rate as a
    number, which :class:`mlplab.engine.EpochMonitor` cuts between epochs.
    """
    lr = config.learning_rate
    total = config.epochs * steps_per_epoch
    schedules = keras.optimizers.schedules
    if config.schedule == "step":
        return schedules.ExponentialDecay(
            lr,
            decay_steps=config.step_epochs * steps_per_epoch,
            decay_rate=config.step_factor,
            staircase=True,
        )
    if config.schedule == "cosine":
        warmup = min(round(config.warmup_epochs * steps_per_epoch), total - 1)
        if warmup:
            return schedules.CosineDecay(
                0.0, decay_steps=total - warmup, warmup_target=lr, warmup_steps=warmup
            )
        return schedules.CosineDecay(lr, decay_steps=total)
    if config.schedule == "one-cycle":
        warmup = max(1, math.floor(0.3 * total))
        return schedules.CosineDecay(
            lr / 25,
            decay_steps=max(1, total - warmup),
            alpha=1e-4,
            warmup_target=lr,
            warmup_steps=warmup,
        )
    if config.decay:
        return schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=config.decay)
    return lr


def build_optimizer(
    config: TrainConfig, steps_per_epoch: int, rate: LearningRate | None = None
) -> keras.optimizers.Optimizer:
    """The configured Keras optimizer (weight decay is decoupled, as Keras 3 applies it).

    rate: a learning rate or schedule instead of the config's (the learning-rate finder's
    exponential ramp).
    """
    common = {
        "learning_rate": learning_rate(config, steps_per_epoch) if rate is None else rate,
        "weight_decay": config.weight_decay or None,
        "global_clipnorm": config.clip_norm or None,
        "use_ema": config.ema > 0,
        "ema_momentum": config.ema or 0.99,
    }
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=config.momentum, nesterov=config.nesterov, **common)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(**common)
    if config.optimizer == "adamw":
        # AdamW takes a float, 0.0 included (a config switched to adamw by --set keeps
        # the weight decay it had).
        return keras.optimizers.AdamW(**{**common, "weight_decay": config.weight_decay or 0.0})
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(momentum=config.momentum, **common)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def compile_model(
    model: keras.Model,
    config: TrainConfig,
    steps_per_epoch: int,
    rate: LearningRate | None = None,
) -> None:
    """Attach optimizer, categorical cross-entropy on one-hot labels, and accuracy.

    rate: as in :func:`build_optimizer`.
    """
    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch, rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def new_model(
    config: RunConfig,
    image_shape: Sequence[int],
    num_classes: int,
    scaling: ScalingParams,
    steps_per_epoch: int,
    rate: LearningRate | None = None,
) -> keras.Sequential:
    """The config's network, initialised from ``train.seed`` and compiled: what every
    training starts from (train, resume, lr-find, MLPClassifier.fit). Arguments as in
    :func:`build_model` and :func:`compile_model`."""
    keras.utils.set_random_seed(config.train.seed)
    model = build_model(config.model, image_shape, num_classes, scaling, config.name)
    compile_model(model, config.train, steps_per_epoch, rate)
    return model


def scaling_of(model: keras.Model) -> ScalingParams:
    """The pixel scaling a :func:`build_model` network was built with (its ``scaling``
    layer keeps it as constants, not weights: ``get_weights`` leaves it out)."""
    layer = model.get_layer("scaling")
    return ScalingParams(
        offset=np.asarray(layer.mean, np.float32).ravel(),
        scale=np.sqrt(np.asarray(layer.variance, np.float32)).ravel(),
    )


def call_options(layer: keras.layers.Layer, training: bool) -> dict[str, bool]:
    """The keywords for ``layer.stateless_call`` in ``training`` mode: ``{"training": ...}``,
    or none for a layer whose call() takes no ``training`` (Activation): stateless_call
    hands its keywords to call() as they are."""
    import inspect

    takes = "training" in inspect.signature(layer.call).parameters
    return {"training": training} if takes else {}


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """A network's Dense layers, first to last (for an ensemble: none of its own)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def learned_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    """What a network has learned, by layer name: the Dense layers' kernels and biases and
    batch normalisation's scales, offsets and statistics (as ``layer.get_weights()`` gives
    them), first to last; not dropout's random state, nor the scaling (constants)."""
    kinds = (keras.layers.Dense, keras.layers.BatchNormalization)
    return {
        layer.name: [np.asarray(w) for w in layer.get_weights()]
        for layer in model.layers
        if isinstance(layer, kinds)
    }


def first_layer_weights(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """What the first Dense layer weighs each pixel by, and whether that layer is the output
    layer (a network without hidden layers: its units are the classes).

    x: uint8 (n, h, w, c), the training images. Returns float32 (h * w * c, units): each
    weight times the spread (std over ``x``) of its input after the model's scaling, so a
    weight counts as much as the pixel it multiplies moves the unit. A pixel that never
    changes gets 0 there: its weights are never trained, and stay as initialised.
    """
    from mlplab.data.scaling import pixel_spread

    dense = dense_layers(model)
    kernel = keras.ops.convert_to_numpy(dense[0].kernel).astype(np.float64)
    scale = np.sqrt(np.asarray(model.get_layer("scaling").variance, np.float64).ravel())
    spread = pixel_spread(x) / np.where(scale > 0, scale, 1.0)
    return (kernel * spread[:, None]).astype(np.float32), len(dense) == 1


def ensemble_model(models: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model averaging the class probabilities of ``models`` (each a Sequential that
    :func:`build_model` made, trained): uint8 ``pixels`` (batch, h, w, c) go to every member
    unchanged (each has its own scaling layer), and ``keras.layers.Average`` returns the
    float32 (batch, classes) mean of their softmax outputs.

    The members are copies named ``member_1``, ``member_2``... (a functional model needs
    unique layer names), so ``model.keras`` loads in plain Keras like a single network.
    """
    shape = tuple(int(d) for d in models[0].input_shape[1:])
    pixels = keras.Input(shape=shape, dtype="uint8", name="pixels")
    outputs = []
    for number, member in enumerate(models, start=1):
        copy = keras.Sequential.from_config({**member.get_config(), "name": f"member_{number}"})
        copy.set_weights(member.get_weights())
        outputs.append(copy(pixels))
    return keras.Model(pixels, keras.layers.Average(name="mean")(outputs), name=name)


def members(model: keras.Model) -> list[keras.Sequential]:
    """The networks a model is made of: its members for an :func:`ensemble_model`, else
    the model itself."""
    if isinstance(model, keras.Sequential):
        return [model]
    return [layer for layer in model.layers if isinstance(layer, keras.Sequential)]


def is_ensemble(model: keras.Model) -> bool:
    """Whether ``model`` averages several networks (:func:`ensemble_model`)."""
    return not isinstance(model, keras.Sequential)
