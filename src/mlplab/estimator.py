"""``MLPClassifier``: an mlplab network as a scikit-learn classifier, trained on arrays in memory.

It takes images as NumPy arrays — (n, h, w[, c]) or rows of pixels (n, features) — with any
labels, and trains the network a config describes exactly as ``mlplab train`` does (the same
model, engine, seeds and splits), without writing a run directory. So it works wherever
scikit-learn expects a classifier: ``cross_val_score``, ``GridSearchCV``, ``Pipeline``,
``clone``, pickling. Its parameters are the config keys people vary most; ``overrides``
reaches every other key.

Importing this module imports scikit-learn (and SciPy: ~1 s); ``mlplab.MLPClassifier`` imports
it only when first used.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from mlplab.config import RunConfig
from mlplab.data.arrays import as_pixels
from mlplab.data.dataset import Dataset
from mlplab.errors import ConfigError, DataError

if TYPE_CHECKING:
    from mlplab.runs import Run

# Estimator parameter -> the config key it sets (None: keep the base config's value).
CONFIG_KEYS = {
    "hidden": "model.hidden",
    "activation": "model.activation",
    "dropout": "model.dropout",
    "l2": "model.l2",
    "l1": "model.l1",
    "batch_norm": "model.batch_norm",
    "init_from": "model.init_from",
    "optimizer": "train.optimizer",
    "learning_rate": "train.learning_rate",
    "batch_size": "train.batch_size",
    "epochs": "train.epochs",
    "schedule": "train.schedule",
    "patience": "train.patience",
    "label_smoothing": "train.label_smoothing",
    "class_weight": "train.class_weight",
    "calibrate": "train.calibrate",
    "scaling": "data.scaling",
    "random_state": "train.seed",
}


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A fully-connected image classifier with scikit-learn's interface, trained by mlplab.

    config: the base config — a recipe name, a TOML path, a dict or a RunConfig; None is the
    default recipe (``digits-mlp``: 256-128 relu, dropout 0.3, Adam, standardized pixels, 50
    epochs). Its ``data.dataset`` is not read: ``fit``'s arrays are the data.

    hidden, activation, dropout, l2, l1, batch_norm, init_from, optimizer, learning_rate,
    batch_size, epochs, schedule, patience, label_smoothing, class_weight, calibrate,
    scaling: the config key of that name (``mlplab config --keys``); None keeps the base
    config's value. init_from (``model.init_from``): a run folder whose network each fit
    starts from (fine-tuning it on ``X``): its hidden layers, and its output layer when
    ``y``'s labels, as strings, are its class names. random_state:
    an int for ``train.seed`` (initialisation, shuffling, dropout, the validation split),
    None for the base config's seed — so a fit is repeatable by default.

    validation: the fraction of ``X`` held out (stratified, seeded) to validate after each
    epoch (``history_``'s val_loss and val_accuracy), for early stopping and to fit
    ``calibrate``'s temperature on. None: the base config's fraction when early stopping,
    ``keep_best``, the plateau schedule or calibration is on, else 0 — every image trains, as in
    scikit-learn's own estimators.

    overrides: any other config keys, ``{"train.momentum": 0.9, "augment.translate": 2}``.
    image_shape: (h, w) or (h, w, c) that rows of pixels (n, features) are read as; None: a
    square grayscale image when features is a square number (64 -> 8x8), else one row.
    warm_start: as in scikit-learn's own MLPClassifier: a fit after the first starts from
    the network the last one ended with (its weights and pixel scaling; a new optimizer
    state and schedule), so ``fit`` can be called again to train on; the classes, image
    shape and network must be the same (a ValueError says what differs). False: every
    fit starts anew.
    verbose: print one line per epoch (a progress bar on a terminal) on stderr.

    Values are checked when ``fit`` is called, as scikit-learn does: a bad one raises a
    ConfigError (a ValueError) naming the key. After ``fit``: ``classes_``, ``model_`` (the
    keras.Sequential: uint8 (n, h, w, c) pixels in, probabilities out), ``history_`` (one dict
    per epoch), ``status_`` (complete, early_stopped or diverged), ``best_epoch_``,
    ``n_iter_`` (epochs trained), ``temperature_`` (with ``calibrate``: the temperature
    folded into the output layer, else None), ``image_shape_``, ``n_features_in_``,
    ``config_`` (the resolved RunConfig).
    """

    def __init__(
        self,
        config: str | Mapping[str, Any] | RunConfig | None = None,
        *,
        hidden: Sequence[int] | None = None,
        activation: str | None = None,
        dropout: float | None = None,
        l2: float | None = None,
        l1: float | None = None,
        batch_norm: bool | None = None,
        init_from: str | Path | None = None,
        optimizer: str | None = None,
        learning_rate: float | None = None,
        batch_size: int | None = None,
        epochs: int | None = None,
        schedule: str | None = None,
        patience: int | None = None,
        label_smoothing: float | None = None,
        class_weight: str | None = None,
        calibrate: bool | None = None,
        scaling: str | None = None,
        validation: float | None = None,
        random_state: int | None = None,
        overrides: Mapping[str, Any] | None = None,
        image_shape: Sequence[int] | None = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.config = config
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.l2 = l2
        self.l1 = l1
        self.batch_norm = batch_norm
        self.init_from = init_from
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.schedule = schedule
        self.patience = patience
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.calibrate = calibrate
        self.scaling = scaling
        self.validation = validation
        self.random_state = random_state
        self.overrides = overrides
        self.image_shape = image_shape
        self.warm_start = warm_start
        self.verbose = verbose

    def resolved_config(self) -> RunConfig:
        """The RunConfig ``fit`` trains: the base config with these parameters set."""
        from mlplab.api import resolve_config

        changes: dict[str, Any] = dict(self.overrides or {})
        for param, key in CONFIG_KEYS.items():
            value = getattr(self, param)
            if value is None:
                continue
            if param == "hidden" and isinstance(value, (tuple, np.ndarray)):
                value = list(value)  # the config checks the sizes
            elif param == "random_state":
                value = _seed(value)
            elif param == "init_from":
                value = str(value)
            changes[key] = value
        validation = self.validation
        if validation is not None:
            if not isinstance(validation, numbers.Real) or not 0 <= validation < 1:
                raise ConfigError(
                    f"validation = {validation!r}: MLPClassifier holds out a fraction of X "
                    "(0 <= fraction < 1); for a test split, score the estimator on it"
                )
            changes["data.validation"] = float(validation)
        config = resolve_config(self.config, changes)
        if config.train.teacher:
            raise ConfigError(
                f"train.teacher = {config.train.teacher!r}: MLPClassifier does not distil; "
                "train with a teacher through mlplab.train or `mlplab train --teacher RUN`"
            )
        train = config.train
        watches = train.patience or train.keep_best or train.schedule == "plateau"
        if validation is None and not (watches or train.calibrate):
            return config.with_overrides({"data.validation": 0.0})
        if isinstance(config.data.validation, str):  # "test" or a path: no such data here
            raise ConfigError(
                f"data.validation = {config.data.validation!r}: MLPClassifier holds out a "
                "fraction of X; set validation= to one"
            )
        return config

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Train a new network on ``X`` and ``y``; returns self.

        X: images (n, h, w), (n, h, w, 1|3) or rows of pixels (n, features), whole numbers
        0..255 of any dtype. y: (n,) labels of any kind (ints, strings), at least two classes.
        sample_weight: (n,) non-negative numbers, or None: each image's loss is multiplied
        by its weight, as Keras' ``sample_weight`` does (the sum divided by the batch's
        size; with ``class_weight="balanced"`` both apply). The validation loss, which early
        stopping watches, stays unweighted. Under shuffled minibatches a weight of 2 is not
        the same as the image twice, nor a weight of 0 the same as leaving it out: they
        change each batch's loss, not which images make up a batch.
        A training that diverges (a non-finite loss) keeps the last finite weights and warns
        with a ConvergenceWarning.
        """
        from mlplab.api import trainer_and_model, validate_and_calibrate
        from mlplab.data import make_splits, scaling_params
        from mlplab.engine import StopRequest
        from mlplab.progress import make_listener

        if y is None:
            name = type(self).__name__
            raise DataError(f"{name} requires y to be passed, but the target y is None")
        config = self.resolved_config()
        pixels = as_pixels(_numeric(X), "X", self.image_shape)
        classes, labels = _encode_labels(y, len(pixels))
        weights = _sample_weights(sample_weight, len(pixels))
        dataset = Dataset(
            "arrays",
            pixels,
            labels,
            pixels[:0],
            labels[:0],
            tuple(str(label) for label in classes),
            "arrays passed to MLPClassifier.fit",
        )
        splits = make_splits(
            dataset,
            config.data.validation,
            config.train.seed,
            None,
            config.data.train_fraction,
            weights,
        )
        scaling = scaling_params(splits.x_train, config.data.scaling)
        # Where the network starts: the last fit's (warm_start), a run's (init_from), or
        # random; the first two with the pixel scaling their network learned with.
        starting = None
        previous = self._previous_network(classes, dataset.image_shape)
        if previous is not None:
            from mlplab.model import scaling_of

            scaling = scaling_of(previous)
        elif config.model.init_from:
            from mlplab.warm_start import load_starting_weights

            starting = load_starting_weights(
                config, None, list(dataset.class_names), dataset.image_shape
            )
            scaling = starting.scaling
        trainer, model = trainer_and_model(
            config, dataset.image_shape, len(classes), scaling, len(splits.y_train)
        )
        if previous is not None:
            _carry_on(model, previous)
        elif starting is not None:
            starting.apply(model)
        listener = make_listener(self.verbose, sys.stderr)
        result = trainer.fit(model, splits, config.train, listener, StopRequest())
        if result.status == "diverged":
            warnings.warn(result.message, ConvergenceWarning, stacklevel=2)
        _, temperature = validate_and_calibrate(trainer, model, config, splits)

        self.config_ = config
        self.classes_ = classes
        self.image_shape_ = dataset.image_shape
        self.n_features_in_ = int(np.prod(dataset.image_shape))
        self.model_ = model
        self.history_ = result.history
        self.status_ = result.status
        self.best_epoch_ = result.best_epoch
        self.n_iter_ = len(result.history)
        self.temperature_ = None if temperature is None else temperature["value"]
        self._predictor = trainer
        return self

    def _previous_network(self, classes: np.ndarray, image_shape: tuple[int, ...]) -> Any:
        """With ``warm_start``, the network the last fit ended with (None: the first fit,
        or no warm start), checked to serve images of ``image_shape`` and ``classes``."""
        if not self.warm_start or not hasattr(self, "model_"):
            return None
        if list(classes) != list(self.classes_):
            from mlplab.run_refs import listed

            raise DataError(
                f"warm_start: y has the classes {listed([str(c) for c in classes])}, the "
                f"last fit had {listed([str(c) for c in self.classes_])}: warm_start can only "
                "go on with the same classes (set warm_start=False to start anew)"
            )
        if tuple(image_shape) != tuple(self.image_shape_):
            raise DataError(
                f"warm_start: X holds {tuple(image_shape)} images, the last fit "
                f"{tuple(self.image_shape_)} ones (set warm_start=False to start anew)"
            )
        return self.model_

    @classmethod
    def from_run(cls, run: str | Path | Run) -> MLPClassifier:
        """A fitted estimator around the model of a run ``mlplab train`` wrote (its directory,
        "last", or a :class:`~mlplab.Run`), for scikit-learn's tools: ``score``, metrics'
        ``from_estimator``, calibration. Its ``config`` parameter is the run's config, so a
        ``clone`` of it trains the same recipe afresh (an ensemble's: its first member's).
        Classes named by integers ("0".."9") come back as ints, other names as strings."""
        from mlplab.runs import Run, load_run

        loaded = run if isinstance(run, Run) else load_run(run)
        fitted = cls(loaded.config)
        fitted.config_ = loaded.config
        fitted.classes_ = _class_labels(loaded.class_names)
        fitted.image_shape_ = loaded.image_shape
        fitted.n_features_in_ = int(np.prod(loaded.image_shape))
        fitted.model_ = loaded.model
        fitted.history_ = loaded.history
        fitted.status_ = loaded.status
        fitted.best_epoch_ = loaded.metrics.get("best_epoch")
        fitted.n_iter_ = len(loaded.history)
        fitted.temperature_ = loaded.temperature
        return fitted

    def predict_proba(self, X: Any) -> np.ndarray:
        """X as in :meth:`fit` -> float32 (n, classes) probabilities, columns in ``classes_``'
        order."""
        check_is_fitted(self)
        pixels = self._pixels(X)
        predictor = getattr(self, "_predictor", None)
        if predictor is None:  # unpickled: the compiled prediction is not kept
            from mlplab.engine import get_predictor

            predictor = self._predictor = get_predictor()
        return predictor.predict(self.model_, pixels)

    def predict(self, X: Any) -> np.ndarray:
        """X as in :meth:`fit` -> (n,) the most probable class of each image, from ``classes_``."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def _pixels(self, X: Any) -> np.ndarray:
        array = _numeric(X)
        if array.ndim == 2 and array.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {array.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        return as_pixels(array, "X", self.image_shape_)

    def __getstate__(self) -> dict[str, Any]:
        # The model pickles itself (Keras saves it to bytes); the compiled prediction cannot.
        state = dict(self.__dict__)
        state.pop("_predictor", None)
        return state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # images (n, h, w) as well as rows of pixels
        return tags


def _carry_on(model: Any, previous: Any) -> None:
    """Set the new, untrained ``model``'s Dense and batch-norm layers to the weights
    ``previous`` ended with; DataError when the config now describes another network."""
    from mlplab.model import learned_weights

    ours, theirs = learned_weights(model), learned_weights(previous)
    same = ours.keys() == theirs.keys() and all(
        [w.shape for w in ours[name]] == [w.shape for w in theirs[name]] for name in ours
    )
    if not same:
        raise DataError(
            "warm_start: the network changed since the last fit (hidden, batch_norm): "
            "warm_start can only go on with the same network (set warm_start=False to "
            "start anew)"
        )
    for name, values in theirs.items():
        model.get_layer(name).set_weights(values)


def _numeric(X: Any) -> np.ndarray:
    """X as a non-empty numeric array (any dtype, 2 to 4 dimensions), with scikit-learn's own
    messages for what no estimator takes: sparse matrices, complex or text values, NaN,
    empty arrays."""
    try:
        return check_array(X, dtype="numeric", allow_nd=True)
    except ValueError as exc:  # a TypeError (a dict among the pixels) stays one
        # One line: scikit-learn's message without the array it prints.
        lines = [line for line in str(exc).splitlines() if not line.startswith("array=")]
        raise DataError(f"X: {' '.join(lines)}") from None


def _class_labels(names: Sequence[str]) -> np.ndarray:
    """A run's class names as ``classes_``: int64 when every name is an integer ("0".."9",
    as the labels of IDX, CSV and .npz datasets are named), else the strings."""
    try:
        labels = [int(name) for name in names]
    except ValueError:
        return np.array(names)
    if [str(label) for label in labels] != list(names):  # "007", "+1": names, not numbers
        return np.array(names)
    return np.array(labels, np.int64)


def _sample_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    """``fit``'s sample_weight as float32 (n,), checked as scikit-learn checks it (a
    number is every image's weight; negative, all zero or the wrong length: ValueError);
    None stays None."""
    if sample_weight is None:
        return None
    from sklearn.utils.validation import _check_sample_weight

    weights = _check_sample_weight(
        sample_weight, np.empty((n, 1)), dtype=np.float64, ensure_non_negative=True
    )
    return weights.astype(np.float32)


def _seed(random_state: Any) -> int:
    """random_state -> train.seed: an int as it is; a NumPy RandomState (what scikit-learn's
    searches may pass) draws one."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    raise ConfigError(f"random_state = {random_state!r}: give an int seed (or None)")


def _encode_labels(y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """y (n,) of any labels -> (classes (k,) sorted, int64 (n,) index of each label in it)."""
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = column_or_1d(labels, warn=True)  # warns, as scikit-learn's classifiers do
    if labels.ndim != 1:
        raise DataError(f"y must be one label per image (n,), got shape {list(labels.shape)}")
    if len(labels) != n:
        raise DataError(f"X has {n} images but y has {len(labels)} labels; they must match")
    try:
        check_classification_targets(labels)
    except ValueError as exc:
        raise DataError(f"y: {exc}") from None
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"y holds only one class ({classes[0].item()!r}); a classifier needs two")
    return classes, codes.astype(np.int64).ravel()
