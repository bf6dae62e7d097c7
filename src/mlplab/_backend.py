"""The one place that chooses the Keras backend.

Import this module before anything imports keras. A user's explicit ``KERAS_BACKEND`` is
respected; mlplab's fast engine (and its measured speed) needs JAX, so another backend is
reported once by :func:`backend_note`.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
# Keep JAX from grabbing most of a GPU's memory up front when one is present.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


TRAINABLE_BACKENDS = ("jax", "tensorflow", "torch")

# Set by the command line (see hide_sklearn_from_keras); a library caller keeps keras whole.
_lean_import = False


def hide_sklearn_from_keras() -> None:
    """Let this process import keras without scikit-learn (and so without SciPy).

    Keras imports scikit-learn at start-up only to define ``keras.wrappers``' scikit-learn
    estimators, and scikit-learn imports SciPy: about a second of every `mlplab train`,
    `evaluate` and `predict`, which never use those wrappers. The CLI, a process mlplab owns,
    calls this; as a library mlplab leaves keras as it is, since a caller may want
    ``keras.wrappers``. scikit-learn itself stays importable afterwards.
    """
    global _lean_import
    _lean_import = True


class _HideSklearn(importlib.abc.MetaPathFinder):
    """Makes ``import sklearn`` fail in the thread that created it and nowhere else, so that
    data reading on another thread (digits, stratified splits) still gets scikit-learn."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname == "sklearn" and threading.get_ident() == self.thread:
            raise ModuleNotFoundError("sklearn is hidden while keras imports", name=fullname)
        return None


@contextmanager
def _without_sklearn() -> Iterator[None]:
    """While open, ``import sklearn`` in this thread raises ImportError (keras then skips its
    wrappers). Once scikit-learn is imported anywhere, keras simply gets it."""
    if "sklearn" in sys.modules:  # already imported: nothing to save
        yield
        return
    finder = _HideSklearn()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def ensure_keras() -> None:
    """Import keras on the chosen backend, or raise one clear MlplabError.

    A backend the user named but did not install (``KERAS_BACKEND=torch`` without torch) would
    otherwise end in an ImportError traceback deep inside keras.
    """
    from mlplab.errors import MlplabError

    name = os.environ.get("KERAS_BACKEND", "jax")
    try:
        with _without_sklearn() if _lean_import else nullcontext():
            import keras
    except (ImportError, ValueError) as exc:  # ValueError: a backend name keras does not know
        raise MlplabError(
            f"KERAS_BACKEND={name}: keras cannot load it ({exc}); install it, or unset "
            "KERAS_BACKEND to use JAX"
        ) from None
    if keras.backend.backend() not in TRAINABLE_BACKENDS:
        raise MlplabError(
            f"KERAS_BACKEND={keras.backend.backend()} cannot train models; use one of "
            f"{', '.join(TRAINABLE_BACKENDS)} (jax is the default and the fastest)"
        )


def backend_note() -> str | None:
    """A one-line note when Keras runs on a backend other than JAX, else None."""
    import keras

    name = keras.backend.backend()
    if name == "jax":
        return None
    return (
        f"note: KERAS_BACKEND={name}: training with Keras model.fit; "
        "mlplab's fast engine needs KERAS_BACKEND=jax"
    )


@contextmanager
def keras_importing() -> Iterator[None]:
    """Import keras on a background thread while the body runs; wait for it on leaving.

    Reading a dataset is mostly decompression, hashing and numpy, which release the GIL, so it
    overlaps the import (a few seconds of Python). An import error is raised on leaving, as
    :func:`ensure_keras` raises it. If the body fails, the import is still waited for, so
    that the process never exits while another thread is halfway through importing JAX.
    """
    failures: list[BaseException] = []

    def import_keras() -> None:
        try:
            ensure_keras()
        except BaseException as exc:  # handed to the caller's thread
            failures.append(exc)

    if "keras" in sys.modules:
        ensure_keras()
        yield
        return
    worker = threading.Thread(target=import_keras, name="mlplab-import-keras", daemon=True)
    worker.start()
    try:
        yield
    finally:
        worker.join()
    if failures:
        raise failures[0]
