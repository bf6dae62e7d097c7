"""How fast `mlplab serve` answers: a real server on 127.0.0.1 and a client in one process.

    python benchmarks/serve_latency.py RUN [--requests 200] [--clients 4]

Three kinds of request, each sent ``--requests`` times one after another: an image already at
the model's input size (a test image as PNG), a 280x280 drawing (what the page's pad sends),
and a 1600x1200 JPEG photo. Then the small images again from ``--clients`` threads at once,
for throughput. Printed: median and 90th-percentile milliseconds per request, and requests
per second. The server's first compile is before the clock starts, as it is when
`mlplab serve` says it is ready.
"""

from __future__ import annotations

import argparse
import http.client
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

import mlplab
from mlplab.data import load_dataset
from mlplab.serving import make_server


def encoded(image: np.ndarray, kind: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, kind, **options)
    return buffer.getvalue()


def post(port: int, body: bytes) -> float:
    """Seconds for one POST /predict, connection included."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/predict", body)
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 200:
        raise SystemExit(f"the server answered {response.status}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run directory (or 'last')")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    run = mlplab.load_run(args.run)
    data = load_dataset(run.config.data.dataset, offline=True)
    rng = np.random.default_rng(0)
    test = data.x_test[rng.integers(0, len(data.x_test), args.requests)]
    squeeze = (lambda x: x[..., 0]) if test.shape[-1] == 1 else (lambda x: x)
    small = [encoded(squeeze(x), "PNG") for x in test]
    drawing = Image.fromarray(255 - squeeze(test[0])).resize((200, 200))
    pad = Image.new(drawing.mode, (280, 280), "white")
    pad.paste(drawing, (40, 40))
    drawn = encoded(np.asarray(pad), "PNG")
    photo = encoded((rng.random((1200, 1600, 3)) * 255).astype(np.uint8), "JPEG", quality=90)

    with make_server(run, port=0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_port
        post(port, small[0])  # a first request, as a user's would be after the start
        print(
            f"{run.config.name} ({run.image_shape[0]}x{run.image_shape[1]}), "
            f"{args.requests} requests each, one at a time"
        )
        print(f"{'request':<34} {'median ms':>10} {'p90 ms':>8} {'per s':>7}")
        for name, bodies in (
            (f"{data.image_shape[0]}x{data.image_shape[1]} PNG ({len(small[0])} B)", small),
            (f"280x280 drawing PNG ({len(drawn)} B)", [drawn] * args.requests),
            (f"1600x1200 JPEG ({len(photo) // 1024} KiB)", [photo] * max(1, args.requests // 10)),
        ):
            seconds = np.array([post(port, body) for body in bodies])
            print(
                f"{name:<34} {1000 * np.median(seconds):>10.1f} "
                f"{1000 * np.percentile(seconds, 90):>8.1f} {1 / seconds.mean():>7.0f}"
            )
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda body: post(port, body), small))
        took = time.perf_counter() - start
        print(f"{args.clients} clients at once, small PNGs: {len(small) / took:.0f} requests/s")
        server.shutdown()


if __name__ == "__main__":
    main()
