"""The bundled example photos and public-domain paintings (``examples/``, shipped in the wheel), held in memory.

Read once at start-up, with square thumbnails for the page's gallery. Requests pick an example
by name, a key of this fixed table, so a request's text never becomes a path on disk.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageOps

from adain.core.options import IMAGE_EXTENSIONS
from adain.core.shipped import shipped
from adain.media.image_io import encode_image, open_image

EXAMPLES_DIR = shipped("examples")
KINDS = ("content", "style")
THUMBNAIL_SIDE = 160  # px; the page shows tiles at 80 CSS px, sharp on 2× screens
_SOURCE_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|")  # | `file.jpg` | what it is | licence |


class UnknownExample(ValueError):
    """A request named an example that is not bundled."""


@dataclass(frozen=True)
class Example:
    """One bundled image: its file bytes, a square JPEG thumbnail, and a human title."""

    name: str
    title: str
    data: bytes
    media_type: str
    thumbnail: bytes


class Gallery:
    """Examples by kind (``content``, ``style``) and name."""

    def __init__(self, examples: dict[str, dict[str, Example]]):
        self.examples = examples

    @classmethod
    def load(cls, root: Path = EXAMPLES_DIR) -> "Gallery":
        """Every image under ``root/content`` and ``root/style`` (none if the folder is absent),
        titled from ``root/SOURCES.md`` where it lists the file."""
        titles = _titles(root / "SOURCES.md")
        examples: dict[str, dict[str, Example]] = {}
        for kind in KINDS:
            folder = root / kind
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
            examples[kind] = {p.stem: _example(p, titles.get(p.name)) for p in files}
        return cls(examples)

    def get(self, kind: str, name: str) -> Example:
        """The example called ``name``; :class:`UnknownExample` (listing the names) if there is none."""
        found = self.examples.get(kind, {}).get(name)
        if found is None:
            choices = ", ".join(self.examples.get(kind, {})) or "none bundled"
            raise UnknownExample(f"unknown {kind} example {name!r}; choose from: {choices}")
        return found


def _example(path: Path, title: str | None) -> Example:
    data = path.read_bytes()
    thumbnail = ImageOps.fit(open_image(data, path.name).convert("RGB"), (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    title = title or path.stem.replace("_", " ").capitalize()
    return Example(path.stem, title, data, media_type, encode_image(thumbnail, "JPEG", quality=85))


def _titles(sources: Path) -> dict[str, str]:
    """File name → the description column of SOURCES.md's tables (markdown emphasis removed)."""
    if not sources.is_file():
        return {}
    rows = (_SOURCE_ROW.match(line) for line in sources.read_text(encoding="utf-8").splitlines())
    return {m[1]: m[2].replace("*", "") for m in rows if m}
