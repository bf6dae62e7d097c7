"""mlplab.MLPClassifier: scikit-learn's interface, trained as `mlplab train` trains."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.sparse import issparse
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.utils.estimator_checks import check_estimator

import mlplab
from mlplab.data.arrays import as_pixels
from mlplab.errors import ConfigError, DataError
from mlplab.estimator import MLPClassifier
from tests.datagen import toy_images

QUICK = {"epochs": 3, "hidden": [16]}


@pytest.fixture(scope="module")
def digits_rows():
    """scikit-learn's digits as scikit-learn hands them out: float64 (1797, 64) in 0..16."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


# --- arrays -> pixels ------------------------------------------------------------------------


def test_rows_of_a_square_number_of_pixels_are_square_images():
    rows = np.arange(2 * 64).reshape(2, 64) % 256
    assert as_pixels(rows, "X").shape == (2, 8, 8, 1)
    assert as_pixels(rows, "X").dtype == np.uint8
    assert as_pixels(np.zeros((3, 10)), "X").shape == (3, 1, 10, 1)  # one row of pixels
    assert as_pixels(np.zeros((3, 12)), "X", image_shape=(2, 2, 3)).shape == (3, 2, 2, 3)
    assert as_pixels(np.zeros((3, 5, 4)), "X").shape == (3, 5, 4, 1)
    floats = np.array([[0.0, 16.0, 255.0, 3.0]])
    assert as_pixels(floats, "X").ravel().tolist() == [0, 16, 255, 3]


@pytest.mark.parametrize(
    ("x", "shape", "message"),
    [
        (np.full((2, 4), 0.5), None, "already scaled to 0..1? pass (x * 255)"),
        (np.full((2, 4), -1), None, "pixels must lie in 0..255, found -1..-1"),
        (np.full((2, 4), 256.0), None, "pixels must lie in 0..255"),
        (np.array([[0.0, np.nan, 1, 2]]), None, "pixels must be finite"),
        (np.array([["a", "b"]]), None, "pixels must be numbers"),
        (np.zeros((2, 4, 4, 2)), None, "must be (n, h, w), (n, h, w, 1|3) or (n, pixels)"),
        (np.zeros((2, 10)), (3, 3), "rows of 10 pixels are not images of shape [3, 3, 1]"),
        (np.zeros((2, 4, 4)), (5, 5), "images of shape [4, 4, 1], expected [5, 5, 1]"),
        (np.zeros((2, 9)), (3, 3, 2), "image_shape [3, 3, 2] must be [height, width]"),
    ],
)
def test_what_is_not_pixels_is_one_clear_error(x, shape, message):
    with pytest.raises(DataError) as caught:
        as_pixels(x, "X", shape)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_npz_of_float_rows_reads_as_images(tmp_path):
    x, y = toy_images(40, 2, size=4)
    np.savez(tmp_path / "rows.npz", x_train=x.reshape(40, 16).astype(np.float32), y_train=y)
    dataset = mlplab.data.load_dataset(str(tmp_path / "rows.npz"))
    assert dataset.image_shape == (4, 4, 1) and dataset.x_train.dtype == np.uint8


# --- fit, predict, score ---------------------------------------------------------------------


def test_it_learns_scikit_learns_digits_as_scikit_learn_hands_them_out(digits_rows):
    X_train, X_test, y_train, y_test = digits_rows
    clf = MLPClassifier(epochs=10).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.93
    assert clf.image_shape_ == (8, 8, 1) and clf.n_features_in_ == 64
    assert clf.classes_.tolist() == list(range(10)) and clf.n_iter_ == 10
    assert clf.status_ == "complete" and len(clf.history_) == 10
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert (clf.predict(X_test) == clf.classes_[proba.argmax(axis=1)]).all()
    assert clf.model_.input_shape == (None, 8, 8, 1)  # the same contract as model.keras


