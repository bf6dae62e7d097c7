"""A run's report: every plot, the text report and the self-contained ``report.html``.

``ReportData`` is everything a report shows. ``train`` fills it from memory at the end of a
run; ``report_run`` fills it from a run directory (``test_predictions.npz`` for the test
results, the dataset for the pictures), so older runs get new plots. What cannot be read is
left out of the report and named in its ``problems``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.config import TrainConfig
from mlplab.diagnosis import Finding, findings_of
from mlplab.embedding import LayerViews
from mlplab.errors import MlplabError, RunError
from mlplab.gradients import LayerGradients
from mlplab.metrics import (
    calibration,
    classification_metrics,
    confident_examples,
    confused_pairs,
    coverage_curve,
    interval_text,
    report_text,
    selective,
)
from mlplab.record import RunRecord, read_record
from mlplab.running import training_process
from mlplab.runs import PREDICTIONS_FILE, REPORT_FILE, RunWriter, read_test_predictions
from mlplab.summary import ModelSummary, model_summary

HTML_FILE = "report.html"
PLOT_FILES = {
    "curves": "curves.png",
    "confusion": "confusion.png",
    "per_class": "per_class.png",
    "samples": "samples.png",
    "mistakes": "mistakes.png",
    "correct": "correct.png",
    "weights": "weights.png",
    "hidden": "hidden.png",
    "calibration": "calibration.png",
    "coverage": "coverage.png",
    "why_mistakes": "why_mistakes.png",
    "robustness": "robustness.png",
    "gradients": "gradients.png",
    "augmented": "augmented.png",
    "layer_views": "layer_views.png",
}
# What drawing the plots imports (matplotlib, about a second): train imports it during training.
DRAWING_MODULES = ("mlplab.report.plots", "mlplab.report.mosaic")
GALLERY_SIZE = 24
# Training samples per class in samples.png (one per class above 20 classes).
SAMPLES_PER_CLASS = 8
# Hidden units in weights.png: those with the largest weights. (Without hidden layers, the
# output layer's units are the classes, all of them drawn up to MAX_CLASS_TILES.)
WEIGHT_TILES = 32
MAX_CLASS_TILES = 100
# Training images (seeded pick) whose hidden-layer outputs hidden.png shows.
HIDDEN_SAMPLE = 1000
# The surest mistakes why_mistakes.png explains, pixel by pixel.
MISTAKES_EXPLAINED = 8
# augmented.png: training images (one per class, seeded) and random draws of each.
AUGMENTED_IMAGES = 6
AUGMENTED_DRAWS = 7


@dataclass
class ReportData:
    """What a report shows.

    y_true: int (n,) test labels and proba: float32 (n, k) test probabilities, or None for
    a run without test results. x_test: uint8 (n, h, w, c) test images aligned with y_true,
    and x_train / y_train: training images and labels for the sample grid; None where the
    dataset could not be read. first_layer: the first Dense layer's weights scaled by the
    spread of their pixels (:func:`mlplab.model.first_layer_weights`), float32
    (h * w * c, units), and first_layer_is_output: whether that is the output layer (then
    its units are the classes); None without a model or the training images. hidden: each
    hidden layer's activation name and outputs on up to HIDDEN_SAMPLE training images,
    float32 (n, units) (:func:`mlplab.activations.hidden_outputs`); None likewise.
    mistakes_explained: the indices (into the test split) of the surest mistakes, and what
    their pixels contributed to the predicted and to the true class, float32 (m, h, w, c)
    each (:func:`mlplab.explain.pixel_contributions`); None without a model on JAX, test
    images or mistakes. members: for an ensemble (:mod:`mlplab.ensembles`), each member's
    folder name and history, whose curves its report draws (it has none of its own); None
    for a trained run. robustness: the test accuracy on changed images
    (:func:`mlplab.robustness.robustness`), measured now or read from ``metrics.json``; None
    without a model and the test images. model_summary: the model's layers and parameter
    counts (:func:`mlplab.summary.model_summary`); None without a model. gradients: each
    Dense layer's RMS loss gradient at the initial and the trained weights
    (:func:`mlplab.gradients.layer_gradients`), measured now or read from ``metrics.json``;
    None without a model and the training images, for an ensemble, or off JAX.
    layer_views: the test images as the pixels and each hidden layer place them, and their
    k-NN accuracy there (:func:`mlplab.embedding.layer_views`); None without a model and the
    test images, or for an ensemble.
    """

    record: RunRecord
    y_true: np.ndarray | None = None
    proba: np.ndarray | None = None
    x_test: np.ndarray | None = None
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    problems: list[str] = field(default_factory=list)
    first_layer: np.ndarray | None = None
    first_layer_is_output: bool = False
    hidden: list[tuple[str, np.ndarray]] | None = None
    mistakes_explained: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    members: list[tuple[str, list[dict[str, float]]]] | None = None
    robustness: dict[str, Any] | None = None
    model_summary: ModelSummary | None = None
    gradients: LayerGradients | None = None
    layer_views: LayerViews | None = None
    # The run's Keras model when the report was gathered from its folder (report_run).
    model: Any = None

    @property
    def class_names(self) -> list[str]:
        return self.record.class_names

    @property
    def title(self) -> str:
        record = self.record
        accuracy = record.test_accuracy
        result = (
            f"test accuracy {accuracy:.4f}"
            if accuracy is not None and math.isfinite(accuracy)
            else record.status
        )
        return f"{record.name} on {record.dataset}: {result}"

    @property
    def findings(self) -> list[Finding]:
        """What the learning curves say (:func:`mlplab.diagnosis.findings_of`)."""
        return findings_of(self.record)

    @property
    def all_problems(self) -> list[str]:
        return [*self.record.problems, *self.problems]


def predictions_npz(y_true: np.ndarray, proba: np.ndarray) -> bytes:
    """The test split's labels (int32) and probabilities (float32) as .npz bytes."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, y_true=y_true.astype(np.int32), proba=proba.astype(np.float32))
    return buffer.getvalue()


