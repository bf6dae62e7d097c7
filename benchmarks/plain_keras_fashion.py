"""The same run written as a plain Keras tutorial script (no mlplab), for whole_run.py.

784-64-64-10 relu, Adam, batch 32, 5 epochs, inputs in [0, 1], 10% validation, on Debian's
Fashion-MNIST; then test accuracy, a classification report and the saved model, as the
tutorials do. Run: python benchmarks/plain_keras_fashion.py OUT_DIR
"""

import gzip
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np
from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split

ROOT = "/usr/share/datasets/fashion-mnist"


def idx(name: str, offset: int) -> np.ndarray:
    with gzip.open(f"{ROOT}/{name}.gz") as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


x_train = idx("train-images-idx3-ubyte", 16).reshape(-1, 784).astype("float32") / 255
y_train = idx("train-labels-idx1-ubyte", 8)
x_test = idx("t10k-images-idx3-ubyte", 16).reshape(-1, 784).astype("float32") / 255
y_test = idx("t10k-labels-idx1-ubyte", 8)
x_train, x_val, y_train, y_val = train_test_split(
    x_train, y_train, test_size=0.1, stratify=y_train, random_state=0
)

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((784,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(
    x_train,
    keras.utils.to_categorical(y_train, 10),
    batch_size=32,
    epochs=5,
    validation_data=(x_val, keras.utils.to_categorical(y_val, 10)),
    verbose=2,
)
loss, accuracy = model.evaluate(x_test, keras.utils.to_categorical(y_test, 10), verbose=0)
print(classification_report(y_test, model.predict(x_test, verbose=0).argmax(1), digits=4))
print(f"test accuracy {accuracy:.4f}")
os.makedirs(sys.argv[1], exist_ok=True)
model.save(os.path.join(sys.argv[1], "model.keras"))
