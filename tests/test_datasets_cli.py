"""`mlplab datasets ...`, every path form trained from the CLI, and Debian's Fashion-MNIST."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlplab.data import load_dataset
from mlplab.data.catalog import CATALOG

from .datagen import (
    tar_folder,
    write_cifar10_folder,
    write_idx_folder,
    write_image_folder,
    write_kaggle_csv,
)
from .test_cli import run_cli, train_on

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir() and not os.environ.get("CI"),
    reason="Debian's dataset-fashion-mnist is not installed (CI installs it)",
)


def test_datasets_list_names_every_dataset_and_where_it_is(capsys):
    code, out, _ = run_cli(capsys, "datasets", "list")
    assert code == 0
    for name in CATALOG:
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert "digits" in out and "bundled" in out and "cache:" in out


def test_datasets_info_counts_per_class(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "datasets", "info", "digits")
    assert code == 0 and "license" in out and "1437 train / 360 test" in out
    write_idx_folder(tmp_path / "set")
    code, out, _ = run_cli(capsys, "datasets", "info", str(tmp_path / "set"))
    assert code == 0 and "6x6x1 images, 3 classes, 60 train / 30 test" in out


def test_datasets_show_writes_a_sample_grid(capsys, tmp_path):
    out_file = tmp_path / "grid.png"
    code, out, _ = run_cli(capsys, "datasets", "show", "digits", "--out", str(out_file))
    assert code == 0 and f"wrote {out_file}" in out
    with Image.open(out_file) as image:
        assert image.format == "PNG" and image.height > 400
        assert np.asarray(image.convert("L"), np.float32).std() > 10


def test_datasets_errors_are_one_line(capsys, tmp_path):
    for argv, message in [
        (["datasets", "info", "mnistt"], "did you mean 'mnist'"),
        (["datasets", "show", "digits", "--out", str(tmp_path / "x.jpg")], "give a .png"),
        (
            ["datasets", "show", "digits", "--out", str(tmp_path / "no" / "x.png")],
            f"{tmp_path / 'no' / 'x.png'}: cannot write: No such file or directory",
        ),
        (["datasets", "fetch", "nope"], "unknown dataset"),
        (["datasets", "info", str(tmp_path / "missing")], "no such file or folder"),
    ]:
        code, _out, err = run_cli(capsys, *argv)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_offline_fetch_of_a_missing_dataset_says_where_it_looked(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MLPLAB_DATA", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    code, _, err = run_cli(
        capsys, "train", "--dataset", "mnist", "--offline", "--out", str(tmp_path / "runs")
    )
    assert code == 2 and "not available offline" in err and str(tmp_path) in err
    assert not (tmp_path / "runs").exists()


def test_verify_reports_each_file(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MLPLAB_DATA", str(tmp_path))
    code, out, _ = run_cli(capsys, "datasets", "verify", "kmnist")
    assert code == 0 and out.count("missing") == 4
    corrupt = tmp_path / "kmnist" / "train-images-idx3-ubyte.gz"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"junk")
    code, out, err = run_cli(capsys, "datasets", "verify", "kmnist")
    assert code == 2 and f"corrupt {corrupt}" in out and "failed verification" in err


def path_forms(root: Path) -> dict[str, Path]:
    write_idx_folder(root / "idx")
    write_cifar10_folder(root / "cifar-10-batches-py")
    write_kaggle_csv(root / "train.csv")
    write_image_folder(root / "pets")
    x = np.random.default_rng(0).integers(0, 256, (40, 5, 5), dtype=np.uint8)
    np.savez(root / "arrays.npz", x_train=x, y_train=np.arange(40) % 2)
    return {
        "idx": root / "idx",
        "cifar": root / "cifar-10-batches-py",
        "cifar-tar": tar_folder(root / "cifar-10-batches-py", root / "cifar.tar.gz"),
        "csv": root / "train.csv",
        "folder": root / "pets",
        "npz": root / "arrays.npz",
    }


@pytest.mark.parametrize("form", ["idx", "cifar", "cifar-tar", "csv", "folder", "npz"])
def test_every_path_form_trains_end_to_end_from_the_cli(capsys, tmp_path, form):
    path = path_forms(tmp_path)[form]
    code, out, err = run_cli(
        capsys,
        "train",
        "--dataset",
        str(path),
        "--epochs",
        "1",
        "--set",
        "model.hidden=[16]",
        "--out",
        str(tmp_path / "runs"),
        "-q",
    )
    assert code == 0, err
    [run_dir] = list((tmp_path / "runs").iterdir())
    assert (run_dir / "metrics.json").is_file() and "test accuracy" in out


def test_kaggle_test_csv_predicts_to_a_submission(capsys, tmp_path):
    write_kaggle_csv(tmp_path / "train.csv", rows=80)
    write_kaggle_csv(tmp_path / "test.csv", labeled=False, rows=12)
    run_dir = train_on(capsys, tmp_path, tmp_path / "train.csv")
    submission = tmp_path / "submission.csv"
    code, _out, err = run_cli(
        capsys, "predict", str(run_dir), str(tmp_path / "test.csv"), "--submission", str(submission)
    )
    assert code == 0, err
    lines = submission.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 13
    assert lines[1].startswith("1,") and lines[-1].startswith("12,")
    assert all(line.split(",")[1] in {"0", "1", "2", "3"} for line in lines[1:])
    nowhere = tmp_path / "no" / "submission.csv"
    code, _out, err = run_cli(
        capsys, "predict", str(run_dir), str(tmp_path / "test.csv"), "--submission", str(nowhere)
    )
    assert code == 2
    assert err == f"mlplab: error: {nowhere}: cannot write: No such file or directory\n"


@needs_fashion
def test_debian_fashion_mnist_loads_offline_verified(monkeypatch, tmp_path):
    monkeypatch.setenv("MLPLAB_DATA", str(tmp_path))  # nothing cached: must use Debian's copy
    data = load_dataset("fashion-mnist", offline=True)
    assert data.x_train.shape == (60000, 28, 28, 1) and data.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.class_names[0] == "T-shirt/top" and str(DEBIAN_FASHION) in data.source


@needs_fashion
def test_fashion_mnist_trains_offline_from_the_cli(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MLPLAB_DATA", str(tmp_path / "cache"))
    code, out, err = run_cli(
        capsys,
        "train",
        "--dataset",
        "fashion-mnist",
        "--offline",
        "--epochs",
        "1",
        "--set",
        "model.hidden=[64]",
        "--out",
        str(tmp_path / "runs"),
        "-q",
    )
    assert code == 0, err
    [run_dir] = list((tmp_path / "runs").iterdir())
    assert run_dir.name.endswith("digits-mlp-fashion-mnist")
    for name in ("report.html", "confusion.png", "samples.png", "mistakes.png", "correct.png"):
        assert (run_dir / name).stat().st_size > 10_000, name
    assert "Ankle boot" in (run_dir / "report.html").read_text()
    accuracy = float(out.split("test accuracy ")[-1].split()[0])
    assert accuracy > 0.75  # one epoch of a small MLP: well above chance (0.10)


def test_show_previews_what_augmentation_does(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "datasets", "show", "digits", "--translate", "2", "--flip")
    assert code == 0 and out == "wrote digits-augmented.png\n"
    with Image.open(tmp_path / "digits-augmented.png") as picture:
        assert picture.format == "PNG" and picture.width > 600
    code, _, err = run_cli(capsys, "datasets", "show", "digits", "--translate", "-1")
    assert code == 2 and "augment.translate = -1 is not valid" in err
