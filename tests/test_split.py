"""adain.training.validation_split: the held-out validation split by a stable hash of the file name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from adain.training.validation_split import VALIDATION_FRACTION, held_out, validation_names

ROOT = Path(__file__).resolve().parent.parent
NAMES = [f"photo_{i:05d}.webp" for i in range(4000)]


def test_the_split_is_the_name_hash_below_the_fraction():
    name = "n01440764_tench.webp"
    value = int(hashlib.sha256(name.encode()).hexdigest()[:16], 16) / 2**64
    assert held_out(name, value + 1e-9) and not held_out(name, value - 1e-9)
    assert held_out(f"some/folder/{name}", value + 1e-9)  # the base name decides, not where it lies


def test_fractions_are_met_and_grow_monotonically():
    small, large = validation_names(NAMES, 0.05), validation_names(NAMES, 0.10)
    assert 0.04 < len(small) / len(NAMES) < 0.06 and 0.085 < len(large) / len(NAMES) < 0.115
    assert set(small) < set(large)  # raising the fraction only adds files
    assert validation_names(reversed(NAMES), 0.05) == small  # order does not matter
    assert validation_names(NAMES[:1000], 0.05) == [n for n in small if n in NAMES[:1000]]  # nor the other files
    assert validation_names(NAMES, 0.0) == [] and validation_names(NAMES, 1.0) == sorted(NAMES)
    with pytest.raises(ValueError, match="fraction"):
        held_out("a.jpg", 1.5)


def test_the_committed_list_is_the_split_of_its_folders():
    """docs/training/validation.txt names, for each folder of the training data, the files held out."""
    listed = (ROOT / "docs" / "training" / "validation.txt").read_text().split()
    by_kind = {kind: [n.split("/", 1)[1] for n in listed if n.startswith(f"{kind}/")] for kind in VALIDATION_FRACTION}
    assert sorted(listed) == listed and len(set(listed)) == len(listed)
    for kind, names in by_kind.items():
        assert names and all(held_out(n, VALIDATION_FRACTION[kind]) for n in names)
    data = ROOT.parent / "shared" / "data" / "train"
    if data.is_dir():  # where the data is at hand, nothing held out is missing from the list
        for kind, names in by_kind.items():
            assert validation_names((p.name for p in (data / kind).iterdir()), VALIDATION_FRACTION[kind]) == names
