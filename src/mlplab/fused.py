"""The fused-epoch trainer: a whole epoch is one compiled JAX call.

Keras' ``model.fit`` dispatches every step from Python; for the small networks trained on
MNIST-like data that dispatch is most of the time. Here the training set lives on the device
as uint8, each epoch draws a seeded permutation of shape (steps, batch), and
``jax.lax.scan`` runs the steps inside one ``jax.jit`` call using Keras' stateless API
(``model.stateless_call`` and ``optimizer.stateless_apply``): the same layers, losses,
optimizer, schedule, weight decay and clipping as ``fit``, without the per-step Python.

The last partial batch is padded and masked: every sample counts in every epoch, and the
last step's gradient is the mean over its real samples, as in ``fit``.

An epoch with much arithmetic (more than :data:`SINGLE_CALL_FLOP`, several seconds on a
2-core CPU) runs as a few equal compiled calls of about :data:`CHUNK_FLOP` each instead, so
that the progress bar moves and Ctrl-C answers within about a second; steps that only pad
the last call are skipped (``lax.cond``), so the optimizer sees exactly the epoch's steps.

Dropout's random state and batch-norm statistics are Keras non-trainable variables carried in
the scan. Augmentation (``[augment]``: random shifts, mirroring) is applied to each gathered uint8
batch inside the scan, with a key folded from the epoch's key and the step number.

This module and nothing else in mlplab knows JAX internals.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from mlplab.config import AugmentConfig, TrainConfig
from mlplab.data.split import Splits
from mlplab.engine import (
    EpochListener,
    EpochMonitor,
    FitResult,
    StartPoint,
    StopRequest,
    TeacherNetwork,
    Trainer,
    class_weights,
    epochs_done,
    padded_length,
    schedule_of,
    unshare_averaged_weights,
)

EVAL_CHUNK = 2048
# Estimated floating-point work (6 x batch x parameters per step) above which an epoch is split
# into calls of about CHUNK_FLOP: ~5 s and ~1 s at the ~30 GFLOP/s this 2-core CPU reaches on
# one training step's products. One call per epoch stays the fastest for everything smaller.
SINGLE_CALL_FLOP = 150e9
CHUNK_FLOP = 30e9
# Keras' categorical cross-entropy clips probabilities to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7
_cache_ready = False

# XLA options for the compiled epoch on a CPU (measured in docs/performance.md, "XLA's
# options"). They change which kernels run and in what order, not the arithmetic asked for
# (another kernel may round a sum differently in the last bits; each stays deterministic).
# - The memory-optimised scheduler: a step is dozens of small kernels, which XLA:CPU's
#   default schedule spreads over its thread pool; handing work between threads costs more
#   than these kernels gain from running side by side.
# - A step whose products are small (at most SMALL_STEP_MULTIPLY_ADDS: batch x parameters)
#   keeps XLA's own matrix kernels instead of YNNPACK's, whose set-up per call outweighs
#   their faster arithmetic at these sizes (784-64-64-10 at batch 32) and not at larger ones
#   (784-1024-1024-10 at batch 128 is 1.2-1.3 x slower without them). Prediction (forward
#   only, in chunks of EVAL_CHUNK images) is as fast or faster with XLA's own kernels at
#   every size measured: 10,000 images of 784-64-64-10 2.5 x, 784-1024-1024-10 1.07 x.
SCHEDULER_OPTION = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}
OWN_KERNELS_OPTION = {"xla_cpu_experimental_ynn_fusion_type": ""}
SMALL_STEP_MULTIPLY_ADDS = 4e6
# Set when this jaxlib refused one of the options: they tune speed only, so the engine then
# compiles without them for the rest of the process.
_options_refused = False


def compilation_cache_dir() -> str:
    """Where JAX's persistent compilation cache is kept: ``MLPLAB_JAX_CACHE``, else
    ``jax-cache`` in mlplab's user cache folder."""
    folder = os.environ.get("MLPLAB_JAX_CACHE")
    if folder:
        return folder
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir("mlplab"), "jax-cache")


