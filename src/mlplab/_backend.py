"""The one place that chooses the Keras backend.

Import this module before anything imports keras. A user's explicit ``KERAS_BACKEND`` is
respected; mlplab's fast engine (and its measured speed) needs JAX, so another backend is
reported once by :func:`backend_note`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

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


@contextmanager
def _without_sklearn() -> Iterator[None]:
    """While open, ``import sklearn`` raises ImportError (keras then skips its wrappers)."""
    if "sklearn" in sys.modules:  # already imported: nothing to save
        yield
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # the documented import block
    try:
        yield
    finally:
        if "sklearn" in sys.modules and sys.modules["sklearn"] is None:
            del sys.modules["sklearn"]


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
