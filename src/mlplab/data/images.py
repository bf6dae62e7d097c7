"""Image files -> arrays shaped and coloured like a model's training data (Pillow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlplab.errors import DataError


def border_brightness(x: np.ndarray) -> float:
    """Mean of the outermost pixels, in [0, 1]. x: uint8 (n, h, w, c) or (h, w, c)."""
    x = x if x.ndim == 4 else x[None]
    edges = np.concatenate(
        [x[:, 0].ravel(), x[:, -1].ravel(), x[:, :, 0].ravel(), x[:, :, -1].ravel()]
    )
    return float(edges.mean()) / 255.0


def read_image(path: str | Path, shape: Sequence[int]) -> np.ndarray:
    """Decode one image file to uint8 (h, w, c) for shape = (h, w, c), c in {1, 3}.

    Transparent pixels are put on white; the image is converted to grayscale or RGB and
    resized (box filter when shrinking, which averages like the digit sets were made).
    Raises DataError naming the file when it is missing or cannot be decoded.
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                img = Image.new("RGBA", rgba.size, "white")
                img.alpha_composite(rgba)
            img = img.convert("L" if channels == 1 else "RGB")
            shrinking = img.width > width or img.height > height
            resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
            img = img.resize((width, height), resample)
            array = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image Pillow can decode") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot decode image: {exc}") from None
    return array.reshape(height, width, channels)


def read_images(
    paths: Sequence[str | Path],
    shape: Sequence[int],
    invert: str = "auto",
    background: float | None = None,
) -> tuple[np.ndarray, list[bool]]:
    """Decode files to uint8 (n, h, w, c), optionally inverting light-on-dark.

    invert: "yes", "no", or "auto": invert a grayscale image whose border brightness is on the
    other side of 0.5 from ``background`` (the training images' border brightness, [0, 1]) —
    a black-on-white drawing for a white-on-black digit model, say. Returns the array and, per
    image, whether it was inverted.
    """
    if invert not in ("auto", "yes", "no"):
        raise DataError(f"invert = {invert!r}: choose one of auto, yes, no")
    images, flipped = [], []
    for path in paths:
        image = read_image(path, shape)
        if invert == "yes":
            flip = True
        elif invert == "auto" and background is not None and shape[-1] == 1:
            # Only datasets with a clear background (digits: ~0.0) are inverted automatically.
            clear = background < 0.2 or background > 0.8
            flip = clear and (border_brightness(image) > 0.5) != (background > 0.5)
        else:
            flip = False
        images.append(255 - image if flip else image)
        flipped.append(flip)
    if not images:
        return np.zeros((0, *shape), np.uint8), []
    return np.stack(images), flipped