def enable_compilation_cache() -> None:
    """JAX's persistent compilation cache under mlplab's cache dir (``$MLPLAB_JAX_CACHE``).

    The second run of the same network then loads its compiled epoch instead of compiling.
    """
    global _cache_ready
    if _cache_ready:
        return
    jax.config.update("jax_compilation_cache_dir", compilation_cache_dir())
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _cache_ready = True


def _options_apply() -> bool:
    """Whether compiled calls get XLA options here: on the CPU, unless this jaxlib refused
    one of them."""
    return not _options_refused and jax.default_backend() == "cpu"


def epoch_compiler_options(parameters: int, batch: int) -> dict[str, str]:
    """The XLA options a training epoch is compiled with, for a step through networks of
    ``parameters`` weights in all at ``batch`` images (none where :func:`_options_apply`
    says no)."""
    if not _options_apply():
        return {}
    options = dict(SCHEDULER_OPTION)
    if batch * parameters <= SMALL_STEP_MULTIPLY_ADDS:
        options.update(OWN_KERNELS_OPTION)
    return options


def predict_compiler_options() -> dict[str, str]:
    """The XLA options prediction is compiled with: both (none where
    :func:`_options_apply` says no)."""
    return {**SCHEDULER_OPTION, **OWN_KERNELS_OPTION} if _options_apply() else {}


def _refused_an_option(error: jax.errors.JaxRuntimeError) -> bool:
    """Whether ``error`` is this jaxlib refusing a compile option (another version may have
    renamed it); if so, no options are given from then on."""
    global _options_refused
    if "option" not in str(error):
        return False
    _options_refused = True
    return True


def _compile(lowered: jax.stages.Lowered, options: dict[str, str]) -> jax.stages.Compiled:
    """``lowered`` compiled with XLA ``options``; without them if this jaxlib refuses one."""
    if options and not _options_refused:
        try:
            return lowered.compile(compiler_options=options)
        except jax.errors.JaxRuntimeError as error:
            if not _refused_an_option(error):
                raise
    return lowered.compile()


def _cross_entropy(probs: jax.Array, labels: jax.Array, smoothing: float = 0.0) -> jax.Array:
    """Per-sample categorical cross-entropy of softmax outputs, as Keras computes it.

    probs: float (b, k); labels: int (b,). With label smoothing the target is
    (1 - s) * one_hot + s / k, so the loss is -(1 - s) log p_y - s * mean_k log p_k.
    """
    logs = jnp.log(jnp.clip(probs, EPSILON, 1.0 - EPSILON))
    picked = jnp.take_along_axis(logs, labels[:, None], axis=1)[:, 0]
    if smoothing:
        return -(1.0 - smoothing) * picked - smoothing * logs.mean(axis=1)
    return -picked


def _distillation(probs: jax.Array, taught: jax.Array, temperature: float) -> jax.Array:
    """Per-sample T² x KL(taught || softmax(log probs / T)).

    probs: float (b, k) this network's softmax outputs; taught: float32 (b, k) the teacher's
    probabilities already softened by T (:func:`softened`). log probs are the logits up to a
    per-row constant, which a softmax ignores, so the model keeps its softmax output.
    """
    logs = jnp.log(jnp.clip(probs, 1e-30, 1.0)) / temperature
    student = jax.nn.log_softmax(logs, axis=1)
    own = jnp.where(taught > 0, taught * jnp.log(jnp.where(taught > 0, taught, 1.0)), 0.0)
    return temperature**2 * (own.sum(axis=1) - (taught * student).sum(axis=1))


def rotate_batch(x: jax.Array, key: jax.Array, degrees: float) -> jax.Array:
    """Each image of a batch turned about its centre by its own angle, drawn uniformly from
    [-degrees, degrees] (:func:`turned`). x: uint8 (b, h, w, c)."""
    angles = jax.random.uniform(key, (x.shape[0],), minval=-degrees, maxval=degrees)
    return turned(x, angles)


