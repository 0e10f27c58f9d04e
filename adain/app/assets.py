"""The files the browser loads: the page (``static/``) and the API docs' Swagger UI, in memory.

All are read once at start-up into a fixed table and served by name from it, so no request path
ever reaches the file system, and nothing is fetched from the internet: Swagger UI's script and
stylesheet come from the ``fastapi-offline`` package instead of FastAPI's default CDN.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

PAGE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
DOCS_FILES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    """A file's bytes and its media type."""

    data: bytes
    media_type: str


def load_assets() -> tuple[dict[str, Asset], dict[str, Asset]]:
    """(page files, Swagger UI files), each by file name."""
    page_dir = resources.files("adain.app") / "static"
    docs_dir = resources.files("fastapi_offline") / "static"
    page = {name: Asset((page_dir / name).read_bytes(), media) for name, media in PAGE_FILES.items()}
    docs = {name: Asset((docs_dir / name).read_bytes(), media) for name, media in DOCS_FILES.items()}
    return page, docs
