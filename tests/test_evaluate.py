"""mlplab evaluate on another dataset: all its images when it has no test split of its own,
its classes matched to the model's by name (some of them, or one) or by position."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import classification_report

import mlplab
from mlplab.cli import main
from mlplab.errors import DataError
from mlplab.metrics import classification_metrics, report_text

from .conftest import save_png
from .test_report import assert_real_png


def image_folder(root, data, names=None, classes=None, per_class=None):
    """The digits test images as 8x8 PNGs (their 0..16 values as they are) in class
    folders under ``root`` (named ``names[label]``), only ``classes`` if given."""
    counts: dict[int, int] = {}
    for index, (image, label) in enumerate(zip(data.x_test, data.y_test, strict=True)):
        label = int(label)
        if classes is not None and label not in classes:
            continue
        if per_class is not None and counts.get(label, 0) >= per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        folder = root / (names[label] if names else str(label))
        folder.mkdir(parents=True, exist_ok=True)
        save_png(folder / f"{index:04d}.png", image[..., 0])
    return root


def test_a_folder_without_a_test_split_is_evaluated_whole(digits_run, digits_data, tmp_path):
    folder = image_folder(tmp_path / "mine", digits_data)
    result = mlplab.evaluate(digits_run, str(folder))
    assert result["images"] == "all images" and result["classes"] == "same"
    assert result["test_samples"] == len(digits_data.y_test)  # not a 20% split of them
    # The same pixels as the test split: the same answers.
    assert result["test_accuracy"] == pytest.approx(digits_run.metrics["test_accuracy"])
    own = mlplab.evaluate(digits_run)
    assert own["images"] == "test split" and own["test_samples"] == 360


def test_a_folder_of_larger_images_is_read_at_the_models_size(digits_run, digits_data, tmp_path):
    # The digits drawn at 24x24 RGB: read at the model's 8x8 grayscale, not refused.
    root = tmp_path / "big"
    for index in range(60):
        image, label = digits_data.x_test[index], digits_data.y_test[index]
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        big = Image.fromarray(image[..., 0]).resize((24, 24), Image.Resampling.NEAREST)
        big.convert("RGB").save(folder / f"{index:04d}.png")
    result = mlplab.evaluate(digits_run, str(root))
    assert result["test_samples"] == 60
    # Shrunk back from nearest-neighbour copies: about the pixels of the test images.
    assert result["test_accuracy"] >= 0.8


def test_some_classes_or_one_are_matched_by_name(digits_run, digits_data, tmp_path, capsys):
    folder = image_folder(tmp_path / "two", digits_data, classes={3, 7})
    result = mlplab.evaluate(digits_run, str(folder))
    assert result["classes"] == "by name" and list(result["per_class"]) == ["3", "7"]
    seen = (digits_data.y_test == 3) | (digits_data.y_test == 7)
    predicted = digits_run.predict(digits_data.x_test[seen]).argmax(axis=1)
    assert result["test_accuracy"] == pytest.approx(np.mean(predicted == digits_data.y_test[seen]))
    assert len(result["confusion_matrix"]) == 10  # a 3 may still be taken for any digit
    macro = np.mean([result["per_class"][c]["recall"] for c in ("3", "7")])
    assert result["macro_avg"]["recall"] == pytest.approx(macro)

    assert main(["evaluate", str(digits_run.path), "--dataset", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "two all images: accuracy " in out and f"({int(seen.sum())} images)" in out
    assert "matched by name" in out and "\n           5 " not in out

    out = tmp_path / "judged"
    argv = ["evaluate", str(digits_run.path), "--dataset", str(folder), "--robustness"]
    code = main([*argv, "--out", str(out)])
    assert code == 0 and f"robustness ({int(seen.sum())} images): " in capsys.readouterr().out
    assert_real_png((out / "robustness.png").read_bytes())
    html = (out / "evaluation.html").read_text(encoding="utf-8")
    assert "<h2>Robustness: when the images change a little</h2>" in html
    assert "a seeded sample of the images is moved" in html

    one = image_folder(tmp_path / "one", digits_data, classes={5}, per_class=4)
    result = mlplab.evaluate(digits_run, str(one))
    assert list(result["per_class"]) == ["5"] and result["test_samples"] == 4


def test_names_a_folder_cannot_hold_match_loosely(digits_run, digits_data, tmp_path):
    from mlplab.api import _match_classes

    model = ["T-shirt/top", "Trouser", "Bag", "Ankle boot", "bag"]
    data = mlplab.data.Dataset(
        "photos",
        digits_data.x_test[:0],
        digits_data.y_test[:0],
        digits_data.x_test[:3],
        np.array([0, 1, 2]),
        ("T-shirt_top", "trouser", "ankle-boot"),
        "test",
    )
    matched, to_model = _match_classes(data, model)
    assert matched == "by name" and to_model.tolist() == [0, 1, 3]
    # "Bag" and "bag" are two classes: a loose "BAG" is neither.
    ambiguous = dataclasses.replace(data, class_names=("BAG", "Trouser", "x"))
    with pytest.raises(DataError, match=r"does not know: 'BAG', 'x' \(the model's 5: "):
        _match_classes(ambiguous, model)


def test_other_names_are_matched_by_position_or_refused(digits_run, digits_data, tmp_path):
    letters = list("abcdefghij")
    renamed = image_folder(tmp_path / "letters", digits_data, names=letters, per_class=5)
    result = mlplab.evaluate(digits_run, str(renamed))
    assert result["classes"] == "by position" and result["test_samples"] == 50
    few = image_folder(tmp_path / "few", digits_data, names=letters, classes={0, 1})
    with pytest.raises(DataError, match=r"classes the model does not know: 'a', 'b' \(the"):
        mlplab.evaluate(digits_run, str(few))


def test_the_runs_own_folder_is_evaluated_on_its_test_split(digits_data, tmp_path, capsys):
    folder = image_folder(tmp_path / "train-here", digits_data)
    run = mlplab.train(
        overrides={"data.dataset": str(folder), "train.epochs": 2, "data.validation": 0.0},
        out=tmp_path / "runs",
        verbose=False,
        report=False,
    )
    # Its other images trained the model: only the held-out 20% is fair.
    result = mlplab.evaluate(run, str(folder))
    assert result["images"] == "test split" and result["test_samples"] == 72
    assert result["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"])


def test_cli_errors_are_one_line(digits_run, digits_data, tmp_path, capsys):
    cat = image_folder(tmp_path / "cats", digits_data, names=["cat"] * 10, classes={0})
    (tmp_path / "empty" / "3").mkdir(parents=True)
    for dataset, message in (
        (cat, "dataset cats has classes the model does not know: 'cat'"),
        (tmp_path / "empty", "no readable images"),
        (tmp_path / "nowhere", "no such file or folder"),
    ):
        assert main(["evaluate", str(digits_run.path), "--dataset", str(dataset)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_metrics_over_some_classes_agree_with_scikit_learn():
    rng = np.random.default_rng(1)
    y_true = rng.choice([1, 3], 300)
    proba = rng.dirichlet(np.ones(5), 300)
    proba[np.arange(300), y_true] += rng.uniform(0, 1, 300)
    names = ["a", "b", "c", "d", "e"]
    ours = classification_metrics(y_true, proba, names, labels=[1, 3])
    theirs = classification_report(
        y_true,
        proba.argmax(axis=1),
        labels=[1, 3],
        target_names=["b", "d"],
        output_dict=True,
        zero_division=0,
    )
    assert list(ours["per_class"]) == ["b", "d"]
    for name in ("b", "d"):
        assert ours["per_class"][name]["precision"] == pytest.approx(theirs[name]["precision"])
        assert ours["per_class"][name]["recall"] == pytest.approx(theirs[name]["recall"])
    assert ours["macro_avg"]["f1"] == pytest.approx(theirs["macro avg"]["f1-score"])
    text = report_text(y_true, proba, names, labels=[1, 3])
    assert [line.split()[0] for line in text.splitlines()[2:4]] == ["b", "d"]


def test_out_writes_the_evaluations_pictures_and_page(digits_run, digits_data, tmp_path, capsys):
    out = tmp_path / "evaluation"
    result = mlplab.evaluate(digits_run, out=out)
    names = {Path(path).name for path in result["files"]}
    assert names == {
        "evaluation.json",
        "report.txt",
        "predictions.csv",
        "confusion.png",
        "per_class.png",
        "mistakes.png",
        "correct.png",
        "calibration.png",
        "coverage.png",
        "evaluation.html",
    }
    assert {path.name for path in out.iterdir()} == names  # nothing half-written left
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["test_accuracy"] == result["test_accuracy"] and "files" not in saved
    html = (out / "evaluation.html").read_text(encoding="utf-8")
    assert "<h1>digits-mlp on digits (test split)</h1>" in html
    low, high = result["test_accuracy_interval"]
    assert f'<div class="n">95% CI {low:.4f}-{high:.4f}</div>' in html
    assert html.count('src="data:image/png;base64,') == 6 and "http" not in html
    assert "<h2>Knowing when it is unsure</h2>" in html
    assert "Most confused pairs" in html
    assert (out / "report.txt").read_text().startswith("digits-mlp on digits (test split)\n")
    with open(out / "predictions.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == 360 and rows[0]["image"].startswith("test #")
    wrong = [row for row in rows if row["correct"] == "0"]
    assert len(wrong) == round(360 * (1 - result["test_accuracy"]))
    assert rows[: len(wrong)] == wrong  # the mistakes first, the surest of them first
    assert all(row["true"] != row["predicted"] for row in wrong)
    sure = [float(row["probability"]) for row in wrong]
    assert sure == sorted(sure, reverse=True)

    # On new images, all of them right: no gallery of mistakes, and the page says so.
    right = digits_run.predict(digits_data.x_test).argmax(axis=1) == digits_data.y_test
    folder = tmp_path / "right"
    for index in np.flatnonzero(right & (digits_data.y_test < 2))[:12]:
        (folder / str(digits_data.y_test[index])).mkdir(parents=True, exist_ok=True)
        save_png(
            folder / str(digits_data.y_test[index]) / f"{index}.png",
            digits_data.x_test[index][..., 0],
        )
    code = main(
        ["evaluate", str(digits_run.path), "--dataset", str(folder), "--out", str(tmp_path / "r")]
    )
    out_text = capsys.readouterr().out
    assert code == 0 and f"evaluation.html in {tmp_path / 'r'}" in out_text
    assert not (tmp_path / "r" / "mistakes.png").exists()
    html = (tmp_path / "r" / "evaluation.html").read_text(encoding="utf-8")
    assert "No mistakes: every image was labelled right." in html
    assert "matched to the model&#x27;s by name" in html
    with open(tmp_path / "r" / "predictions.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == 12 and {row["correct"] for row in rows} == {"1"}
    assert all(Path(row["image"]).parent.parent == folder for row in rows)  # the files
    # A file where the folder should be: one line.
    blocked = tmp_path / "file"
    blocked.write_text("x")
    assert main(["evaluate", str(digits_run.path), "--out", str(blocked)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot create the output folder" in err


def test_evaluate_says_how_many_images_are_unlike_the_training_images(
    digits_run, digits_data, tmp_path, capsys
):
    own = mlplab.evaluate(digits_run)["unlike_training"]
    threshold = digits_run.novelty_reference.threshold
    assert own["threshold"] == threshold
    assert own["share"] == pytest.approx(digits_run.metrics["novelty"]["test_flagged"])
    assert own["test_share"] == digits_run.metrics["novelty"]["test_flagged"]
    # Noisy copies of the digits: far more of them unlike what it learned.
    rng = np.random.default_rng(0)
    noisy = np.clip(digits_data.x_test + rng.normal(0, 90, digits_data.x_test.shape), 0, 255)
    np.savez(
        tmp_path / "noisy.npz",
        x_train=noisy.astype(np.uint8),
        y_train=digits_data.y_test,
        class_names=np.array(digits_data.class_names),
    )
    result = mlplab.evaluate(digits_run, str(tmp_path / "noisy.npz"), out=tmp_path / "ev")
    unlike = result["unlike_training"]
    assert unlike["share"] > 3 * own["share"]
    page = (tmp_path / "ev" / "evaluation.html").read_text()
    assert f"{100 * unlike['share']:.1f}% (its test images: 5%)" in page
    assert main(["evaluate", str(digits_run.path), "--dataset", str(tmp_path / "noisy.npz")]) == 0
    out = capsys.readouterr().out
    assert f"unlike its training images: {100 * unlike['share']:.1f}% of them (of its own" in out