def render_plots(data: ReportData) -> dict[str, bytes]:
    """Every plot the data allows: file name -> PNG bytes."""
    return {**prediction_plots(data), **measured_plots(data)}


def prediction_plots(data: ReportData) -> dict[str, bytes]:
    """The plots drawn from the history, the test predictions and the images alone (curves,
    confusion, per class, samples, galleries, calibration, coverage): file name -> PNG.
    They read nothing the measurements after training (:func:`read_model`,
    :func:`measure_robustness`...) write, so ``train`` draws them on another thread
    meanwhile (:func:`drawing_early`)."""
    from mlplab.report import mosaic, plots

    record, title = data.record, data.title
    names = data.class_names
    pngs: dict[str, bytes] = {}
    if data.members is None:
        train = record.config.train if record.config else TrainConfig()
        cuts = plots.rate_cuts(record.history, train.schedule)
        pngs[PLOT_FILES["curves"]] = plots.curves_png(
            record.history, title, cuts, train.monitor, train.min_delta
        )
    elif any(history for _, history in data.members):  # an ensemble: its members' curves
        curves = [(label, history) for label, history in data.members if history]
        pngs[PLOT_FILES["curves"]] = plots.compare_png(
            curves, f"{record.name}: each member's curves"
        )
    metrics = record.metrics or {}
    if "confusion_matrix" in metrics and names:
        pairs = confused_pairs(metrics["confusion_matrix"], names, top=20)
        pngs[PLOT_FILES["confusion"]] = plots.confusion_png(
            metrics["confusion_matrix"], names, title, pairs
        )
    if "per_class" in metrics and names:
        pngs[PLOT_FILES["per_class"]] = plots.per_class_png(metrics["per_class"], names, title)
    if data.x_train is not None and data.y_train is not None and names:
        per_class = SAMPLES_PER_CLASS if len(names) <= mosaic.MAX_CLASS_ROWS else 1
        pngs[PLOT_FILES["samples"]] = mosaic.samples_png(
            data.x_train, data.y_train, names, f"{record.dataset}: training samples", per_class
        )
    if data.x_test is not None and data.y_true is not None and data.proba is not None:
        galleries = gallery_pngs(
            data.x_test,
            data.y_true,
            data.proba,
            names,
            f"{record.name} on {record.dataset}",
            " (test split)",
        )
        pngs.update({PLOT_FILES[key]: png for key, png in galleries.items()})
    if data.y_true is not None and data.proba is not None and len(data.y_true):
        # From the predictions, not metrics.json: runs from before it held this have them.
        pngs[PLOT_FILES["calibration"]] = plots.calibration_png(
            calibration(data.y_true, data.proba), title
        )
        pngs[PLOT_FILES["coverage"]] = plots.coverage_png(
            coverage_curve(data.y_true, data.proba), selective(data.y_true, data.proba), title
        )
    return pngs


