"""How strongly each layer learns: the size of the loss gradient for each Dense layer's weights.

Backpropagation carries the error back through each layer, multiplied by the derivative of
its activation on the way. A sigmoid's is at most 1/4, so in a deep sigmoid network the first
layers get gradients orders of magnitude smaller than the last: the vanishing gradient that
makes such networks learn slowly. ReLU's derivative is 1 wherever a unit is active.

Measured as the root mean square of dLoss/dW over a layer's kernel entries, as a training
step on a seeded sample of up to :data:`SAMPLE` training images would compute it (batch norm
on the sample's statistics) but without dropout's random mask, for the mean cross-entropy
without label smoothing or L2. It is measured twice: at the run's initial weights, rebuilt
from its config and ``train.seed`` (the weights training started from), and at its trained
weights.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlplab.config import RunConfig

# Training images the gradients are measured on (a seeded sample; all of them if fewer).
SAMPLE = 1000
# A first layer whose gradient is below this share of the last layer's, at the start, has
# a vanishing gradient worth a red note.
VANISHING = 0.01


@dataclass
class LayerGradients:
    """RMS gradient of each Dense layer's kernel (first to last), float, at the initial
    and at the trained weights; ``layers``: their names, ``labels``: "256 relu" per layer;
    ``images``: how many training images the loss was taken over."""

    layers: list[str]
    labels: list[str]
    initial: list[float]
    trained: list[float]
    images: int

    @property
    def first_to_last(self) -> float:
        """The first layer's gradient over the last layer's, at the initial weights."""
        return self.initial[0] / self.initial[-1] if self.initial[-1] > 0 else float("nan")

    def vanishing(self) -> bool:
        return len(self.layers) > 1 and self.first_to_last < VANISHING

    def describe(self) -> str:
        """One line on the initial gradients: how much smaller the first layer's is."""
        if len(self.layers) < 2:
            return "one layer: nothing for a gradient to vanish through"
        ratio = self.first_to_last
        if not np.isfinite(ratio) or ratio <= 0:
            return "at the start the last layer's gradient is zero"
        if ratio >= 1:
            return f"at the start the first layer's gradient is {ratio:.2g} times the last layer's"
        note = " (vanishing)" if self.vanishing() else ""
        return f"at the start the first layer's gradient is 1/{1 / ratio:,.0f} of the last's{note}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerGradients:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


Weights = list[tuple[list[Any], list[Any]]]  # per layer: (trainable, non-trainable) values


def _layer_weights(model: Any) -> Weights:
    return [
        (
            [v.value for v in layer.trainable_variables],
            [v.value for v in layer.non_trainable_variables],
        )
        for layer in model.layers
    ]


def initial_weights(model: Any, config: RunConfig, class_names: list[str]) -> Weights | None:
    """The values ``model``'s layers started training with, per layer (trainable,
    non-trainable): the network rebuilt as :func:`mlplab.model.new_model` builds it (the
    seed, then the layers), with the scaling read from ``model``; with ``model.init_from``,
    then set to that run's weights as training set them (its classes matched to
    ``class_names``, the run's), or None when that run can no longer be read."""
    import keras

    from mlplab.model import build_model, scaling_of

    params = scaling_of(model)
    shape = tuple(int(d) for d in model.input_shape[1:])
    # set_random_seed also reseeds Python's and NumPy's global generators: a report should
    # not change what the caller's next random numbers are.
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        keras.utils.set_random_seed(config.train.seed)
        fresh = build_model(config.model, shape, int(model.output_shape[-1]), params, config.name)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    if config.model.init_from:
        from mlplab.errors import ConfigError
        from mlplab.warm_start import load_starting_weights

        try:
            load_starting_weights(config, None, class_names, shape).apply(fresh)
        except ConfigError:
            return None
    return _layer_weights(fresh)


def _gradient_function(model: Any) -> Any:
    """A jitted (weights per layer, x float32 (n, h, w, c), y int32 (n,)) -> RMS gradient
    per Dense kernel (float32 (layers,)). The loss is the mean cross-entropy (without label
    smoothing or L2), through the layers as a training step runs them, except dropout:
    batch norm on the batch's own statistics, no random mask. The weights are arguments:
    one compile serves the initial and the trained ones."""
    import jax
    import jax.numpy as jnp
    import keras

    from mlplab.model import call_options

    layers = list(model.layers)
    kernels = [
        (index, layer.trainable_variables.index(layer.kernel))
        for index, layer in enumerate(layers)
        if isinstance(layer, keras.layers.Dense)
    ]

    def options(layer: Any) -> dict[str, bool]:  # batch norm on the batch's statistics
        return call_options(layer, isinstance(layer, keras.layers.BatchNormalization))

    def loss(trainables: list[list[Any]], others: list[list[Any]], x: Any, y: Any) -> Any:
        h = x
        for layer, trainable, non_trainable in zip(layers, trainables, others, strict=True):
            if isinstance(layer, keras.layers.Dropout):
                continue
            h, _ = layer.stateless_call(trainable, non_trainable, h, **options(layer))
        picked = h[jnp.arange(y.shape[0]), y]
        return -jnp.mean(jnp.log(jnp.clip(picked, 1e-7, 1.0)))

    def sizes(weights: Weights, x: Any, y: Any) -> Any:
        trainables = [trainable for trainable, _ in weights]
        others = [non_trainable for _, non_trainable in weights]  # not differentiated
        grads = jax.grad(loss)(trainables, others, x, y)
        return jnp.stack([jnp.sqrt(jnp.mean(jnp.square(grads[i][k]))) for i, k in kernels])

    return jax.jit(sizes)


def layer_gradients(
    model: Any,
    config: RunConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    class_names: list[str],
) -> LayerGradients | None:
    """Each Dense layer's RMS gradient at the run's initial and trained weights, on a
    seeded sample of up to SAMPLE training images (x_train uint8 (n, h, w, c), y_train
    int (n,); class_names: the run's). None off JAX, for an ensemble (its members have
    their own), without images, or when the run started from another run's weights
    (``model.init_from``) that can no longer be read.
    """
    import keras

    from mlplab.model import dense_layers, is_ensemble

    if keras.backend.backend() != "jax" or is_ensemble(model) or not len(y_train):
        return None
    from mlplab.fused import enable_compilation_cache

    # Before the fresh network is built: its initialisers' small programs, and the gradient,
    # then come from JAX's persistent cache in the next process.
    enable_compilation_cache()
    count = min(len(y_train), SAMPLE)
    pick = np.sort(np.random.default_rng(0).choice(len(y_train), count, replace=False))
    x = x_train[pick].astype(np.float32)
    y = np.asarray(y_train[pick], np.int32)
    sizes = _gradient_function(model)
    started = initial_weights(model, config, class_names)
    if started is None:
        return None
    initial = sizes(started, x, y)
    trained = sizes(_layer_weights(model), x, y)
    dense = dense_layers(model)
    activations = [str(layer.get_config()["activation"]) for layer in dense]
    if config.model.batch_norm:  # the activation is its own layer after the batch norm
        activations = [config.model.activation] * (len(dense) - 1) + ["softmax"]
    return LayerGradients(
        layers=[layer.name for layer in dense],
        labels=[f"{layer.units} {act}" for layer, act in zip(dense, activations, strict=True)],
        initial=[float(v) for v in np.asarray(initial)],
        trained=[float(v) for v in np.asarray(trained)],
        images=count,
    )
