"""On-device augmentation ([augment]), label smoothing and weight averaging (train.ema)."""

import jax
import numpy as np
import pytest

import mlplab
from mlplab.cli import main
from mlplab.config import AugmentConfig, RunConfig
from mlplab.errors import ConfigError
from mlplab.fused import _cross_entropy, augment_batch, turned
from mlplab.robustness import rotated


def one_dot_images(count: int = 64, size: int = 9) -> np.ndarray:
    """uint8 (count, size, size, 1): a single bright pixel in the middle of each."""
    x = np.zeros((count, size, size, 1), np.uint8)
    x[:, size // 2, size // 2, 0] = 200
    return x


def test_translate_moves_each_image_within_the_limit():
    x = one_dot_images()
    moved = np.asarray(augment_batch(x, jax.random.PRNGKey(0), AugmentConfig(translate=2)))
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
    a = np.asarray(augment_batch(x, jax.random.PRNGKey(1), AugmentConfig(translate=1)))
    b = np.asarray(augment_batch(x, jax.random.PRNGKey(1), AugmentConfig(translate=1)))
    c = np.asarray(augment_batch(x, jax.random.PRNGKey(2), AugmentConfig(translate=1)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(np.unique(a)) <= {0, 255} and (a == 0).any()


def test_flip_mirrors_about_half_of_the_images():
    x = np.zeros((200, 4, 4, 1), np.uint8)
    x[:, :, 0, 0] = 255  # a bright left column
    flipped = np.asarray(augment_batch(x, jax.random.PRNGKey(0), AugmentConfig(flip=True)))
    mirrored = flipped[:, :, -1, 0].all(axis=1)
    untouched = flipped[:, :, 0, 0].all(axis=1)
    assert np.all(mirrored ^ untouched)
    assert 60 < mirrored.sum() < 140


@pytest.mark.parametrize("channels", [1, 3])
def test_turned_images_are_the_robustness_tests_rotated_ones(digits_data, channels):
    x = np.repeat(digits_data.x_test[:20], channels, axis=-1)
    x[10:] = 255 - x[10:]  # light backgrounds too: the fill is each image's own background
    for degrees in (7.5, 20, -30, 90):
        turned_here = np.asarray(turned(x, np.full(len(x), degrees, np.float32)))
        np.testing.assert_array_equal(turned_here, rotated(x, degrees))
    np.testing.assert_array_equal(np.asarray(turned(x, np.zeros(len(x), np.float32))), x)


def test_rotate_draws_an_angle_per_image_and_leaves_the_shifts_as_they_were():
    x = np.repeat(one_dot_images(40, 15), 1, axis=0)
    x[:, 7, 3:12, 0] = 200  # a horizontal bar through the centre: its tilt shows the angle
    key = jax.random.PRNGKey(3)
    a = np.asarray(augment_batch(x, key, AugmentConfig(rotate=30)))
    np.testing.assert_array_equal(a, np.asarray(augment_batch(x, key, AugmentConfig(rotate=30))))
    assert len({image.tobytes() for image in a}) > 30  # each image its own angle
    rows = [np.argwhere(image[..., 0] > 100)[:, 0] for image in a]
    assert max(r.max() - r.min() for r in rows) <= 5  # at most 30 degrees: a bar stays flat-ish
    # A uniform image turns into itself (its background is its colour): only the shifts'
    # zero fill shows, and it is the same with rotation on as off.
    flat = np.full((40, 8, 8, 1), 90, np.uint8)
    shifted = np.asarray(augment_batch(flat, key, AugmentConfig(translate=2)))
    both = np.asarray(augment_batch(flat, key, AugmentConfig(translate=2, rotate=45)))
    np.testing.assert_array_equal(both == 0, shifted == 0)


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
    with pytest.raises(ConfigError, match="augment.rotate = 200.0 is not valid: must be >= 0"):
        RunConfig.from_dict({"augment": {"rotate": 200}})
    assert RunConfig.from_dict({"augment": {"rotate": 15}}).augment.active
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
    turning = mlplab.train(
        overrides={"train.epochs": 1, "augment.rotate": 15}, out=tmp_path, verbose=False
    )
    assert (turning.path / "augmented.png").is_file()
    assert turning.history[0]["loss"] != plain.history[0]["loss"]


def test_datasets_show_draws_rotation(tmp_path, capsys):
    out = tmp_path / "turned.png"
    assert main(["datasets", "show", "digits", "--rotate", "20", "--out", str(out)]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    assert main(["datasets", "show", "digits", "--rotate", "400", "--out", str(out)]) == 2
    assert "augment.rotate = 400" in capsys.readouterr().err