def turned(x: jax.Array, degrees: jax.Array) -> jax.Array:
    """Each image turned anticlockwise about its centre by its angle in ``degrees`` (float
    (b,)), sampled bilinearly; what comes from outside the frame is the image's background
    (the median of its border pixels, per channel), as :func:`mlplab.robustness.rotated`
    turns test images. x: uint8 (b, h, w, c)."""
    _, h, w, _ = x.shape
    rows, cols = jnp.mgrid[0:h, 0:w].astype(jnp.float32)
    across, down = cols + 0.5 - w / 2, rows + 0.5 - h / 2  # from the centre, y pointing down

    def one(image: jax.Array, angle: jax.Array) -> jax.Array:
        cos, sin = jnp.cos(jnp.deg2rad(angle)), jnp.sin(jnp.deg2rad(angle))
        # Where each output pixel comes from: the output turned back by the angle.
        source_x = across * cos - down * sin + w / 2 - 0.5
        source_y = across * sin + down * cos + h / 2 - 0.5
        pixels = image.astype(jnp.float32)
        border = jnp.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        fill = jnp.round(jnp.median(border, axis=0))  # (c,)

        def channel(plane: jax.Array, value: jax.Array) -> jax.Array:
            # Sampled from the plane less its fill, with zeros outside: the fill comes back
            # in where the frame's edge is, as a constant outside value would.
            moved = jax.scipy.ndimage.map_coordinates(
                plane - value, [source_y, source_x], order=1, mode="constant", cval=0.0
            )
            return moved + value

        out = jax.vmap(channel, in_axes=(2, 0), out_axes=2)(pixels, fill)
        return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)

    return jax.vmap(one)(x, degrees)


def augment_batch(x: jax.Array, key: jax.Array, augment: AugmentConfig) -> jax.Array:
    """Randomly turned, shifted (zero fill) and mirrored copies of a batch, as ``augment``
    (an :class:`mlplab.config.AugmentConfig`) says.

    x: uint8 (b, h, w, c). With ``rotate``, each image turns by its own angle
    (:func:`rotate_batch`); with ``translate``, it moves by its own integer offsets in
    [-translate, translate] along y and x; with ``flip`` a random half is mirrored left-right.
    """
    b, h, w, c = x.shape
    translate, flip = augment.translate, augment.flip
    shift_key, flip_key = jax.random.split(key)
    if augment.rotate:
        # Its own key, folded in: the shifts and flips draw what they drew before rotation.
        x = rotate_batch(x, jax.random.fold_in(key, 2), augment.rotate)
    if translate:
        t = translate
        padded = jnp.pad(x, ((0, 0), (t, t), (t, t), (0, 0)))
        offsets = jax.random.randint(shift_key, (b, 2), 0, 2 * t + 1)
        x = jax.vmap(lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (h, w, c)))(
            padded, offsets
        )
    if flip:
        mirror = jax.random.bernoulli(flip_key, 0.5, (b,))
        x = jnp.where(mirror[:, None, None, None], x[:, :, ::-1, :], x)
    return x