def test_it_trains_the_same_network_as_mlplab_train(tmp_path, digits_data):
    """Same config, same training images: the same splits, initial weights and shuffles, so
    the same history and the same probabilities on the test split."""
    config = {"train.epochs": 4}
    run = mlplab.train("digits-mlp", overrides=config, out=tmp_path, verbose=False)
    clf = MLPClassifier("digits-mlp", epochs=4, validation=0.1)
    clf.fit(digits_data.x_train, digits_data.y_train)
    assert [round(row["val_loss"], 6) for row in clf.history_] == [
        round(row["val_loss"], 6) for row in run.history
    ]
    np.testing.assert_allclose(
        clf.predict_proba(digits_data.x_test), run.predict(digits_data.x_test), atol=1e-6
    )


def test_labels_of_any_kind_come_back_as_given():
    x, y = toy_images(60, 3, size=6)
    names = np.array(["cat", "dog", "emu"])[y]
    clf = MLPClassifier(epochs=15, hidden=[16]).fit(x[..., 0], names)  # (n, h, w) images
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    assert clf.predict(x[..., 0]).dtype == names.dtype
    assert clf.score(x[..., 0], names) > 0.9


def test_a_fit_repeats_and_random_state_changes_it():
    x, y = toy_images(60, 3, size=6)
    first = MLPClassifier(**QUICK).fit(x, y).predict_proba(x)
    again = MLPClassifier(**QUICK).fit(x, y).predict_proba(x)
    other = MLPClassifier(**QUICK, random_state=1).fit(x, y).predict_proba(x)
    drawn = MLPClassifier(**QUICK, random_state=np.random.RandomState(0)).fit(x, y)
    assert np.array_equal(first, again) and not np.allclose(first, other)
    assert drawn.config_.train.seed == np.random.RandomState(0).randint(np.iinfo(np.int32).max)


def test_sample_weights_of_one_change_nothing_and_of_zero_drop_a_class():
    x, y = toy_images(90, 3, size=6)
    plain = MLPClassifier(epochs=15, hidden=[16], validation=0.2).fit(x, y)
    ones = MLPClassifier(epochs=15, hidden=[16], validation=0.2).fit(x, y, np.ones(90))
    np.testing.assert_array_equal(plain.predict_proba(x), ones.predict_proba(x))
    assert plain.score(x, y) > 0.9
    ignored = MLPClassifier(epochs=15, hidden=[16]).fit(x, y, sample_weight=(y != 2) * 1.0)
    found = ignored.predict(x)
    assert (found[y == 2] == 2).mean() < 0.1 < 0.9 < (plain.predict(x[y == 2]) == 2).mean()
    assert (found[y < 2] == y[y < 2]).mean() > 0.9  # nothing taught it class 2


def test_sample_weights_train_on_keras_fit_too_with_class_weights():
    x, y = toy_images(60, 3, size=6)
    weights = np.where(y == 0, 2.0, 1.0)
    overrides = {"train.engine": "fit"}
    clf = MLPClassifier(epochs=15, hidden=[16], class_weight="balanced", overrides=overrides)
    clf.fit(x, y, sample_weight=weights)
    assert clf.config_.train.engine == "fit" and clf.score(x, y) > 0.9