def measured_plots(data: ReportData, only: Sequence[str] | None = None) -> dict[str, bytes]:
    """The plots of what is measured after training (why the surest mistakes, robustness,
    first-layer weights, hidden outputs, gradients, what each layer sees) and of the
    augmentation: file name -> PNG bytes. only: which of them (keys of PLOT_FILES); all
    by default. Each is left out where the data lacks what it shows."""
    pngs: dict[str, bytes] = {}
    for key, draw in _MEASURED_PLOTS.items():
        if only is None or key in only:
            png = draw(data)
            if png is not None:
                pngs[PLOT_FILES[key]] = png
    return pngs


def _why_mistakes_png(data: ReportData) -> bytes | None:
    """why_mistakes.png: what the pixels of the surest mistakes said for the predicted and
    for the true class (none without them)."""
    from mlplab.report import mosaic

    if data.mistakes_explained is None or data.x_test is None:
        return None
    chosen, for_predicted, for_true = data.mistakes_explained
    record = data.record
    return mosaic.mistakes_explained_png(
        data.x_test[chosen],
        for_predicted,
        for_true,
        data.y_true[chosen],
        data.proba[chosen].argmax(axis=1),
        data.proba[chosen].max(axis=1),
        data.class_names,
        f"{record.name} on {record.dataset}: why the surest mistakes (test split)",
    )


def _robustness_png(data: ReportData) -> bytes | None:
    """robustness.png: the test accuracy on shifted, rotated and noisy images."""
    from mlplab.report import plots

    if data.robustness is None or not data.class_names:
        return None
    return plots.robustness_png(data.robustness, len(data.class_names), data.record.name)


def _gradients_png(data: ReportData) -> bytes | None:
    """gradients.png: each layer's loss gradient at the initial and the trained weights."""
    from mlplab.report import plots

    if data.gradients is None:
        return None
    return plots.gradients_png(data.gradients, data.record.name)


def _layer_views_png(data: ReportData) -> bytes | None:
    """layer_views.png: the test images as the pixels and each hidden layer place them."""
    from mlplab.report import plots

    if data.layer_views is None:
        return None
    return plots.layer_views_png(data.layer_views, data.class_names, data.record.name)


def gallery_pngs(
    x: np.ndarray,
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: Sequence[str],
    title: str,
    suffix: str = "",
    skip_empty: bool = False,
) -> dict[str, bytes]:
    """``mistakes`` and ``correct``: the GALLERY_SIZE surest wrong and right predictions
    with their images, titled "TITLE: most confident mistakes SUFFIX". x: uint8 (n, h, w,
    c); y_true: int (n,); proba: float (n, classes). An empty gallery is drawn as one
    saying "none", or left out with ``skip_empty``."""
    from mlplab.report import mosaic

    predicted, confidence = proba.argmax(axis=1), proba.max(axis=1)
    pngs = {}
    for correct, key, heading in (
        (False, "mistakes", "most confident mistakes"),
        (True, "correct", "most confident right predictions"),
    ):
        chosen = confident_examples(y_true, proba, correct, GALLERY_SIZE)
        if skip_empty and not len(chosen):
            continue
        pngs[key] = mosaic.gallery_png(
            x[chosen],
            y_true[chosen],
            predicted[chosen],
            confidence[chosen],
            class_names,
            f"{title}: {heading}{suffix}",
        )
    return pngs


