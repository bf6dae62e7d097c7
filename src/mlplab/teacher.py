"""Knowledge distillation's teacher (``train.teacher``): a finished run whose network's
probabilities a new network also learns from (Hinton, Vinyals and Dean, 2015).

An ensemble of five networks scores better than one but costs five times as much to run;
a single network trained on the ensemble's probabilities for each training image, beside
the labels, keeps much of the difference at the cost of one. The teacher's probabilities
are computed here once, before training, on the training images as they come from the
dataset (uint8, before augmentation); the fused engine (:mod:`mlplab.fused`) softens both
sides by ``train.teacher_temperature`` and weighs the two losses by
``train.teacher_weight``.

This module reads runs and arrays; it knows nothing of JAX.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.config import TrainConfig
from mlplab.engine import TeacherNetwork
from mlplab.errors import ConfigError
from mlplab.run_refs import class_order, listed, referenced_run, trained_elsewhere
from mlplab.runs import Run


@dataclass
class Teacher:
    """A loaded teacher run, and what a student's run records of it."""

    run: Run
    # Column order[j] of the teacher's probabilities is the student's class j: the teacher
    # may list the same classes in another order.
    order: np.ndarray
    # Its probabilities for the student's training images: for the trainer and for
    # train_accuracy, predicted once (an ensemble over 60,000 images takes about a second).
    _train_proba: np.ndarray | None = None

    @property
    def path(self) -> Path:
        return self.run.path

    def network(self, x_train: np.ndarray) -> TeacherNetwork:
        """What the fused engine runs, for the training images x_train (uint8 (n, h, w, c)):
        the teacher's Keras model, its class order and :meth:`train_probabilities`."""
        return TeacherNetwork(self.run.model, self.order, self.train_probabilities(x_train))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """images: uint8 (n, h, w, c) shaped like the student's -> float32 (n, classes),
        in the student's class order. ConfigError when they are not finite numbers."""
        proba = self.run.predict(images)
        if not np.isfinite(proba).all():
            raise ConfigError(
                f"train.teacher = {str(self.path)!r}: its network gives probabilities that "
                "are not finite numbers; a diverged run cannot teach"
            )
        return proba[:, self.order]

    def train_probabilities(self, x_train: np.ndarray) -> np.ndarray:
        """:meth:`probabilities` of the student's training images, x_train (uint8 (n, h, w,
        c)), predicted on the first call and kept: a Teacher serves one training."""
        if self._train_proba is None:
            self._train_proba = self.probabilities(x_train)
        return self._train_proba

    def train_accuracy(self, x_train: np.ndarray, y_train: np.ndarray) -> float:
        """How often the teacher is right on the student's training images (x_train: uint8
        (n, h, w, c); y_train: int (n,)). A teacher right on all of them teaches through its
        runners-up only."""
        proba = self.train_probabilities(x_train)
        return float(np.mean(proba.argmax(axis=1) == y_train))

    def agreement(self, x_test: np.ndarray, proba: np.ndarray) -> float:
        """The share of the test images x_test (uint8 (n, h, w, c)) on which the student,
        whose probabilities are proba (float32 (n, classes)), answers as the teacher does."""
        said = self.probabilities(x_test).argmax(axis=1)
        return float(np.mean(said == proba.argmax(axis=1)))

    def facts(self, x_train: np.ndarray, y_train: np.ndarray, train: TrainConfig) -> dict[str, Any]:
        """metrics.json's ``teacher``: which run, how good it is and how big, how it taught
        (``train``: the student's TrainConfig)."""
        metrics = self.run.metrics
        ensemble = metrics.get("ensemble") or {}
        return {
            "path": os.path.abspath(self.path),
            "name": self.run.config.name,
            "dataset": (metrics.get("dataset") or {}).get("name"),
            "test_accuracy": metrics.get("test_accuracy"),
            "parameters": self.run.parameters,
            "members": len(ensemble.get("members", [])) or None,
            "train_accuracy": self.train_accuracy(x_train, y_train),
            "temperature": train.teacher_temperature,
            "weight": train.teacher_weight,
        }

    def describe(
        self, x_train: np.ndarray, y_train: np.ndarray, train: TrainConfig, dataset: str
    ) -> str:
        """What ``train`` prints before training: the teacher and how it teaches, and a
        warning when it was trained on another dataset than the student's (``dataset``,
        its name): one that held the student's test images would make its score a lie."""
        facts = self.facts(x_train, y_train, train)
        accuracy = facts["test_accuracy"]
        scored = f", test accuracy {accuracy:.4f}" if isinstance(accuracy, float) else ""
        line = (
            f"taught by {self.path} ({facts['name']}{scored}; right on "
            f"{facts['train_accuracy']:.1%} of the training images): temperature "
            f"{train.teacher_temperature:g}, weight {train.teacher_weight:g}"
        )
        elsewhere = trained_elsewhere(self.run, dataset, "the teacher")
        if elsewhere:
            line += f"\n{elsewhere}"
        return line


def load_teacher(spec: str, class_names: list[str], image_shape: tuple[int, int, int]) -> Teacher:
    """The run ``spec`` names, checked to be able to teach a network of ``class_names``
    on images of ``image_shape`` (h, w, c): the same classes (in any order) and the same
    image size and colour. ConfigError, naming the key, for anything else."""
    run = referenced_run("train.teacher", spec, image_shape, "be taught by")
    teacher_classes = run.class_names
    if sorted(teacher_classes) != sorted(class_names):
        raise ConfigError(
            f"train.teacher = {spec!r}: it tells apart other classes "
            f"({listed(teacher_classes)}) than this dataset's ({listed(class_names)})"
        )
    return Teacher(run, class_order(teacher_classes, class_names))


def taught_line(metrics: dict[str, Any]) -> str | None:
    """What a distilled run's metrics (metrics.json) say of its teacher, as one line for
    report.txt and the report; None for a run without one."""
    facts = metrics.get("teacher")
    if not isinstance(facts, dict):
        return None
    members = facts.get("members")
    kind = f"an ensemble of {members}" if members else "a network"
    parts = [f"taught by {facts.get('name')} ({kind}"]
    if isinstance(facts.get("test_accuracy"), float):
        parts.append(f", test accuracy {facts['test_accuracy']:.4f}")
    own, theirs = (metrics.get("model") or {}).get("parameters"), facts.get("parameters")
    if isinstance(own, int) and isinstance(theirs, int) and own > 0:
        parts.append(f", {theirs:,} parameters: {theirs / own:.1f}x this network's")
    parts.append(f") at temperature {facts.get('temperature'):g}, weight {facts.get('weight'):g}")
    if isinstance(facts.get("test_agreement"), float):
        parts.append(f"; answers as it does on {facts['test_agreement']:.1%} of the test images")
    return "".join(parts)
