"""The novelty check: k-th nearest-neighbour distance in the last hidden layer."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import mlplab
from mlplab import novelty
from mlplab.activations import hidden_outputs
from mlplab.cli import main
from mlplab.engine import get_predictor
from mlplab.errors import RunError
from mlplab.novelty import NoveltyReference, build_reference, feature_model, unit_rows

from .conftest import save_png


def test_distances_are_the_kth_nearest_neighbours_as_scikit_learn_finds_them():
    rng = np.random.default_rng(0)
    reference = unit_rows(rng.normal(size=(300, 16))).astype(np.float16)
    queries = rng.normal(size=(2500, 16)) * rng.uniform(0.1, 10, (2500, 1))  # any length
    found = NoveltyReference(reference, threshold=1.0, neighbours=5).distances(queries)
    finder = NearestNeighbors(n_neighbors=5).fit(reference.astype(np.float32))
    expected = finder.kneighbors(unit_rows(queries))[0][:, -1]
    np.testing.assert_allclose(found, expected, atol=1e-5)
    assert found.dtype == np.float32 and found.shape == (2500,)
    # A reference image is at distance 0 from itself; k = 1 finds it.
    itself = NoveltyReference(reference, 1.0, neighbours=1).distances(reference)
    np.testing.assert_allclose(itself, 0.0, atol=1e-3)


def test_the_threshold_flags_a_twentieth_of_the_test_images(monkeypatch):
    monkeypatch.setattr(novelty, "REFERENCE_IMAGES", 400)
    rng = np.random.default_rng(1)
    train, test = rng.normal(size=(1000, 8)), rng.normal(size=(300, 8))
    seen = []

    def features_of(x):
        seen.append(len(x))
        return x

    reference, test_distances = build_reference(features_of, train, test, seed=3)
    assert seen == [400 + 300] and reference.features.shape == (400, 8)  # one call
    assert reference.features.dtype == np.float16
    assert np.mean(test_distances > reference.threshold) == pytest.approx(0.05, abs=1 / 300)
    np.testing.assert_allclose(reference.distances(test), test_distances)
    # More test images than that: a seeded sample of them sets the threshold.
    _, sampled = build_reference(lambda x: x, train, rng.normal(size=(900, 8)), seed=3)
    assert sampled.shape == (400,)
    again, _ = build_reference(lambda x: x, train, test, seed=3)
    assert np.array_equal(again.features, reference.features)  # seeded


def test_a_reference_round_trips_and_a_damaged_one_is_named(tmp_path):
    reference = NoveltyReference(unit_rows(np.eye(3)).astype(np.float16), 0.5, 2)
    (tmp_path / "novelty.npz").write_bytes(reference.to_npz())
    back = NoveltyReference.read(tmp_path / "novelty.npz")
    assert np.array_equal(back.features, reference.features)
    assert (back.threshold, back.neighbours) == (0.5, 2)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(RunError, match="broken.npz: unreadable"):
        NoveltyReference.read(tmp_path / "broken.npz")


def test_features_are_what_the_output_layer_reads(digits_run, digits_data):
    images = digits_data.x_test[:50]
    features = get_predictor().predict(feature_model(digits_run.model), images)
    last_hidden = hidden_outputs(digits_run.model, images)[-1][1]
    np.testing.assert_allclose(features, last_hidden, rtol=1e-4, atol=1e-5)


def test_every_run_keeps_a_reference_that_tells_noise_from_digits(digits_run, digits_data):
    facts = digits_run.metrics["novelty"]
    assert (digits_run.path / "novelty.npz").is_file()
    reference = digits_run.novelty_reference
    train_samples = digits_run.metrics["dataset"]["train_samples"]  # fewer than 5000: all
    assert facts["reference_images"] == len(reference.features) == train_samples
    assert facts["threshold"] == pytest.approx(reference.threshold)
    test_distances = digits_run.novelty(digits_data.x_test)
    assert facts["test_flagged"] == pytest.approx(np.mean(test_distances > reference.threshold))
    assert 0.03 <= facts["test_flagged"] <= 0.07
    noise = np.random.default_rng(0).integers(0, 256, (200, 8, 8, 1), dtype=np.uint8)
    assert np.median(digits_run.novelty(noise)) > reference.threshold


def test_predict_says_which_images_are_unlike_the_training_images(
    capsys, digits_run, digits_data, tmp_path
):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(digits_data.x_test[:4]):
        save_png(folder / f"digit{i}.png", image[..., 0])
    rng = np.random.default_rng(0)
    for i in range(4):
        save_png(folder / f"noise{i}.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    answers = mlplab.predict(digits_run, [folder])
    threshold = digits_run.novelty_reference.threshold
    for answer in answers:
        assert answer["familiar"] == (answer["novelty"] <= threshold)
    assert main(["predict", str(digits_run.path), str(folder)]) == 0
    out = capsys.readouterr().out
    unlike = sum(not answer["familiar"] for answer in answers)
    assert out.count("(unlike its training images)") == unlike
    assert unlike >= 1  # the noise
    assert f"{unlike} of 8 unlike its training images (novelty above {threshold:.3g}, " in out
    assert "which 5% of its own test images exceed): for those the answer may be a guess" in out
    table = tmp_path / "p.csv"
    assert main(["predict", str(digits_run.path), str(folder), "--csv", str(table)]) == 0
    rows = list(csv.DictReader(table.open()))
    assert [row["familiar"] for row in rows] == [str(int(a["familiar"])) for a in answers]
    assert [float(row["novelty"]) for row in rows] == pytest.approx(
        [a["novelty"] for a in answers], abs=1e-4
    )
    # A run from before novelty.npz: the same answers, without the check.
    older = tmp_path / "older"
    shutil.copytree(digits_run.path, older)
    (older / "novelty.npz").unlink()
    capsys.readouterr()
    assert main(["predict", str(older), str(folder), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert all("familiar" not in answer and "novelty" not in answer for answer in plain)
    assert [a["label"] for a in plain] == [a["label"] for a in answers]
    # mlplab report gives it one, as it draws plots newer versions added.
    result = mlplab.report_run(older)
    assert older / "novelty.npz" in result.files
    rebuilt = NoveltyReference.read(older / "novelty.npz")
    assert len(rebuilt.features) == len(digits_data.x_train)  # all the dataset's training images
    assert main(["predict", str(older), str(folder), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert all("familiar" in answer for answer in again)
    assert mlplab.report_run(older).files.count(older / "novelty.npz") == 0  # only once


def test_a_blank_image_is_never_sure_nor_familiar(capsys, digits_run, digits_data, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    save_png(folder / "digit.png", digits_data.x_test[0, ..., 0])
    save_png(folder / "white.png", np.full((40, 30), 255, np.uint8))  # an empty scan
    save_png(folder / "grey.png", np.full((8, 8), 128, np.uint8))
    # A photo of an empty page: paper and its noise, nothing drawn; levelled, it is black.
    paper = np.random.default_rng(0).normal(200, 6, (60, 50))
    save_png(folder / "paper.png", np.clip(paper, 0, 255).astype(np.uint8))
    answers = {Path(a["file"]).name: a for a in mlplab.predict(digits_run, [folder])}
    names = ("digit.png", "white.png", "grey.png", "paper.png")
    assert [answers[name]["blank"] for name in names] == [False, True, True, True]
    assert answers["white.png"]["familiar"] is False and answers["grey.png"]["familiar"] is False
    # Even at the lowest threshold its answer is not "sure".
    sure = mlplab.predict(digits_run, [folder], min_probability=0.0)
    assert [a["sure"] for a in sorted(sure, key=lambda a: a["file"])] == [
        True,  # digit
        False,  # grey
        False,  # paper
        False,  # white
    ]
    assert main(["predict", str(digits_run.path), str(folder)]) == 0
    out = capsys.readouterr().out
    for line in out.splitlines():
        if "white.png" in line or "grey.png" in line or "paper.png" in line:
            assert line.endswith("(blank)")  # not also "unlike": one reason is enough
    assert "3 of 4 blank (every pixel the same, as the model sees it)" in out
    table = tmp_path / "p.csv"
    assert main(["predict", str(digits_run.path), str(folder), "--csv", str(table)]) == 0
    rows = {Path(row["file"]).name: row for row in csv.DictReader(table.open())}
    assert [rows[name]["blank"] for name in names] == list("0111")
