import warnings

import numpy as np
import pytest
from PIL import Image

import mlplab
from mlplab import DataError
from mlplab.data import Dataset, load_dataset, make_splits, read_images, scaling_params
from mlplab.data.images import (
    border_brightness,
    content_fraction,
    frame_content,
    has_light_background,
    level_background,
    read_image,
)
from mlplab.data.split import stratified_split

from .conftest import save_png


def test_digits_is_uint8_nhwc_with_a_fixed_stratified_test_split(digits_data):
    d = digits_data
    assert d.x_train.dtype == np.uint8 and d.x_train.shape[1:] == (8, 8, 1)
    assert len(d.y_train) + len(d.y_test) == 1797
    assert len(d.y_test) == 360
    assert d.x_train.max() == 255 and d.x_train.min() == 0
    assert d.class_names == tuple("0123456789")
    # stratified: every class has about 20% of its images in test
    counts = np.bincount(d.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.y_test, d.y_test)


def test_digits_are_read_from_scikit_learns_file_as_load_digits_reads_it(monkeypatch):
    from sklearn.datasets import load_digits

    from mlplab.data import catalog

    assert catalog.digits_file() is not None
    bunch = load_digits()
    fast = catalog._load_digits()
    assert fast["x_train"].dtype == np.uint8 and fast["y_train"].dtype == np.int64
    np.testing.assert_array_equal(fast["y_train"], bunch.target)
    expected = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    np.testing.assert_array_equal(fast["x_train"], expected)
    monkeypatch.setattr(catalog, "digits_file", lambda: None)  # moved: load_digits reads it
    np.testing.assert_array_equal(catalog._load_digits()["x_train"], fast["x_train"])


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="^unknown dataset \"digitz\" \\(did you mean 'digits'"):
        load_dataset("digitz")
    # From a config, the message names its key.
    with pytest.raises(DataError, match='^data.dataset = "digitz": unknown dataset'):
        mlplab.api.read_dataset(mlplab.resolve_config(None, {"data.dataset": "digitz"}).data)


def test_stratified_split_partitions_and_is_seeded():
    labels = np.repeat(np.arange(4), 25)
    keep, held = stratified_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(100))
    assert np.bincount(labels[held]).tolist() == [5, 5, 5, 5]
    np.testing.assert_array_equal(held, stratified_split(labels, 0.2, seed=3)[1])
    assert not np.array_equal(held, stratified_split(labels, 0.2, seed=4)[1])


def test_stratified_split_falls_back_when_a_class_has_one_image():
    labels = np.array([0] * 10 + [1])
    keep, held = stratified_split(labels, 0.3, seed=0)
    assert len(keep) + len(held) == 11


def test_stratified_split_is_scikit_learns_split():
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    for case in range(300):
        classes = int(rng.integers(1, 12))
        n = int(rng.integers(2, 400))
        skew = rng.dirichlet(np.full(classes, float(rng.choice([0.3, 1.0, 20.0]))))
        labels = rng.choice(classes, size=n, p=skew) * 7 - 3  # any integer labels
        fraction = float(rng.choice([0.01, 0.1, 0.2, 1 / 3, 0.5, 0.9, rng.uniform(0.01, 0.99)]))
        seed = int(rng.integers(0, 2**31))
        if n - np.ceil(fraction * n) < 1:
            with pytest.raises(DataError, match="too few to hold out"):
                stratified_split(labels, fraction, seed)
            continue
        index = np.arange(n)
        try:
            expected = train_test_split(
                index, test_size=fraction, random_state=seed, stratify=labels
            )
        except ValueError:  # a class too small to stratify: a plain shuffle
            expected = train_test_split(index, test_size=fraction, random_state=seed)
        keep, held = stratified_split(labels, fraction, seed)
        np.testing.assert_array_equal(keep, np.sort(expected[0]), err_msg=f"case {case}")
        np.testing.assert_array_equal(held, np.sort(expected[1]), err_msg=f"case {case}")


def test_a_validation_fraction_that_leaves_no_training_image_is_one_line():
    one = np.zeros((1, 4, 4, 1), np.uint8)
    dataset = Dataset("tiny", one, np.zeros(1, np.int64), one, np.zeros(1, np.int64), ("a",), "")
    with pytest.raises(DataError, match=r"^data.validation = 0.1: 1 image\(s\) are too few"):
        make_splits(dataset, 0.1, seed=0)


