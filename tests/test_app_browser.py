"""End to end: `python -m adain.app` in a subprocess on a free loopback port, used over HTTP and
from the page in real headless Chromium (Debian's `chromium`, driven by Playwright).

`make test` installs chromium where it can; without it the browser tests skip, unless
REQUIRE_BROWSER=1 (set by CI), where they fail.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from clips import make_clip, read_frames
from conftest import script
from PIL import Image

pytestmark = pytest.mark.browser

CHANGE = 3.0  # mean absolute change (of 255) that is plainly visible
SCREENSHOT = script("app_screenshot")  # the server and page helpers the README's screenshot is made with
CHROMIUM, CHROMIUM_ARGS, RENDER_TIMEOUT_MS = SCREENSHOT.CHROMIUM, SCREENSHOT.CHROMIUM_ARGS, SCREENSHOT.RENDER_TIMEOUT_MS


def start_server(args: list[str], tmp_path_factory: pytest.TempPathFactory):
    """``python -m adain.app ARGS`` as a user starts it (yields its base URL); a failed start fails the test."""
    log = tmp_path_factory.mktemp("app") / "server.log"
    try:
        with SCREENSHOT.serving(args, log) as url:
            yield url
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="module")
def server(decoder_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """The app with an untrained decoder; yields its base URL."""
    yield from start_server(["--decoder", str(decoder_file), "--device", "cpu"], tmp_path_factory)


def tiny_png(path: Path, size=(64, 48), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8), "RGB").save(path)
    return path


def test_served_over_http(server: str):
    """The real server on a socket: health, a stylized upload, a refused one; it keeps running."""
    health = httpx.get(f"{server}/api/health", timeout=10).json()
    assert health["status"] == "ok" and health["device"] == "cpu"
    buf = io.BytesIO()
    Image.new("RGB", (40, 32), (120, 80, 200)).save(buf, format="PNG")
    form = {"style_example": "munch_the_scream", "content_size": "0", "style_size": "64"}
    ok = httpx.post(f"{server}/api/stylize", data=form, files={"content": ("p.png", buf.getvalue())}, timeout=120)
    assert ok.status_code == 200 and Image.open(io.BytesIO(ok.content)).size == (40, 32)
    bad = httpx.post(f"{server}/api/stylize", data=form, files={"content": ("p.png", b"not an image")}, timeout=60)
    assert bad.status_code == 422 and bad.json()["detail"] == "content image: not a recognised image file"
    assert httpx.get(f"{server}/api/health", timeout=10).json()["status"] == "ok"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (`make test` installs Debian's chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, server: str):
    """A fresh page that may reach only the server: any other request is refused and recorded."""
    context = browser.new_context(viewport=SCREENSHOT.VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    outside: list[str] = []

    def only_the_server(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.outside_requests = outside
    return context, page


@pytest.fixture
def page(browser, server: str):
    """:func:`open_page` on the untrained decoder's server."""
    context, page = open_page(browser, server)
    yield page
    context.close()


def result_digest(page) -> str:
    """SHA-256 of the bytes behind the result image shown now."""
    return hashlib.sha256(SCREENSHOT.result_bytes(page)).hexdigest()


def test_upload_move_alpha_see_new_result_and_download(page, server: str, tmp_path: Path):
    page.goto(server)
    page.wait_for_selector("#result[data-seq]")  # the page stylizes its default example on load
    assert page.locator("#style-gallery .tile").count() == 9
    sizes = page.eval_on_selector_all("#size option", "options => options.map((o) => o.value)")
    assert sizes == ["256", "384", "512", "768", "0"]  # 1024 px at 16:9 is over the default --max-pixels
    page.select_option("#size", "0")  # original size: the upload below is small
    page.set_input_files("#content-file", str(tiny_png(tmp_path / "photo.png")))
    first = page.wait_for_function(
        """() => { const r = document.getElementById("result");
                   return r.dataset.alpha === "1" && r.naturalWidth === 64 && r.naturalHeight === 48 && r.dataset.seq; }"""
    ).json_value()
    before = result_digest(page)

    page.locator("#alpha").focus()
    for _ in range(6):  # move the slider as a keyboard user does: 1 → 0.7
        page.keyboard.press("ArrowLeft")
    assert page.locator("#alpha-value").inner_text() == "0.70"
    page.wait_for_selector('#result[data-alpha="0.7"]')
    assert int(page.get_attribute("#result", "data-seq")) > int(first)
    assert page.evaluate("document.getElementById('result').naturalWidth") == 64
    assert result_digest(page) != before  # a new image, not the old one re-shown
    assert page.locator("#error").is_hidden()
    assert "64 × 48 px" in page.inner_text("#status")

    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "saved.png"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "stylized.png" and Image.open(saved).size == (64, 48)
    assert page.outside_requests == []


def test_no_broken_image_before_the_first_result(page, server: str):
    """Until a result arrives, the result image is not displayed at all (it once showed a broken-image icon)."""
    page.route("**/api/stylize", lambda route: route.abort())  # the first result never comes
    page.goto(server)
    page.wait_for_selector("#error:not([hidden])")
    assert page.evaluate("getComputedStyle(document.getElementById('result')).display") == "none"


