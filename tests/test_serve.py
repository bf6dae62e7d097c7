"""mlplab serve: the HTTP API, its page and its errors, against a real server on 127.0.0.1."""

from __future__ import annotations

import base64
import html
import http.client
import io
import json
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mlplab
from mlplab.data.images import ImageBytes, decode_image
from mlplab.errors import DataError, MlplabError
from mlplab.serving import http as serving_http
from mlplab.serving import make_server
from mlplab.serving.requests import RequestError, body_images, predict_options

from .conftest import chromium, lines_until, needs_chromium, save_png, start_mlplab


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def drawing_of(image: np.ndarray) -> np.ndarray:
    """A digits test image (8x8, white on black, 0..16 scaled) as a black-on-white drawing,
    20 times larger with a margin: what a user draws."""
    big = np.kron(image[..., 0], np.ones((20, 20), np.uint8))
    return 255 - np.pad(big, 40)


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None):
    """(content type, body) of a form with these files, as curl -F sends it."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in (fields or {}).items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


class Client:
    """Requests to a running server: (status, headers, body bytes)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            chunked = "chunked" in (headers or {}).get("Transfer-Encoding", "")
            connection.request(method, path, body, headers or {}, encode_chunked=chunked)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def json(self, method, path, body=None, headers=None):
        status, _, data = self.request(method, path, body, headers)
        return status, json.loads(data)


@pytest.fixture(scope="module")
def server(digits_run):
    log = io.StringIO()
    with make_server(digits_run, port=0, log=log) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        running.test_log = log
        yield running
        running.shutdown()
    thread.join(timeout=10)


def logged(log: io.StringIO, until: Callable[[str], bool], wait: float = 30) -> str:
    """The server's log once ``until(log)`` holds. A request is logged after its answer is
    sent, so a client can read the answer before the handler's thread writes the line."""
    deadline = time.monotonic() + wait
    while not until(text := log.getvalue()):
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    return text


@pytest.fixture
def client(server):
    return Client(server.server_port)


def test_info_health_and_page(server, client, digits_run):
    status, info = client.json("GET", "/info")
    assert status == 200
    assert info["name"] == digits_run.config.name and info["dataset"] == "digits"
    assert info["class_names"] == [str(i) for i in range(10)]
    assert info["input"] == {"height": 8, "width": 8, "channels": 1}
    assert info["test_accuracy"] == digits_run.metrics["test_accuracy"]
    low, high = info["test_accuracy_interval"]
    assert low < info["test_accuracy"] < high
    assert info["calibration_error"] == digits_run.metrics["calibration"]["ece"]
    assert info["temperature"] is None  # not calibrated
    assert info["parameters"] == digits_run.metrics["model"]["parameters"]
    assert client.json("GET", "/health") == (200, {"status": "ok"})
    status, headers, page = client.request("GET", "/")
    html = page.decode("utf-8")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert f"<h1>{digits_run.config.name}</h1>" in html and '<canvas id="pad"' in html
    assert "test accuracy" in html and "{{" not in html
    shown = f"(95% CI {100 * low:.1f}-{100 * high:.1f}%, 360 images)"
    assert shown in html
    model = json.loads(re.search(r"const MODEL = (.*);", html).group(1))
    assert model["input"]["channels"] == 1
    # self-contained: nothing is loaded from anywhere else
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert server.url == f"http://127.0.0.1:{server.server_port}/"


def test_predict_answers_as_mlplab_predict_does(tmp_path, client, digits_run, digits_data):
    drawings = [drawing_of(digits_data.x_test[i]) for i in range(3)]
    paths = [save_png(tmp_path / f"d{i}.png", d) for i, d in enumerate(drawings)]
    expected = mlplab.predict(digits_run, paths, top=2)

    status, answer = client.json("POST", "/predict?top=2", png_bytes(drawings[0]))
    assert status == 200 and answer["model"] == digits_run.config.name
    [one] = answer["predictions"]
    assert one["file"] == "image" and one["inverted"] is True
    assert one["label"] == expected[0]["label"] and len(one["top"]) == 2
    assert one["probability"] == pytest.approx(expected[0]["probability"], abs=1e-5)

    content_type, body = multipart(
        [(f"d{i}.png", png_bytes(d)) for i, d in enumerate(drawings)],
        fields={"note": "a plain field is not an image"},
    )
    status, answer = client.json("POST", "/predict?top=2", body, {"Content-Type": content_type})
    assert status == 200
    assert [p["file"] for p in answer["predictions"]] == ["d0.png", "d1.png", "d2.png"]
    assert [p["label"] for p in answer["predictions"]] == [e["label"] for e in expected]


