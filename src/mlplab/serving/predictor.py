"""A run's model held in memory, answering classification requests as JSON-ready dicts.

Kept apart from HTTP so that it can be used (and tested) without a socket.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlplab._version import __version__
from mlplab.data.images import ImageBytes, png_data_url
from mlplab.runs import Run


class Predictor:
    """Classifies images with a run's model; safe to call from several threads.

    Loading compiles the model for one image at once, so the first request is not slow.
    Requests are answered one at a time: Pillow's limits and Keras' predict are process-wide
    state, and on a small machine the model, not the queue, is what takes the time.
    """

    def __init__(
        self,
        run: Run,
        top: int = 3,
        min_probability: float | None = None,
        unsure_note: str | None = None,
    ) -> None:
        self.run = run
        self.top = top
        self.min_probability = min_probability
        # How min_probability was chosen, in words, when a target accuracy chose it.
        self.unsure_note = unsure_note
        self._lock = threading.Lock()
        blank = np.zeros((1, *run.image_shape), np.uint8)
        run.predict(blank)
        run.novelty(blank)  # compiles the novelty check too, when the run has one

    @property
    def grayscale(self) -> bool:
        return self.run.image_shape[-1] == 1

    def info(self) -> dict[str, Any]:
        """What a client needs to know about the model: name, classes, input, test score."""
        run = self.run
        reference = run.novelty_reference
        height, width, channels = run.image_shape
        return {
            "name": run.config.name,
            "run": str(run.path),
            "status": run.status,
            "dataset": run.metrics["dataset"]["name"],
            "class_names": run.class_names,
            "input": {"height": height, "width": width, "channels": channels},
            "test_accuracy": run.metrics.get("test_accuracy"),
            "test_samples": run.metrics.get("test_samples"),
            # Where the accuracy on all images like the test images likely lies (95%).
            "test_accuracy_interval": _interval(run.metrics),
            # How far the probabilities are from the accuracy (ECE), for clients that
            # threshold them; the temperature when train.calibrate fitted one.
            "calibration_error": run.calibration_error,
            "temperature": run.temperature,
            # An ensemble (mlplab ensemble): how many networks it averages; else None.
            "members": len(run.ensemble["members"]) if run.ensemble else None,
            "parameters": run.parameters,
            # Answers below it are marked "sure": false (None: no answer is).
            "min_probability": self.min_probability,
            # Images whose novelty is above it are "familiar": false (None: the run has no
            # novelty reference, and answers carry no "familiar").
            "novelty_threshold": reference.threshold if reference else None,
            "mlplab": __version__,
        }

    def predict(
        self,
        images: Sequence[ImageBytes],
        top: int | None = None,
        invert: str = "auto",
        frame: bool = True,
        show: bool = False,
        explain: bool = False,
        min_probability: float | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per image, as :meth:`mlplab.Run.predict_files` gives them (``file`` is the
        image's name); with ``show``, ``seen`` is a PNG data URL of the image as the model saw
        it (inverted, levelled, framed, resized); with ``explain``, ``why`` is one of what
        each pixel contributed to the predicted class (red for, blue against:
        :meth:`mlplab.Run.explain`); with ``min_probability`` (else the server's),
        ``sure``: whether the probability reaches it. DataError names an image that cannot
        be read.
        """
        if min_probability is None:
            min_probability = self.min_probability
        with self._lock:
            pixels, inverted = self.run.read_images(images, invert, frame)
            results = self.run.classify(images, pixels, inverted, top or self.top, min_probability)
            if explain:  # the predicted class of each: the one each result names
                _, contributions = self.run.explain(pixels)
        if show:
            for result, image in zip(results, pixels, strict=True):
                result["seen"] = png_data_url(image)
        if explain:
            from mlplab.report.colours import contribution_colours

            maps = contribution_colours(contributions)
            for result, image in zip(results, maps, strict=True):
                result["why"] = png_data_url(image)
        return results


def _interval(metrics: dict[str, Any]) -> list[float] | None:
    """The run's 95% test accuracy interval as [low, high] for JSON, or None."""
    from mlplab.metrics import interval_of

    bounds = interval_of(metrics)
    return None if bounds is None else list(bounds)
