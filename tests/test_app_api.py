"""The HTTP API (adain.app): answers, options, limits, bad input, the style cache and the queue."""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import threading
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import adain.app.job_queue as stylist_module
from adain.app import Limits, Stylist, create_app
from adain.app.gallery import THUMBNAIL_SIDE
from adain.media.image_io import open_image, prepare_image, tensor_to_pil

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"content_size": "40", "style_size": "48"}  # tiny images keep each request well under a second


def make_app(model, gallery, **limits):
    stylist = Stylist(model, Limits(**limits))
    return stylist, create_app(stylist, gallery)


@pytest.fixture(scope="module")
def served(model, gallery):
    """(stylist, client) sharing one app, as one running server would."""
    stylist, app = make_app(model, gallery)
    return stylist, TestClient(app)


def png(size=(48, 40), seed=0, mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8), "RGB").convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def decoded(response: httpx.Response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def post(client, files=None, **form):
    data = {**SMALL, **form}
    return client.post("/api/stylize", data=data, files=files)


def assert_error(response: httpx.Response, status: int, *phrases: str) -> None:
    assert response.status_code == status, response.text if "json" in response.headers["content-type"] else response
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    for phrase in phrases:
        assert phrase in detail, detail


def test_a_fault_of_the_server_is_a_json_500_naming_no_server_path(model, gallery, monkeypatch):
    stylist, app = make_app(model, gallery)

    def full_disk(job: object) -> None:
        raise OSError(28, "No space left on device", "/srv/tmp/x")

    monkeypatch.setattr(stylist, "render", full_disk)
    response = post(TestClient(app, raise_server_exceptions=False), files={"content": png(), "style": png(seed=1)})
    assert_error(response, 500, "internal server error (OSError)")
    assert "/srv" not in response.text


def test_health_reports_device_encoder_and_limits(served, model):
    _, client = served
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["device"] == "cpu"
    assert (body["precision"], body["compile"]) == ("fp32", None)
    assert body["encoder"] == model.encoder.identity
    assert body["limits"]["max_styles"] == 4 and body["queue"] == {"pending": 0, "max": Limits().max_queue}


def test_examples_list_images_and_thumbnails(served, gallery):
    _, client = served
    listing = client.get("/api/examples").json()
    assert [e["name"] for e in listing["style"]] == list(gallery.examples["style"])
    assert "van_gogh_starry_night" in {e["name"] for e in listing["style"]}
    first = listing["style"][0]
    full = client.get(first["image"])
    assert full.headers["content-type"] == "image/jpeg" and full.content == gallery.get("style", first["name"]).data
    thumb = decoded(client.get(first["thumbnail"]))
    assert thumb.size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE) and thumb.format == "JPEG"
    assert_error(client.get("/api/examples/style/no_such_painting"), 404, "unknown style example 'no_such_painting'")
    assert client.get("/api/examples/paintings/x").status_code == 422


