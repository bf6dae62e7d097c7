"""Run directories: written atomically, loaded back.

A run directory ``<out>/<UTC time>-<name>/`` holds::

    config.toml    resolved config, with a [meta] table (versions, seed, command)
    history.csv    one row per complete epoch
    model.keras    the trained Keras model (loads with plain keras.saving.load_model)
    report.txt     scikit-learn's per-class classification report
    curves.png     loss and accuracy per epoch
    metrics.json   written last: test metrics, dataset facts, status, timings
    test_predictions.npz  the test split's labels and probabilities
    novelty.npz    what tells images unlike the training images apart (see mlplab.novelty)
    resume.npz     only in an interrupted or aborted run: what ``mlplab resume`` goes on from
                   (see mlplab.checkpoint)
    training.json  only while a process trains the run (see mlplab.running)

Every file is written to a temporary name and renamed into place, so a file is either whole
or absent; ``metrics.json`` is written last, so a run without it did not finish.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlplab._io import atomic_write_bytes, atomic_write_text
from mlplab.config import RunConfig
from mlplab.errors import ConfigError, DataError, RunError
from mlplab.running import TrainingProcess, training_process

if TYPE_CHECKING:
    from mlplab.data.images import ImageSource
    from mlplab.novelty import NoveltyReference

CONFIG_FILE = "config.toml"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.keras"
CHECKPOINT_FILE = "checkpoint.keras"
RESUME_FILE = "resume.npz"
REPORT_FILE = "report.txt"
PREDICTIONS_FILE = "test_predictions.npz"
CURVES_FILE = "curves.png"
# teacher_loss: the distillation term of a run with train.teacher (mlplab.teacher).
HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "teacher_loss",
    "lr",
    "seconds",
)


def to_json(data: Any) -> str:
    """JSON text with NaN/inf written as null (strict JSON has no NaN)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(data), indent=2) + "\n"


def history_csv(history: Sequence[dict[str, float]]) -> str:
    """history rows -> CSV text; columns absent from every row (no validation) are left out."""
    columns = [c for c in HISTORY_COLUMNS if any(c in row for row in history)] or ["epoch"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (int(v) if k == "epoch" else f"{v:.6g}") for k, v in row.items()})
    return buffer.getvalue()


