"""Image files -> arrays shaped and coloured like a model's training data (Pillow)."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.errors import DataError

# Image formats accepted from users' files, and Pillow's decompression-bomb limit for this
# job: larger than any photo a classifier of small images needs; a file that declares more is
# refused from its header, before any pixel is decoded.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
FORMAT_NAMES = "PNG/JPEG/BMP/GIF/WebP"  # for messages
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MAX_PIXELS = 50_000_000
# The EXIF tag that says how a camera held the picture (ExifTags.Base.Orientation).
EXIF_ORIENTATION = 0x0112

# A dataset whose images' borders are this dark (or this light, mirrored) has a clear
# background: drawings of the other polarity are inverted, and strokes can be framed.
CLEAR_BACKGROUND = 0.2


@dataclass(frozen=True)
class ImageBytes:
    """An image file held in memory (an upload to ``mlplab serve``): its bytes, and the name
    that messages and results call it by (``str()`` gives the name, as for a path)."""

    name: str
    data: bytes = field(repr=False)

    def __str__(self) -> str:
        return self.name


# A file on disk, or one in memory.
ImageSource = str | Path | ImageBytes


def image_sources(images: Any) -> list[ImageSource]:
    """What :meth:`mlplab.Run.predict` and ``predict_files`` take as images, as a list of
    sources: one path, :class:`ImageBytes` or ``PIL.Image.Image`` is one image; a PIL image
    becomes an in-memory PNG (turned upright as its EXIF says), named by the file it was
    opened from, else "image N" (its place, from 1). DataError for a PIL image that PNG
    cannot hold (mode F: scale it to 0..255 and ``convert("L")``)."""
    if isinstance(images, (str, Path, ImageBytes)) or _is_pil_image(images):
        images = [images]
    return [
        _pil_source(item, number) if _is_pil_image(item) else item
        for number, item in enumerate(images, start=1)
    ]


def _is_pil_image(item: Any) -> bool:
    from PIL import Image

    return isinstance(item, Image.Image)


def _pil_source(img: Any, number: int) -> ImageBytes:
    from PIL import ImageOps

    name = str(getattr(img, "filename", "") or f"image {number}")
    upright = ImageOps.exif_transpose(img)
    if upright.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        upright = upright.convert("RGB")
    buffer = io.BytesIO()
    try:
        upright.save(buffer, format="PNG")
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(
            f"{name}: a PIL image of mode {img.mode} cannot be read as pixels ({exc}); "
            "convert it to L, RGB or RGBA"
        ) from None
    return ImageBytes(name, buffer.getvalue())


def border_pixels(x: np.ndarray) -> np.ndarray:
    """The outermost rows and columns, flat. x: uint8 (n, h, w, c) or (h, w, c)."""
    x = x if x.ndim == 4 else x[None]
    return np.concatenate(
        [x[:, 0].ravel(), x[:, -1].ravel(), x[:, :, 0].ravel(), x[:, :, -1].ravel()]
    )


def border_brightness(x: np.ndarray) -> float:
    """Mean of the outermost pixels, in [0, 1]. x: uint8 (n, h, w, c) or (h, w, c)."""
    return float(border_pixels(x).mean()) / 255.0


def has_light_background(image: np.ndarray) -> bool:
    """Whether the image's content is darker than its border: dark strokes on light paper.

    image: uint8 (h, w, c). Relative, not against a fixed 0.5: in a dim photo the paper can be
    darker than mid-gray and still be the light side. The content is the tenth of the pixels
    that differ most from the border's median; an image without any (a flat one) counts as
    light when its border is brighter than mid-gray.
    """
    level = float(np.median(border_pixels(image)))
    deviation = image.astype(np.float32).ravel() - level
    size = np.abs(deviation)
    content = deviation[size >= max(float(np.percentile(size, 90)), 1.0)]
    if content.size == 0:
        return level > 127.5
    return float(content.mean()) < 0


def _ink_box(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of pixels above half the brightest; image: (h, w)."""
    peak = int(image.max())
    if peak == 0:
        return None
    rows = np.flatnonzero((image > peak / 2).any(axis=1))
    cols = np.flatnonzero((image > peak / 2).any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def content_fraction(x: np.ndarray, limit: int = 10_000) -> float:
    """Median share of the frame the bright strokes span (the larger of height, width).

    x: uint8 (n, h, w, 1) with a dark background; the first ``limit`` images are enough for a
    median. About 1.0 for scikit-learn's digits (strokes touch the frame), about 0.7 for
    MNIST (20-pixel digits in a 28-pixel frame). Same box as :func:`_ink_box`, vectorised.
    """
    images = x[:limit, ..., 0]
    height, width = images.shape[1:3]
    peak = images.max(axis=(1, 2))
    ink = images > (peak / 2)[:, None, None]
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    span_rows = height - rows.argmax(axis=1) - rows[:, ::-1].argmax(axis=1)
    span_cols = width - cols.argmax(axis=1) - cols[:, ::-1].argmax(axis=1)
    shares = np.maximum(span_rows / height, span_cols / width)[peak > 0]
    return float(np.median(shares)) if len(shares) else 1.0


def frame_content(image: np.ndarray, fraction: float) -> np.ndarray:
    """Crop bright strokes on a dark background and centre them in a square canvas.

    image: uint8 (h, w). Returns uint8 (s, s), with the strokes spanning ``fraction`` of s, so
    a digit drawn small in a corner of a big canvas looks like the training digits.
    """
    box = _ink_box(image)
    if box is None:
        return image
    top, bottom, left, right = box
    strokes = image[top:bottom, left:right]
    side = max(strokes.shape[0], strokes.shape[1])
    canvas_side = max(side, math.ceil(side / max(fraction, 0.05)))
    canvas = np.zeros((canvas_side, canvas_side), np.uint8)
    y, x = (canvas_side - strokes.shape[0]) // 2, (canvas_side - strokes.shape[1]) // 2
    canvas[y : y + strokes.shape[0], x : x + strokes.shape[1]] = strokes
    return canvas


# Background levelling works on a copy at most this many pixels on a side: the paper's
# lighting is smooth, and the strokes themselves stay at full resolution.
LEVELLING_SIDE = 256
# A photo's paper varies by a few levels in 255 around its lighting (sensor noise, JPEG,
# texture); an image whose "paper" varies by more than a tenth of the range is not a page.
PAPER_NOISE = 0.1


def _quadratic_terms(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    return [np.ones_like(x * y), x, y, x * x, x * y, y * y]


def _box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1)-square window, edges repeated. values: float (h, w)."""
    width = 2 * radius + 1
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius + 1, radius)
        sums = np.cumsum(np.pad(values, pad, mode="edge"), axis=axis)
        values = (
            np.take(sums, np.arange(width, sums.shape[axis]), axis=axis)
            - np.take(sums, np.arange(sums.shape[axis] - width), axis=axis)
        ) / width
    return values


def _robust_std(values: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _paper(small: np.ndarray) -> tuple[np.ndarray, float]:
    """The background under bright strokes, and the noise around it. small: float (h, w) in
    [0, 1]. A quadratic surface fitted to the non-stroke pixels (refitted without the
    outliers above it) takes the broad lighting; a blur of what is left on those pixels
    alone takes shadows and other local changes, filled in under the strokes."""
    height, width = small.shape
    y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    terms = np.stack([t.ravel() for t in np.broadcast_arrays(*_quadratic_terms(x, y))], axis=1)
    flat = small.ravel()
    paper = flat <= np.median(flat)  # strokes are the minority, and bright
    for _ in range(4):
        coef = np.linalg.lstsq(terms[paper], flat[paper], rcond=None)[0]
        residual = flat - terms @ coef
        noise = _robust_std(residual[paper])
        paper = residual < max(3 * noise, 1 / 255)
    base = (terms @ coef).reshape(height, width)
    surface = base
    radius = max(1, min(height, width) // 24)
    # Three rounds: each judges what is stroke against the surface corrected so far, so a
    # shadow first taken for strokes joins the paper as the correction reaches it.
    for _ in range(3):
        strokes = small - surface > max(3 * noise, 1 / 255)
        for _ in range(2):  # grown by 2 px: their blurred rims are not paper either
            strokes = _box_blur(strokes.astype(np.float32), 1) > 0
        if strokes.all():  # nothing left to learn the paper from: keep what we have
            break
        weight = _box_blur(_box_blur((~strokes).astype(np.float32), radius), radius)
        local = _box_blur(_box_blur(np.where(strokes, 0, small - base), radius), radius)
        surface = base + local / np.maximum(weight, 0.2)  # little paper near: little change
        noise = _robust_std((small - surface)[~strokes])
    return surface, noise


def level_background(image: np.ndarray) -> np.ndarray:
    """Bright strokes on an uneven dark background -> the same strokes on black.

    image: uint8 (h, w), e.g. a phone photo of a drawing on paper, inverted: the paper's
    lighting (a gradient, a shadow) lies under the strokes. It is estimated on a copy at most
    LEVELLING_SIDE pixels wide (:func:`_paper`), subtracted at full size, and what stands out
    of the noise is stretched to 0-255. An image with nothing standing out of its paper (a
    photo of an empty page) comes back all black: nothing is drawn on it, and left as it
    was, its grey paper would be framed as one big stroke. One that is all noise (no page:
    it varies by more than PAPER_NOISE) comes back as it was. Returns uint8 (h, w).
    """
    from PIL import Image

    height, width = image.shape
    scale = min(1.0, LEVELLING_SIDE / max(height, width))
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(image).resize(small_size, Image.Resampling.BOX)
    surface, noise = _paper(np.asarray(small, np.float32) / 255.0)
    if scale < 1.0:
        stretched = Image.fromarray(surface.astype(np.float32), "F")
        surface = np.asarray(stretched.resize((width, height), Image.Resampling.BILINEAR))
    residual = image.astype(np.float32) / 255.0 - surface
    floor = 3 * noise
    strokes = residual[residual > floor + 0.1]
    if strokes.size == 0:
        # Paper: nothing is drawn on it. An image that is all noise is no page: as it was.
        return np.zeros_like(image) if noise < PAPER_NOISE else image
    top = float(np.percentile(strokes, 95))
    leveled = np.clip((residual - floor) / (top - floor), 0, 1)
    return np.rint(leveled * 255).astype(np.uint8)


@contextmanager
def pillow_limits() -> Iterator[None]:
    """Pillow's pixel limit set to MAX_PIXELS, its bomb warning raised as an error."""
    from PIL import Image

    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def open_image(path: ImageSource) -> Any:
    """Open an image's header (call inside :func:`pillow_limits`); DataError if refused."""
    from PIL import Image, UnidentifiedImageError

    path = path if isinstance(path, ImageBytes) else Path(path)
    try:
        if isinstance(path, ImageBytes):
            return Image.open(io.BytesIO(path.data), formats=FORMATS)
        return Image.open(path, formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: declares more than {MAX_PIXELS} pixels; refused") from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a {FORMAT_NAMES} image Pillow can decode") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot open image: {exc}") from None


def upright_size(img: Any) -> tuple[int, int]:
    """(width, height) of an opened image as it is meant to be seen: a camera's EXIF
    orientation 5-8 (a quarter turn) swaps the stored size. Reads the header only."""
    if "exif" not in img.info:  # most files: no EXIF block to parse (~70 µs each)
        return img.size
    width, height = img.size
    return (height, width) if img.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8) else img.size