class FusedTrainer(Trainer):
    """Whole epochs as single compiled calls (JAX backend only)."""

    name = "fused"

    def __init__(
        self, augment: AugmentConfig | None = None, teacher: TeacherNetwork | None = None
    ) -> None:
        enable_compilation_cache()
        self.augment = augment or AugmentConfig()
        self.teacher = teacher
        self.compile_seconds = 0.0
        # The compiled predict function, and the model it was traced for.
        self._predict_fn: Any = None
        self._predict_model: keras.Model | None = None

    # --- compiled functions -------------------------------------------------------------

    def _epoch_function(
        self,
        model: keras.Model,
        smoothing: float,
        skip_empty: bool,
        step_losses: bool = False,
        weights: np.ndarray | None = None,
        distil: tuple[float, float] | None = None,
    ) -> Any:
        """One compiled call over a (steps, batch) block of an epoch's order.

        It returns the new state, the block's sums (loss x samples, correct, samples:
        float32 (3,)) and, with ``step_losses``, each step's batch loss before its update
        (float32 (steps,): the learning-rate finder's curve; the loss the step minimises,
        which with ``distil`` is the distillation objective; None otherwise, so that training
        does not stack a value per step). skip_empty: steps whose mask is all zero (padding of
        the last block) leave the weights, optimizer and random state untouched (loss NaN).
        weights: float32 (classes,) loss weight per class (:func:`engine.class_weights`), as
        Keras' ``class_weight`` applies it: each image's loss times its class's weight, the
        sum divided by the batch's size; None: unweighted (and the same compiled program as
        before class weights existed).

        The compiled call takes ``data`` (:func:`_on_device`): a dict of "x" and "y", with
        "w" a float32 (n,) weight per training image (``MLPClassifier.fit``'s
        ``sample_weight``), multiplying its loss as Keras' ``sample_weight`` does (with class
        weights too).

        distil: (temperature, weight) to distil ``self.teacher`` (``train.teacher``): each
        image's loss is then (1 - weight) x the labels' cross-entropy + weight x
        temperature² x the KL divergence from the teacher's softened probabilities to this
        network's (Hinton et al. 2015; the T² keeps the gradients' scale as the temperature
        changes). The teacher's probabilities come in ``data`` as "teacher", float32 (n,
        classes) already softened, or, with augmentation, from the teacher's network run on
        the same changed batch inside the step (its variables in ``data`` as
        "teacher_state"): it answers for the image the student sees. The block's sums then
        hold a fourth number, the teacher term x samples: the epoch's ``teacher_loss``; its
        ``loss`` stays the labels' (what ``val_loss`` measures).
        """
        optimizer = model.optimizer
        augment = self.augment
        class_weight = None if weights is None else jnp.asarray(weights)

        def loss_fn(trainable, non_trainable, x, y, mask, sample_weight, taught):
            probs, non_trainable, losses = model.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True
            )
            count = jnp.maximum(mask.sum(), 1.0)

            def batch_mean(per_sample):
                if class_weight is not None:
                    per_sample = per_sample * class_weight[y]
                if sample_weight is not None:
                    per_sample = per_sample * sample_weight
                return (per_sample * mask).sum() / count

            penalty = sum(losses) if losses else 0.0
            loss = batch_mean(_cross_entropy(probs, y, smoothing)) + penalty
            correct = ((jnp.argmax(probs, axis=1) == y) * mask).sum()
            if taught is None:
                return loss, (non_trainable, correct, loss, None)
            temperature, share = distil
            match = batch_mean(_distillation(probs, taught, temperature))
            objective = (1.0 - share) * (loss - penalty) + share * match + penalty
            return objective, (non_trainable, correct, loss, match)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        sums_size = 3 if distil is None else 4

        def epoch(state, data, order, mask, numbers, key):
            # Which arrays data holds is known when traced: no branch at run time.
            x_all, y_all = data["x"], data["y"]
            w_all, t_all = data.get("w"), data.get("teacher")
            teacher_state = data.get("teacher_state")

            def train_step(carry, batch):
                trainable, non_trainable, opt_vars, sums = carry
                index, weight, number = batch
                x, y = x_all[index], y_all[index]
                sample_weight = None if w_all is None else w_all[index]
                taught = None if t_all is None else t_all[index]
                if augment.active:
                    step_key = jax.random.fold_in(key, number)
                    x = augment_batch(x, step_key, augment)
                if teacher_state is not None:
                    taught = self._teacher_says(teacher_state, x, distil[0])
                (objective, (non_trainable, correct, loss, match)), grads = grad_fn(
                    trainable, non_trainable, x, y, weight, sample_weight, taught
                )
                trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
                real = weight.sum()
                counted = [loss * real, correct, real] + ([] if match is None else [match * real])
                sums = sums + jnp.stack(counted)
                return (trainable, non_trainable, opt_vars, sums), objective

            def skipped(carry, batch):
                return carry, jnp.float32(jnp.nan)

            def step(carry, batch):
                if skip_empty:
                    weight = batch[1]
                    carry, loss = jax.lax.cond(weight.sum() > 0, train_step, skipped, carry, batch)
                else:
                    carry, loss = train_step(carry, batch)
                return carry, (loss if step_losses else None)

            trainable, non_trainable, opt_vars = state
            carry = (trainable, non_trainable, opt_vars, jnp.zeros(sums_size, jnp.float32))
            (trainable, non_trainable, opt_vars, sums), losses = jax.lax.scan(
                step, carry, (order, mask, numbers)
            )
            return (trainable, non_trainable, opt_vars), sums, losses

        return jax.jit(epoch)

    def _options(self, model: keras.Model, batch: int) -> dict[str, str]:
        """XLA options for ``model``'s epoch (:func:`epoch_compiler_options`); a teacher
        whose network runs inside each step (with augmentation) counts in its size."""
        parameters = model.count_params()
        if self.teacher is not None and self.augment.active:
            parameters += self.teacher.model.count_params()
        return epoch_compiler_options(parameters, batch)

    def _teacher_says(self, state: tuple, x: jax.Array, temperature: float) -> jax.Array:
        """The teacher network's probabilities for a batch x (uint8 (b, h, w, c)) inside a
        step, in the student's class order and softened by ``temperature``: float32 (b, k)."""
        probs, _ = self.teacher.model.stateless_call(*state, x, training=False)
        logs = jnp.log(jnp.clip(probs[:, self.teacher.order], 1e-30, 1.0)) / temperature
        return jax.lax.stop_gradient(jax.nn.softmax(logs, axis=1))

    def _compiled_on_first_call(
        self, function: Any, options: dict[str, str] | None = None
    ) -> Callable[..., Any]:
        """``function`` (jitted), compiled with XLA ``options`` ahead of its first call for
        the arguments of that call, with the time it took added to ``compile_seconds``;
        later calls reuse it."""
        compiled = None

        def call(*args: Any) -> Any:
            nonlocal compiled
            if compiled is None:
                began = time.perf_counter()
                compiled = _compile(function.lower(*args), options or {})
                self.compile_seconds += time.perf_counter() - began
            return compiled(*args)

        return call

    def _predict_function(self, model: keras.Model) -> Any:
        def predict(trainable, non_trainable, chunks):
            def one(x):
                probs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
                return probs

            return jax.lax.map(one, chunks)

        return jax.jit(predict, compiler_options=predict_compiler_options() or None)

    # --- training -----------------------------------------------------------------------

    def fit(
        self,
        model: keras.Model,
        splits: Splits,
        config: TrainConfig,
        listener: EpochListener,
        stop: StopRequest,
        start: StartPoint | None = None,
    ) -> FitResult:
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)  # a no-op when a resume has built it
        n = len(splits.y_train)
        batch = min(config.batch_size, n)
        steps = math.ceil(n / batch)
        data = _on_device(splits.x_train, splits.y_train, splits.w_train)
        distil = None
        if self.teacher is not None:
            distil = (config.teacher_temperature, config.teacher_weight)
            data.update(self._teaching(splits.x_train, config.teacher_temperature))
        rng = np.random.default_rng(config.seed)
        # Its own stream, so that turning augmentation on does not change the shuffling.
        augment_rng = np.random.default_rng([config.seed, 1])
        state = _read_state(model)
        # A resumed run draws (and drops) the finished epochs' orders and keys, so that its
        # later epochs are the same as in a run that never stopped.
        for _ in range(epochs_done(start)):
            _epoch_order(rng, n, batch, steps)
            augment_rng.integers(2**31)
        monitor = EpochMonitor(model, config, stop, start)
        listener.on_train_begin(config.epochs, steps)
        calls, per_call = epoch_calls(model, batch, steps)
        run_block = self._compiled_on_first_call(
            self._epoch_function(
                model,
                config.label_smoothing,
                skip_empty=calls * per_call > steps,
                weights=class_weights(splits.y_train, model.output_shape[-1], config.class_weight),
                distil=distil,
            ),
            self._options(model, batch),
        )
        current_lr = _learning_rate_reader(optimizer)
        numbers = np.arange(calls * per_call, dtype=np.uint32).reshape(calls, per_call)
        started = time.perf_counter()
        try:
            for epoch in range(epochs_done(start) + 1, config.epochs + 1):
                began = time.perf_counter()
                order, mask = _epoch_order(rng, n, batch, calls * per_call)
                order = order.reshape(calls, per_call, batch)
                mask = mask.reshape(calls, per_call, batch)
                key = jax.random.PRNGKey(int(augment_rng.integers(2**31)))
                sums = None
                cut_short = False
                for call in range(calls):
                    block = (order[call], mask[call], numbers[call])
                    state, block_sums, _ = run_block(state, data, *block, key)
                    sums = block_sums if sums is None else sums + block_sums
                    if call + 1 < calls:
                        # JAX dispatches asynchronously: without waiting here, every call of
                        # the epoch would be queued at once, and a stop would wait for them.
                        block_sums.block_until_ready()
                        listener.on_batch_end(epoch, (call + 1) * per_call)
                        if stop.requested:  # Ctrl-C: stop here, as model.fit stops mid-epoch
                            cut_short = True
                            break
                loss_sum, correct, count, *match_sum = (float(v) for v in np.asarray(sums))
                _write_back(model, state)
                stats: dict[str, float] = {
                    "epoch": epoch,
                    "loss": loss_sum / count,
                    "accuracy": correct / count,
                }
                if match_sum:
                    stats["teacher_loss"] = match_sum[0] / count
                if cut_short:
                    monitor.end_epoch(stats, cut_short=True)
                    break
                if splits.x_val is not None:
                    stats.update(
                        self._validate(model, splits.x_val, splits.y_val, config.label_smoothing)
                    )
                stats["lr"] = current_lr()
                stats["seconds"] = time.perf_counter() - began
                listener.on_batch_end(epoch, steps)
                stop_now = monitor.end_epoch(stats)
                listener.on_epoch_end(stats)
                monitor.tell(listener)
                if monitor.rate_cut is not None:  # the plateau schedule's: in the carry too
                    state = _read_state(model)
                if stop_now:
                    break
        finally:
            listener.on_train_end()
        if optimizer.use_ema:
            # As model.fit does: end with the averaged weights (before an early stop's
            # restore of the best epoch, which then wins, also as in fit).
            optimizer.finalize_variable_values(model.trainable_variables)
            unshare_averaged_weights(model)
        result = monitor.finish()
        result.train_seconds = time.perf_counter() - started
        result.compile_seconds = self.compile_seconds
        result.compiler_options = self._options(model, batch)
        return result

    def step_losses(
        self,
        model: keras.Model,
        x_train: np.ndarray,
        y_train: np.ndarray,
        config: TrainConfig,
        steps: int,
        enough: Callable[[np.ndarray], bool] | None = None,
    ) -> np.ndarray:
        """Train ``steps`` full batches and return each one's loss, taken before its update.

        x_train: uint8 (n, h, w, c); y_train: int (n,). Batches are drawn as training draws
        them (seeded permutations, one pass after another when the steps outrun an epoch), but
        always full: each pass leaves out its last partial batch. The optimizer (its learning
        rate schedule) decides each step's rate. ``enough`` is asked after each compiled call
        with the losses so far; True ends the sweep there. Returns float32 (k,), k <= steps.
        With ``self.teacher`` each loss is the distillation objective (as in :meth:`fit`).
        The model's variables are left as they were (the sweep works on copies).
        """
        model.optimizer.build(model.trainable_variables)
        n = len(y_train)
        batch = min(config.batch_size, n)
        per_pass = n // batch
        rng = np.random.default_rng(config.seed)
        pass_count = math.ceil(steps / per_pass)
        passes = [rng.permutation(n)[: per_pass * batch] for _ in range(pass_count)]
        calls, per_call = epoch_calls(model, batch, steps)
        order, mask = _padded(np.concatenate(passes)[: steps * batch], batch, calls * per_call)
        order = order.reshape(calls, per_call, batch)
        mask = mask.reshape(calls, per_call, batch)
        numbers = np.arange(calls * per_call, dtype=np.uint32).reshape(calls, per_call)
        key = jax.random.PRNGKey(int(np.random.default_rng([config.seed, 1]).integers(2**31)))
        data = _on_device(x_train, y_train)
        distil = None
        if self.teacher is not None:
            distil = (config.teacher_temperature, config.teacher_weight)
            data.update(self._teaching(x_train, config.teacher_temperature))
        run_block = self._compiled_on_first_call(
            self._epoch_function(
                model,
                config.label_smoothing,
                skip_empty=calls * per_call > steps,
                step_losses=True,
                weights=class_weights(y_train, model.output_shape[-1], config.class_weight),
                distil=distil,
            ),
            self._options(model, batch),
        )
        state = _read_state(model)
        losses: list[float] = []
        for call in range(calls):
            block = (order[call], mask[call], numbers[call])
            state, _, block_losses = run_block(state, data, *block, key)
            losses.extend(np.asarray(block_losses).tolist())
            if enough is not None and enough(np.asarray(losses[:steps], np.float32)):
                break
        return np.asarray(losses[:steps], np.float32)

    def _teaching(self, x_train: np.ndarray, temperature: float) -> dict[str, Any]:
        """What the compiled epoch needs of the teacher: its softened probabilities for the
        training images x_train (uint8 (n, h, w, c)) as "teacher", computed once; with
        augmentation, which changes the images every step, its network's variables as
        "teacher_state" instead."""
        teacher = self.teacher
        if self.augment.active:
            state = (
                [v.value for v in teacher.model.trainable_variables],
                [v.value for v in teacher.model.non_trainable_variables],
            )
            return {"teacher_state": state}
        proba = teacher.train_proba
        if proba is None:
            proba = self.predict(teacher.model, x_train)[:, teacher.order]
        return {"teacher": jax.device_put(softened(proba, temperature))}

    def _validate(
        self, model: keras.Model, x: np.ndarray, y: np.ndarray, smoothing: float = 0.0
    ) -> dict[str, float]:
        """val_loss as Keras' compiled loss gives it (label smoothing and L2 included)."""
        probs = self.predict(model, x)
        ce = np.asarray(_cross_entropy(jnp.asarray(probs), jnp.asarray(y), smoothing))
        penalty = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
        return {
            "val_loss": float(ce.mean()) + penalty,
            "val_accuracy": float(np.mean(probs.argmax(axis=1) == y)),
        }

    def predict(self, model: keras.Model, x: np.ndarray) -> np.ndarray:
        """x: uint8 (n, h, w, c) -> float32 (n, classes), in padded fixed-size chunks: of
        EVAL_CHUNK images, or fewer images padded to the next power of two (so that a server
        sent 1, 3, 3, 5 images compiles for 1, 4 and 8 once each)."""
        n = len(x)
        if n == 0:
            return np.zeros((0, model.output_shape[-1]), np.float32)
        chunk = min(EVAL_CHUNK, padded_length(n))
        chunks = math.ceil(n / chunk)
        padded = np.zeros((chunks * chunk, *x.shape[1:]), x.dtype)
        padded[:n] = x
        if self._predict_model is not model:
            self._predict_fn = self._predict_function(model)
            self._predict_model = model
        args = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            padded.reshape(chunks, chunk, *x.shape[1:]),
        )
        try:
            probs = self._predict_fn(*args)
        except jax.errors.JaxRuntimeError as error:
            if not _refused_an_option(error):
                raise
            self._predict_fn = self._predict_function(model)  # now without options
            probs = self._predict_fn(*args)
        return np.asarray(probs, np.float32).reshape(chunks * chunk, -1)[:n]