def _augmented_png(data: ReportData) -> bytes | None:
    """augmented.png for a run with ``[augment]`` (none without it or the training images)."""
    config = data.record.config
    if config is None or not config.augment.active or data.x_train is None:
        return None
    return augmented_sample_png(
        data.x_train, data.y_train, data.class_names, config.augment, data.record.name
    )


def augmented_sample_png(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], augment: Any, name: str
) -> bytes | None:
    """What ``augment`` (an :class:`mlplab.config.AugmentConfig`) makes of a few training
    images: one per class (seeded, up to AUGMENTED_IMAGES), each as stored and in
    AUGMENTED_DRAWS random draws, made by the fused engine's own ``augment_batch``.
    x: uint8 (n, h, w, c); y: int (n,). None without JAX (another Keras backend)."""
    from mlplab.report import mosaic

    try:
        import jax

        from mlplab.fused import augment_batch
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    classes = np.unique(y)[:AUGMENTED_IMAGES]
    images = x[np.array([rng.choice(np.flatnonzero(y == c)) for c in classes])]
    key = jax.random.PRNGKey(0)
    draws = [
        augment_batch(images, jax.random.fold_in(key, draw), augment)
        for draw in range(AUGMENTED_DRAWS)
    ]
    variants = np.stack([np.asarray(draw) for draw in draws], axis=1)
    captions = [str(class_names[c]) if c < len(class_names) else str(c) for c in classes]
    settings = []
    if augment.translate:
        settings.append(f"translate = {augment.translate}")
    if augment.flip:
        settings.append("flip = true")
    if augment.rotate:
        settings.append(f"rotate = {augment.rotate:g}")
    title = f"{name}: what training sees ([augment] {', '.join(settings)}), a new draw each epoch"
    return mosaic.augmented_png(images, variants, captions, title)


def read_model(data: ReportData, model: Any, x_train: np.ndarray) -> None:
    """Fill in what the report draws from the model itself: the first layer's weights (on
    the training images' pixel spread) and the hidden layers' outputs on a seeded sample of
    up to HIDDEN_SAMPLE training images. x_train: uint8 (n, h, w, c). Nothing for an
    ensemble: its members' own reports show their layers."""
    from mlplab.activations import hidden_outputs
    from mlplab.model import first_layer_weights, is_ensemble

    if is_ensemble(model):
        return
    data.first_layer, data.first_layer_is_output = first_layer_weights(model, x_train)
    count = min(len(x_train), HIDDEN_SAMPLE)
    pick = np.sort(np.random.default_rng(0).choice(len(x_train), count, replace=False))
    data.hidden = hidden_outputs(model, x_train[pick])


def measure_gradients(
    data: ReportData, model: Any, x_train: np.ndarray, y_train: np.ndarray
) -> None:
    """Fill in ``gradients`` (:func:`mlplab.gradients.layer_gradients`) from the dataset's
    training images (uint8 (n, h, w, c), int (n,): all of them, as hidden.png samples
    them, so that train and a later report measure the same); nothing without the run's
    config."""
    from mlplab.gradients import layer_gradients

    if data.record.config is not None:
        data.gradients = layer_gradients(
            model, data.record.config, x_train, y_train, data.class_names
        )


