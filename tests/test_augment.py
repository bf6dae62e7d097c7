"""On-device augmentation ([augment]), label smoothing and weight averaging (train.ema)."""

import jax
import numpy as np
import pytest

import mlplab
from mlplab.cli import main
from mlplab.config import AugmentConfig, RunConfig
from mlplab.errors import ConfigError
from mlplab.fused import _cross_entropy, augment_batch


def one_dot_images(count: int = 64, size: int = 9) -> np.ndarray:
    """uint8 (count, size, size, 1): a single bright pixel in the middle of each."""
    x = np.zeros((count, size, size, 1), np.uint8)
    x[:, size // 2, size // 2, 0] = 200
    return x


def test_translate_moves_each_image_within_the_limit():
    x = one_dot_images()
    moved = np.asarray(augment_batch(x, jax.random.PRNGKey(0), translate=2, flip=False))
    assert moved.shape == x.shape and moved.dtype == np.uint8
    centre = 9 // 2
    offsets = set()
    for image in moved[..., 0]:
        [(row, col)] = np.argwhere(image == 200)  # the dot survives, once, nothing else
        assert abs(row - centre) <= 2 and abs(col - centre) <= 2
        assert image.sum() == 200
        offsets.add((row - centre, col - centre))
    assert len(offsets) > 10  # images move independently (25 possible offsets)


def test_translate_fills_with_zeros_and_is_seeded():
    x = np.full((8, 6, 6, 3), 255, np.uint8)
    a = np.asarray(augment_batch(x, jax.random.PRNGKey(1), translate=1, flip=False))
    b = np.asarray(augment_batch(x, jax.random.PRNGKey(1), translate=1, flip=False))
    c = np.asarray(augment_batch(x, jax.random.PRNGKey(2), translate=1, flip=False))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(np.unique(a)) <= {0, 255} and (a == 0).any()


def test_flip_mirrors_about_half_of_the_images():
    x = np.zeros((200, 4, 4, 1), np.uint8)
    x[:, :, 0, 0] = 255  # a bright left column
    flipped = np.asarray(augment_batch(x, jax.random.PRNGKey(0), translate=0, flip=True))
    mirrored = flipped[:, :, -1, 0].all(axis=1)
    untouched = flipped[:, :, 0, 0].all(axis=1)
    assert np.all(mirrored ^ untouched)
    assert 60 < mirrored.sum() < 140


def test_label_smoothing_matches_the_formula():
    probs = np.array([[0.7, 0.2, 0.1]], np.float32)
    labels = np.array([0])
    s = 0.3
    target = (1 - s) * np.array([1, 0, 0]) + s / 3
    expected = -(target * np.log(probs[0])).sum()
    assert float(_cross_entropy(probs, labels, s)[0]) == pytest.approx(expected, rel=1e-6)
    assert float(_cross_entropy(probs, labels)[0]) == pytest.approx(-np.log(0.7), rel=1e-6)


def test_augment_section_round_trips_and_is_checked():
    config = RunConfig.from_dict({"augment": {"translate": 2, "flip": True}})
    assert config.augment == AugmentConfig(translate=2, flip=True)
    assert "[augment]\ntranslate = 2\nflip = true" in config.to_toml()
    with pytest.raises(ConfigError, match="augment.translate = -1 is not valid"):
        RunConfig.from_dict({"augment": {"translate": -1}})
    with pytest.raises(ConfigError, match="did you mean 'augment.flip'"):
        RunConfig.from_dict({"augment": {"flipp": True}})
    with pytest.raises(ConfigError, match="train.label_smoothing = 1.0 is not valid"):
        RunConfig.from_dict({"train": {"label_smoothing": 1.0}})


def test_augmentation_changes_training_but_not_prediction(tmp_path):
    plain = mlplab.train(overrides={"train.epochs": 3}, out=tmp_path, verbose=False, report=False)
    shifted = mlplab.train(
        overrides={"train.epochs": 3, "augment.translate": 1},
        out=tmp_path,
        verbose=False,
        report=False,
    )
    assert plain.history[0]["loss"] != shifted.history[0]["loss"]
    assert shifted.config.augment.translate == 1
    # Prediction is deterministic: no augmentation outside training.
    x = np.zeros((4, 8, 8, 1), np.uint8)
    np.testing.assert_array_equal(shifted.predict(x), shifted.predict(x))


def test_augmentation_with_model_fit_is_one_line_and_leaves_no_run(tmp_path, capsys):
    code = main(
        ["train", "--engine", "fit", "--set", "augment.flip=true", "--out", str(tmp_path), "-q"]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "[augment] runs inside the fused JAX engine" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("engine", ["auto", "fit"])
def test_weight_averaging_runs_are_saved_and_reload(tmp_path, engine):
    run = mlplab.train(
        overrides={"train.epochs": 2, "train.ema": 0.9, "train.engine": engine},
        out=tmp_path,
        verbose=False,
        report=False,
    )
    reloaded = mlplab.load_run(run.path)
    x = np.zeros((2, 8, 8, 1), np.uint8)
    np.testing.assert_allclose(reloaded.predict(x), run.predict(x), rtol=1e-5)


def test_val_loss_includes_label_smoothing_like_fit(tmp_path):
    """Keras' val_loss is the compiled (smoothed) loss; the fused engine reports the same."""
    overrides = {"train.epochs": 1, "train.label_smoothing": 0.2, "train.batch_size": 2000}
    fused = mlplab.train(overrides=overrides, out=tmp_path, verbose=False, report=False)
    fit = mlplab.train(
        overrides={**overrides, "train.engine": "fit"}, out=tmp_path, verbose=False, report=False
    )
    # One full-batch step from the same initial weights: the same model, the same val_loss.
    assert fused.history[0]["val_loss"] == pytest.approx(fit.history[0]["val_loss"], rel=1e-3)


def test_the_report_shows_what_augmentation_makes_of_training_images(tmp_path):
    run = mlplab.train(
        overrides={"train.epochs": 1, "augment.translate": 1}, out=tmp_path, verbose=False
    )
    picture = run.path / "augmented.png"
    assert picture.is_file()
    html = (run.path / "report.html").read_text(encoding="utf-8")
    assert "what augmentation makes of them" in html
    plain = mlplab.train(overrides={"train.epochs": 1}, out=tmp_path, verbose=False)
    assert not (plain.path / "augmented.png").exists()
