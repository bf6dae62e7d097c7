"""mlplab.embedding and `mlplab embed`: what each layer sees, as maps and k-NN accuracies."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.model_selection import LeaveOneOut, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import mlplab
from mlplab.embedding import LayerViews, layer_views, neighbour_accuracy, project, sample_indices
from mlplab.report import plots

from .test_evaluate import image_folder
from .test_report import assert_real_png, run_cli


def test_neighbour_accuracy_is_scikit_learns_leave_one_out():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 4)), rng.normal(1.2, 1, (30, 4))])
    y = np.repeat([0, 1], 30)  # two classes, five votes: never a tie
    loo = cross_val_score(KNeighborsClassifier(5), x, y, cv=LeaveOneOut())
    ours = neighbour_accuracy(x, y)
    assert ours == pytest.approx(loo.mean())
    assert 0.6 < ours < 1.0  # overlapping classes: neither all right nor chance


def test_neighbour_accuracy_leaves_the_image_out_and_ties_go_to_the_nearer():
    # Two tight clusters: every neighbour of a point but itself is in its cluster.
    x = np.array([[0.0], [0.1], [0.2], [0.3], [0.4], [0.5], [10.0], [10.1], [10.2], [10.3]])
    assert neighbour_accuracy(x, np.array([0] * 6 + [1] * 4), k=3) == 1.0
    # A point whose own label nobody else has is wrong: it is not its own neighbour.
    assert neighbour_accuracy(x, np.array([0] * 5 + [2] + [1] * 4), k=3) == pytest.approx(0.9)
    # k = 2, one neighbour of each class: the nearer one's class wins.
    line = np.array([[0.0], [1.0], [3.0]])
    assert neighbour_accuracy(line, np.array([0, 0, 1]), k=2) == pytest.approx(2 / 3)
    assert np.isnan(neighbour_accuracy(line, np.array([0, 0, 1]), k=5))  # too few images


def test_pca_is_scikit_learns_up_to_sign_and_deterministic():
    x = np.random.default_rng(1).normal(size=(50, 6)) * np.array([5, 3, 1, 1, 1, 1])
    points = project(x)
    assert points.shape == (50, 2) and points.dtype == np.float32
    expected = PCA(2).fit_transform(x)
    np.testing.assert_allclose(np.abs(points), np.abs(expected), rtol=1e-4, atol=1e-4)
    assert points[:, 0].var() >= points[:, 1].var()
    np.testing.assert_array_equal(project(x), points)
    np.testing.assert_array_equal(project(-x), points * np.array([-1, -1], np.float32))
    assert project(x[:, :1]).shape == (50, 2)  # one feature: a zero second column
    with pytest.raises(ValueError, match="unknown method 'umap'"):
        project(x, "umap")
    tsne = project(x, "tsne")
    assert tsne.shape == (50, 2) and np.isfinite(tsne).all()


@pytest.mark.parametrize("shape", [(30, 80), (80, 30), (1, 5), (2, 5)])
def test_pca_of_more_features_than_images_is_scikit_learns_too(shape):
    # d > n takes the (n, n) product; one or two images leave fewer than two directions.
    x = np.random.default_rng(2).normal(size=shape) * np.linspace(4, 1, shape[1])
    points = project(x)
    assert points.shape == (shape[0], 2) and np.isfinite(points).all()
    if shape[0] > 2:
        expected = PCA(2).fit_transform(x)
        np.testing.assert_allclose(np.abs(points), np.abs(expected), rtol=1e-4, atol=1e-4)
    else:
        assert np.allclose(points[:, 1], 0.0)


def test_a_trained_network_separates_the_classes_better_than_the_pixels(digits_run, digits_data):
    views = layer_views(digits_run.model, digits_data.x_test, digits_data.y_test)
    assert views.names == ["pixels", "layer 1: 256 relu", "layer 2: 128 relu"]
    count = len(digits_data.y_test)
    assert [p.shape for p in views.points] == [(count, 2)] * 3
    np.testing.assert_array_equal(views.labels, digits_data.y_test)
    assert views.neighbour_accuracy[-1] > views.neighbour_accuracy[0] + 0.02
    predicted = digits_run.predict(digits_data.x_test).argmax(axis=1)
    assert views.network_accuracy == pytest.approx(np.mean(predicted == digits_data.y_test))
    # A sample: seeded, sorted, the labels of the images picked.
    few = layer_views(digits_run.model, digits_data.x_test, digits_data.y_test, sample=50)
    pick = sample_indices(count, 50)
    assert len(few.labels) == 50 and np.all(np.diff(pick) > 0)
    np.testing.assert_array_equal(few.labels, digits_data.y_test[pick])


def test_a_run_records_them_and_its_report_draws_them(digits_run, tmp_path, capsys):
    recorded = digits_run.metrics["layer_views"]
    assert recorded["stages"] == ["pixels", "layer 1: 256 relu", "layer 2: 128 relu"]
    assert recorded["images"] == 360 and recorded["neighbours"] == 5
    assert all(0.5 < value <= 1 for value in recorded["neighbour_accuracy"])
    assert_real_png((digits_run.path / "layer_views.png").read_bytes())
    html = (digits_run.path / "report.html").read_text(encoding="utf-8")
    assert "<h2>What each layer sees</h2>" in html
    # A run from before they were drawn: `mlplab report` draws them, with the same numbers.
    older = shutil.copytree(digits_run.path, tmp_path / "older")
    metrics = json.loads((older / "metrics.json").read_text())
    del metrics["layer_views"]
    (older / "metrics.json").write_text(json.dumps(metrics))
    (older / "layer_views.png").unlink()
    code, _, _ = run_cli(capsys, "report", older)
    assert code == 0 and (older / "layer_views.png").is_file()
    data = mlplab.report.build.gather(mlplab.record.read_record(older))
    assert data.layer_views.as_dict() == recorded


def test_embed_command_writes_the_maps_and_prints_each_layers_accuracy(
    digits_run, digits_data, tmp_path, capsys
):
    out = tmp_path / "maps.png"
    code, printed, _ = run_cli(capsys, "embed", digits_run.path, "--out", out)
    assert code == 0, printed
    lines = printed.splitlines()
    assert lines[0] == "360 test images, 5-NN accuracy in each space:"
    assert lines[1].split()[0] == "pixels" and lines[3].startswith("  layer 2: 128 relu")
    assert "the network itself" in lines[4] and str(out) in lines[5]
    assert_real_png(out.read_bytes())
    # t-SNE on the images of a folder holding two of the classes, as JSON.
    folder = image_folder(tmp_path / "two", digits_data, classes={3, 7}, per_class=20)
    run = shutil.copytree(digits_run.path, tmp_path / "run")  # the default PNG goes in it
    code, printed, _ = run_cli(capsys, "embed", run, "--tsne", "--dataset", folder, "--json")
    assert code == 0
    result = json.loads(printed)
    assert result["method"] == "tsne" and result["images"] == 40
    assert result["png"] == str(run / "layer_views-tsne.png")
    assert_real_png((run / "layer_views-tsne.png").read_bytes())
    views, path = mlplab.api.embed(digits_run, str(folder), sample=20, out=tmp_path / "p.png")
    assert len(views.labels) == 20 and set(views.labels.tolist()) <= {3, 7}
    assert path == tmp_path / "p.png" and path.is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--images", "3"], "the maps need at least 10 images, not 3"),
        (["--dataset", "no-such-dataset"], "unknown dataset"),
        (["--out", "{tmp}/missing/maps.png"], "maps.png: cannot write"),
    ],
)
def test_embed_errors_are_one_line(digits_run, tmp_path, capsys, argv, message):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    code, _, err = run_cli(capsys, "embed", digits_run.path, *argv)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "missing").exists()


def test_the_maps_draw_many_layers_and_classes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 30, 200)  # 30 classes: no legend, colours from a cycle of hues
    names = ["pixels"] + [f"layer {i}: 16 relu" for i in range(1, 10)]
    views = LayerViews(
        names=names,
        points=[rng.normal(size=(200, 2)).astype(np.float32) for _ in names],
        neighbour_accuracy=[0.5] * len(names),
        labels=labels,
        network_accuracy=0.4,
        method="pca",
    )
    png = plots.layer_views_png(views, [f"class {i}" for i in range(30)], "many")
    assert_real_png(png)
    with Image.open(io.BytesIO(png)) as image:  # 8 of 10 stages: two rows of four
        assert image.width > image.height > 600
    assert len(plots.class_colours(30)) == 30 and len(plots.class_colours(10)) == 10
