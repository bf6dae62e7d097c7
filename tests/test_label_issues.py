"""mlplab.label_issues and `mlplab label-issues`: likely mislabelled images."""

from __future__ import annotations

import csv
import html
import json

import numpy as np
import pytest
from PIL import Image

import mlplab
from mlplab.label_issues import find_label_issues, out_of_fold_proba

from .test_report import assert_real_png, run_cli


def test_confident_learning_by_hand():
    # Thresholds: t_0 = mean p_0 over the images labelled 0 = 0.6125, t_1 = 0.6.
    labels = np.array([0, 0, 0, 1, 1, 1, 0])
    proba = np.array(
        [
            [0.9, 0.1],
            [0.9, 0.1],
            [0.6, 0.4],  # under both thresholds: confident of no class, not flagged
            [0.2, 0.8],
            [0.3, 0.7],
            [0.7, 0.3],  # labelled 1, confidently 0 and predicted 0: flagged
            [0.05, 0.95],  # labelled 0, confidently 1, and predicted 1: flagged
        ]
    )
    issues = find_label_issues(labels, proba)
    np.testing.assert_allclose(issues.thresholds, [(0.9 + 0.9 + 0.6 + 0.05) / 4, 0.6])
    assert issues.indices.tolist() == [6, 5]  # lowest probability of the given label first
    assert issues.given.tolist() == [0, 1] and issues.likely.tolist() == [1, 0]
    np.testing.assert_allclose(issues.given_probability, [0.05, 0.3], rtol=1e-6)
    np.testing.assert_allclose(issues.likely_probability, [0.95, 0.7], rtol=1e-6)
    assert issues.pairs() == [(0, 1, 1), (1, 0, 1)] and len(issues) == 2 and issues.images == 7


def test_a_class_nobody_is_labelled_with_is_never_the_likely_label():
    labels = np.array([0, 0, 1, 1])
    proba = np.array([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])
    issues = find_label_issues(labels, proba)
    assert np.isnan(issues.thresholds[2])
    # Row 0 is surest of class 2, which has no threshold, and under t_0 = 0.45 for its own
    # class: confident of no class, so not flagged.
    assert issues.indices.tolist() == []
    with pytest.raises(ValueError, match="3 labels for 4 rows"):
        find_label_issues(labels[:3], proba)


@pytest.mark.parametrize("seed", range(5))
def test_the_same_images_as_cleanlab_in_the_same_order(seed):
    cleanlab = pytest.importorskip("cleanlab.filter")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, 400)
    logits = rng.normal(size=(400, 6)) + 3.0 * np.eye(6)[labels]
    noisy = labels.copy()
    flip = rng.choice(400, 40, replace=False)
    noisy[flip] = rng.integers(0, 6, 40)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = cleanlab.find_label_issues(
        noisy, proba, filter_by="confident_learning", return_indices_ranked_by="self_confidence"
    )
    found = find_label_issues(noisy, proba).indices
    assert len(found) > 10
    np.testing.assert_array_equal(found, expected)


