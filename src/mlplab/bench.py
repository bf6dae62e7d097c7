"""``mlplab bench``: the fused engine and Keras ``model.fit`` side by side, in one process.

For each network both sides train the same model (same seed, same data, no validation) for a
few epochs; the steady time per epoch is the median of the epochs after the first. With
``rounds`` > 1 the two sides take turns (engine, fit, engine, fit, ...) and the ratio is the
median of the rounds' ratios, with its range: on a shared machine whose speed drifts by tens
of percent from minute to minute, one round's ratio says little. The
machine's matrix-multiply speed is measured at the network's own shapes, so the table can say
how close training runs to what the hardware does: the floor is the time the step's matrix
products alone take (forward, weight gradient, input gradient except for the first layer).
It is measured in every round right after the engine's epochs, and the share of it the
engine reaches is, like the ratio, the median of the rounds' with its range: the same drift
moves the products' speed too.
"""

from __future__ import annotations

import itertools
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlplab._text import xla_flags
from mlplab.config import ModelConfig, TrainConfig
from mlplab.data.dataset import Dataset
from mlplab.data.split import Splits


@dataclass(frozen=True)
class Network:
    name: str
    inputs: tuple[int, int, int]
    hidden: tuple[int, ...]
    activation: str
    optimizer: str
    batch_size: int
    dropout: float = 0.0

    @property
    def learning_rate(self) -> float:
        return 0.01 if self.optimizer == "sgd" else 0.001


NETWORKS = (
    Network("784-64-64-10 relu adam b32", (28, 28, 1), (64, 64), "relu", "adam", 32),
    Network("784-256-128-10 sigmoid sgd b128", (28, 28, 1), (256, 128), "sigmoid", "sgd", 128),
    Network(
        "784-1024-1024-10 relu drop0.2 adam b128",
        (28, 28, 1),
        (1024, 1024),
        "relu",
        "adam",
        128,
        0.2,
    ),
    Network("3072-1024-512-10 relu sgd b32", (32, 32, 3), (1024, 512), "relu", "sgd", 32),
)


@dataclass
class Row:
    """One network's results. engine_s, fit_s: median steady s/epoch over the rounds;
    ratios: engine/fit of each round (engine and fit timed back to back); peak_shares: each
    round's floor / engine s/epoch, the floor (seconds the epoch's matrix products take alone)
    measured right after that round's engine; xla_options: the XLA options the engine
    compiled its epoch with (fit compiles with XLA's defaults)."""

    network: str
    samples: int
    engine_s: float
    fit_s: float
    engine_compile_s: float
    fit_first_extra_s: float
    gflop_per_epoch: float
    ratios: tuple[float, ...]
    peak_shares: tuple[float, ...]
    xla_options: dict[str, str]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def ratio_text(self) -> str:
        """The ratio, and its range over the rounds when there were several."""
        return _median_and_range(self.ratios, "{:.2f}")

    @property
    def peak_share(self) -> float:
        """The median share of the measured matrix-multiply speed the engine reached."""
        return statistics.median(self.peak_shares)

    @property
    def peak_share_text(self) -> str:
        """The share as a percentage, and its range over the rounds when there were several."""
        return _median_and_range([100 * share for share in self.peak_shares], "{:.0f}%")


def _median_and_range(values: Sequence[float], form: str) -> str:
    """``values``' median in ``form``, then "(lowest to highest)" when there are several."""
    median = form.format(statistics.median(values))
    if len(values) < 2:
        return median
    return f"{median} ({form.format(min(values))} to {form.format(max(values))})"