def test_make_splits_fraction_test_and_none(digits_data):
    s = make_splits(digits_data, 0.1, seed=0)
    assert (
        len(s.y_val) == round(0.1 * len(digits_data.y_train))
        or abs(len(s.y_val) - 0.1 * len(digits_data.y_train)) < 1
    )
    assert len(s.y_train) + len(s.y_val) == len(digits_data.y_train)
    assert "stratified 0.1 of train" in s.validation
    t = make_splits(digits_data, "test", seed=0)
    assert t.x_val is t.x_test and "test split" in t.validation
    n = make_splits(digits_data, 0.0, seed=0)
    assert n.x_val is None and n.validation == "none"


def test_dataset_rejects_mismatched_counts_and_bad_labels():
    x = np.zeros((3, 2, 2, 1), np.uint8)
    with pytest.raises(DataError, match="3 train images but 2 labels"):
        Dataset("t", x, np.zeros(2, np.int64), x, np.zeros(3, np.int64), ("a", "b"), "test")
    with pytest.raises(DataError, match="labels must lie in 0..1"):
        Dataset("t", x, np.array([0, 1, 2]), x, np.zeros(3, np.int64), ("a", "b"), "test")
    with pytest.raises(DataError, match="must be uint8"):
        Dataset("t", x.astype(float), np.zeros(3, np.int64), x, np.zeros(3, np.int64), ("a",), "t")


@pytest.mark.parametrize(("scaling", "low", "high"), [("unit", 0.0, 1.0), ("centered", -0.5, 0.5)])
def test_fixed_scalings_map_0_255_to_their_range(scaling, low, high):
    x = np.array([0, 255], np.uint8).reshape(2, 1, 1, 1)
    params = scaling_params(x, scaling)
    np.testing.assert_allclose(params.apply(x).ravel(), [low, high])


def test_pixel_spread_is_each_pixels_std():
    from mlplab.data.scaling import pixel_spread

    x = np.random.default_rng(0).integers(0, 256, (5000, 3, 2, 3), dtype=np.uint8)
    np.testing.assert_allclose(pixel_spread(x), x.reshape(5000, -1).std(axis=0), rtol=1e-9)


def test_standardize_uses_per_pixel_mean_and_global_std():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, 3, 3, 1), dtype=np.uint8)
    x[:, 0, 0] = 0  # a constant pixel must not blow up
    z = scaling_params(x, "standardize").apply(x)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    assert abs(z.std() - 1) < 1e-4
    assert np.isfinite(z).all() and np.all(z[:, 0] == 0)


@pytest.mark.parametrize("chunk_rows", [7, 4096])
def test_standardize_statistics_match_the_direct_float64_formula(chunk_rows):
    from mlplab.data.scaling import _pixel_mean_and_centred_std

    rng = np.random.default_rng(1)
    flat = rng.integers(0, 256, (103, 50), dtype=np.uint8)  # 103 rows: a partial last chunk
    flat[:, :5] = 255
    mean, std = _pixel_mean_and_centred_std(flat, chunk_rows)
    direct = flat.astype(np.float64)
    np.testing.assert_allclose(mean, direct.mean(axis=0), rtol=0, atol=1e-12)
    assert std == pytest.approx((direct - direct.mean(axis=0)).std(), rel=1e-12)


def test_standardize_of_constant_images_keeps_them_finite():
    x = np.full((4, 2, 2, 1), 9, np.uint8)
    z = scaling_params(x, "standardize").apply(x)
    assert np.all(z == 0)


def test_read_image_converts_colour_and_size(tmp_path):
    rgb = np.zeros((40, 30, 3), np.uint8)
    rgb[..., 0] = 255
    path = save_png(tmp_path / "red.png", rgb)
    gray = read_image(path, (8, 8, 1))
    assert gray.shape == (8, 8, 1) and gray.dtype == np.uint8
    assert 70 <= gray.mean() <= 80  # luminance of pure red is 76
    assert read_image(path, (4, 5, 3)).shape == (4, 5, 3)