def epoch_calls(model: keras.Model, batch: int, steps: int) -> tuple[int, int]:
    """How an epoch of ``steps`` runs: (compiled calls, steps per call), equal calls whose
    total covers ``steps`` with fewer padding steps than one call has."""
    epoch_flop = 6.0 * batch * model.count_params() * steps
    if epoch_flop <= SINGLE_CALL_FLOP:
        return 1, steps
    per_call = math.ceil(steps / min(steps, math.ceil(epoch_flop / CHUNK_FLOP)))
    return math.ceil(steps / per_call), per_call


def _learning_rate_reader(optimizer: keras.optimizers.Optimizer) -> Callable[[], float]:
    """A function giving the rate of the optimizer's last step, for the history (as
    :func:`mlplab.engine.last_step_rate` does, without compiling anything per epoch).

    ``optimizer.learning_rate`` evaluates a schedule eagerly, and Keras' warm-up schedules
    build a new ``lax.cond`` on every call: one more trace and compile every epoch. The
    schedule jitted once, as a function of the step count, compiles once per run.
    """
    schedule = schedule_of(optimizer)
    if schedule is not None:
        at_last_step = jax.jit(lambda iterations: schedule(jnp.maximum(iterations - 1, 0)))
        return lambda: float(at_last_step(optimizer.iterations.value))
    return lambda: float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _epoch_order(
    rng: np.random.Generator, n: int, batch: int, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation padded to (steps, batch) int32, and its float32 mask."""
    return _padded(rng.permutation(n), batch, steps)


def _padded(indices: np.ndarray, batch: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices (k,) in batches, padded to (steps, batch) int32 with index 0, and the
    float32 mask that is 1 for the real ones."""
    order = np.zeros(steps * batch, np.int32)
    order[: len(indices)] = indices
    mask = np.zeros(steps * batch, np.float32)
    mask[: len(indices)] = 1.0
    return order.reshape(steps, batch), mask.reshape(steps, batch)


def _on_device(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> dict[str, Any]:
    """What the compiled epoch takes as ``data``, on the device: the training images
    (uint8 (n, h, w, c)) as "x", the labels (int32 (n,)) as "y" and, when given, per-image
    loss weights (float32 (n,)) as "w"."""
    data = {"x": jax.device_put(x), "y": jax.device_put(y.astype(np.int32))}
    if w is not None:
        data["w"] = jax.device_put(w.astype(np.float32))
    return data


def softened(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities float (n, classes) at a temperature: softmax(log p / T), float32.

    T > 1 evens them out, so that the classes a network ranks second and third (a shirt
    that looks like a T-shirt) carry weight; T = 1 leaves them as they are."""
    logs = np.log(np.clip(proba.astype(np.float64), 1e-30, 1.0)) / temperature
    logs -= logs.max(axis=1, keepdims=True)
    soft = np.exp(logs)
    return (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)


def _read_state(model: keras.Model) -> tuple[list, list, list]:
    """The model's and its optimizer's variables as arrays: (trainable, non-trainable,
    optimizer), the state a compiled epoch carries."""
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
    )


def _write_back(model: keras.Model, state: tuple) -> None:
    """Put the scan's variables back into the Keras model and optimizer."""
    trainable, non_trainable, opt_vars = state
    for variable, value in zip(model.trainable_variables, trainable, strict=True):
        variable.assign(value)
    for variable, value in zip(model.non_trainable_variables, non_trainable, strict=True):
        variable.assign(value)
    for variable, value in zip(model.optimizer.variables, opt_vars, strict=True):
        variable.assign(value)