def _data(shape: tuple[int, int, int], samples: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Fashion-MNIST from a verified local copy when the shape fits, else generated data."""
    if shape == (28, 28, 1):
        try:
            from mlplab.data import load_dataset

            data = load_dataset("fashion-mnist", offline=True)
            return data.x_train[:samples], data.y_train[:samples], "fashion-mnist"
        except Exception:  # not here: generated data measures speed just as well
            pass
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (samples, *shape), dtype=np.uint8)
    return x, rng.integers(0, 10, samples), "generated"


def training_data(net: Network, samples: int) -> tuple[Dataset, Splits]:
    """What both sides train ``net`` on (:func:`_data`): all ``samples`` images as the
    training split, named by where they came from; no validation, and ten of them standing
    in for a test split that is never used."""
    x, y, source = _data(net.inputs, samples)
    dataset = Dataset(source, x, y, x[:10], y[:10], tuple(map(str, range(10))), source)
    return dataset, Splits(x, y, None, None, x[:10], y[:10], "none")


def _layer_shapes(net: Network) -> list[tuple[int, int]]:
    sizes = [int(np.prod(net.inputs)), *net.hidden, 10]
    return list(itertools.pairwise(sizes))


def _dot_seconds(m: int, k: int, n: int, repeats: int = 30) -> float:
    """Seconds one jitted (m, k) @ (k, n) float32 product takes here."""
    import jax
    import jax.numpy as jnp

    a, b = jnp.ones((m, k), jnp.float32), jnp.ones((k, n), jnp.float32)
    dot = jax.jit(lambda a, b: a @ b)
    dot(a, b).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = dot(a, b)
    out.block_until_ready()
    return (time.perf_counter() - start) / repeats


def _floor(net: Network, samples: int) -> tuple[float, float]:
    """(GFLOP per epoch, seconds the epoch's matrix products take at measured speed)."""
    steps = samples / net.batch_size
    flops = seconds = 0.0
    for i, (fan_in, fan_out) in enumerate(_layer_shapes(net)):
        products = 2 if i == 0 else 3  # no input gradient for the first layer
        flops += products * 2 * net.batch_size * fan_in * fan_out * steps
        forward = _dot_seconds(net.batch_size, fan_in, fan_out)
        weight_grad = _dot_seconds(fan_in, net.batch_size, fan_out)
        input_grad = _dot_seconds(net.batch_size, fan_out, fan_in) if i else 0.0
        seconds += (forward + weight_grad + input_grad) * steps
    return flops / 1e9, seconds


def _time_side(engine: str, net: Network, splits: Splits, dataset: Dataset, epochs: int):
    import keras

    from mlplab.data import scaling_params
    from mlplab.engine import SilentListener, StopRequest, get_trainer, steps_per_epoch
    from mlplab.model import build_model, compile_model

    config = TrainConfig(
        optimizer=net.optimizer,
        learning_rate=net.learning_rate,
        batch_size=net.batch_size,
        epochs=epochs,
        engine=engine,
    )
    keras.utils.set_random_seed(0)
    model = build_model(
        ModelConfig(hidden=net.hidden, activation=net.activation, dropout=net.dropout),
        dataset.image_shape,
        10,
        scaling_params(splits.x_train, "unit"),
    )
    compile_model(model, config, steps_per_epoch(len(splits.y_train), net.batch_size))
    trainer = get_trainer(config)
    result = trainer.fit(model, splits, config, SilentListener(), StopRequest())
    seconds = [row["seconds"] for row in result.history]
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return steady, result.compile_seconds, seconds[0] - steady, result.compiler_options


def run(
    networks: Sequence[Network] = NETWORKS,
    samples: int = 60000,
    epochs: int = 3,
    report=print,
    rounds: int = 1,
) -> list[Row]:
    """Time every network on both sides, ``rounds`` times in turn; ``report`` gets one line
    per round. Compile and first-epoch costs are those of the first round (later rounds
    find the programs compiled)."""
    rows = []
    for net in networks:
        dataset, splits = training_data(net, samples)
        y = splits.y_train
        engine_times, fit_times, floors = [], [], []
        for number in range(rounds):
            engine_s, compile_s, _, options = _time_side("auto", net, splits, dataset, epochs)
            # The products' speed moves with the machine's, so it is measured next to the
            # engine's epochs it is compared with.
            gflop, floor = _floor(net, len(y))
            fit_s, _, fit_extra, _ = _time_side("fit", net, splits, dataset, epochs)
            if number == 0:
                first_compile_s, first_fit_extra = compile_s, fit_extra
            engine_times.append(engine_s)
            fit_times.append(fit_s)
            floors.append(floor)
            report(
                f"{net.name} ({dataset.name}, {len(y)} samples), round {number + 1}/{rounds}: "
                f"engine {engine_s:.3f} s/epoch ({100 * floor / engine_s:.0f}% of measured "
                f"matmul speed), fit {fit_s:.3f} s/epoch, ratio {engine_s / fit_s:.2f}"
            )
        rows.append(
            Row(
                net.name,
                len(y),
                statistics.median(engine_times),
                statistics.median(fit_times),
                first_compile_s,
                first_fit_extra,
                gflop,
                tuple(e / f for e, f in zip(engine_times, fit_times, strict=True)),
                tuple(f / e for f, e in zip(floors, engine_times, strict=True)),
                options,
            )
        )
    return rows


def table(rows: Sequence[Row]) -> str:
    """The results as a Markdown table, with the process's peak RSS below it."""
    lines = [
        "| network | engine s/epoch | fit s/epoch | engine/fit | engine samples/s | "
        "achieved GFLOP/s | % of measured matmul speed | engine compile s | "
        "fit first-epoch extra s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.network} | {r.engine_s:.3f} | {r.fit_s:.3f} | {r.ratio_text} | "
            f"{r.samples / r.engine_s:,.0f} | {r.gflop_per_epoch / r.engine_s:.1f} | "
            f"{r.peak_share_text} | {r.engine_compile_s:.2f} | {r.fit_first_extra_s:.2f} |"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append("")
    lines.append(f"Peak RSS of this benchmark process (both sides, all networks): {peak_mb:.0f} MB")
    tuned = [r for r in rows if r.xla_options]
    if tuned:
        lines.append("")
        lines.append("XLA options of the engine's epoch (fit compiles with XLA's defaults):")
        lines.extend(f"- {r.network}: {xla_flags(r.xla_options)}" for r in tuned)
        first = tuned[0]
        lines.append("To give fit the same (for the whole process, so the engine too), e.g.:")
        lines.append(
            f'XLA_FLAGS="{xla_flags(first.xla_options)}" '
            f"mlplab bench --network {first.network.split()[0]}"
        )
    return "\n".join(lines)