def test_removing_the_last_painting_drops_the_answer_in_flight(page, server: str):
    """A result for a painting no longer chosen is never shown: removing the last one cancels its request."""
    held = []
    page.route("**/api/stylize", lambda route: held.append(route))  # the first request waits here, unanswered
    page.goto(server)
    page.wait_for_function("document.querySelectorAll('#chosen-styles .remove').length === 1")
    deadline = time.monotonic() + 30
    while not held and time.monotonic() < deadline:  # bounded: until the page asks
        page.wait_for_timeout(50)
    assert len(held) == 1
    page.click("#chosen-styles .remove")
    page.wait_for_timeout(500)
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(png, format="PNG")
    # The answer comes after all; a page that aborted the request never sees it.
    held[0].fulfill(status=200, content_type="image/png", body=png.getvalue(), headers={"X-Image-Size": "64x48"})
    page.wait_for_timeout(1000)
    assert page.locator("#result").is_hidden() and page.inner_text("#placeholder") == "Pick a painting."
    assert page.locator("#busy").is_hidden()


def test_bad_upload_shows_the_servers_message_and_the_page_recovers(page, server: str, tmp_path: Path):
    page.goto(server)
    page.wait_for_selector("#result[data-seq]")
    page.select_option("#size", "0")
    (tmp_path / "notes.txt").write_text("not a picture")
    page.set_input_files("#content-file", str(tmp_path / "notes.txt"))
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "content image: not a recognised image file"
    page.set_input_files("#content-file", str(tiny_png(tmp_path / "ok.png", (40, 40), seed=1)))
    page.wait_for_function("document.getElementById('result').naturalWidth === 40")
    page.wait_for_selector("#error[hidden]", state="attached")
    assert page.outside_requests == []


def test_a_clip_is_stylized_when_asked_and_shown_as_a_video(page, server: str, tmp_path: Path):
    """An uploaded clip waits for "Stylize the clip" (a clip holds the server for every frame),
    comes back as a playable video to download, and a bad clip shows the server's message."""
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/api/stylize-video") else None)
    page.goto(server)
    page.wait_for_selector("#result[data-seq]")
    page.select_option("#size", "0")
    page.set_input_files("#content-file", str(make_clip(tmp_path / "clip.mp4", frames=6)))
    page.wait_for_selector("#render-clip:not([hidden])")
    assert page.locator("#result").is_hidden() and "Stylize the clip" in page.inner_text("#placeholder")
    assert page.locator("#video-format").is_visible() and page.locator("#format").is_hidden()
    page.locator("#alpha").focus()
    page.keyboard.press("ArrowLeft")  # 1 → 0.95: a change alone sends nothing
    page.wait_for_timeout(1000)
    assert asked == []

    page.click("#render-clip")
    page.wait_for_selector("#result-video[data-seq]")
    assert len(asked) == 1 and page.get_attribute("#result-video", "data-alpha") == "0.95"
    assert "6 frames, 64 × 48 px" in page.inner_text("#status") and page.locator("#result").is_hidden()
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "saved.mp4"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "stylized.mp4" and read_frames(saved).shape == (6, 48, 64, 3)

    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 10)
    page.set_input_files("#content-file", str(tmp_path / "broken.mp4"))
    page.click("#render-clip")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error").startswith("content video: not a readable video")

    page.click("#content-gallery .tile[data-name='chelsea']")  # back to a photo: redrawn by itself again
    page.wait_for_selector("#result:not([hidden])")
    assert page.locator("#result-video").is_hidden() and page.locator("#render-clip").is_hidden()
    assert page.locator("#error").is_hidden() and page.outside_requests == []


def test_api_docs_render_offline(page, server: str):
    page.goto(f"{server}/docs")
    page.wait_for_selector(".opblock-post")
    paths = [p.replace("\u200b", "") for p in page.locator(".opblock-summary-path").all_inner_texts()]
    assert {"/api/stylize", "/api/stylize-video"} <= set(paths) and len(paths) == 6
    assert page.outside_requests == []


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory: pytest.TempPathFactory):
    """The app as ``adain-serve`` starts it: the bundled decoder."""
    yield from start_server(["--device", "cpu"], tmp_path_factory)


def test_with_the_bundled_decoder_alpha_weights_and_a_split_visibly_change_the_result(browser, shipped_server: str):
    """A gallery photo with a gallery painting gives a picture, and α, a second painting (blended)
    and a left | right split each change what is seen, where it should."""
    context, page = open_page(browser, shipped_server)

    def shown() -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(SCREENSHOT.result_bytes(page))).convert("RGB"), dtype=float)

    page.goto(shipped_server)
    page.wait_for_selector("#result[data-seq]")  # Chelsea in The Starry Night, the page's defaults
    page.select_option("#size", "256")
    page.wait_for_function("document.getElementById('result').naturalHeight === 256")
    alone = shown()
    assert alone.shape[0] == 256 and alone.std() > 20  # a picture, not a flat square

    page.locator("#alpha").focus()
    for _ in range(10):  # 1 → 0.5
        page.keyboard.press("ArrowLeft")
    page.wait_for_selector('#result[data-alpha="0.5"]')
    half = shown()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector('#result[data-alpha="1"]')

    SCREENSHOT.pick(page, "chelsea", ["van_gogh_starry_night", "munch_the_scream"], "blend")
    assert page.locator("#chosen-styles input[type=range]").count() == 2  # each painting its weight
    blended = shown()
    SCREENSHOT.pick(page, "chelsea", ["van_gogh_starry_night", "munch_the_scream"], "left-right")
    assert page.locator("#chosen-styles input[type=range]").count() == 0  # a split has no weights
    split = shown()

    def change(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a - b).mean())

    assert change(alone, half) > CHANGE and change(alone, blended) > CHANGE
    width = split.shape[1]
    left, right = slice(0, width * 2 // 5), slice(width * 3 // 5, width)  # away from the seam
    assert change(split[:, right], alone[:, right]) > change(split[:, left], alone[:, left]) + CHANGE
    assert page.locator("#error").is_hidden() and page.outside_requests == []
    context.close()
