"""Is an image like the ones the network was trained on? A nearest-neighbour check in the
network's own last hidden layer.

A classifier answers for every image, also for a scribble, a photo of a cat or noise, and
its probability does not say that the image is like nothing it has seen: a network trained
on clothes calls uniform noise a bag at 1.000. What does say it is where the image lands in
the last hidden layer (what the output layer reads): images like the training images land
near some of them, others far from all (Sun et al. 2022, "Out-of-distribution detection
with deep nearest neighbors").

So every run keeps a reference (``novelty.npz``): the last hidden layer's outputs, scaled
to unit length, for a seeded sample of up to REFERENCE_IMAGES training images, and a
threshold. An image's novelty is the distance from its outputs (unit length too) to its
NEIGHBOURS-th nearest reference image; it is "unlike the training images" above the
threshold, which is set so that FLAGGED_SHARE of the test images (a sample of up to
REFERENCE_IMAGES of them) — new images of the training kind — lie above it.
``docs/results.md`` measures how well that separates other images (held-out classes,
other datasets, noise) and how it compares with the largest probability.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.errors import RunError

NOVELTY_FILE = "novelty.npz"
REFERENCE_IMAGES = 5000
NEIGHBOURS = 5
# The share of the test images (images of the training kind) flagged: sets the threshold.
FLAGGED_SHARE = 0.05
_CHUNK = 1024


def feature_model(model: Any) -> Any:
    """A Keras model from ``model``'s uint8 pixels to what its output layer reads: the last
    hidden layer's outputs at inference (or the scaled pixels, without hidden layers).

    An ensemble (:func:`mlplab.model.ensemble_model`) has no one last hidden layer: its
    features are each member's, scaled to unit length, side by side. Scaled to unit length
    again (:func:`unit_rows`), two such rows are as far apart as the root mean square of
    the members' own distances: an image is unlike the training images as the members
    see it on the whole.
    """
    import keras

    from mlplab.model import is_ensemble, members

    if not is_ensemble(model):
        return keras.Model(model.inputs, model.layers[-1].input)
    pixels = model.inputs[0]
    hidden = [keras.Model(member.inputs, member.layers[-1].input) for member in members(model)]
    parts = [keras.layers.UnitNormalization()(features(pixels)) for features in hidden]
    return keras.Model(pixels, keras.layers.Concatenate()(parts))


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (an all-zero row stays zero): float32 (n, d)."""
    features = np.asarray(features, np.float32)
    lengths = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(lengths, 1e-12)


@dataclass(frozen=True)
class NoveltyReference:
    """features: float16 (m, d), unit rows of the reference training images; threshold:
    the distance above which an image counts as unlike them; neighbours: k."""

    features: np.ndarray
    threshold: float
    neighbours: int = NEIGHBOURS

    def distances(self, features: np.ndarray) -> np.ndarray:
        """The distance from each row of ``features`` (float (n, d), the feature model's
        outputs, any length) to its k-th nearest reference image, after scaling both to
        unit length: float32 (n,), 0 (the same direction) to 2 (opposite)."""
        queries = unit_rows(features)
        reference, lengths = self._prepared
        k = min(self.neighbours, len(reference))
        found = np.empty(len(queries), np.float32)
        for start in range(0, len(queries), _CHUNK):
            chunk = queries[start : start + _CHUNK]
            squared = np.maximum(lengths - 2.0 * chunk @ reference.T, 0.0)
            found[start : start + len(chunk)] = np.partition(squared, k - 1, axis=1)[:, k - 1]
        return np.sqrt(found)

    @cached_property
    def _prepared(self) -> tuple[np.ndarray, np.ndarray]:
        """The reference as float32 (m, d), and 1 + each row's squared length (m,), kept:
        converting them took most of the time of one image's check. |a - b|^2 = |a|^2 +
        |b|^2 - 2 a.b with |a| = 1; the rows are unit length up to float16 rounding."""
        reference = self.features.astype(np.float32)
        return reference, 1.0 + (reference**2).sum(axis=1)

    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            features=self.features.astype(np.float16),
            threshold=np.float32(self.threshold),
            neighbours=np.int32(self.neighbours),
        )
        return buffer.getvalue()

    @classmethod
    def read(cls, path: Path) -> NoveltyReference:
        """The reference saved at ``path``; RunError when it cannot be read."""
        try:
            with np.load(path, allow_pickle=False) as saved:
                return cls(saved["features"], float(saved["threshold"]), int(saved["neighbours"]))
        except (OSError, ValueError, KeyError) as exc:
            raise RunError(f"{path}: unreadable ({exc})") from None

    def facts(self, test_distances: np.ndarray) -> dict[str, Any]:
        """metrics.json's ``novelty``: how the reference was made and what it flags of the
        test split (test_distances: float (n,), from :meth:`distances`)."""
        return {
            "reference_images": len(self.features),
            "neighbours": self.neighbours,
            "threshold": self.threshold,
            "test_images": len(test_distances),
            "test_flagged": float(np.mean(test_distances > self.threshold)),
        }


def build_reference(
    features_of: Callable[[np.ndarray], np.ndarray],
    x_train: np.ndarray,
    x_test: np.ndarray,
    seed: int = 0,
) -> tuple[NoveltyReference, np.ndarray]:
    """A run's reference: ``features_of`` (uint8 images -> float (n, d), the feature
    model's predictions) on a seeded sample of up to REFERENCE_IMAGES of ``x_train``, and
    the threshold that flags FLAGGED_SHARE of a seeded sample of up to REFERENCE_IMAGES of
    ``x_test``. Returns the reference and those test images' distances, float32 (n,)."""
    rng = np.random.default_rng(seed)
    train, test = _sample(len(x_train), rng), _sample(len(x_test), rng)
    # One call for both: the engine compiles one program for one number of images.
    both = features_of(np.concatenate([x_train[train], x_test[test]]))
    features = unit_rows(both[: len(train)]).astype(np.float16)
    unset = NoveltyReference(features, threshold=np.inf)
    test_distances = unset.distances(both[len(train) :])
    threshold = float(np.quantile(test_distances, 1.0 - FLAGGED_SHARE))
    return NoveltyReference(features, threshold), test_distances


def _sample(count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a sample of up to REFERENCE_IMAGES of ``count`` (all if fewer)."""
    if count <= REFERENCE_IMAGES:
        return np.arange(count)
    return np.sort(rng.choice(count, REFERENCE_IMAGES, replace=False))


def reference_for(
    model: Any, x_train: np.ndarray, x_test: np.ndarray, seed: int = 0
) -> tuple[NoveltyReference, np.ndarray] | None:
    """:func:`build_reference` for a trained Keras ``model`` (uint8 pixels in), through the
    engine's compiled prediction; None when its outputs are not finite (a diverged run) or
    there are no test images to set the threshold on."""
    from mlplab.engine import get_predictor

    if not len(x_test):
        return None
    predictor, features = get_predictor(), feature_model(model)
    reference, test_distances = build_reference(
        lambda x: predictor.predict(features, x), x_train, x_test, seed
    )
    if not np.isfinite(reference.threshold):
        return None
    return reference, test_distances