def view_layers(data: ReportData, model: Any) -> None:
    """Fill in ``layer_views`` (:func:`mlplab.embedding.layer_views`, PCA maps) from the test
    images; nothing without them or for an ensemble (its members have their own layers)."""
    from mlplab.embedding import layer_views
    from mlplab.model import is_ensemble

    if data.x_test is None or data.y_true is None or not len(data.y_true) or is_ensemble(model):
        return
    data.layer_views = layer_views(model, data.x_test, data.y_true)


def explain_mistakes(data: ReportData, model: Any) -> None:
    """Fill in ``mistakes_explained`` for the MISTAKES_EXPLAINED surest mistakes on the test
    split (nothing without its images and predictions, or off JAX)."""
    from mlplab.explain import pixel_contributions

    if data.x_test is None or data.y_true is None or data.proba is None:
        return
    chosen = confident_examples(data.y_true, data.proba, False, MISTAKES_EXPLAINED)
    if not len(chosen):
        return
    images = np.concatenate([data.x_test[chosen]] * 2)
    classes = np.concatenate([data.proba[chosen].argmax(axis=1), data.y_true[chosen]])
    try:
        both = pixel_contributions(model, images, classes)  # predicted, then true classes
    except RunError:  # another Keras backend: no gradients to take here
        return
    data.mistakes_explained = (chosen, both[: len(chosen)], both[len(chosen) :])


def measure_robustness(data: ReportData, predict: Callable[[np.ndarray], np.ndarray]) -> None:
    """Fill in ``robustness`` (:func:`mlplab.robustness.robustness`) from the test images,
    with ``predict`` (uint8 (n, h, w, c) -> probabilities (n, classes)); nothing without the
    test images."""
    from mlplab.robustness import robustness

    if data.x_test is not None and data.y_true is not None and len(data.y_true):
        data.robustness = robustness(predict, data.x_test, data.y_true)


def _hidden_png(data: ReportData) -> bytes | None:
    """hidden.png: a histogram of each hidden layer's outputs (none without hidden layers)."""
    from mlplab.activations import summarize
    from mlplab.report import plots

    if not data.hidden:
        return None
    summaries = [summarize(outputs, activation) for activation, outputs in data.hidden]
    return plots.hidden_png([outputs for _, outputs in data.hidden], summaries, data.record.name)


def _weights_png(data: ReportData) -> bytes | None:
    """weights.png: the output layer's weights per class for a network without hidden
    layers; otherwise the first hidden layer's units with the largest weights."""
    from mlplab.report import mosaic

    kernel, names = data.first_layer, data.class_names
    shape = (data.record.metrics or {}).get("dataset", {}).get("image_shape")
    if kernel is None or not shape or kernel.shape[0] != math.prod(shape):
        return None
    record = data.record
    if data.first_layer_is_output and len(names) == kernel.shape[1]:
        shown = np.arange(min(kernel.shape[1], MAX_CLASS_TILES))
        captions = [str(names[i]) for i in shown]
        title = f"{record.name}: each class's weights on the pixels (no hidden layer)"
    else:
        norms = np.linalg.norm(kernel, axis=0)
        shown = np.argsort(-norms, kind="stable")[:WEIGHT_TILES]
        captions = [f"unit {i + 1}" for i in shown]
        title = (
            f"{record.name}: first hidden layer, the {len(shown)} of {kernel.shape[1]} units "
            "with the largest weights"
        )
    return mosaic.weights_png(kernel[:, shown].T, shape, captions, title)


# measured_plots' plots, in the order they are drawn: each from ReportData -> PNG or None.
_MEASURED_PLOTS: dict[str, Callable[[ReportData], bytes | None]] = {
    "why_mistakes": _why_mistakes_png,
    "robustness": _robustness_png,
    "weights": _weights_png,
    "hidden": _hidden_png,
    "gradients": _gradients_png,
    "layer_views": _layer_views_png,
    "augmented": _augmented_png,
}