def _eight_bit_gray(img: Any) -> Any:
    """A 16-bit grayscale image (Pillow mode ``I;16*``, or ``I``) as 8-bit ``L``, 0-65535
    mapped onto 0-255; ``LA`` when the file names a transparent gray value. Pillow's own
    ``convert("L")`` clips at 255, which turns such an image white."""
    from PIL import Image

    values = np.asarray(img).astype(np.float64)
    gray = Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
    key = img.info.get("transparency")
    if isinstance(key, int):
        alpha = Image.fromarray(np.where(values == key, 0, 255).astype(np.uint8), "L")
        return Image.merge("LA", (gray, alpha))
    return gray


def decode_image(path: ImageSource, channels: int) -> np.ndarray:
    """Decode one image file at its own size to uint8 (h, w, channels), channels in {1, 3}.

    Only PNG, JPEG, BMP, GIF and WebP are accepted, and no more than MAX_PIXELS. The image is
    turned upright as its EXIF orientation says (photos from phones and cameras), 16-bit
    grayscale is scaled to 8 bits, and transparent pixels are put on white. Raises DataError
    naming the file when it is missing, refused or cannot be decoded.
    """
    from PIL import Image, ImageOps

    path = path if isinstance(path, ImageBytes) else Path(path)
    try:
        with pillow_limits(), open_image(path) as img:
            img.load()
            if "exif" in img.info:
                ImageOps.exif_transpose(img, in_place=True)
            if img.mode.startswith("I"):
                img = _eight_bit_gray(img)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                img = Image.new("RGBA", rgba.size, "white")
                img.alpha_composite(rgba)
            array = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: declares more than {MAX_PIXELS} pixels; refused") from None
    except DataError:
        raise
    except Exception as exc:  # a damaged file makes decoders raise many kinds
        reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        raise DataError(f"{path}: cannot decode image: {reason}") from None
    return array.reshape(array.shape[0], array.shape[1], channels)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (h, w, c) -> uint8 (height, width, c); a box filter when shrinking averages the
    way the digit datasets were made, bilinear when enlarging."""
    from PIL import Image

    channels = image.shape[2]
    img = Image.fromarray(image[..., 0] if channels == 1 else image)
    shrinking = img.width > width or img.height > height
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(img.resize((width, height), resample), np.uint8).reshape(
        height, width, channels
    )


def image_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files ``paths`` name, in order: a file as it is, a folder as the images under it
    (PNG/JPEG/BMP/GIF/WebP by their extension, in sub-folders too, sorted; hidden ones left out).
    DataError for a folder that holds none."""
    files: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            p
            for p in path.rglob("*")
            if p.suffix.lower() in EXTENSIONS
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise DataError(f"{path}: a folder with no {FORMAT_NAMES} images in it")
        files.extend(found)
    return files


