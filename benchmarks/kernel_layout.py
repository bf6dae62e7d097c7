"""Would the first layer of 784-64-64-10 run faster with its kernel stored transposed?

The forward product x @ W (batch 32 x 784 @ 784 x 64) and the kernel gradient x.T @ dz, each
and both, timed in a compiled ``lax.scan`` of 1,875 steps (one epoch of batch 32) with W
carried (so XLA cannot hoist the product), in Keras' layout (784, 64) and transposed
(64, 784). Best of 5 epochs, in microseconds per step. See docs/performance.md.

    python benchmarks/kernel_layout.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

BATCH, INPUTS, UNITS, STEPS = 32, 784, 64, 1875


def per_step(body, carry, xs) -> float:
    epoch = jax.jit(lambda c: jax.lax.scan(body, c, xs)[0])
    jax.block_until_ready(epoch(carry))
    times = []
    for _ in range(5):
        began = time.perf_counter()
        jax.block_until_ready(epoch(carry))
        times.append(time.perf_counter() - began)
    return min(times) / STEPS * 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((STEPS, BATCH, INPUTS), dtype=np.float32))
    dz = jnp.asarray(rng.random((STEPS, BATCH, UNITS), dtype=np.float32))
    w = jnp.asarray(rng.random((INPUTS, UNITS), dtype=np.float32))
    w_t = w.T.copy()
    tiny = 1e-9  # keeps the carried kernel (nearly) unchanged while depending on the product
    cases = {
        "forward x @ W, W (784, 64)": (lambda c, b: (c + tiny * jnp.sum(b[0] @ c), None), w),
        "forward x @ W_t.T, W_t (64, 784)": (
            lambda c, b: (c + tiny * jnp.sum(b[0] @ c.T), None),
            w_t,
        ),
        "gradient x.T @ dz into (784, 64)": (lambda c, b: (c + tiny * (b[0].T @ b[1]), None), w),
        "gradient dz.T @ x into (64, 784)": (
            lambda c, b: (c + tiny * (b[1].T @ b[0]), None),
            w_t,
        ),
        "both, (784, 64)": (
            lambda c, b: (c + tiny * (b[0].T @ (b[1] + tiny * (b[0] @ c))), None),
            w,
        ),
        "both, (64, 784)": (
            lambda c, b: (c + tiny * ((b[1] + tiny * (b[0] @ c.T)).T @ b[0]), None),
            w_t,
        ),
    }
    print("| product | µs per step |\n|---|---|")
    for name, (body, carry) in cases.items():
        print(f"| {name} | {per_step(body, carry, (x, dz)):.0f} |")


if __name__ == "__main__":
    main()
