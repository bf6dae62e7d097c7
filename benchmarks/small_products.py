"""Where 784-64-64-10's fused step spends its time: the first layer's two matrix products.

Each product is timed inside a compiled ``lax.scan`` of 1,875 iterations (one epoch of batch
32), made to depend on the carried value so that XLA cannot hoist it out of the loop, with all of
its output used (XLA drops what is not), and with NumPy (OpenBLAS) for comparison; then
the same with the kernel stored transposed. See docs/performance.md.

    python benchmarks/small_products.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

STEPS = 1875


def per_iteration_us(
    step, carry, steps: int = STEPS, options: dict[str, str] | None = None
) -> float:
    """Best of five: microseconds per iteration of a ``steps``-long scan of ``carry =
    step(carry)``, compiled with XLA ``options`` (None: XLA's defaults). Also used by
    ``step_products.py``."""
    epoch = jax.jit(
        lambda c: jax.lax.scan(lambda c, _: (step(c), None), c, None, steps)[0],
        compiler_options=options,
    )
    jax.block_until_ready(epoch(carry))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(epoch(carry))
        times.append(time.perf_counter() - start)
    return min(times) / steps * 1e6


def numpy_us(product) -> float:
    product()
    start = time.perf_counter()
    for _ in range(2000):
        product()
    return (time.perf_counter() - start) / 2000 * 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((32, 784), np.float32)  # a batch of inputs
    w = rng.random((784, 64), np.float32)  # the first layer's kernel
    dz = rng.random((32, 64), np.float32)  # the gradient at the first layer's output
    w_t = np.ascontiguousarray(w.T)  # the same kernel stored transposed, (64, 784)
    flops = 2 * 32 * 784 * 64
    rows = [
        ("forward x @ w", lambda k: k * (1 + 1e-12 * (x @ k).sum(axis=0)), w, lambda: x @ w),
        ("kernel gradient x.T @ dz", lambda a: x.T @ (dz + 1e-9 * a[:32]), w, lambda: x.T @ dz),
        ("both, as in a step", lambda k: k - 1e-9 * (x.T @ (x @ k)), w, None),
        ("an elementwise update alone", lambda k: k * 1.0000001, w, None),
        # Would XLA pick faster kernels with the kernel stored transposed?
        (
            "forward x @ w_t.T, kernel (64, 784)",
            lambda k: k * (1 + 1e-12 * (x @ k.T).sum(axis=0)[:, None]),
            w_t,
            lambda: x @ w_t.T,
        ),
        (
            "kernel gradient dz.T @ x, into (64, 784)",
            lambda a: dz.T @ (x + 1e-9 * a[:32]),
            w_t,
            lambda: dz.T @ x,
        ),
        ("both, kernel (64, 784)", lambda k: k - 1e-9 * ((x @ k.T).T @ x), w_t, None),
    ]
    print("| product (batch 32, 784 -> 64) | XLA in a scan, us | NumPy, us | XLA GFLOP/s |")
    print("|---|---|---|---|")
    for name, step, carry, direct in rows:
        us = per_iteration_us(step, jnp.asarray(carry))
        blas = f"{numpy_us(direct):.0f}" if direct else "-"
        speed = f"{flops / us / 1e3:.0f}" if direct else "-"
        print(f"| {name} | {us:.0f} | {blas} | {speed} |")


if __name__ == "__main__":
    main()