def findings_text(findings: Sequence[Finding]) -> str:
    """report.txt's "what the curves say" lines, each wrapped to 92 columns; "" for none."""
    import textwrap

    if not findings:
        return ""
    lines = ["what the learning curves say:"]
    for finding in findings:
        lines += textwrap.wrap(finding.text(), 92, initial_indent="  - ", subsequent_indent="    ")
    return "\n".join(lines) + "\n"


def measure_model(
    data: ReportData,
    model: Any,
    predict: Callable[[np.ndarray], np.ndarray],
    x_train: np.ndarray,
    y_train: np.ndarray,
    drawing: Drawing | None = None,
) -> None:
    """Fill in what the report measures from a trained ``model``, one after another: the
    first layer's weights and the hidden outputs (:func:`read_model`), the surest mistakes
    explained, robustness, gradients and what each layer sees. With ``drawing``, each
    measurement's plots are drawn on its thread while the next one runs.

    predict: uint8 (n, h, w, c) -> probabilities (n, classes). x_train, y_train: uint8
    (n, h, w, c) and int (n,), the dataset's training images and labels (all of them, as
    ``mlplab report`` reads them later)."""

    def done(*keys: str) -> None:
        if drawing is not None:
            drawing.measured(*keys)

    done("augmented")  # from the config and the training images alone
    read_model(data, model, x_train)
    done("weights", "hidden")
    explain_mistakes(data, model)
    done("why_mistakes")
    measure_robustness(data, predict)
    done("robustness")
    measure_gradients(data, model, x_train, y_train)
    done("gradients")
    view_layers(data, model)
    done("layer_views")


class Drawing:
    """The report's plots drawn on one worker thread while ``train`` measures after
    training (compiled JAX calls and NumPy, mostly, which let go of the GIL): first
    :func:`prediction_plots`, then each measurement's plots as soon as :meth:`measured`
    says it is done. :meth:`pngs` waits for them and draws whatever was not handed over.

    Measured on ``mlplab train`` of a 784-64-64 network: docs/performance.md."""

    def __init__(self, data: ReportData) -> None:
        self.data = data
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlplab-draw")
        self._drawn = [self._pool.submit(prediction_plots, data)]
        self._handed: set[str] = set()

    def measured(self, *keys: str) -> None:
        """Draw the plots ``keys`` (of PLOT_FILES, from :func:`measured_plots`), whose
        measurement is done."""
        self._handed.update(keys)
        self._drawn.append(self._pool.submit(measured_plots, self.data, keys))

    def pngs(self) -> dict[str, bytes]:
        """Every plot: file name -> PNG bytes."""
        pngs: dict[str, bytes] = {}
        try:
            for drawn in self._drawn:
                pngs.update(_awaited(drawn))
        except BaseException:  # a Ctrl-C that gives up the pictures
            self.close(cancel=True)
            raise
        rest = [key for key in _MEASURED_PLOTS if key not in self._handed]
        if rest:
            pngs.update(measured_plots(self.data, rest))
        return pngs

    def close(self, cancel: bool = False) -> None:
        """Let the thread go once it has drawn what it was handed, or, with ``cancel``,
        once it has drawn the plot it is drawing. Never waits: :meth:`pngs` waits for
        the plots, and a Ctrl-C that skips the pictures should not wait for them."""
        self._pool.shutdown(wait=False, cancel_futures=cancel)


@contextmanager
def drawing_early(data: ReportData, draw: bool = True) -> Iterator[Drawing | None]:
    """A :class:`Drawing` of ``data`` while the block runs, for :func:`measure_model` and
    :func:`write_report`; None when not ``draw``."""
    if not draw:
        yield None
        return
    drawing = Drawing(data)
    try:
        yield drawing
    except BaseException:
        drawing.close(cancel=True)
        raise
    drawing.close()


def _awaited(drawn: Future) -> dict[str, bytes]:
    """Plots drawn on another thread, waited for in slices of 0.1 s: Python runs a Ctrl-C's
    handler in the main thread only between bytecodes, and the signal may reach another
    thread (the drawing one, XLA's), which would leave a plain wait blocked until the
    drawing ends."""
    while True:
        try:
            return drawn.result(timeout=0.1)
        except TimeoutError:
            continue


