"""Where a 784-1024-1024-10 step (batch 128) spends its time: its products, and Adam alone.

Each piece of the step is timed inside a compiled ``lax.scan`` of 200 iterations, compiled
with the XLA options the engine uses for this network (``fused.epoch_compiler_options``),
made to depend on the carried value so that XLA cannot hoist it out of the loop (which adds
a small elementwise pass over one operand); best of five. The products are written as the
gradient of a Dense layer gives them to XLA (the weight gradient contracts over the batch
dimension of both operands). Adam is Keras' update, written out: the first moment, the
second moment, then the weights. The sum of the products is what an epoch of 469 steps
would take if nothing else ran; ``mlplab bench --network 784-1024`` gives the engine's epoch
beside it. See docs/performance.md, "Where a 784-1024-1024 step's time goes".

    python benchmarks/step_products.py
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from small_products import per_iteration_us  # beside this script

from mlplab.fused import epoch_compiler_options

STEPS, BATCH, PARAMETERS = 200, 128, 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10


def per_step_us(step, carry: tuple) -> float:
    """Best of five: microseconds per scan iteration of ``carry = step(carry)``, compiled
    with the engine's options for this network."""
    return per_iteration_us(step, carry, STEPS, epoch_compiler_options(PARAMETERS, BATCH))


def products(fan_in: int, fan_out: int) -> dict[str, float]:
    """Microseconds a step for a (fan_in, fan_out) layer's three products at batch 128."""
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.random((BATCH, fan_in), np.float32))  # the layer's inputs
    dz = jnp.asarray(rng.random((BATCH, fan_out), np.float32))  # gradient at its output
    w = jnp.asarray(rng.random((fan_in, fan_out), np.float32) * 0.01)  # its kernel

    def contract(a, b, dims):
        return jax.lax.dot_general(a, b, (dims, ((), ())))

    return {
        # fan_in <= fan_out here, so the product's first columns can feed the inputs back.
        "forward h @ w": per_step_us(
            lambda c: (c[0] + 1e-9 * (c[0] @ c[1])[:, :fan_in], c[1]), (h, w)
        ),
        "input gradient dz @ w.T": per_step_us(
            lambda c: (c[0] + 1e-9 * contract(dz, c[1], ((1,), (1,))), c[1] * 0.999), (h, w)
        ),
        "weight gradient h.T @ dz": per_step_us(
            lambda c: (c[0] * 0.999, c[1] + 1e-9 * contract(c[0], dz, ((0,), (0,)))), (h, w)
        ),
    }


def adam_us(fan_in: int, fan_out: int) -> float:
    """Microseconds a step for Keras' Adam update of a (fan_in, fan_out) kernel, alone: its
    weights, gradient and moments (4 x 3-4 MB) stay in this host's 32 MB cache, which in a
    whole step they share with everything else."""
    rng = np.random.default_rng(1)
    g = jnp.asarray(rng.random((fan_in, fan_out), np.float32))
    zeros = jnp.zeros((fan_in, fan_out), jnp.float32)

    def update(c):
        p, m, v = c
        gradient = g + 1e-9 * p  # depends on the carry, as a real gradient does
        m = m + (gradient - m) * (1 - 0.9)
        v = v + (jnp.square(gradient) - v) * (1 - 0.999)
        return p - m * 1e-3 / (jnp.sqrt(v) + 1e-7), m, v

    return per_step_us(update, (zeros + 0.01, zeros, zeros))


def main() -> None:
    print(f"XLA options: {epoch_compiler_options(PARAMETERS, BATCH)}")
    total = 0.0
    for fan_in, fan_out in ((784, 1024), (1024, 1024)):
        for name, us in products(fan_in, fan_out).items():
            if fan_in == 784 and name.startswith("input"):
                continue  # the first layer's input gradient is not computed
            total += us
            print(f"{fan_in}x{fan_out} {name:26s} {us:7.0f} us")
    print(f"the five products                  {total:7.0f} us a step")
    print(f"  = {total * 469 / 1e6:.2f} s for an epoch of 469 steps")
    adam = sum(adam_us(a, b) for a, b in ((784, 1024), (1024, 1024)))
    print(f"Adam, both kernels                 {adam:7.0f} us a step")


if __name__ == "__main__":
    main()
