"""``mlplab embed``: what each layer of a run's model sees, as maps and k-NN accuracies."""

from __future__ import annotations

import argparse
from typing import Any

from mlplab.cli import RUN_HELP
from mlplab.embedding import NEIGHBOURS, SAMPLE


def add_parser(commands: Any) -> None:
    """Add ``embed`` to the CLI's sub-commands."""
    embed = commands.add_parser(
        "embed",
        help="what each layer sees: test images mapped by their pixels and each hidden "
        "layer (PCA or t-SNE)",
        description=(
            "Place a seeded sample of the run's test images (or another dataset's, as "
            "evaluate --dataset picks them) by their pixels and by each hidden layer's "
            "outputs, on 2-D maps coloured by class: PCA (the first two principal components, "
            "as in the run's report) or t-SNE (--tsne: the clusters show better; about 2 s a "
            f"layer for {SAMPLE} images). Prints each stage's {NEIGHBOURS}-nearest-neighbour "
            "accuracy in its full space: how often an image's nearest images there share its "
            "class. A network that learns raises it layer by layer."
        ),
    )
    embed.add_argument("run", metavar="RUN", help=RUN_HELP)
    embed.add_argument(
        "--tsne", action="store_true", help="t-SNE maps instead of PCA (slower, clearer clusters)"
    )
    embed.add_argument(
        "--dataset",
        metavar="NAME|PATH",
        help="images of another dataset (classes matched by name, as for evaluate)",
    )
    embed.add_argument(
        "--images",
        type=int,
        default=SAMPLE,
        metavar="N",
        help=f"how many images (a seeded sample; default {SAMPLE})",
    )
    embed.add_argument(
        "--out", metavar="FILE", help="the PNG to write (default: RUN/layer_views-pca.png or -tsne)"
    )
    embed.add_argument("--json", action="store_true", help="print the numbers as JSON")


def run(args: argparse.Namespace) -> int:
    from mlplab.api import embed
    from mlplab.runs import to_json

    method = "tsne" if args.tsne else "pca"
    views, path = embed(args.run, args.dataset, method, args.images, args.out)
    if args.json:
        print(to_json({**views.as_dict(), "method": method, "png": str(path)}), end="")
        return 0
    network = "the network itself"
    width = max(len(name) for name in [*views.names, network])
    print(f"{len(views.labels)} {views.images}, {views.neighbours}-NN accuracy in each space:")
    for name, accuracy in zip(views.names, views.neighbour_accuracy, strict=True):
        print(f"  {name:<{width}}  {100 * accuracy:5.1f}%")
    print(f"  {network:<{width}}  {100 * views.network_accuracy:5.1f}%")
    print(f"maps ({'t-SNE' if args.tsne else 'PCA'}): {path}")
    return 0
