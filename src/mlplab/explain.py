"""Which pixels made the network choose its class: gradient times input.

For each image and a class c, the network's evidence for c is its logit minus the mean of
the logits (the softmax depends on nothing else). Each pixel's contribution is that
evidence's derivative by the pixel's scaled value, times the scaled value — in the model's
own input space, so a pixel at the baseline the scaling subtracts (the training images'
mean pixel for ``standardize``, black for ``unit``) contributes nothing. For a ReLU network
without biases the contributions add up to the evidence exactly; with biases, or sigmoid
and tanh units, they are its first-order share. Positive: the pixel pushed towards c.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from mlplab.errors import RunError


def pixel_contributions(model: Any, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """x: uint8 (n, h, w, c) as the model takes them; classes: int (n,), the class to
    explain for each image. Returns float32 (n, h, w, c) contributions (see the module).

    The model is the Sequential ``build_model`` made (Flatten, the ``scaling`` layer, hidden
    layers, a softmax Dense), or an ensemble of them (:func:`mlplab.model.ensemble_model`):
    then the mean of its members' contributions, since its probabilities are the mean of
    theirs. Needs the JAX backend (its automatic differentiation). The
    compiled function is kept per model, and the weights are its arguments, so JAX's
    persistent cache serves it to the next process with the same network.
    """
    import keras

    if keras.backend.backend() != "jax":
        raise RunError(
            f"explaining predictions needs Keras on JAX, not {keras.backend.backend()}: "
            "unset KERAS_BACKEND (or set it to jax)"
        )
    import jax.numpy as jnp

    from mlplab.model import is_ensemble, members

    if is_ensemble(model):
        maps = [pixel_contributions(member, x, classes) for member in members(model)]
        return np.mean(maps, axis=0, dtype=np.float32)
    scaling = model.get_layer("scaling")
    layers = list(model.layers)
    hidden = layers[layers.index(scaling) + 1 : -1]
    output = layers[-1]
    scaled = jnp.asarray(scaling(x.reshape(len(x), -1).astype(np.float32)))
    weights = [
        (
            [v.value for v in layer.trainable_variables],
            [v.value for v in layer.non_trainable_variables],
        )
        for layer in hidden
    ]
    contributions = _compiled(model, hidden)(
        weights, output.kernel.value, output.bias.value, scaled, jnp.asarray(classes)
    )
    return np.asarray(contributions, np.float32).reshape(x.shape)


_COMPILED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _compiled(model: Any, hidden: list[Any]) -> Any:
    """The jitted gradient-times-input of ``model``'s hidden layers (made once per model)."""
    if model in _COMPILED:
        return _COMPILED[model]
    import jax

    from mlplab.fused import enable_compilation_cache

    enable_compilation_cache()
    from mlplab.model import call_options

    options = [call_options(layer, False) for layer in hidden]  # dropout, batch norm: inference

    def contributions(weights, kernel, bias, scaled, classes):  # type: ignore[no-untyped-def]
        def evidence(pixels: jax.Array, label: jax.Array) -> jax.Array:
            h = pixels[None]
            for layer, (trainable, non_trainable), kwargs in zip(
                hidden, weights, options, strict=True
            ):
                h, _ = layer.stateless_call(trainable, non_trainable, h, **kwargs)
            logits = (h @ kernel + bias)[0]
            return logits[label] - logits.mean()

        return jax.vmap(jax.grad(evidence))(scaled, classes) * scaled

    _COMPILED[model] = jax.jit(contributions)
    return _COMPILED[model]
