"""Reading a prediction request: its query options and the images in its body.

A body is either one image's bytes (``curl --data-binary @digit.png``) or an HTML form's
``multipart/form-data`` with one or more files (``curl -F image=@a.png -F image=@b.png``, or
a browser's ``FormData``). Anything else is a :class:`RequestError` with the HTTP status to
answer and one line saying what is wrong.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs

from mlplab.data.images import ImageBytes

# Options of POST /predict, with what each accepts.
OPTIONS = {
    "top": "a whole number of at least 1",
    "invert": "auto, yes or no",
    "frame": "1 or 0",
    "show": "1 or 0",
    "explain": "1 or 0",
    "min_probability": "a number from 0 to 1",
}
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
# The name of an image sent as the whole body (a form's files keep their own names).
BODY_IMAGE = "image"


class RequestError(Exception):
    """A request the server refuses: ``status`` is the HTTP status, the message one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PredictOptions:
    top: int | None = None  # None: the server's default
    invert: str = "auto"
    frame: bool = True
    show: bool = False
    explain: bool = False
    min_probability: float | None = None  # None: the server's default


def predict_options(query: str) -> PredictOptions:
    """``top=3&invert=auto&frame=1&show=0`` -> PredictOptions; RequestError (400) naming the
    parameter for an unknown one or a bad value."""
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise RequestError(400, f"malformed query string {query!r}") from None
    values: dict[str, Any] = {}
    for key, given in params.items():
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, OPTIONS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RequestError(400, f"unknown parameter '{key}'{hint}; known: {', '.join(OPTIONS)}")
        value = given[-1].strip().lower()
        bad = RequestError(400, f"{key}={given[-1]!r}: must be {OPTIONS[key]}")
        if key == "top":
            if not value.isdigit() or int(value) < 1:
                raise bad
            values[key] = int(value)
        elif key == "min_probability":
            try:
                values[key] = float(value)
            except ValueError:
                raise bad from None
            if not 0 <= values[key] <= 1:
                raise bad
        elif key == "invert":
            if value not in ("auto", "yes", "no"):
                raise bad
            values[key] = value
        elif value in TRUE or value in FALSE:
            values[key] = value in TRUE
        else:
            raise bad
    return PredictOptions(**values)


def _file_name(name: str) -> str:
    """A form file's base name: browsers and curl send bare names, some clients paths."""
    return PurePosixPath(name).name or BODY_IMAGE


def body_images(content_type: str, body: bytes) -> list[ImageBytes]:
    """The images a request body holds, in order; RequestError (400) if there are none."""
    if not body:
        raise RequestError(
            400,
            "empty request body: send an image's bytes (curl --data-binary @digit.png URL) "
            "or a form with image files (curl -F image=@digit.png URL)",
        )
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        return [ImageBytes(BODY_IMAGE, body)]
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise RequestError(400, "malformed multipart/form-data body")
    images = []
    for part in message.iter_parts():
        name = part.get_filename()
        if name is None:  # a plain form field, not a file
            continue
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        if not name and not payload:  # a browser's file field left empty
            continue
        images.append(ImageBytes(_file_name(name), payload))
    if not images:
        raise RequestError(
            400, "the form holds no files: send each image as a file field (-F image=@a.png)"
        )
    return images
