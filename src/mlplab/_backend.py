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
