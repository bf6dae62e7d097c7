"""The page ``mlplab serve`` answers ``GET /`` with: draw or drop images, see the answer.

One self-contained HTML file (``page.html``, CSS and JavaScript inline) with the model's
facts filled in; it talks only to the server that served it.
"""

from __future__ import annotations

import json
import re
from html import escape
from importlib.resources import files
from typing import Any

from mlplab._version import __version__
from mlplab.report.html import BASE_CSS


def subtitle(info: dict[str, Any]) -> str:
    """'digits · 8x8 grayscale · 10 classes · test accuracy 98.33% (95% CI 96.4-99.2%, 360
    images)'."""
    size = info["input"]
    colour = "grayscale" if size["channels"] == 1 else "colour"
    parts = [
        info["dataset"],
        f"{size['height']}x{size['width']} {colour}",
        f"{len(info['class_names'])} classes",
    ]
    accuracy = info.get("test_accuracy")
    if isinstance(accuracy, float):
        samples = info.get("test_samples")
        interval = info.get("test_accuracy_interval")
        notes = [f"95% CI {100 * interval[0]:.1f}-{100 * interval[1]:.1f}%"] if interval else []
        notes += [f"{samples} images"] if samples else []
        parts.append(
            f"test accuracy {100 * accuracy:.2f}%" + (f" ({', '.join(notes)})" if notes else "")
        )
    return " · ".join(parts)


def page_html(info: dict[str, Any]) -> bytes:
    """info: :meth:`mlplab.serving.predictor.Predictor.info` -> the page, UTF-8."""
    template = files("mlplab.serving").joinpath("page.html").read_text(encoding="utf-8")
    # JSON inside <script>: "<" escaped so that no class name can close the element.
    model = json.dumps(info).replace("<", "\\u003c")
    status = "" if info["status"] == "complete" else f" · status: {info['status']}"
    fields = {
        "{{BASE_CSS}}": BASE_CSS.strip(),
        "{{TITLE}}": escape(info["name"]),
        "{{SUBTITLE}}": escape(subtitle(info)),
        "{{RUN}}": escape(f"run {info['run']}{status}"),
        "{{VERSION}}": escape(__version__),
        "{{MODEL_JSON}}": model,
    }
    # One pass, so that a value holding a marker is not filled in again.
    return re.sub(r"\{\{[A-Z_]+\}\}", lambda m: fields[m.group(0)], template).encode("utf-8")