def test_stylize_matches_the_python_api(served, model):
    """The answer is exactly what StyleTransfer gives for the same images and options."""
    _, client = served
    content, a, b = png(seed=1), png((60, 52), seed=2), png((50, 64), seed=3)
    response = post(
        client,
        files=[("content", ("c.png", content)), ("style", ("a.png", a)), ("style", ("b.png", b))],
        alpha="0.6",
        style_weights=["3", "1"],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png" and float(response.headers["x-render-seconds"]) >= 0
    got = decoded(response)
    assert got.size == (48, 40) and response.headers["x-image-size"] == "48x40"  # content_size 40: the shorter side

    def load(data: bytes, side: int) -> torch.Tensor:
        return prepare_image(open_image(data), side).rgb

    expected = model(load(content, 40), [model.encode_style(load(s, 48)) for s in (a, b)], [3, 1], None, 0.6)
    assert np.array_equal(np.asarray(got), np.asarray(tensor_to_pil(expected[0])))


def test_alpha_format_and_colour_options_change_the_answer(served):
    _, client = served
    files = [("content", ("c.png", png(seed=4)))]
    strong, weak = (post(client, files, style_example="munch_the_scream", alpha=a) for a in ("1", "0.2"))
    assert strong.status_code == weak.status_code == 200
    assert strong.content != weak.content
    jpeg = post(client, files, style_example="munch_the_scream", format="jpeg")
    assert jpeg.headers["content-type"] == "image/jpeg" and decoded(jpeg).format == "JPEG"
    webp = post(client, files, style_example="munch_the_scream", format="webp")
    assert decoded(webp).format == "WEBP"
    coral = post(client, files, style_example="munch_the_scream", preserve_color="coral")
    assert coral.status_code == 200 and coral.content != strong.content


@pytest.mark.parametrize("method", ["coral", "luminance"])
def test_preserve_color_is_the_python_apis(served, model, method):
    _, client = served
    content, style = png(seed=5), png((52, 60), seed=6)
    response = post(client, [("content", ("c.png", content)), ("style", ("s.png", style))], preserve_color=method)
    photo, painting = (prepare_image(open_image(data), side).rgb for data, side in ((content, 40), (style, 48)))
    expected = model.stylize(photo, painting, preserve_color=method)
    assert np.array_equal(np.asarray(decoded(response)), np.asarray(tensor_to_pil(expected[0])))


def test_alpha_channel_and_mask(served):
    _, client = served
    rgba = Image.new("RGBA", (40, 40), (10, 200, 30, 90))
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    out = decoded(post(client, [("content", ("c.png", buf.getvalue()))], style_example="munch_the_scream"))
    assert out.mode == "RGBA" and out.getchannel("A").getextrema() == (90, 90)
    mask = Image.new("L", (96, 80), 0)  # the content's shape (48×40), at another size
    mask.paste(255, (0, 0, 48, 80))
    mbuf = io.BytesIO()
    mask.save(mbuf, format="PNG")
    files = [("content", ("c.png", png(seed=6))), ("mask", ("m.png", mbuf.getvalue()))]
    masked = post(client, files, style_example=["munch_the_scream", "hokusai_great_wave"])
    assert masked.status_code == 200
    assert_error(post(client, files, style_example="munch_the_scream"), 422, "mask needs exactly two styles")
    square = io.BytesIO()
    mask.crop((0, 0, 80, 80)).save(square, format="PNG")
    files = [("content", ("c.png", png(seed=6))), ("mask", ("m.png", square.getvalue()))]
    assert_error(post(client, files, style_example=["munch_the_scream", "hokusai_great_wave"]), 422,
                 "the mask is 40×40 px and the content 48×40 px: their aspect ratios differ (1.00 against 1.20)")  # fmt: skip


def test_content_example_and_crop(served):
    _, client = served
    out = post(client, content_example="chelsea", style_example="van_gogh_irises", crop="true")
    assert out.status_code == 200 and decoded(out).size == (40, 40)


def test_same_style_is_encoded_once(model, gallery):
    stylist, app = make_app(model, gallery, style_cache=2)
    client = TestClient(app)
    style = png((56, 56), seed=7)
    for seed in (8, 9):  # two photos, one painting: encoded once
        assert post(client, [("content", ("c.png", png(seed=seed))), ("style", ("s.png", style))]).status_code == 200
    assert (stylist.codes.misses, stylist.codes.hits) == (1, 1)
    post(client, [("content", ("c.png", png(seed=8))), ("style", ("s.png", style))], style_size="32")
    assert stylist.codes.misses == 2  # another size is another code
    post(client, content_example="coffee", style_example="turner_shipwreck")
    health = client.get("/api/health").json()["style_cache"]
    assert health == {"entries": 2, "hits": 1, "misses": 3, "max": 2}  # bounded: the oldest was dropped


@pytest.mark.parametrize(
    ("files", "form", "phrases"),
    [
        ({"content": b"hello, not an image"}, {}, ("content image: not a recognised image file",)),
        ({"content": png()[:120]}, {}, ("content image: corrupt or truncated",)),
        ({"content": b""}, {}, ("content image: empty file",)),
        ({"style": b"GIF89a junk"}, {"content_example": "chelsea"}, ("style 1:",)),
        ({}, {"content_example": "chelsea", "style_example": "../../pyproject"}, ("unknown style example",)),
        ({}, {"content_example": "../examples/content/chelsea"}, ("unknown content example",)),
        ({"content": png()}, {"alpha": "1.5"}, ("alpha must be in [0, 1], got 1.5",)),  # the message of every path
        ({"content": png()}, {"alpha": "strong"}, ("alpha",)),
        ({"content": png()}, {"content_size": "-1"}, ("content_size must be >= 0, got -1",)),
        ({"content": png()}, {"format": "gif"}, ("format",)),
        ({"content": png()}, {"preserve_color": "sepia"}, ("preserve_color",)),
        ({"content": png()}, {"style_weights": ["1", "2"]}, ("2 style weights for 1 styles",)),
        ({"content": png()}, {"style_weights": ["0"]}, ("not all zero",)),
        ({"content": png()}, {"style_weights": ["nan"]}, ("finite",)),
        ({"content": png()}, {"style_weights": ["inf"]}, ("finite",)),
        ({"content": png()}, {"alpha": "nan"}, ("alpha",)),
        ({"content": png()}, {"style_example": ["munch_the_scream"] * 5}, ("give 1 to 4 styles, got 5",)),
        ({"content": png()}, {"content_example": "chelsea"}, ("exactly one content image",)),
        ({}, {"style_example": "munch_the_scream"}, ("exactly one content image",)),
    ],
)
def test_bad_requests_get_a_one_line_422(served, files, form, phrases):
    _, client = served
    form = {"style_example": "van_gogh_starry_night", **form} if "style" not in files else form
    response = post(client, [(k, (f"{k}.png", v)) for k, v in files.items()], **form)
    assert_error(response, 422, *phrases)
    assert client.get("/api/health").json()["status"] == "ok"


def test_pixel_limits(model, gallery):
    _, app = make_app(model, gallery, max_input_pixels=60 * 60, max_work_pixels=50 * 50)
    client = TestClient(app)
    big = png((80, 70))
    assert_error(post(client, [("content", ("c.png", big))], style_example="munch_the_scream"), 422,
                 "content image: too large (80×70 pixels; limit 3,600)")  # fmt: skip
    response = post(client, [("content", ("c.png", png((40, 30))))], style_example="munch_the_scream", content_size="60")
    assert_error(response, 422, "content image: too large to stylize at 80×60", "lower the size")


def test_a_decompression_bomb_is_refused_by_its_header(served):
    _, client = served
    bomb = io.BytesIO()
    Image.new("1", (9500, 9500)).save(bomb, format="PNG")  # 90 million pixels in 11 kB
    response = post(client, [("content", ("c.png", bomb.getvalue()))], style_example="munch_the_scream")
    assert_error(response, 422, "content image: too large (9500×9500 pixels; limit 40,000,000)")


def asgi_call(app, headers, chunks, read):
    """Send one POST straight to the ASGI app; returns (status, body); ``read[0]`` counts the chunks it read."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        if read[0] < len(messages):
            read[0] += 1
            return messages[read[0] - 1]
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/stylize", "raw_path": b"/api/stylize", "root_path": "", "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()], "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def test_oversized_bodies_are_refused_without_reading_them(model, gallery):
    stylist, app = make_app(model, gallery, max_request_bytes=100_000)
    upload = httpx.Request("POST", "http://t/api/stylize", data={"content_example": "chelsea"},
                           files={"style": ("s.png", b"\0" * 280_000)})  # fmt: skip
    body = upload.read()
    chunks = [body[i : i + 30_000] for i in range(0, len(body), 30_000)]
    read = [0]
    status, answer = asgi_call(app, dict(upload.headers), chunks, read)  # with its Content-Length
    assert status == 413 and read[0] == 0
    assert json.loads(answer)["detail"] == "request too large: uploads are limited to 0.0954 MiB in all"
    read = [0]  # streamed (chunked), so no length: cut off as soon as it passes the limit
    headers = {k: v for k, v in upload.headers.items() if k != "content-length"}
    status, answer = asgi_call(app, headers, chunks, read)
    assert status == 413 and read[0] == 4 < len(chunks) and "request too large" in json.loads(answer)["detail"]
    response = post(TestClient(app), [("content", ("c.png", b"\0" * 150_000))], style_example="munch_the_scream")
    assert_error(response, 413, "request too large")
    assert stylist.codes.misses == 0  # nothing reached the model


def test_a_client_gone_before_its_turn_is_not_rendered(model, gallery):
    stylist, app = make_app(model, gallery)
    request = httpx.Request("POST", "http://t/api/stylize", data={**SMALL, "content_example": "chelsea",
                            "style_example": "munch_the_scream"})  # fmt: skip
    body = request.read()
    status, answer = asgi_call(app, dict(request.headers), [body], [0])  # then receive() says "disconnected"
    assert status == 499 and "closed the request" in json.loads(answer)["detail"]
    assert stylist.codes.misses == 0


class RenderCount:
    """Wraps ``stylist.render`` to count how many renders ever ran at once (``most``); ``started``
    is set when the first begins, and each waits ``delay`` seconds before rendering."""

    def __init__(self, stylist: Stylist, delay: float = 0.0):
        self.inside, self.most, self.delay = 0, 0, delay
        self.started, self.lock, self.render = threading.Event(), threading.Lock(), stylist.render
        stylist.render = self

    def __call__(self, job):
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        self.started.set()
        try:
            time.sleep(self.delay)
            return self.render(job)
        finally:
            with self.lock:
                self.inside -= 1


def test_parallel_requests_are_served_one_at_a_time_in_full(model, gallery):
    """Four requests at once: each gets its own correct answer, and model calls never overlap."""
    stylist, app = make_app(model, gallery)
    renders = RenderCount(stylist)
    alphas = ["0", "0.3", "0.7", "1"]
    expected = {a: post(TestClient(app), content_example="coffee", style_example="munch_the_scream", alpha=a).content for a in alphas}

    async def run_all():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as client:
            return await asyncio.gather(*(
                client.post("/api/stylize", data={**SMALL, "content_example": "coffee", "style_example": "munch_the_scream", "alpha": a})
                for a in alphas
            ))  # fmt: skip

    answers = asyncio.run(run_all())
    assert [r.status_code for r in answers] == [200] * 4
    assert [r.content for r in answers] == [expected[a] for a in alphas]
    assert renders.most == 1 and stylist.pending == 0


def test_a_request_cancelled_while_rendering_keeps_the_model_until_its_render_ends(model, gallery):
    """An ASGI server may cancel a request (its client gone); the render in a thread cannot be
    stopped, so the next request must not start its own render alongside it."""
    stylist, app = make_app(model, gallery)
    renders = RenderCount(stylist, delay=0.5)
    form = {**SMALL, "content_example": "chelsea", "style_example": "munch_the_scream"}

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as client:
            first = asyncio.create_task(client.post("/api/stylize", data=form))
            while not (renders.started.is_set() or first.done()):  # bounded: until its render starts
                await asyncio.sleep(0.01)
            first.cancel()
            return await client.post("/api/stylize", data=form), first

    second, first = asyncio.run(scenario())
    assert first.cancelled() and second.status_code == 200
    assert renders.most == 1 and stylist.pending == 0


def test_a_full_queue_answers_503_at_once_and_recovers(model, gallery):
    stylist, app = make_app(model, gallery, max_queue=2)
    form = {**SMALL, "content_example": "chelsea", "style_example": "munch_the_scream"}

    stylist.render_seconds = 7.3  # as if recent renders took that long

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as client:
            async with stylist.turn:  # the model is busy: requests queue up behind it
                tasks = [asyncio.create_task(client.post("/api/stylize", data=form)) for _ in range(5)]
                for _ in range(500):  # bounded wait: until two queue and three are refused
                    if stylist.pending == 2 and sum(t.done() for t in tasks) == 3:
                        break
                    await asyncio.sleep(0.01)
                refused = [t.result() for t in tasks if t.done()]
            answered = await asyncio.gather(*tasks)
            return refused, answered, await client.post("/api/stylize", data=form)

    refused, answered, later = asyncio.run(scenario())
    assert len(refused) == 3
    for r in refused:
        assert_error(r, 503, "server is busy (2 requests queued); try again in 8 s")
        assert r.headers["retry-after"] == "8"  # one render, rounded up
    assert sorted(r.status_code for r in answered) == [200, 200, 503, 503, 503]
    assert later.status_code == 200 and stylist.pending == 0
    measured = [float(r.headers["x-render-seconds"]) for r in [*answered, later] if r.status_code == 200]
    expected = 7.3
    for seconds in measured:  # in the order they finished, which is arrival order
        expected = 0.8 * expected + 0.2 * seconds
    assert stylist.render_seconds == pytest.approx(expected, abs=3e-3)
    assert stylist.retry_after() == max(1, math.ceil(expected))


def test_memory_is_given_back_once_the_server_has_been_idle_for_a_while(model, gallery, monkeypatch):
    stylist, app = make_app(model, gallery, release_after_idle_s=0.3)
    pending_at_release = []
    monkeypatch.setattr(stylist_module, "release_freed_memory", lambda: pending_at_release.append(stylist.pending))
    form = {**SMALL, "content_example": "chelsea", "style_example": "munch_the_scream"}

    async def bursts():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as client:
            async with stylist.turn:  # three queue before the first is rendered
                tasks = [asyncio.create_task(client.post("/api/stylize", data=form)) for _ in range(3)]
                while stylist.pending < 3:
                    await asyncio.sleep(0.01)
            answers = await asyncio.gather(*tasks)
            answers.append(await client.post("/api/stylize", data=form))  # within the idle time: no release yet
            released_early = list(pending_at_release)
            await asyncio.sleep(1.0)
            return answers, released_early

    answers, released_early = asyncio.run(bursts())
    assert [r.status_code for r in answers] == [200] * 4
    assert released_early == []  # requests back to back keep the memory (and the speed)
    assert pending_at_release == [0]  # once, after the last request, when idle


def test_page_and_docs_are_served_from_memory_only(served):
    _, client = served
    page = client.get("/")
    assert page.status_code == 200 and 'id="alpha"' in page.text and "http" not in page.text.replace("http-equiv", "")
    for name in ("app.js", "style.css", "favicon.svg"):
        assert client.get(f"/static/{name}").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text and "https://" not in docs.text
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert client.get(asset).status_code == 200
    for probe in ("/static/..%2F__init__.py", "/static/../stylist.py", "/docs/assets/..%2F..%2Fcore.py", "/static/index.htm"):
        assert client.get(probe).status_code == 404, probe
    spec = client.get("/openapi.json").json()
    form = spec["components"]["schemas"]["Body_stylize_api_stylize_post"]["properties"]
    assert {"content", "style", "style_example", "style_weights", "alpha", "preserve_color", "mask"} <= set(form)


def test_running_out_of_accelerator_memory_is_a_503_and_the_server_goes_on(model, gallery, monkeypatch):
    stylist, app = make_app(model, gallery)
    client = TestClient(app)
    real = stylist.model._transfer

    def out_of_memory_when_large(content, *args, **kwargs):
        if content.shape[-1] * content.shape[-2] > 5000:  # as a GPU would for a request too big for it
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(content, *args, **kwargs)

    monkeypatch.setattr(stylist.model, "_transfer", out_of_memory_when_large)
    too_big = post(client, content_example="chelsea", style_example="munch_the_scream", content_size="200")
    assert_error(too_big, 503, "out of accelerator memory", "lower content_size")
    assert post(client, content_example="chelsea", style_example="munch_the_scream").status_code == 200


def test_the_default_pixel_limit_keeps_the_pages_usual_sizes_and_refuses_a_2048_square_original(served):
    sizes = [int(s) for s in re.findall(r'<option value="(\d+)"', (ROOT / "adain/app/static/index.html").read_text())]
    limit = Limits().max_work_pixels
    offered = [s for s in sizes if s and s * round(s * 16 / 9) <= limit]  # what app.js keeps for this limit
    assert offered == [256, 384, 512, 768]
    _, client = served
    upload = io.BytesIO()
    Image.new("RGB", (2048, 2048), (120, 80, 40)).save(upload, format="PNG")
    r = post(client, files={"content": ("big.png", upload.getvalue(), "image/png")}, style_example="munch_the_scream",
             content_size="0")  # fmt: skip
    assert_error(r, 422, "content image: too large to stylize at 2048×2048 pixels (limit 1,048,576); lower the size")