def read_image(path: ImageSource, shape: Sequence[int]) -> np.ndarray:
    """Decode one image file to uint8 (h, w, c) for shape = (h, w, c), resized as it is."""
    height, width, channels = shape
    return resize(decode_image(path, channels), height, width)


# An image whose every pixel lies within this many levels (of 255, per channel) of the
# others is blank: an empty page, a solid colour; a JPEG of one decodes a level or two apart.
BLANK_RANGE = 2


def is_blank(image: np.ndarray) -> bool:
    """Whether uint8 (h, w, c) is one colour throughout (within BLANK_RANGE per channel)."""
    pixels = image.reshape(-1, image.shape[-1]).astype(np.int16)
    return bool((pixels.max(axis=0) - pixels.min(axis=0)).max() <= BLANK_RANGE)


def read_images(
    paths: Sequence[ImageSource],
    shape: Sequence[int],
    invert: str = "auto",
    background: float | None = None,
    fraction: float | None = None,
    frame: bool = True,
) -> tuple[np.ndarray, list[bool]]:
    """Decode files to uint8 (n, h, w, c) like the training images.

    background: the training images' border brightness in [0, 1]; fraction: their
    :func:`content_fraction`. invert: "yes", "no", or "auto": invert a grayscale image whose
    background (:func:`has_light_background`) is on the other side from a clear training
    background — a black-on-white drawing for a white-on-black digit model, say. With
    ``frame``, a dark training background and a ``fraction``, an image not already at the
    model's size has its background levelled (:func:`level_background`: a photo's uneven
    light) and its strokes cropped and centred (:func:`frame_content`) before the resize.
    A blank image (:func:`is_blank`) becomes exactly one colour and is neither levelled nor
    framed: there are no strokes to find, and framing would draw its edges as a shape.
    Returns the array and, per image, whether it was inverted.
    """
    if invert not in ("auto", "yes", "no"):
        raise DataError(f"invert = {invert!r}: choose one of auto, yes, no")
    height, width, channels = shape
    clear = background is not None and (
        background < CLEAR_BACKGROUND or background > 1 - CLEAR_BACKGROUND
    )
    images, flipped = [], []
    for path in paths:
        image = decode_image(path, channels)
        blank = is_blank(image)
        if blank:
            image = np.broadcast_to(np.median(image, axis=(0, 1)), image.shape).astype(np.uint8)
        # Judged once (a percentile over every pixel): inverting turns the answer around.
        light = clear and channels == 1 and has_light_background(image)
        if invert == "yes":
            flip = True
        elif invert == "auto" and clear and channels == 1:
            flip = light != (background > 0.5)
        else:
            flip = False
        if flip:
            image = 255 - image
        dark_strokes = clear and background < 0.5 and channels == 1 and fraction
        resized = image.shape[:2] != (height, width)
        if frame and dark_strokes and resized and light == flip and not blank:  # dark now
            image = frame_content(level_background(image[..., 0]), fraction)[..., None]
        images.append(resize(image, height, width))
        flipped.append(flip)
    if not images:
        return np.zeros((0, *shape), np.uint8), []
    return np.stack(images), flipped


def png_data_url(image: np.ndarray) -> str:
    """uint8 (h, w, 1) or (h, w, 3) -> ``data:image/png;base64,...`` at the image's own size
    (for a web page: serve's answers, the label-issues page)."""
    import base64

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
