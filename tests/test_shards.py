"""scripts/make_shards.py: tiny image folders, with bad files among the good ones, into shards.

Also provides ``write_images`` and ``make_shards`` to the data and training tests.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("make_shards", ROOT / "scripts" / "make_shards.py")
make_shards = sys.modules["make_shards"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_shards)


def write_images(folder: Path, count: int, size: tuple[int, int] = (64, 48), seed: int = 0, prefix: str = "img") -> list[Path]:
    """``count`` random-noise RGB JPEGs of ``size`` (width, height), each with its own mean colour."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        base = rng.uniform(40, 215, size=3)
        pixels = np.clip(base + rng.normal(0, 30, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
        path = folder / f"{prefix}{i:03d}.jpg"
        Image.fromarray(pixels).save(path, quality=95)
        paths.append(path)
    return paths


def shard_set(folder: Path, prefix: Path, shard_size: int = 3, short_side: int = 48) -> str:
    """Pack ``folder`` into shards; return the brace pattern (absolute) for the data module."""
    rc = make_shards.main([str(folder), str(prefix), "--shard-size", str(shard_size), "--short-side", str(short_side), "--workers", "1"])
    assert rc == 0
    index = json.loads((prefix.parent / f"{prefix.name}.json").read_text())
    return str(prefix.parent / index["pattern"])


def read_shard(path: Path) -> dict[str, dict[str, bytes]]:
    """Samples of one tar shard: key → {extension: bytes}."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            key, ext = member.name.split(".", 1)
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    """Seven readable images of several kinds and sizes, three broken ones and a text file."""
    src = tmp_path / "in"
    write_images(src, 3, (64, 48))
    write_images(src / "sub", 2, (30, 40), prefix="small")  # smaller than --short-side: kept as is
    Image.fromarray(np.full((50, 70), 128, np.uint8), "L").save(src / "sub" / "grey.png")
    Image.fromarray(np.zeros((60, 60, 4), np.uint8), "RGBA").save(src / "alpha.webp")
    good = (src / "img000.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "empty.png").write_bytes(b"")
    (src / "not_an_image.jpg").write_text("hello")
    (src / "notes.txt").write_text("not an image extension")
    return src


def test_shards_hold_the_readable_images_and_skip_the_rest(messy_folder: Path, tmp_path: Path):
    prefix = tmp_path / "out" / "set"
    # Two encoding processes, forked from a process of their own: forked from pytest's, where torch
    # and ONNX Runtime have run thread pools, a worker can hang on a lock copied mid-use.
    args = [str(messy_folder), str(prefix), "--shard-size", "3", "--short-side", "32", "--workers", "2"]
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_shards.py"), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    err = proc.stderr
    for name in ("truncated.jpg", "empty.png", "not_an_image.jpg"):
        assert f"skipped {messy_folder / name}" in err
    index = json.loads((tmp_path / "out" / "set.json").read_text())
    assert index["samples"] == 7 and index["skipped"] == 3
    assert [s["name"] for s in index["shards"]] == ["set-000000.tar", "set-000001.tar", "set-000002.tar"]
    assert [s["samples"] for s in index["shards"]] == [3, 3, 1]
    assert index["pattern"] == "set-{000000..000002}.tar"

    sources, keys = {}, set()
    for shard in index["shards"]:
        for key, sample in read_shard(tmp_path / "out" / shard["name"]).items():
            keys.add(key)
            meta = json.loads(sample["json"])
            with Image.open(io.BytesIO(sample["jpg"])) as img:
                assert img.format == "JPEG" and img.mode == "RGB"
                assert (img.width, img.height) == (meta["width"], meta["height"])
                sources[meta["source"]] = img.size
    assert len(keys) == 7
    assert sources["img000.jpg"] == (43, 32)  # 64×48 → shorter side 32
    assert sources["sub/small000.jpg"] == (30, 40)  # never upscaled by default
    assert sources["sub/grey.png"] == (45, 32)
    assert sources["alpha.webp"] == (32, 32)
    assert not list((tmp_path / "out").glob("*.tmp")) and not list((tmp_path / "out").glob(".*"))


def test_upscale_enlarges_small_images(tmp_path: Path):
    write_images(tmp_path / "in", 1, (30, 40))
    assert make_shards.main([str(tmp_path / "in"), str(tmp_path / "s"), "--short-side", "60", "--upscale", "--workers", "1"]) == 0
    (sample,) = read_shard(tmp_path / "s-000000.tar").values()
    assert Image.open(io.BytesIO(sample["jpg"])).size == (60, 80)
    assert json.loads((tmp_path / "s.json").read_text())["pattern"] == "s-000000.tar"  # one shard: no braces


def test_unchanged_images_keep_their_bytes_and_the_others_are_oriented_jpegs(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, (40, 30, 3), np.uint8)
    Image.fromarray(pixels).save(src / "small.webp", quality=80)
    Image.fromarray(np.repeat(np.repeat(pixels, 3, 0), 3, 1)).save(src / "big.webp", quality=80)  # 90×120
    exif = Image.Exif()
    exif[make_shards.EXIF_ORIENTATION] = 6  # rotate 90° when displayed
    Image.fromarray(pixels).save(src / "rotated.jpg", exif=exif)
    assert make_shards.main([str(src), str(tmp_path / "s"), "--short-side", "60", "--workers", "1"]) == 0
    samples = {json.loads(v["json"])["source"]: v for v in read_shard(tmp_path / "s-000000.tar").values()}
    assert samples["small.webp"]["webp"] == (src / "small.webp").read_bytes()  # stored unchanged
    big = Image.open(io.BytesIO(samples["big.webp"]["jpg"]))  # resized, so re-encoded
    assert big.size == (60, 80)
    rotated = Image.open(io.BytesIO(samples["rotated.jpg"]["jpg"]))  # orientation applied, not kept
    assert rotated.size == (40, 30) and json.loads(samples["rotated.jpg"]["json"])["width"] == 40


def test_exclude_leaves_out_the_listed_files(tmp_path: Path, capsys):
    write_images(tmp_path / "in", 3)
    write_images(tmp_path / "in" / "sub", 2, prefix="deep")
    listed = tmp_path / "validation.txt"
    listed.write_text("img001.jpg\nsub/deep000.jpg\n\nnot/there.jpg\n")
    args = [str(tmp_path / "in"), str(tmp_path / "s"), "--exclude", str(listed), "--workers", "1"]
    assert make_shards.main(args) == 0
    assert f"left out 2 listed in {listed}" in capsys.readouterr().err
    sources = {json.loads(v["json"])["source"] for v in read_shard(tmp_path / "s-000000.tar").values()}
    assert sources == {"img000.jpg", "img002.jpg", "sub/deep001.jpg"}
    assert json.loads((tmp_path / "s.json").read_text())["excluded"] == 2
    with pytest.raises(SystemExit) as exit_info:
        make_shards.main([*args[:2], "--exclude", str(tmp_path / "missing.txt")])
    assert exit_info.value.code == 2 and "missing.txt: no such list" in capsys.readouterr().err


def test_rerun_replaces_shards_and_removes_stale_ones(tmp_path: Path):
    write_images(tmp_path / "in", 5)
    prefix = tmp_path / "out" / "set"
    args = [str(tmp_path / "in"), str(prefix), "--shard-size", "2", "--workers", "1"]
    assert make_shards.main(args) == 0
    assert sorted(p.name for p in prefix.parent.glob("*.tar")) == ["set-000000.tar", "set-000001.tar", "set-000002.tar"]
    for path in sorted((tmp_path / "in").iterdir())[2:]:
        path.unlink()
    assert make_shards.main(args) == 0
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["set-000000.tar", "set.json"]
    assert len(read_shard(prefix.parent / "set-000000.tar")) == 2


def test_an_interrupted_run_leaves_earlier_shards_whole(tmp_path: Path, monkeypatch):
    write_images(tmp_path / "in", 4)
    prefix = tmp_path / "out" / "set"
    args = [str(tmp_path / "in"), str(prefix), "--shard-size", "3", "--workers", "1"]
    assert make_shards.main(args) == 0
    before = {p.name: p.read_bytes() for p in prefix.parent.iterdir()}
    write_images(tmp_path / "in", 4, seed=1)  # new content under the same names
    real_encode, calls = make_shards.encode, []

    def encode_then_interrupt(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_encode(*a, **kw)

    monkeypatch.setattr(make_shards, "encode", encode_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        make_shards.main(args)
    assert {p.name: p.read_bytes() for p in prefix.parent.iterdir()} == before  # no temp file, nothing half-written


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        make_shards.main([str(tmp_path / "missing"), str(tmp_path / "out" / "set")])
    assert exit_info.value.code == 2 and "missing: no such folder" in capsys.readouterr().err
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    (tmp_path / "text" / "b.jpg").write_text("not a jpeg")
    assert make_shards.main([str(tmp_path / "text"), str(tmp_path / "out" / "set"), "--workers", "1"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: none of the 1 image files in {tmp_path / 'text'} could be read"
    assert not any((tmp_path / "out").iterdir())


def test_when_the_list_excludes_every_image_the_error_says_so(tmp_path: Path, capsys):
    write_images(tmp_path / "in", 2)
    (tmp_path / "all.txt").write_text("img000.jpg\nimg001.jpg\n")
    args = [str(tmp_path / "in"), str(tmp_path / "s"), "--exclude", str(tmp_path / "all.txt"), "--workers", "1"]
    assert make_shards.main(args) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'in'}: all 2 images are listed in {tmp_path / 'all.txt'}"


def test_an_image_too_small_to_train_on_is_skipped_even_when_it_needs_no_change(tmp_path: Path, capsys):
    write_images(tmp_path / "in", 1, (64, 48))
    write_images(tmp_path / "in", 1, (6, 6), prefix="tiny")  # an RGB JPEG no larger than --short-side: kept bytes before
    assert make_shards.main([str(tmp_path / "in"), str(tmp_path / "s"), "--short-side", "48", "--workers", "1"]) == 0
    assert "tiny000.jpg: too small (6×6 pixels" in capsys.readouterr().err
    index = json.loads((tmp_path / "s.json").read_text())
    assert (index["samples"], index["skipped"]) == (1, 1)