def test_min_probability_marks_answers_that_are_not_sure(tmp_path, client, digits_run, digits_data):
    drawing = png_bytes(drawing_of(digits_data.x_test[0]))
    status, answer = client.json("POST", "/predict", drawing)
    [plain] = answer["predictions"]
    assert "sure" not in plain  # the fixture's server has no --min-probability
    for cut, sure in ((0.0, True), (1.0, plain["probability"] >= 1.0)):
        status, answer = client.json("POST", f"/predict?min_probability={cut}", drawing)
        assert status == 200 and answer["predictions"][0]["sure"] is sure
    status, answer = client.json("POST", "/predict?min_probability=2", drawing)
    assert status == 400 and "min_probability='2': must be a number from 0 to 1" in answer["error"]
    # A server-wide default, in /info and the page, that a request can override.
    with make_server(digits_run, port=0, min_probability=1.0) as strict:
        thread = threading.Thread(target=strict.serve_forever, daemon=True)
        thread.start()
        try:
            other = Client(strict.server_address[1])
            assert other.json("GET", "/info")[1]["min_probability"] == 1.0
            status, answer = other.json("POST", "/predict", drawing)
            assert answer["predictions"][0]["sure"] is (plain["probability"] >= 1.0)
            status, answer = other.json("POST", "/predict?min_probability=0", drawing)
            assert answer["predictions"][0]["sure"] is True
        finally:
            strict.shutdown()
            thread.join(timeout=30)
    with pytest.raises(MlplabError, match="min-probability 1.5: must lie in 0..1"):
        make_server(digits_run, port=0, min_probability=1.5)


def test_answers_say_whether_the_image_is_like_the_training_images(client, digits_run):
    status, info = client.json("GET", "/info")
    assert info["novelty_threshold"] == digits_run.novelty_reference.threshold
    noise = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    status, answer = client.json("POST", "/predict", png_bytes(noise))
    [prediction] = answer["predictions"]
    assert status == 200 and prediction["familiar"] == (
        prediction["novelty"] <= info["novelty_threshold"]
    )


def test_target_accuracy_sets_the_servers_threshold_from_the_test_split(digits_run):
    threshold, share = digits_run.threshold_for_accuracy(0.99)
    with make_server(digits_run, port=0, target_accuracy=0.99) as server:
        assert server.predictor.min_probability == threshold
        assert server.predictor.info()["min_probability"] == threshold
        assert f"unsure below p = {threshold:.4g}" in server.predictor.unsure_note
        assert f"({100 * share:.0f}% of them answered)" in server.predictor.unsure_note
    with pytest.raises(MlplabError, match="min-probability and target-accuracy: choose one"):
        make_server(digits_run, port=0, min_probability=0.5, target_accuracy=0.99)
    with pytest.raises(MlplabError, match="target accuracy 2: must lie between 0 and 1"):
        make_server(digits_run, port=0, target_accuracy=2)


def test_show_gives_the_image_as_the_model_saw_it(tmp_path, client, digits_run, digits_data):
    drawing = drawing_of(digits_data.x_test[5])
    seen, _ = digits_run.read_images([save_png(tmp_path / "d.png", drawing)])
    status, answer = client.json("POST", "/predict?show=1&top=1", png_bytes(drawing))
    assert status == 200
    url = answer["predictions"][0]["seen"]
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
        assert np.array_equal(np.asarray(image), seen[0, ..., 0])
    status, answer = client.json("POST", "/predict?invert=no&frame=0", png_bytes(drawing))
    assert status == 200 and answer["predictions"][0]["inverted"] is False
    assert "seen" not in answer["predictions"][0]


def test_explain_gives_what_each_pixel_contributed(tmp_path, client, digits_run, digits_data):
    drawing = drawing_of(digits_data.x_test[5])
    seen, _ = digits_run.read_images([save_png(tmp_path / "d.png", drawing)])
    status, answer = client.json("POST", "/predict?explain=1&top=1", png_bytes(drawing))
    assert status == 200
    [prediction] = answer["predictions"]
    classes, contributions = digits_run.explain(seen)
    assert digits_run.class_names[classes[0]] == prediction["label"]
    with Image.open(io.BytesIO(base64.b64decode(prediction["why"].split(",", 1)[1]))) as image:
        colours = np.asarray(image.convert("RGB"), np.int64)
    assert colours.shape == (8, 8, 3)
    red = colours[..., 0] - colours[..., 2]  # red where the pixel pushed towards the answer
    most_for = np.unravel_index(np.argmax(contributions[0, ..., 0]), (8, 8))
    most_against = np.unravel_index(np.argmin(contributions[0, ..., 0]), (8, 8))
    assert red[most_for] > 50 and red[most_against] < -50 and "seen" not in prediction
    status, answer = client.json("POST", "/predict?explain=maybe", png_bytes(drawing))
    assert status == 400 and answer["error"] == "explain='maybe': must be 1 or 0"


