"""The floor under the fused engine: 784-64-64-10 written directly in JAX, no Keras.

A whole epoch of 784-64-64-10 relu (batch 32, 60,000 generated samples) as one
``jax.jit(jax.lax.scan(step))``, with a hand-written Adam and with plain SGD. If mlplab's
engine (``mlplab bench --network 784-64``) runs about as fast as this, the remaining time is
XLA's own per-step cost on the CPU, not Keras or mlplab. Each epoch is timed compiled with
XLA's default options and with those the engine compiles this network's epoch with
(``mlplab.fused.epoch_compiler_options``).

    python benchmarks/plain_jax_scan.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np

from mlplab.fused import epoch_compiler_options

BATCH, SIZES, SAMPLES = 32, (784, 64, 64, 10), 60000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    steps = SAMPLES // BATCH
    key = jax.random.PRNGKey(0)
    params = [
        (jax.random.normal(key, (a, b)) * 0.05, jnp.zeros(b)) for a, b in itertools.pairwise(SIZES)
    ]
    rng = np.random.default_rng(0)
    x_all = jnp.asarray(rng.integers(0, 256, (SAMPLES, 784), dtype=np.uint8))
    y_all = jnp.asarray(rng.integers(0, 10, SAMPLES).astype(np.int32))
    order = jnp.asarray(rng.permutation(SAMPLES)[: steps * BATCH].reshape(steps, BATCH))

    def loss(p, x, y):
        h = x.astype(jnp.float32) / 255.0
        for i, (w, b) in enumerate(p):
            h = h @ w + b
            if i < len(p) - 1:
                h = jax.nn.relu(h)
        return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(len(y)), y])

    grad = jax.grad(loss)

    def adam_step(state, index):
        p, m, v, t = state
        g = grad(p, x_all[index], y_all[index])
        t = t + 1
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        lr = 0.001 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        p = jax.tree.map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-7), p, m, v)
        return (p, m, v, t), None

    def sgd_step(state, index):
        p = state[0]
        g = grad(p, x_all[index], y_all[index])
        return (jax.tree.map(lambda a, b: a - 0.01 * b, p, g), *state[1:]), None

    zeros = jax.tree.map(jnp.zeros_like, params)
    weights = sum(w.size + b.size for w, b in params)
    settings = {"default": {}, "the engine's": epoch_compiler_options(weights, BATCH)}
    for name, step in (("adam", adam_step), ("sgd", sgd_step)):
        for setting, options in settings.items():
            epoch = jax.jit(
                lambda s, o, step=step: jax.lax.scan(step, s, o)[0], compiler_options=options
            )
            state = epoch((params, zeros, zeros, jnp.float32(0)), order)
            jax.block_until_ready(state)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                state = epoch(state, order)
                jax.block_until_ready(state)
                times.append(time.perf_counter() - start)
            best = min(times)
            print(
                f"plain JAX scan, {name}, {setting} XLA options: {best:.3f} s/epoch "
                f"({best / steps * 1e6:.0f} us/step)"
            )


if __name__ == "__main__":
    main()