def test_transparent_background_becomes_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent
    path = tmp_path / "clear.png"
    Image.fromarray(rgba, "RGBA").save(path)
    assert read_image(path, (8, 8, 1)).min() == 255


def test_auto_invert_only_when_backgrounds_disagree(tmp_path):
    dark = np.zeros((8, 8), np.uint8)
    dark[2:6, 3:5] = 255
    light = 255 - dark
    paths = [save_png(tmp_path / "dark.png", dark), save_png(tmp_path / "light.png", light)]
    images, flipped = read_images(paths, (8, 8, 1), invert="auto", background=0.0)
    assert flipped == [False, True]
    np.testing.assert_array_equal(images[0], images[1])
    _, flipped = read_images(paths, (8, 8, 1), invert="auto", background=0.5)
    assert flipped == [False, False]  # no clear background: never guess
    _, flipped = read_images(paths, (8, 8, 1), invert="yes")
    assert flipped == [True, True]


def test_border_brightness():
    x = np.full((2, 4, 4, 1), 255, np.uint8)
    x[:, 1:3, 1:3] = 0
    assert border_brightness(x) == 1.0


def test_light_background_is_judged_against_the_content_not_mid_gray():
    dim_paper = np.full((20, 20, 1), 90, np.uint8)  # a photo's paper, darker than mid-gray
    dim_paper[5:15, 9:11] = 20  # dark ink
    assert has_light_background(dim_paper)
    assert not has_light_background(255 - dim_paper)  # light strokes on a dark ground
    assert has_light_background(np.full((4, 4, 1), 200, np.uint8))  # flat: by its brightness
    assert not has_light_background(np.full((4, 4, 1), 50, np.uint8))


def test_level_background_takes_out_uneven_light_and_keeps_clean_drawings():
    rng = np.random.default_rng(0)
    strokes = np.zeros((120, 160), bool)
    strokes[30:90, 70:80] = strokes[30:40, 40:110] = True
    y, x = np.mgrid[0:120, 0:160] / 160.0
    edge = 1 / (1 + np.exp(-(x - 0.7) / 0.03))  # a soft shadow edge (brighter once inverted)
    for shadow, left in ((20, 40), (40, 128)):
        ground = 20 + 60 * x + 30 * y * y + shadow * edge + rng.normal(0, 2, x.shape)
        photo = np.clip(np.where(strokes, ground + 120, ground), 0, 255).astype(np.uint8)
        assert np.percentile(photo[~strokes], 99) > 110  # the paper: 20 to over 110
        leveled = level_background(photo)
        assert np.median(leveled[strokes]) > 240
        # A mild shadow goes; of a strong one, less than half the strokes' level is left
        # (framing looks above half: it finds the strokes, not the shadow).
        assert np.percentile(leveled[~strokes], 99) < left
    clean = np.where(strokes, 255, 0).astype(np.uint8)
    np.testing.assert_array_equal(level_background(clean), clean)
    blank = np.clip(20 + 60 * x + rng.normal(0, 2, x.shape), 0, 255).astype(np.uint8)
    # Nothing on it (an empty page in uneven light): all black, nothing drawn.
    np.testing.assert_array_equal(level_background(blank), np.zeros_like(blank))
    checkerboard = (np.indices((9, 9)).sum(axis=0) % 2 * 255).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty-slice means on odd images
        for odd in (np.zeros((1, 1), np.uint8), np.full((300, 1), 7, np.uint8), checkerboard):
            assert level_background(odd).shape == odd.shape


def test_bad_image_files_give_one_line_errors(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    truncated = tmp_path / "cut.png"
    save_png(tmp_path / "full.png", np.zeros((64, 64), np.uint8))
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:60])
    for path, message in [
        (tmp_path / "missing.png", "no such image file"),
        (junk, "image Pillow can decode"),
        (truncated, "cannot decode image"),
        (tmp_path, "is a folder"),
    ]:
        with pytest.raises(DataError) as caught:
            read_image(path, (8, 8, 1))
        assert str(path) in str(caught.value) and message in str(caught.value)


