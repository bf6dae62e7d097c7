"""The one place that chooses the Keras backend, and imports what is slow to import.

Import this module before anything imports keras. A user's explicit ``KERAS_BACKEND`` is
respected; mlplab's fast engine (and its measured speed) needs JAX, so another backend is
reported once by :func:`backend_note`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
# Keep JAX from grabbing most of a GPU's memory up front when one is present.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


TRAINABLE_BACKENDS = ("jax", "tensorflow", "torch")

# Optional packages keras imports at start-up for features mlplab never uses there:
# scikit-learn for ``keras.wrappers`` (and scikit-learn imports SciPy), matplotlib for
# ``keras.visualization``, pandas (where installed) for fitting on DataFrames. Together
# about 1.7 s of every CLI process; see lean_keras_import.
KERAS_EXTRAS = ("sklearn", "matplotlib", "pandas")


def lean_keras_import() -> None:
    """Let this process import keras without its optional extras (:data:`KERAS_EXTRAS`),
    wherever keras is first imported: by :func:`ensure_keras`, or by a module's own
    ``import keras`` (`predict`, `evaluate`, `report` and `serve` load a model through
    :mod:`mlplab.engine`; measured: `mlplab predict RUN one.png` 4.0 s, 2.1 s lean).

    `mlplab evaluate` and `predict` never need them, and `train` imports matplotlib only to
    draw its report, after training. The CLI, a process mlplab owns, calls this; as a library
    mlplab leaves keras as it is, since a caller may want ``keras.wrappers`` or
    ``keras.visualization``. The packages themselves stay importable afterwards.
    """
    if "keras" not in sys.modules and not any(
        isinstance(finder, _LeanKerasFinder) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _LeanKerasFinder())


class _LeanKerasFinder(importlib.abc.MetaPathFinder):
    """Finds keras as the other finders do, once, and hands it a loader that runs its
    import with :data:`KERAS_EXTRAS` hidden from the importing thread
    (:func:`_without_extras`)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once: keras is imported once
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _LeanLoader(spec.loader)
        return spec


class _LeanLoader(importlib.abc.Loader):
    """keras' own loader, its module executed with the extras hidden; afterwards the
    module and its spec name the real loader again."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            with _without_extras():
                self.loader.exec_module(module)
        finally:
            module.__loader__ = self.loader
            module.__spec__.loader = self.loader


class _HideFromThisThread(importlib.abc.MetaPathFinder):
    """Makes importing the named packages fail in the thread that created it and nowhere
    else, so that data reading on another thread (digits, stratified splits) still gets
    scikit-learn."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.thread = threading.get_ident()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname in self.names and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{fullname} is hidden while keras imports", name=fullname)
        return None


@contextmanager
def _without_extras() -> Iterator[None]:
    """While open, importing a :data:`KERAS_EXTRAS` package in this thread raises ImportError
    (keras then leaves out what needs it). One already imported, anywhere, is just used."""
    finder = _HideFromThisThread(tuple(name for name in KERAS_EXTRAS if name not in sys.modules))
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
        import keras  # lean after lean_keras_import()
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
def _alongside(work: Callable[[], object], name: str) -> Iterator[list[BaseException]]:
    """Run ``work`` on a daemon thread while the body runs; wait for it on leaving, even if the
    body fails, so that the process never exits while another thread is halfway through
    importing a C extension. The yielded list holds what ``work`` raised (filled on leaving)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller's thread
            failures.append(exc)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    try:
        yield failures
    finally:
        worker.join()


@contextmanager
def keras_importing() -> Iterator[None]:
    """Import keras on a background thread while the body runs; wait for it on leaving.

    Reading a dataset is mostly decompression, hashing and numpy, which release the GIL, so it
    overlaps the import (a few seconds of Python). An import error is raised on leaving, as
    :func:`ensure_keras` raises it.
    """
    if "keras" in sys.modules:
        ensure_keras()
        yield
        return
    with _alongside(ensure_keras, "mlplab-import-keras") as failures:
        yield
    if failures:
        raise failures[0]


@contextmanager
def importing(*modules: str) -> Iterator[None]:
    """Import ``modules`` on a background thread while the body runs; wait for it on leaving.

    For a body that spends its time outside the GIL (the fused engine's compiled epochs), so
    that what comes after it (the report: matplotlib, ~1 s) finds its modules imported. An
    import error is dropped here: the caller's own import raises it where it is handled.
    """
    missing = [name for name in modules if name not in sys.modules]
    if not missing:
        yield
        return

    def import_all() -> None:
        for name in missing:
            importlib.import_module(name)

    with _alongside(import_all, "mlplab-import"):
        yield
