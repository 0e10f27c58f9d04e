"""Files that ship with the package: the example gallery and the bundled decoder.

In an installed wheel they are package data (``pyproject.toml`` maps the checkout's top-level
``examples/`` and ``checkpoints/`` to ``adain/examples`` and ``adain/checkpoints``), found with
:mod:`importlib.resources`; in a checkout they are those top-level folders themselves.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(name: str) -> Path:
    """The shipped folder ``name`` (``examples`` or ``checkpoints``): inside the installed
    package if it is there, else at the top of the checkout."""
    inside = files("adain") / name
    if isinstance(inside, Path) and inside.is_dir():
        return inside
    return Path(__file__).resolve().parents[2] / name