def test_chunked_body(client, digits_data):
    data = png_bytes(drawing_of(digits_data.x_test[0]))
    chunks = (data[i : i + 500] for i in range(0, len(data), 500))
    connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=60)
    connection.request("POST", "/predict", body=chunks, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 200
    assert len(json.loads(response.read())["predictions"]) == 1
    connection.close()


def test_bad_requests_are_json_errors_and_the_server_goes_on(client, monkeypatch, server):
    form_type, form_body = multipart([("bad.png", b"not an image")])
    empty_type, empty_body = multipart([], fields={"x": "1"})
    cases = [
        ("POST", "/predict", b"\x89PNG but not really", {}, 400, "image: not a PNG/JPEG"),
        ("POST", "/predict", form_body, {"Content-Type": form_type}, 400, "bad.png: "),
        ("POST", "/predict", empty_body, {"Content-Type": empty_type}, 400, "holds no files"),
        ("POST", "/predict", b"", {}, 400, "empty request body"),
        ("POST", "/predict?tpo=3", b"x", {}, 400, "unknown parameter 'tpo' (did you mean 'top'?)"),
        ("POST", "/predict?top=0", b"x", {}, 400, "top='0': must be a whole number"),
        ("POST", "/predict?invert=maybe", b"x", {}, 400, "invert='maybe': must be auto"),
        ("GET", "/predict", None, {}, 405, "GET /predict is not allowed"),
        ("POST", "/info", b"x", {}, 405, "POST /info is not allowed"),
        ("GET", "/nope", None, {}, 404, "no endpoint '/nope'"),
    ]
    for method, path, body, headers, code, message in cases:
        status, response_headers, data = client.request(method, path, body, headers)
        assert status == code, (path, data)
        assert response_headers["Content-Type"] == "application/json"
        assert message in json.loads(data)["error"], (path, data)
        if code == 405:
            assert response_headers["Allow"] in ("GET", "POST")
    monkeypatch.setattr(serving_http, "MAX_BODY", 1000)
    status, _, data = client.request("POST", "/predict", b"x" * 5000)
    assert status == 413 and "larger than" in json.loads(data)["error"]
    status, _, data = client.request(
        "POST", "/predict", (b"x" * 600 for _ in range(3)), {"Transfer-Encoding": "chunked"}
    )
    assert status == 413
    assert client.json("GET", "/health") == (200, {"status": "ok"})
    wanted = ("POST /predict 400 image: not a PNG/JPEG", "GET /nope 404")
    logged(server.test_log, lambda log: all(line in log for line in wanted))


def test_a_bug_is_a_500_and_the_server_goes_on(client, server, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(server.predictor.run, "classify", broken)
    status, answer = client.json("POST", "/predict", png_bytes(np.zeros((8, 8), np.uint8)))
    assert status == 500 and answer == {"error": "internal error: ZeroDivisionError: boom"}
    monkeypatch.undo()
    status, _ = client.json("POST", "/predict", png_bytes(np.zeros((8, 8), np.uint8)))
    assert status == 200


def test_make_server_refuses_what_it_cannot_do(digits_run, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MlplabError, match=f"cannot listen on 127.0.0.1:{port}: .*--port"):
            make_server(digits_run, port=port)
    with pytest.raises(MlplabError, match="port 70000: must be between 0 and 65535"):
        make_server(digits_run, port=70000)
    with pytest.raises(MlplabError, match="top 0: must be at least 1"):
        make_server(digits_run, port=0, top=0)
    with pytest.raises(MlplabError, match="no such run directory"):
        make_server(tmp_path / "missing", port=0)


def test_cli_serves_until_ctrl_c(digits_run, digits_data):
    process = start_mlplab("serve", str(digits_run.path), "--port", "0")
    try:
        lines = lines_until(process, process.stdout, "Ctrl-C")
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", "".join(lines)).group(1))
        assert lines[0].startswith(f"serving {digits_run.config.name} ({digits_run.path}")
        image = png_bytes(drawing_of(digits_data.x_test[0]))
        status, answer = Client(port).json("POST", "/predict", image)
        assert status == 200 and answer["predictions"][0]["label"] in "0123456789"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0 and out.strip() == "stopped"
    assert re.search(r"POST /predict 200 1 image\(s\): \d", err) and "Traceback" not in err


def test_cli_errors_are_one_line(capsys, tmp_path):
    from mlplab.cli import main

    code = main(["serve", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"mlplab: error: {tmp_path / 'missing'}: no such run directory\n"


def test_request_options_and_form_parsing():
    assert predict_options("") == predict_options("frame=1&show=no")
    options = predict_options("top=5&invert=YES&frame=off&show=true")
    assert (options.top, options.invert, options.frame, options.show) == (5, "yes", False, True)
    with pytest.raises(RequestError, match="malformed query"):
        predict_options("a=1&&b")
    data = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    content_type, body = multipart([("/home/me/a.png", data), ("", b"")])
    [image] = body_images(content_type, body)  # an empty file field (a browser's) is skipped
    assert image.name == "a.png" and image.data == data
    with pytest.raises(RequestError, match="malformed multipart"):
        body_images("multipart/form-data; boundary=zzz", b"garbage")


def test_images_decode_from_memory():
    pixels = (np.arange(48).reshape(6, 8) * 5).astype(np.uint8)
    source = ImageBytes("upload.png", png_bytes(pixels))
    assert np.array_equal(decode_image(source, 1)[..., 0], pixels)
    assert str(source) == "upload.png" and "data" not in repr(source)
    with pytest.raises(DataError, match=r"^upload\.png: not a PNG/JPEG/BMP/GIF/WebP image"):
        decode_image(ImageBytes("upload.png", b"nope"), 1)


def test_a_client_that_stalls_is_dropped_with_one_log_line(client, server, monkeypatch):
    monkeypatch.setattr(serving_http._Handler, "timeout", 0.5)
    before = len(server.test_log.getvalue())
    with socket.create_connection(("127.0.0.1", client.port), timeout=30) as stalled:
        stalled.sendall(b"POST /predict HTTP/1.1\r\nContent-Length: 1000\r\n\r\n0123456789")
        assert stalled.recv(100) == b""  # closed by the server, unanswered
    log = server.test_log.getvalue()[before:]
    assert "timed out" in log and "Traceback" not in log and log.count("\n") == 1
    assert client.json("GET", "/health") == (200, {"status": "ok"})


def test_cors_lets_a_page_from_another_origin_call_the_api(digits_run, client):
    status, headers, _ = client.request("OPTIONS", "/predict")
    assert status == 204 and headers["Allow"] == "POST"
    assert "Access-Control-Allow-Origin" not in headers  # off unless asked for
    with make_server(digits_run, port=0, cors="http://localhost:3000/") as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        other = Client(server.server_port)
        status, headers, _ = other.request("OPTIONS", "/predict")
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        assert headers["Access-Control-Allow-Methods"] == "POST"
        assert headers["Access-Control-Allow-Headers"] == "Content-Type"
        status, headers, _ = other.request(
            "POST", "/predict", png_bytes(np.zeros((8, 8), np.uint8))
        )
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        assert other.request("OPTIONS", "/nope")[0] == 404
        server.shutdown()
    with pytest.raises(MlplabError, match="cors 'localhost:3000': give a web origin"):
        make_server(digits_run, port=0, cors="localhost:3000")


@needs_chromium
def test_the_page_draws_asks_and_shows_in_chromium(digits_run, tmp_path):
    """The page's script, run by a browser: a stroke drawn on the pad is sent and answered,
    "show the top" asks again, dropped files are sent as a form, an error is shown."""
    probe = (Path(__file__).parent / "serve_page_probe.html").read_bytes()
    log = io.StringIO()
    with make_server(digits_run, port=0, log=log) as running:
        running.page = running.page.replace(b"</body>", probe)
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{running.server_port}/"
            dom = chromium(tmp_path, "--virtual-time-budget=30000", "--dump-dom", url)
        finally:
            running.shutdown()
    thread.join(timeout=10)
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, dom[-2000:]
    seen = json.loads(html.unescape(found.group(1)))
    assert "failure" not in seen, seen
    assert seen["drawn"]["label"] in digits_run.class_names
    assert seen["drawn"]["bars"] == 3 and seen["drawn"]["seen"] == "data:image/png;base64,"
    assert seen["drawn"]["why"] == "data:image/png;base64,"
    assert seen["drawn"]["file"] == "drawing.png · inverted"  # black on white, as drawn
    assert seen["top5"] == 5
    assert seen["dropped"] == ["a.png · inverted", "b.png · inverted"]
    assert seen["blank"] == "a blank image (every pixel the same): the answer means nothing"
    assert seen["error"] == "notes.txt: not a PNG/JPEG/BMP/GIF/WebP image Pillow can decode"
    text = logged(log, lambda text: text.count("POST /predict") >= 5)
    requests = [line for line in text.splitlines() if "POST /predict" in line]
    assert len(requests) == 5 and " 2 image(s): " in requests[2] and " 400 " in requests[4]