def read_history(path: Path) -> list[dict[str, float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
            for row in csv.DictReader(handle)
        ]


class RunWriter:
    """Writes files atomically into a run directory (``create`` makes a new one)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, out: str | Path, name: str) -> RunWriter:
        """Make ``out/<YYYYmmdd-HHMMSS>-<name>`` (suffixed -2, -3... if taken)."""
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"{out}: cannot create the runs folder: {exc.strerror}") from None
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip(".-")
        base = f"{stamp}-{safe or 'run'}"
        for attempt in range(1, 1000):
            path = out / (base if attempt == 1 else f"{base}-{attempt}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
            except OSError as exc:
                raise RunError(f"{path}: cannot create run directory: {exc.strerror}") from None
        raise RunError(f"{out}: too many runs named {base}")

    def text(self, name: str, text: str) -> None:
        atomic_write_text(self.path / name, text)

    def bytes(self, name: str, data: bytes) -> None:
        atomic_write_bytes(self.path / name, data)

    def json(self, name: str, data: Any) -> None:
        self.text(name, to_json(data))

    def model(self, model: Any, name: str = MODEL_FILE) -> None:
        """Save a Keras model as ``name`` (Keras needs the .keras suffix on the temp file)."""
        final = self.path / name
        tmp = self.path / f".{name}.tmp.keras"
        try:
            model.save(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)


class Run:
    """A finished (or cleanly stopped) run, loaded from its directory.

    Attributes: ``path``, ``config`` (RunConfig), ``meta`` (versions, seed, command),
    ``history`` (list of per-epoch dicts), ``metrics`` (dict from metrics.json). The Keras
    ``model`` is loaded on first use, with ``safe_mode=True``.
    """

    def __init__(
        self,
        path: Path,
        config: RunConfig,
        meta: dict[str, Any],
        history: list[dict[str, float]],
        metrics: dict[str, Any],
        model: Any = None,
    ) -> None:
        self.path = path
        self.config = config
        self.meta = meta
        self.history = history
        self.metrics = metrics
        self._model = model
        self._predictor: Any = None  # engine.get_predictor(), made on first use
        # novelty.npz and what computes the features it compares, read on first use.
        self._novelty: Any = None
        self._features: Any = None

    def __repr__(self) -> str:
        accuracy = self.metrics.get("test_accuracy")
        shown = f"{accuracy:.4f}" if isinstance(accuracy, float) else "?"
        return f"Run({str(self.path)!r}, status={self.status!r}, test_accuracy={shown})"

    def _repr_html_(self) -> str:
        """A card in Jupyter: the run's numbers and learning curves."""
        from mlplab.report.notebook import run_card  # the report layer, only when shown

        return run_card(self)

    @property
    def status(self) -> str:
        return self.metrics.get("status", "unknown")

    @property
    def class_names(self) -> list[str]:
        return list(self.metrics["dataset"]["class_names"])

    @property
    def calibration_error(self) -> float | None:
        """The test split's expected calibration error (None for runs from before it was
        measured)."""
        return (self.metrics.get("calibration") or {}).get("ece")

    @property
    def parameters(self) -> int | None:
        """The network's parameter count (None for runs from before it was recorded)."""
        value = (self.metrics.get("model") or {}).get("parameters")
        return value if isinstance(value, int) else None

    @property
    def temperature(self) -> float | None:
        """The temperature ``train.calibrate`` folded into the model, or None."""
        return (self.metrics.get("temperature") or {}).get("value")

    @property
    def ensemble(self) -> dict[str, Any] | None:
        """For an ensemble (:func:`mlplab.ensemble`): its members and their test scores
        (``metrics.json``'s ``ensemble``); None for a trained run."""
        return self.metrics.get("ensemble")

    def test_predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`read_test_predictions` of this run; RunError when they are missing or
        unreadable."""
        stored = self.path / PREDICTIONS_FILE
        try:
            return read_test_predictions(self.path)
        except FileNotFoundError:
            raise RunError(f"{stored}: missing (this run's test predictions)") from None
        except (OSError, ValueError, KeyError) as exc:
            raise RunError(f"{stored}: unreadable ({exc})") from None

    def threshold_for_accuracy(self, target: float) -> tuple[float, float]:
        """The lowest probability at which the model's answers on its test split were at
        least ``target`` right (0 < target < 1), and the share of the test images it
        answered there: what ``predict --target-accuracy`` answers at. RunError when no
        threshold was that right."""
        from mlplab.metrics import threshold_for

        if not 0 < target < 1:
            raise ConfigError(
                f"target accuracy {target:g}: must lie between 0 and 1 (0.99 for 99%)"
            )
        y_true, proba = self.test_predictions()
        reached = threshold_for(target, y_true, proba)
        if reached is None:
            raise RunError(
                f"{self.path}: no probability threshold made its answers {100 * target:g}% "
                f"right on its {len(y_true):,} test images; ask for less"
            )
        return reached

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the images the model takes."""
        return tuple(self.metrics["dataset"]["image_shape"])  # type: ignore[return-value]

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_model(self.path / MODEL_FILE)
        return self._model

    def predict(self, images: np.ndarray | Sequence[ImageSource]) -> np.ndarray:
        """Class probabilities, float32 (n, classes).

        images: pixels (n, h, w, c), (n, h, w) for one channel or (n, h*w*c) rows, shaped
        like the training images, whole numbers 0..255 of any dtype (uint8 as stored); or
        image files and ``PIL.Image`` objects, one or a list (decoded, resized and coloured
        to fit; light backgrounds inverted for dark-background datasets, see
        :meth:`predict_files`).
        """
        x = self._pixels(images)
        if self._predictor is None:
            from mlplab.engine import get_predictor

            self._predictor = get_predictor()
        return self._predictor.predict(self.model, x)

    @property
    def novelty_reference(self) -> NoveltyReference | None:
        """The run's :class:`~mlplab.novelty.NoveltyReference` (novelty.npz), or None for
        runs without one (ensembles, runs from before it existed)."""
        from mlplab.novelty import NOVELTY_FILE, NoveltyReference

        if self._novelty is None:
            stored = self.path / NOVELTY_FILE
            self._novelty = NoveltyReference.read(stored) if stored.is_file() else False
        return self._novelty or None

    def novelty(self, images: np.ndarray | Sequence[ImageSource]) -> np.ndarray | None:
        """How unlike the training images each image is: the distance from its last hidden
        layer's outputs to its k-th nearest reference training image (:mod:`mlplab.novelty`),
        float32 (n,); above ``novelty_reference.threshold`` it is unlike them. None when the
        run has no reference. images: as for :meth:`predict`."""
        reference = self.novelty_reference
        if reference is None:
            return None
        if self._features is None:
            from mlplab.engine import get_predictor
            from mlplab.novelty import feature_model

            predictor, features = get_predictor(), feature_model(self.model)
            self._features = lambda x: predictor.predict(features, x)
        return reference.distances(self._features(self._pixels(images)))

    def explain(
        self, images: np.ndarray | Sequence[ImageSource], classes: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """What each pixel contributed to a class: gradient times input of the class's
        evidence (:mod:`mlplab.explain`; positive pushed towards it). images: as in
        :meth:`predict`; classes: the class index to explain per image, default the
        predicted one. Returns (classes int64 (n,), contributions float32 (n, h, w, c))."""
        from mlplab.explain import pixel_contributions

        x = self._pixels(images)
        chosen = self.predict(x).argmax(axis=1) if classes is None else np.asarray(classes)
        return chosen.astype(np.int64), pixel_contributions(self.model, x, chosen)

    def _pixels(self, images: np.ndarray | Sequence[ImageSource]) -> np.ndarray:
        """images as :meth:`predict` takes them -> uint8 (n, h, w, c) of the model's shape."""
        if not isinstance(images, np.ndarray):
            images, _ = self.read_images(images)
            return images
        from mlplab.data.arrays import as_pixels

        # Whole numbers 0..255 of any dtype, as MLPClassifier takes them (int64 from a CSV,
        # the digits' floats 0..16); rows of pixels are read at the model's shape.
        rows = np.ndim(images) == 2
        x = as_pixels(images, "images", self.image_shape if rows else None)
        if x.shape[1:] != self.image_shape:
            raise DataError(
                f"images are {x.shape[1:]} but this model takes {self.image_shape} (h, w, c)"
            )
        return x

    def read_images(
        self, paths: Sequence[ImageSource], invert: str = "auto", frame: bool = True
    ) -> tuple[np.ndarray, list[bool]]:
        """Decode files like the training data: uint8 (n, h, w, c) and which were inverted.

        See :func:`mlplab.data.images.read_images` for ``invert`` and ``frame``.
        """
        from mlplab.data.images import image_sources, read_images

        facts = self.metrics["dataset"]
        return read_images(
            image_sources(paths),
            self.image_shape,
            invert=invert,
            background=facts.get("background"),
            fraction=facts.get("content_fraction"),
            frame=frame,
        )

    def predict_files(
        self,
        paths: Sequence[ImageSource],
        top: int = 3,
        invert: str = "auto",
        frame: bool = True,
        min_probability: float | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per file: file, label, probability, inverted, top [(label, probability)];
        with ``min_probability``, also ``sure``: whether the probability reaches it."""
        from mlplab.data.images import image_sources

        paths = image_sources(paths)  # PIL images named, one image as a list of one
        images, inverted = self.read_images(paths, invert, frame)
        return self.classify(paths, images, inverted, top, min_probability)

    def classify(
        self,
        paths: Sequence[ImageSource],
        images: np.ndarray,
        inverted: Sequence[bool],
        top: int = 3,
        min_probability: float | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`predict_files` for images already read by :meth:`read_images`: uint8
        (n, h, w, c), one per path. With a novelty reference (:meth:`novelty`) each result
        also has ``novelty`` (the distance) and ``familiar``: whether the image is like the
        training images (the distance is within the threshold). ``blank``: the image is
        one colour throughout (:func:`mlplab.data.images.is_blank`: an empty page, a solid
        colour): its answer means nothing, so it is never ``sure`` nor ``familiar``."""
        from mlplab.data.images import is_blank

        if min_probability is not None and not 0 <= min_probability <= 1:
            raise ConfigError(f"min_probability {min_probability:g}: must lie in 0..1")
        proba = self.predict(images)
        distances = self.novelty(images)
        threshold = self.novelty_reference.threshold if distances is not None else None
        names = self.class_names
        results = []
        for number, (path, row, flipped) in enumerate(zip(paths, proba, inverted, strict=True)):
            order = np.argsort(-row)[: max(1, top)]
            blank = is_blank(images[number])
            results.append(
                {
                    "file": str(path),
                    "label": names[order[0]],
                    "probability": _rounded(row[order[0]]),
                    "inverted": flipped,
                    "blank": blank,
                    "top": [{"label": names[i], "probability": _rounded(row[i])} for i in order],
                }
            )
            if min_probability is not None:
                results[-1]["sure"] = not blank and bool(row[order[0]] >= min_probability)
            if distances is not None:
                results[-1]["novelty"] = round(float(distances[number]), 4)
                results[-1]["familiar"] = not blank and bool(distances[number] <= threshold)
        return results


def read_test_predictions(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The test split's labels, int64 (n,), and the model's probabilities for them, float32
    (n, classes), as a run stored them in test_predictions.npz. Raises what np.load does
    (OSError, FileNotFoundError among them; ValueError, KeyError for a damaged file): each
    caller says in its own way what a missing or damaged file means to it."""
    with np.load(run_dir / PREDICTIONS_FILE, allow_pickle=False) as saved:
        return saved["y_true"].astype(np.int64), saved["proba"].astype(np.float32)


def target_note(target: float, threshold: float, share: float) -> str:
    """What ``--target-accuracy`` chose, in words: "unsure below p = 0.9638, the lowest
    probability at which its test answers were 99% right (61% of them answered)"."""
    return (
        f"unsure below p = {threshold:.4g}, the lowest probability at which its test answers "
        f"were {100 * target:g}% right ({100 * share:.0f}% of them answered)"
    )


def _rounded(probability: np.floating) -> float:
    """A float32 probability as a float with the digits it has (not 0.9890947937965393)."""
    return round(float(probability), 6)


def load_model(path: Path) -> Any:
    """Load a ``.keras`` model safely: safe_mode=True, no legacy HDF5 full models."""
    from mlplab._backend import ensure_keras

    ensure_keras()
    import keras

    if keras.backend.backend() == "jax":
        from mlplab.fused import enable_compilation_cache

        # Loading builds the layers, which runs their initializers: small compiled programs
        # that would otherwise be compiled again in every process (~1 s of each predict,
        # evaluate, report or serve start).
        enable_compilation_cache()
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise RunError(f"{path}: legacy HDF5 model files are refused; use a .keras file")
    if not path.is_file():
        raise RunError(f"{path}: model file missing (the run did not finish saving it)")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(f"{path}: cannot load model: {reason}") from None


LAST = "last"


def latest_run(runs_dir: str | Path = "runs") -> Path:
    """The newest finished run directory in ``runs_dir`` (names sort by UTC time)."""
    runs_dir = Path(runs_dir)
    finished = sorted(
        (p for p in runs_dir.glob("*/") if (p / METRICS_FILE).is_file()),
        key=lambda p: p.name,
    )
    if not finished:
        raise RunError(f"{runs_dir}: no finished runs here to take as '{LAST}'")
    return finished[-1]


def run_directory(path: str | Path) -> Path:
    """The run directory ``path`` names ("last": the newest finished run under ./runs);
    RunError unless it exists, is a directory and holds a config.toml."""
    if str(path) == LAST and not Path(LAST).exists():
        return latest_run()
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such run directory")
    if not path.is_dir():
        raise RunError(f"{path}: not a directory (expected a run directory)")
    if not (path / CONFIG_FILE).is_file():
        raise RunError(f"{path}: not an mlplab run directory ({CONFIG_FILE} missing)")
    return path


def unfinished(path: Path, owner: TrainingProcess | None) -> str:
    """Why the run at ``path`` has no metrics.json, and what it has left, as one line.

    owner: ``training_process(path)``, the live process training it, if any.
    """
    if owner is not None:
        return f"still being trained by {owner.describe()}: no test results yet"
    left = ""
    if (path / CHECKPOINT_FILE).is_file():
        left = f"; {CHECKPOINT_FILE} holds the model after the last checkpointed epoch"
    if (path / RESUME_FILE).is_file():
        left += f"; go on with: mlplab resume {path}"
    return (
        f"incomplete run ({METRICS_FILE} missing): it was interrupted, crashed or is still "
        f"running, so there are no test results{left}"
    )


def load_run(path: str | Path, model: Any = None) -> Run:
    """Read a run directory back: config, meta, history and metrics; the model on demand.

    path: a run directory, or "last" for the newest finished run under ./runs.
    model: an already-loaded Keras model to use instead of reading model.keras.
    """
    path = run_directory(path)
    config_path = path / CONFIG_FILE
    metrics_path = path / METRICS_FILE
    if not metrics_path.is_file():
        raise RunError(f"{path}: {unfinished(path, training_process(path))}")
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        config = RunConfig.from_dict(raw)
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        history_path = path / HISTORY_FILE
        history = read_history(history_path) if history_path.is_file() else []
    except (tomllib.TOMLDecodeError, ConfigError) as exc:
        raise RunError(f"{config_path}: unreadable: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{metrics_path}: unreadable: {exc}") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: unreadable run file: {exc}") from None
    if not isinstance(metrics, dict) or "dataset" not in metrics:
        raise RunError(f"{metrics_path}: not an mlplab metrics file")
    return Run(path, config, raw.get("meta", {}), history, metrics, model)
