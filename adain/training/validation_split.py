"""A validation split that training never sees, chosen by a stable hash of each file's name.

A file is held out when the first 64 bits of the SHA-256 of its name, read as a fraction of
2⁶⁴, fall below the held-out fraction. The choice depends on the name alone: not on the
folder's other files, their order, the machine or the Python version (``hash()`` is salted per
process), so adding images never moves an old one between the splits, and the list written
beside a run can be checked against the folder at any time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import PurePath

# Held-out fractions of the issue that introduced the split: about 5 % of the photos, 10 % of the paintings.
VALIDATION_FRACTION = {"content": 0.05, "style": 0.10}


def held_out(name: str, fraction: float) -> bool:
    """Whether the file called ``name`` (its base name; folders do not count) is in the validation split."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"the held-out fraction must be in [0, 1], got {fraction}")
    digest = hashlib.sha256(PurePath(name).name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def validation_names(names: Iterable[str], fraction: float) -> list[str]:
    """The names among ``names`` that are held out, sorted."""
    return sorted(name for name in names if held_out(name, fraction))