def test_each_weight_goes_with_its_image_through_the_splits(digits_data):
    from mlplab.data import make_splits

    rows = np.arange(len(digits_data.y_train), dtype=np.float64)
    for validation, fraction in ((0.2, 1.0), (0.1, 0.5), (0.0, 1.0)):
        splits = make_splits(digits_data, validation, 3, None, fraction, rows)
        picked = splits.w_train.astype(int)
        np.testing.assert_array_equal(digits_data.x_train[picked], splits.x_train)
        np.testing.assert_array_equal(digits_data.y_train[picked], splits.y_train)
    assert make_splits(digits_data, 0.2, 3).w_train is None


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (-np.ones(30), "Negative values in data passed to `sample_weight`"),
        (np.ones(29), "sample_weight.shape == (29,), expected (30,)"),
        (np.zeros(30), "non-zero"),
    ],
)
def test_bad_sample_weights_are_one_line(weights, message):
    x, y = toy_images(30, 3, size=4)
    with pytest.raises(ValueError) as caught:
        MLPClassifier(**QUICK).fit(x, y, sample_weight=weights)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_validation_is_held_out_only_for_what_watches_it_unless_asked():
    x, y = toy_images(100, 2, size=4)
    plain = MLPClassifier(**QUICK).fit(x, y)
    assert plain.config_.data.validation == 0 and "val_loss" not in plain.history_[0]
    stopping = MLPClassifier(**QUICK, patience=2).fit(x, y)  # the recipe's 0.1
    assert stopping.config_.data.validation == 0.1 and "val_loss" in stopping.history_[0]
    cutting = MLPClassifier(**QUICK, schedule="plateau").fit(x, y)  # it watches val_loss too
    assert cutting.config_.data.validation == 0.1 and "val_loss" in cutting.history_[0]
    keeping = MLPClassifier(**QUICK, overrides={"train.keep_best": True}).fit(x, y)
    assert keeping.config_.data.validation == 0.1
    asked = MLPClassifier(**QUICK, validation=0.25).fit(x, y)
    assert asked.config_.data.validation == 0.25 and "val_accuracy" in asked.history_[0]


def test_parameters_and_overrides_reach_the_config():
    clf = MLPClassifier(
        "tutorial-sigmoid-mnist",
        hidden=(32,),
        dropout=0.2,
        learning_rate=0.05,
        batch_size=8,
        scaling="centered",
        class_weight="balanced",
        random_state=7,
        overrides={"train.momentum": 0.9},
    )
    config = clf.resolved_config()
    assert config.name == "tutorial-sigmoid-mnist"
    assert config.model.hidden == (32,) and config.model.activation == "sigmoid"
    assert (config.model.dropout, config.train.learning_rate) == (0.2, 0.05)
    assert (config.train.batch_size, config.data.scaling) == (8, "centered")
    assert (config.train.class_weight, config.train.seed, config.train.momentum) == (
        "balanced",
        7,
        0.9,
    )


def test_a_diverging_fit_warns_and_keeps_finite_weights():
    x, y = toy_images(60, 3, size=6)
    clf = MLPClassifier(optimizer="sgd", learning_rate=1e30, epochs=3, dropout=0.0)
    with pytest.warns(ConvergenceWarning, match="lower learning rate"):
        clf.fit(x, y)
    assert clf.status_ == "diverged"
    assert all(np.isfinite(w).all() for w in clf.model_.get_weights())


def test_pickling_keeps_the_model(digits_rows):
    X_train, X_test, y_train, _ = digits_rows
    clf = MLPClassifier(**QUICK).fit(X_train, y_train)
    copy = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(copy.predict_proba(X_test), clf.predict_proba(X_test))
    assert copy.classes_.tolist() == clf.classes_.tolist() and copy.history_ == clf.history_


