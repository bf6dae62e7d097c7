"""``mlplab export``: a run's model as an ONNX file, checked against model.keras."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from mlplab.cli import RUN_HELP


def add_parser(commands: Any) -> None:
    """Add ``export`` to the CLI's sub-commands."""
    export = commands.add_parser(
        "export",
        help="write a run's model as ONNX (for onnxruntime in any language, or the browser)",
        description=(
            "Write a run's model as an ONNX file (default: RUN/model.onnx) that takes the same "
            "uint8 pixels (batch, h, w, c) as model.keras and returns the class probabilities "
            "(batch, classes); the class names and image facts are in its metadata. Before "
            "writing, both models classify the run's test split (random pixels when its "
            "dataset is not on this machine; nothing is downloaded) and any probability that "
            "differs by more than 1e-4 stops the export. --int8 writes RUN/model-int8.onnx: "
            "the Dense layers' products in 8-bit integers (about 4x smaller; faster only "
            "for large layers in bulk), held to model.keras' label for 97% of the images "
            "and at most 1 point of test accuracy lost. Needs: pip install onnx onnxruntime."
        ),
    )
    export.add_argument("run", metavar="RUN", help=RUN_HELP)
    export.add_argument(
        "--out",
        metavar="FILE",
        help="where to write the .onnx file (default: RUN/model.onnx, or RUN/model-int8.onnx)",
    )
    export.add_argument(
        "--int8",
        action="store_true",
        help="quantize: int8 weights, each image's layer inputs uint8, integer products "
        "(default file RUN/model-int8.onnx)",
    )
    export.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from mlplab.onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx
    from mlplab.runs import MODEL_FILE, load_run, to_json

    loaded = load_run(args.run)
    result = export_onnx(loaded, args.out, int8=args.int8)
    if args.json:
        print(to_json({**dataclasses.asdict(result), "path": str(result.path)}), end="")
        return 0
    shape = ", ".join(str(size) for size in loaded.image_shape)
    classes = len(loaded.class_names)
    print(
        f"exported {loaded.config.name} ({loaded.path}) to {result.path}  "
        f"({result.size / 1024:,.0f} KiB, ONNX opset {OPSET}{', int8' if result.int8 else ''})"
    )
    if loaded.status != "complete":
        print(f"  note: the run's status is {loaded.status}: this is the model it stopped with")
    print(
        f"checked with {result.runtime} on {result.checked_on}: the same label for "
        f"{result.same_label}/{result.images}, probabilities within {result.max_difference:.1g}"
    )
    if result.int8 and result.accuracy is not None:
        print(
            f"  test accuracy of {result.path.name} {result.accuracy:.4f} ({MODEL_FILE} on the "
            f"same images: {result.keras_accuracy:.4f})"
        )
    elif result.accuracy is not None:
        kept = loaded.metrics.get("test_accuracy")
        recorded = f" (the run's {MODEL_FILE}: {kept:.4f})" if isinstance(kept, float) else ""
        print(f"  test accuracy of {result.path.name} {result.accuracy:.4f}{recorded}")
    print(
        f"input  {INPUT_NAME}: uint8 (batch, {shape}), 0..255 as the training images were stored\n"
        f"output {OUTPUT_NAME}: float32 (batch, {classes}); class names, image shape and "
        "background are in the file's metadata"
    )
    return 0
