"""mlplab: train, evaluate, compare and use fully-connected (MLP) image classifiers.

    >>> import mlplab
    >>> run = mlplab.train("digits-mlp", overrides={"train.epochs": 5})
    >>> run.metrics["test_accuracy"]
    >>> mlplab.resume("last")                         # go on with an interrupted run
    >>> mlplab.load_run(run.path).predict(images)   # uint8 (n, h, w, c) -> (n, classes)
    >>> mlplab.report_run(run.path).html             # regenerate plots and report.html
    >>> mlplab.compare_runs([a, b], out="compare")   # table, compare.png, compare.html
    >>> mlplab.list_runs("runs", best=5)             # RunRecords, best test accuracy first
    >>> mlplab.serve("last", port=8000)              # a page and a JSON API, until Ctrl-C
    >>> mlplab.tune("digits-mlp", {"train.learning_rate": "1e-4..1e-2:log"}, trials=20)
    >>> mlplab.lr_find("digits-mlp").suggestion       # a learning rate, from a range test
    >>> mlplab.export_onnx("last").path               # model.onnx, checked against model.keras
    >>> mlplab.MLPClassifier(epochs=20).fit(X, y)     # scikit-learn's interface, arrays in memory
    >>> mlplab.ensemble([a, b, c])                   # one model averaging runs, written as a run
    >>> mlplab.learning_curve("digits-mlp", seeds=(0, 1, 2))  # accuracy against training images
    >>> mlplab.audit_labels("digits-mlp").issues        # likely mislabelled images (5-fold)
    >>> mlplab.embed("last", method="tsne")            # what each layer sees: maps, k-NN accuracy

Keras runs on JAX unless ``KERAS_BACKEND`` says otherwise (see ``mlplab._backend``).
"""

from mlplab import _backend  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
from mlplab._version import __version__
from mlplab.api import embed, evaluate, predict, resolve_config, resume, train
from mlplab.config import (
    AugmentConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    load_config,
)
from mlplab.ensembles import ensemble
from mlplab.errors import ConfigError, DataError, MlplabError, RunError
from mlplab.label_issues import LabelAudit, audit_labels
from mlplab.learning_curves import LearningCurve, learning_curve
from mlplab.lrfind import LRFindResult, lr_find
from mlplab.onnx_export import ExportResult, export_onnx
from mlplab.recipes import list_recipes, load_recipe
from mlplab.record import RunRecord, list_runs, read_record
from mlplab.report.build import report_run
from mlplab.report.compare import compare_runs
from mlplab.runs import Run, load_run
from mlplab.serving import serve
from mlplab.tuning.tuner import TuneResult, tune

__all__ = [
    "AugmentConfig",
    "ConfigError",
    "DataConfig",
    "DataError",
    "ExportResult",
    "LRFindResult",
    "LabelAudit",
    "LearningCurve",
    "MLPClassifier",
    "MlplabError",
    "ModelConfig",
    "Run",
    "RunConfig",
    "RunError",
    "RunRecord",
    "TrainConfig",
    "TuneResult",
    "__version__",
    "audit_labels",
    "compare_runs",
    "embed",
    "ensemble",
    "evaluate",
    "export_onnx",
    "learning_curve",
    "list_recipes",
    "list_runs",
    "load_config",
    "load_recipe",
    "load_run",
    "lr_find",
    "predict",
    "read_record",
    "report_run",
    "resolve_config",
    "resume",
    "serve",
    "train",
    "tune",
]


def __getattr__(name: str) -> object:
    # MLPClassifier imports scikit-learn and SciPy (~1 s): only for those who use it, not for
    # every `mlplab` command.
    if name == "MLPClassifier":
        from mlplab.estimator import MLPClassifier

        return MLPClassifier
    raise AttributeError(f"module 'mlplab' has no attribute {name!r}")
