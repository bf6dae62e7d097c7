"""mlplab: train, evaluate, compare and use fully-connected (MLP) image classifiers.

    >>> import mlplab
    >>> run = mlplab.train("digits-mlp", overrides={"train.epochs": 5})
    >>> run.metrics["test_accuracy"]
    >>> mlplab.load_run(run.path).predict(images)   # uint8 (n, h, w, c) -> (n, classes)

Keras runs on JAX unless ``KERAS_BACKEND`` says otherwise (see ``mlplab._backend``).
"""

from mlplab import _backend  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
from mlplab._version import __version__
from mlplab.api import evaluate, predict, resolve_config, train
from mlplab.config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_config
from mlplab.errors import ConfigError, DataError, MlplabError, RunError
from mlplab.recipes import list_recipes, load_recipe
from mlplab.runs import Run, load_run

__all__ = [
    "ConfigError",
    "DataConfig",
    "DataError",
    "MlplabError",
    "ModelConfig",
    "Run",
    "RunConfig",
    "RunError",
    "TrainConfig",
    "__version__",
    "evaluate",
    "list_recipes",
    "load_config",
    "load_recipe",
    "load_run",
    "predict",
    "resolve_config",
    "train",
]
