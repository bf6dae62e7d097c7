"""``mlplab evaluate --out DIR``: an evaluation's pictures and page, for images a run's model
did not train on (its test split, or another dataset): how it did, and which it got wrong.

Written into DIR: ``evaluation.json`` (what :func:`mlplab.evaluate` returns), ``report.txt``,
``predictions.csv`` (a row per image: its file, or its index; true and predicted class,
probability, right or wrong), ``confusion.png``, ``per_class.png``, ``mistakes.png``,
``correct.png``, ``calibration.png``, ``coverage.png``, ``robustness.png`` (with
``--robustness``) and ``evaluation.html`` (all of it in one
self-contained page).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.errors import RunError
from mlplab.metrics import calibration, confused_pairs, coverage_curve
from mlplab.runs import RunWriter, to_json

EVALUATION_FILES = {
    "json": "evaluation.json",
    "text": "report.txt",
    "predictions": "predictions.csv",
    "confusion": "confusion.png",
    "per_class": "per_class.png",
    "mistakes": "mistakes.png",
    "correct": "correct.png",
    "calibration": "calibration.png",
    "coverage": "coverage.png",
    "robustness": "robustness.png",
    "html": "evaluation.html",
}


def write_evaluation(
    out: Path,
    result: dict[str, Any],
    run_name: str,
    class_names: Sequence[str],
    x: np.ndarray,
    y_true: np.ndarray,
    proba: np.ndarray,
    image_names: Sequence[str],
) -> list[Path]:
    """Write the evaluation of ``run_name``'s model into ``out`` (made if missing).

    result: :func:`mlplab.evaluate`'s dict (its ``per_class`` names the classes scored);
    class_names: the model's; x: uint8 (n, h, w, c) the images evaluated; y_true: int (n,)
    their labels as the model's classes; proba: float32 (n, classes) its probabilities;
    image_names: n names (files, or "test #3": :meth:`mlplab.data.Dataset.image_names`).
    RunError when the folder cannot be made. Returns the files written.
    """
    from mlplab.report import plots
    from mlplab.report.build import gallery_pngs
    from mlplab.report.html import evaluation_page

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"{out}: cannot create the output folder: {exc.strerror}") from None
    writer = RunWriter(out)
    names = [str(name) for name in class_names]
    which = "test split" if result["images"] == "test split" else "all images"
    title = f"{run_name} on {result['dataset']} ({which})"
    scored = list(result["per_class"])
    pngs = {
        "confusion": plots.confusion_png(
            result["confusion_matrix"],
            names,
            title,
            confused_pairs(result["confusion_matrix"], names, top=20),
        ),
        "per_class": plots.per_class_png(result["per_class"], scored, title, which),
        "calibration": plots.calibration_png(calibration(y_true, proba), title, which),
        "coverage": plots.coverage_png(
            coverage_curve(y_true, proba), result["selective"], title, which
        ),
    }
    if result.get("robustness"):  # evaluate --robustness
        images = "test" if which == "test split" else "evaluated"
        pngs["robustness"] = plots.robustness_png(result["robustness"], len(names), title, images)
    pngs.update(gallery_pngs(x, y_true, proba, names, title, skip_empty=True))
    written = []
    writer.text(EVALUATION_FILES["json"], to_json(result))
    writer.text(EVALUATION_FILES["text"], f"{title}\n\n{result['report']}")
    writer.text(EVALUATION_FILES["predictions"], predictions_csv(image_names, names, y_true, proba))
    for key, png in pngs.items():
        writer.bytes(EVALUATION_FILES[key], png)
    page = evaluation_page(title, result, names, {EVALUATION_FILES[k]: v for k, v in pngs.items()})
    writer.text(EVALUATION_FILES["html"], page)
    for key in ("json", "text", "predictions", *pngs, "html"):
        written.append(out / EVALUATION_FILES[key])
    return written


def predictions_csv(
    image_names: Sequence[str], class_names: Sequence[str], y_true: np.ndarray, proba: np.ndarray
) -> str:
    """A CSV row per image: image, true, predicted, probability (of the predicted class),
    correct (1 or 0); wrong answers first, the surest of them first, then the right ones
    from the least sure: the images worth a look lead."""
    predicted, sure = proba.argmax(axis=1), proba.max(axis=1)
    right = predicted == y_true
    order = np.lexsort((np.where(right, sure, -sure), right))
    table = io.StringIO()
    rows = csv.writer(table, lineterminator="\n")
    rows.writerow(["image", "true", "predicted", "probability", "correct"])
    for i in order:
        rows.writerow(
            [
                image_names[i],
                class_names[y_true[i]],
                class_names[predicted[i]],
                f"{sure[i]:.4f}",
                int(right[i]),
            ]
        )
    return table.getvalue()