def test_it_works_in_cross_validation_and_grid_search(digits_rows):
    X_train, _, y_train, _ = digits_rows
    scores = cross_val_score(MLPClassifier(epochs=5), X_train, y_train, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85
    search = GridSearchCV(MLPClassifier(**QUICK), {"hidden": [[8], [32]]}, cv=2)
    search.fit(X_train, y_train)
    assert search.best_params_["hidden"] in ([8], [32])
    assert len(search.cv_results_["params"]) == 2
    assert search.best_estimator_.model_.layers[2].units == search.best_params_["hidden"][0]
    assert clone(MLPClassifier(hidden=[8], overrides={"model.l2": 1e-4})).get_params()[
        "overrides"
    ] == {"model.l2": 1e-4}


def test_a_trained_run_becomes_a_fitted_estimator(digits_run, digits_data):
    clf = MLPClassifier.from_run(digits_run.path)
    assert clf.classes_.tolist() == list(range(10))  # "0".."9" come back as ints
    assert clf.score(digits_data.x_test, digits_data.y_test) == pytest.approx(
        digits_run.metrics["test_accuracy"]
    )
    assert clf.n_iter_ == len(digits_run.history) and clf.image_shape_ == (8, 8, 1)
    fresh = clone(clf)  # unfitted, with the run's config: trains the same recipe again
    assert fresh.resolved_config().model == digits_run.config.model
    assert not hasattr(fresh, "model_")
    with pytest.raises(mlplab.RunError):
        MLPClassifier.from_run(digits_run.path / "no-such-run")


# --- bad input -------------------------------------------------------------------------------


def test_bad_values_are_refused_at_fit_naming_the_key():
    x, y = toy_images(20, 2, size=4)
    MLPClassifier(activation="sigmoids")  # scikit-learn checks values in fit, not __init__
    cases = [
        (MLPClassifier(activation="sigmoids"), "model.activation"),
        (MLPClassifier(overrides={"train.epoch": 3}), "did you mean 'train.epochs'"),
        (MLPClassifier(validation="test"), "MLPClassifier holds out a fraction of X"),
        (MLPClassifier(validation=1.0), "0 <= fraction < 1"),
        (MLPClassifier(validation=[0.1]), "validation = [0.1]"),
        (MLPClassifier(hidden=("wide",)), "model.hidden"),
        (MLPClassifier(random_state="seven"), "random_state = 'seven'"),
        (MLPClassifier("no-such-recipe"), "no-such-recipe"),
    ]
    for clf, message in cases:
        with pytest.raises(ConfigError) as caught:
            clf.fit(x, y)
        assert message in str(caught.value), (message, str(caught.value))
        assert isinstance(caught.value, ValueError) and not hasattr(clf, "model_")


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros((4, 16)), [0, 1, 0], "X has 4 images but y has 3 labels"),
        (np.zeros((4, 16)), [1, 1, 1, 1], "y holds only one class (1)"),
        (np.zeros((4, 16)), [0.5, 1.5, 2.5, 3.5], "Unknown label type"),
        (np.zeros((4, 16)), [[0, 1], [1, 0], [0, 1], [1, 0]], "one label per image"),
        (np.zeros((4, 16)), None, "requires y to be passed"),
        (np.zeros(16), [0, 1], "Expected 2D array, got 1D array instead: Reshape your data"),
        (np.zeros((0, 16)), [], "0 sample(s)"),
        (np.full((4, 16), 0.5), [0, 1, 0, 1], "already scaled to 0..1?"),
    ],
)
def test_bad_arrays_are_one_clear_error(X, y, message):
    with pytest.raises(DataError) as caught:
        MLPClassifier(**QUICK).fit(X, y)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_predicting_needs_a_fit_and_the_fitted_shape():
    x, y = toy_images(20, 2, size=4)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(x)
    clf = MLPClassifier(**QUICK).fit(x.reshape(20, 16), y)
    with pytest.raises(DataError, match="X has 9 features, but MLPClassifier is expecting 16"):
        clf.predict(np.zeros((2, 9)))
    with pytest.raises(DataError, match=r"images of shape \[5, 5, 1\], expected \[4, 4, 1\]"):
        clf.predict(np.zeros((2, 5, 5)))
    assert clf.predict(x).shape == (20,)  # images work where rows were fitted, and back


# --- scikit-learn's own checks ---------------------------------------------------------------


def _as_pixels(X):
    """scikit-learn's checks feed random floats around 0; spread them over 0..255. What is
    not a dense, real, finite table of numbers passes untouched, so that the checks of bad
    input (sparse, complex, NaN, text, 1-D) still reach the estimator."""
    if issparse(X) or (isinstance(X, np.ndarray) and X.dtype.kind == "c"):
        return X
    try:
        array = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        return X
    if array.ndim < 2 or not np.isfinite(array).all():
        return X
    return np.clip(np.round(128 + 40 * array), 0, 255)


class _OnRandomFloats(MLPClassifier):
    """MLPClassifier on the checks' data; the estimator under test is the parent's code."""

    def fit(self, X, y=None, sample_weight=None):
        return super().fit(_as_pixels(X), y, sample_weight)

    def predict_proba(self, X):
        return super().predict_proba(_as_pixels(X))


