"""The one place that chooses the Keras backend.

Import this module before anything imports keras. A user's explicit ``KERAS_BACKEND`` is
respected; mlplab's fast engine (and its measured speed) needs JAX, so another backend is
reported once by :func:`backend_note`.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
# Keep JAX from grabbing most of a GPU's memory up front when one is present.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


TRAINABLE_BACKENDS = ("jax", "tensorflow", "torch")


def ensure_keras() -> None:
    """Import keras on the chosen backend, or raise one clear MlplabError.

    A backend the user named but did not install (``KERAS_BACKEND=torch`` without torch) would
    otherwise end in an ImportError traceback deep inside keras.
    """
    from mlplab.errors import MlplabError

    name = os.environ.get("KERAS_BACKEND", "jax")
    try:
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