def test_out_of_fold_probabilities_come_from_networks_that_did_not_see_the_image(digits_data):
    config = mlplab.resolve_config("digits-mlp", overrides={"train.epochs": 5})
    x, y = digits_data.x_train[:300], digits_data.y_train[:300]
    seen = []
    proba = out_of_fold_proba(config, x, y, 10, folds=3, on_fold=lambda n, a: seen.append((n, a)))
    assert proba.shape == (300, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert [n for n, _ in seen] == [1, 2, 3] and all(0.5 < a <= 1 for _, a in seen)
    again = out_of_fold_proba(config, x, y, 10, folds=3)
    np.testing.assert_array_equal(proba, again)  # seeded folds and networks


def write_noisy(path, data, rate, seed=0):
    """All digits with a share ``rate`` of the labels changed: the .npz and those indices."""
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    rng = np.random.default_rng(seed)
    changed = np.sort(rng.choice(len(y), round(rate * len(y)), replace=False))
    y[changed] = (y[changed] + rng.integers(1, 10, len(changed))) % 10
    np.savez(path, x_train=x, y_train=y)
    return changed


def test_it_finds_most_of_the_labels_that_were_changed(digits_data, tmp_path):
    changed = write_noisy(tmp_path / "noisy.npz", digits_data, 0.04)
    audit = mlplab.audit_labels(
        "digits-mlp",
        overrides={"data.dataset": str(tmp_path / "noisy.npz"), "train.epochs": 20},
        folds=4,
        out=tmp_path / "runs",
        verbose=False,
    )
    flagged = audit.issues.indices
    hits = len(np.intersect1d(flagged, changed))
    # Measured: precision ~0.9, recall ~0.9 (benchmarks/label_issues.py, 50 epochs, 5 folds).
    assert hits / len(changed) > 0.75 and hits / len(flagged) > 0.75
    assert audit.issues.images == 1797 and audit.names[0] == "noisy.npz:x_train[0]"
    assert 0.85 < audit.accuracy < 0.97  # right on most images, never on the changed ones
    files = {path.name for path in audit.path.iterdir()}
    assert files == {
        "label_issues.csv",
        "label_issues.png",
        "label_issues.json",
        "label_issues.html",
        "out_of_fold.npz",
    }
    page = (audit.path / "label_issues.html").read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == len(flagged)  # fewer than 300
    assert "<h2>Most often flagged</h2>" in page and "http" not in page
    with np.load(audit.path / "out_of_fold.npz") as saved:
        np.testing.assert_array_equal(saved["proba"], audit.proba)
    html = audit._repr_html_()  # the notebook card
    assert "label issues: digits-mlp-noisy on" in html and 'src="data:image/png;base64,' in html
    summary = json.loads((audit.path / "label_issues.json").read_text())
    assert summary["flagged"] == len(flagged) and summary["folds"] == 4
    assert sum(pair["count"] for pair in summary["pairs"]) == len(flagged)


def digit_folder(root, data, moved):
    """Every digits image as a PNG in root/digit-<label>/, ``moved`` ({index: label}) into
    another class's folder. Returns the moved files."""
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    files = []
    for index, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = root / f"digit-{moved.get(index, label)}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / f"img{index:04d}.png")
        if index in moved:
            files.append(str(folder / f"img{index:04d}.png"))
    return files


def test_cli_names_the_files_of_a_folder(digits_data, tmp_path, capsys):
    moved = {10: 3, 20: 8, 30: 1}
    files = digit_folder(tmp_path / "digits", digits_data, moved)
    code, out, err = run_cli(
        capsys, "label-issues", "--dataset", tmp_path / "digits", "--folds", "3",
        "--epochs", "20", "--out", tmp_path / "runs", "--top", "5",
    )  # fmt: skip
    assert code == 0, err
    assert [f"fold {n}/3" in err for n in (1, 2, 3)] == [True] * 3
    assert "likely mislabelled" in out and "look at them:" in out
    folder = next((tmp_path / "runs").iterdir())
    with open(folder / "label_issues.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert {row["image"] for row in rows[:3]} == set(files)  # the moved ones lead
    for row in rows[:3]:
        assert row["given"] != row["likely"] and float(row["likely_probability"]) > 0.5
    assert_real_png((folder / "label_issues.png").read_bytes())
    assert files[0] in out  # the table names them too
    page = (folder / "label_issues.html").read_text(encoding="utf-8")
    assert all(html.escape(name) in page for name in files)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--folds", "1"], "folds must be a whole number of at least 2, not 1"),
        (["--set", "train.epoch=3"], "train.epoch"),
        (["--dataset", "{tmp}/nowhere"], "no such file or folder"),
        (["--dataset", "{tmp}/one.npz"], "needs images of at least two classes"),
        (["--dataset", "{tmp}/few.npz", "--folds", "5"], "5 folds need a class with at least 5"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    np.savez(tmp_path / "one.npz", x_train=np.zeros((6, 4, 4), np.uint8), y_train=np.zeros(6, int))
    np.savez(tmp_path / "few.npz", x_train=np.zeros((6, 4, 4), np.uint8), y_train=np.arange(6))
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    code, _, err = run_cli(capsys, "label-issues", *argv, "--out", tmp_path / "runs")
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
