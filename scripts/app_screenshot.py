"""A screenshot of the web app with the bundled decoder, for the README and docs/app.md.

    python scripts/app_screenshot.py --out docs/images/app.png

Starts ``python -m adain.app`` on a free loopback port (the bundled decoder unless ``--decoder``),
opens the page in headless Chromium (Debian's ``chromium``, driven by Playwright, as the browser
test does), picks the photo and the two paintings of ``--content`` and ``--styles``, splits them
left | right, waits for the result and saves the window. Needs the ``[app]`` and ``[dev]`` extras
and ``/usr/bin/chromium`` (``make browser``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from adain.core.commandline import failed, report_file, run_main

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
START_TIMEOUT_S = 180  # loading VGG19 on a busy 2-core machine
RENDER_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1280, "height": 900}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(args: Sequence[str], log: Path) -> Iterator[str]:
    """``python -m adain.app ARGS`` on a free loopback port, its output in ``log``, until it answers
    ``/api/health``; yields its base URL and stops it afterwards. RuntimeError (with the log) if it
    exits or does not answer within :data:`START_TIMEOUT_S`."""
    import httpx2 as httpx

    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "adain.app", *args, "--port", str(port)], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # bounded: until healthy, the process dies, or the deadline
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {START_TIMEOUT_S} s: {log.read_text()}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def result_bytes(page) -> bytes:
    """The bytes behind the result image the page shows now."""
    data = page.evaluate(
        """async () => Array.from(new Uint8Array(await (await fetch(document.getElementById("result").src)).arrayBuffer()))"""
    )
    return bytes(data)


def pick(page, content: str, styles: Sequence[str], split: str) -> None:
    """Choose the gallery photo ``content`` and exactly the paintings ``styles``, then ``split`` them
    (``blend``, ``left-right`` or ``top-bottom``; two paintings), and wait for the result of those
    settings: something must change, or no new result comes."""
    page.wait_for_selector("#result[data-seq]")  # the page stylizes its default example on load
    before = int(page.get_attribute("#result", "data-seq"))
    page.click(f"#content-gallery .tile[data-name='{content}']")
    for name in styles:
        if page.get_attribute(f"#style-gallery .tile[data-name='{name}']", "aria-pressed") != "true":
            page.click(f"#style-gallery .tile[data-name='{name}']")
    for tile in page.locator("#style-gallery .tile[aria-pressed='true']").all():
        if tile.get_attribute("data-name") not in styles:
            tile.click()
    if len(styles) == 2:
        page.select_option("#split", split)  # offered for two paintings only
    shown = "" if split == "blend" else split
    page.wait_for_function(
        f"""() => {{ const r = document.getElementById("result");
                    return Number(r.dataset.seq) > {before} && r.dataset.split === "{shown}"; }}"""
    )
    page.wait_for_selector("#busy[hidden]", state="attached")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=report_file, required=True, help="the screenshot (PNG)")
    p.add_argument("--decoder", help="decoder file (default: the bundled one)")
    p.add_argument("--content", default="chelsea", help="gallery photo (default chelsea)")
    p.add_argument("--styles", nargs=2, default=["van_gogh_starry_night", "munch_the_scream"], help="two gallery paintings")
    p.add_argument("--size", default="512", help="the page's output size (default 512)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not CHROMIUM.exists():
        return failed(FileNotFoundError(f"{CHROMIUM} is not installed (make browser installs Debian's chromium)"))
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    server_args = ["--device", "cpu", *(["--decoder", args.decoder] if args.decoder else [])]
    log = args.out.with_suffix(".server.log")
    try:
        with serving(server_args, log) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(RENDER_TIMEOUT_MS)
            page.goto(url)
            page.wait_for_selector("#result[data-seq]")  # the first result, before the size changes
            page.select_option("#size", args.size)
            pick(page, args.content, args.styles, "left-right")
            page.screenshot(path=str(args.out))
            browser.close()
    except (OSError, RuntimeError, PlaywrightError) as err:  # no server, a page that never answered
        return failed(err)
    finally:
        log.unlink(missing_ok=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main)