EXPECTED_FAILURES = {
    "check_class_weight_classifiers": "train.class_weight takes 'none' or 'balanced', no dict",
    "check_sample_weight_equivalence_on_dense_data": (
        "shuffled minibatches: a weight of 2 changes a batch's loss, a repeated image the batches"
    ),
}


def test_scikit_learns_estimator_checks_pass():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            _OnRandomFloats(epochs=30, hidden=[32], learning_rate=0.01, batch_size=16),
            expected_failed_checks=EXPECTED_FAILURES,
            on_fail=None,
        )
    failed = {
        r["check_name"]: str(r["exception"]).splitlines()[:1]
        for r in results
        if r["status"] == "failed"
    }
    assert not failed
    assert {r["check_name"] for r in results if r["status"] == "xfail"} == set(EXPECTED_FAILURES)
    assert sum(r["status"] == "passed" for r in results) > 50


def test_import_mlplab_leaves_scikit_learn_to_those_who_use_it():
    code = "import sys, mlplab; print('sklearn' in sys.modules, mlplab.MLPClassifier.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "MLPClassifier"]


def test_numpy_values_from_a_randomized_search_are_taken_as_plain_ones():
    # RandomizedSearchCV's scipy distributions draw NumPy scalars (randint: np.int64), and
    # grids are often NumPy arrays: each used to be "expected an integer".
    from scipy.stats import loguniform, randint
    from sklearn.model_selection import RandomizedSearchCV

    X, y = load_digits(return_X_y=True)
    space = {
        "batch_size": randint(32, 128),
        "learning_rate": loguniform(1e-3, 1e-2),
        "hidden": [np.array([16]), np.array([32, 16])],
    }
    search = RandomizedSearchCV(MLPClassifier(epochs=1), space, n_iter=2, cv=2, random_state=0)
    best = search.fit(X, y).best_estimator_.config_
    assert type(best.train.batch_size) is int and 32 <= best.train.batch_size < 128
    assert best.model.hidden in ((16,), (32, 16)) and type(best.model.hidden[0]) is int
    clf = MLPClassifier(epochs=np.int64(1), calibrate=np.bool_(False), dropout=np.float32(0.5))
    config = clf.fit(X[:200], y[:200]).config_
    assert (config.train.epochs, config.train.calibrate, config.model.dropout) == (1, False, 0.5)
    with pytest.raises(ConfigError, match=r"^train.batch_size = 3.5 is not valid: expected"):
        MLPClassifier(batch_size=np.float64(3.5)).fit(X[:200], y[:200])


def test_warm_start_goes_on_from_the_last_fit(digits_rows):
    X_train, X_test, y_train, y_test = digits_rows
    one_epoch = {"epochs": 1, "hidden": [32], "random_state": 0}
    warm = MLPClassifier(warm_start=True, **one_epoch)
    cold = MLPClassifier(**one_epoch)
    first = warm.fit(X_train, y_train).history_[0]["loss"]
    assert first == cold.fit(X_train, y_train).history_[0]["loss"]  # the first fit: anew
    # A second fit goes on: its epoch starts where the first ended, a fresh one does not.
    assert warm.fit(X_train, y_train).history_[0]["loss"] < 0.7 * first
    assert cold.fit(X_train, y_train).history_[0]["loss"] == first
    assert warm.score(X_test, y_test) > cold.score(X_test, y_test)
    # A clone starts anew (no fitted network), as scikit-learn's do.
    assert clone(warm).fit(X_train, y_train).history_[0]["loss"] == first
    # Dropout may change between fits (not a weight); the network's shape and classes not.
    warm.set_params(dropout=0.1).fit(X_train, y_train)
    with pytest.raises(DataError, match="^warm_start: the network changed since the last fit"):
        warm.set_params(hidden=[16]).fit(X_train, y_train)
    with pytest.raises(DataError, match=r"^warm_start: y has the classes 0, 1, 2, 3, 4, the last"):
        warm.set_params(hidden=[32]).fit(X_train, y_train % 5)
    with pytest.raises(DataError, match=r"^warm_start: X holds \(4, 16, 1\) images"):
        warm.set_params(image_shape=(4, 16)).fit(X_train, y_train)