def write_report(
    data: ReportData,
    writer: RunWriter,
    pictures: bool = True,
    drawing: Drawing | None = None,
) -> list[Path]:
    """Write report.txt (when there are predictions) and, with ``pictures``, the plots and
    report.html: those of ``drawing`` (:func:`drawing_early`), or all drawn here."""
    from mlplab.report.html import run_page
    from mlplab.teacher import taught_line
    from mlplab.warm_start import started_line

    written = []
    if data.y_true is not None and data.proba is not None:
        body = report_text(data.y_true, data.proba, data.class_names)
        interval = interval_text(data.record.metrics or {})
        head = f"{data.title} ({interval})" if interval else data.title
        said = findings_text(data.findings)
        taught = taught_line(data.record.metrics or {})
        started = started_line((data.record.metrics or {}).get("init_from"))
        # The run's own words on how it ended (an early stop, the epoch keep_best kept).
        message = (data.record.metrics or {}).get("message")
        status = f"status: {data.record.status}" + (f" ({message})" if message else "")
        status += f"\n{started}" if started else ""
        status += f"\n{taught}" if taught else ""
        writer.text(REPORT_FILE, f"{head}\n{status}\n{said}\n{body}")
        written.append(writer.path / REPORT_FILE)
    if not pictures:
        return written
    pngs = render_plots(data) if drawing is None else drawing.pngs()
    for name, png in pngs.items():
        writer.bytes(name, png)
        written.append(writer.path / name)
    writer.text(HTML_FILE, run_page(data, pngs))
    written.append(writer.path / HTML_FILE)
    return written


def gather(record: RunRecord, offline: bool | None = None) -> ReportData:
    """ReportData for a run directory: predictions from test_predictions.npz (or from the
    model, for runs written before that file existed) and images from the dataset."""
    data = ReportData(record)
    if record.metrics is None:
        return data
    if record.ensemble:
        _read_members(data, record.ensemble)
    data.robustness = record.metrics.get("robustness")
    if record.metrics.get("gradients"):
        data.gradients = LayerGradients.from_dict(record.metrics["gradients"])
    dataset = _read_dataset(data, offline)
    model = data.model = _load_model(data)
    if model is not None:
        data.model_summary = model_summary(model)
    if model is not None and dataset is not None:
        read_model(data, model, dataset.x_train)
    predictions = record.path / PREDICTIONS_FILE
    if predictions.is_file():
        try:
            data.y_true, data.proba = read_test_predictions(record.path)
        except (OSError, ValueError, KeyError) as exc:
            data.problems.append(f"{PREDICTIONS_FILE}: unreadable ({exc})")
    elif dataset is not None and model is not None:
        from mlplab.engine import get_predictor

        # Runs written before test_predictions.npz existed: predict again.
        data.y_true, data.proba = dataset.y_test, get_predictor().predict(model, dataset.x_test)
    else:
        data.problems.append(
            f"{PREDICTIONS_FILE} missing and no model and dataset to recompute it: "
            "no galleries of predictions"
        )
    if dataset is None:
        return data
    data.x_train, data.y_train = dataset.x_train, dataset.y_train
    if model is not None and data.gradients is None:  # runs from before it was measured
        measure_gradients(data, model, dataset.x_train, dataset.y_train)
    if data.y_true is not None and np.array_equal(dataset.y_test, data.y_true):
        data.x_test = dataset.x_test
        if model is not None:
            explain_mistakes(data, model)
            view_layers(data, model)
            if data.robustness is None:  # runs from before it was measured
                from mlplab.engine import get_predictor

                predictor = get_predictor()
                measure_robustness(data, lambda x: predictor.predict(model, x))
    elif data.y_true is not None:
        data.problems.append(
            f"the test split of {dataset.name} no longer matches the run's predictions: "
            "no galleries of predictions"
        )
    return data