def test_content_fraction_measures_how_much_of_the_frame_strokes_span():
    x = np.zeros((3, 10, 10, 1), np.uint8)
    x[:, 2:7, 3:5] = 200  # 5 rows tall, 2 wide
    assert content_fraction(x) == 0.5
    assert content_fraction(np.zeros((2, 4, 4, 1), np.uint8)) == 1.0  # blank: no opinion


def test_frame_content_centres_strokes_at_the_training_fraction():
    canvas = np.zeros((100, 100), np.uint8)
    canvas[5:25, 70:80] = 255  # 20 tall, 10 wide, in a corner
    framed = frame_content(canvas, 0.5)
    assert framed.shape == (40, 40)
    rows = np.flatnonzero(framed.any(axis=1))
    cols = np.flatnonzero(framed.any(axis=0))
    assert (rows[0], rows[-1]) == (10, 29) and (cols[0], cols[-1]) == (15, 24)
    assert frame_content(np.zeros((5, 5), np.uint8), 0.5).shape == (5, 5)


def test_drawings_are_framed_but_images_at_model_size_are_not(tmp_path):
    drawing = np.full((120, 120), 255, np.uint8)
    drawing[10:40, 80:95] = 0  # a black stroke, small, in a corner of a white page
    small = np.zeros((8, 8), np.uint8)
    small[3:5, 3:5] = 255
    paths = [save_png(tmp_path / "drawing.png", drawing), save_png(tmp_path / "s.png", small)]
    images, flipped = read_images(paths, (8, 8, 1), background=0.0, fraction=1.0)
    assert flipped == [True, False]
    rows = np.flatnonzero(images[0, ..., 0].max(axis=1) > 100)
    assert rows[0] == 0 and rows[-1] == 7  # the stroke now spans the frame's height
    np.testing.assert_array_equal(images[1, ..., 0], small)
    unframed, _ = read_images(paths[:1], (8, 8, 1), background=0.0, fraction=1.0, frame=False)
    assert unframed[0, :, :4].max() < 50  # left as drawn: the stroke stays on the right


def test_image_files_expand_folders_to_the_images_under_them(tmp_path):
    from mlplab.data.images import image_files

    for name in ("b.png", "a.JPG", "sub/c.gif", ".hidden/d.png", ".e.png", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    single = tmp_path / "notes.txt"
    assert image_files([tmp_path, single]) == [
        tmp_path / "a.JPG",
        tmp_path / "b.png",
        tmp_path / "sub" / "c.gif",
        single,  # a file named on its own is taken as it is (and refused later if need be)
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: a folder with no PNG/JPEG/BMP/GIF/WebP images"):
        image_files([tmp_path / "empty"])


def test_a_webp_reads_as_the_same_image_saved_as_png(tmp_path):
    from mlplab.data.images import image_files

    pixels = (np.random.default_rng(3).random((12, 12, 3)) * 255).astype(np.uint8)
    save_png(tmp_path / "a.png", pixels)
    Image.fromarray(pixels).save(tmp_path / "b.webp", lossless=True)
    assert image_files([tmp_path]) == [tmp_path / "a.png", tmp_path / "b.webp"]
    both, _ = read_images(image_files([tmp_path]), (12, 12, 3))
    np.testing.assert_array_equal(both[0], both[1])


def test_a_blank_image_is_one_colour_throughout(tmp_path):
    from mlplab.data.images import is_blank

    colour = np.empty((30, 40, 3), np.uint8)
    colour[:] = (30, 120, 200)  # one colour: the channels differ, the pixels do not
    assert is_blank(colour) and is_blank(np.full((5, 5, 1), 7, np.uint8))
    colour[3, 4] = (30, 122, 200)  # a JPEG's level or two: still blank
    assert is_blank(colour)
    colour[3, 4] = (30, 140, 200)
    assert not is_blank(colour)
    # Read for a white-on-black model: a solid colour stays exactly one colour (not framed
    # into a rectangle), whatever the JPEG did to it.
    Image.fromarray(np.full((48, 64), 190, np.uint8)).save(tmp_path / "page.jpg", quality=70)
    [seen], [flipped] = read_images(
        [tmp_path / "page.jpg"], (8, 8, 1), background=0.0, fraction=1.0
    )
    assert flipped and is_blank(seen) and np.ptp(seen) == 0