def _read_members(data: ReportData, facts: dict[str, Any]) -> None:
    """An ensemble's members' histories, from their folders (where they still are)."""
    from mlplab.ensembles import member_folder

    data.members = []
    for member in facts.get("members", []):
        folder = member_folder(data.record.path, member)
        if folder is None:
            data.problems.append(f"member {member.get('run')} not found: no curves for it")
            continue
        data.members.append((folder.name, read_record(folder).history))


def _read_dataset(data: ReportData, offline: bool | None):
    from mlplab.api import read_dataset
    from mlplab.config import DataConfig

    record = data.record
    try:
        # The [data] table alone, so that a config from a newer version with keys this one
        # does not know elsewhere still names its dataset.
        config = (
            record.config.data
            if record.config
            else DataConfig.from_dict(record.config_raw.get("data", {}))
        )
        dataset = read_dataset(config, offline=offline)
    except MlplabError as exc:
        data.problems.append(f"dataset not readable, so no sample images: {exc}")
        return None
    if len(dataset.class_names) != len(record.class_names):
        data.problems.append(
            f"dataset {dataset.name} now has {len(dataset.class_names)} classes, the run "
            f"{len(record.class_names)}: no sample images"
        )
        return None
    return dataset


def _load_model(data: ReportData):
    """The run's model (loaded safely), or None without one or when it cannot be read."""
    from mlplab.runs import MODEL_FILE, load_model

    if not data.record.has_model:
        return None
    try:
        return load_model(data.record.path / MODEL_FILE)
    except MlplabError as exc:
        data.problems.append(f"{MODEL_FILE} not readable, so no pictures of its layers: {exc}")
        return None


@dataclass
class ReportResult:
    """What ``report_run`` wrote, and what it could not show."""

    path: Path
    files: list[Path]
    problems: list[str]

    @property
    def html(self) -> Path:
        return self.path / HTML_FILE


def report_run(path: str | Path, offline: bool | None = None) -> ReportResult:
    """Regenerate every plot, report.txt and report.html of a run directory.

    Works for unfinished runs and runs without predictions too: the report shows what is
    there and lists what is missing (``ReportResult.problems``). A run that a live process
    is still training is refused (RunError): it writes its own report when it ends.
    """
    record = read_record(path)
    owner = training_process(record.path)
    if owner is not None:  # its files change under us, and it writes its own report at the end
        raise RunError(
            f"{record.path}: still being trained by {owner.describe()}; its report is "
            "written when it finishes (if it is stopped, run mlplab report then)"
        )
    data = gather(record, offline)
    if data.y_true is not None and data.proba is not None and record.metrics is not None:
        # Recomputed so that older runs' metrics gain what newer versions add.
        fresh = classification_metrics(data.y_true, data.proba, record.class_names)
        record.metrics = {**fresh, **record.metrics}
    writer = RunWriter(record.path)
    novelty = _add_novelty(data, writer)
    files = write_report(data, writer)
    return ReportResult(record.path, [*novelty, *files], data.all_problems)


def _add_novelty(data: ReportData, writer: RunWriter) -> list[Path]:
    """A run from before novelty.npz existed gets one, as a newer plot is drawn for it
    (:func:`mlplab.novelty.reference_for`; from the dataset's training images, which for a
    run that held out a validation split include those). metrics.json is left as it was,
    so ``evaluate`` shows no share of the run's own test images beside the new one."""
    from mlplab.novelty import NOVELTY_FILE, reference_for

    record = data.record
    if data.model is None or data.x_train is None or data.x_test is None:
        return []
    if (record.path / NOVELTY_FILE).is_file():
        return []
    seed = record.config.train.seed if record.config else 0
    found = reference_for(data.model, data.x_train, data.x_test, seed)
    if found is None:
        return []
    writer.bytes(NOVELTY_FILE, found[0].to_npz())
    return [record.path / NOVELTY_FILE]
