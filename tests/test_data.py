"""adain/training/data.py: batches, per-rank and per-worker streams, determinism, bad samples."""

from __future__ import annotations

import io
import itertools
import logging
import random
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image
from test_shards import shard_set, write_images
from torch.utils.data import DataLoader

from adain.training import data
from adain.training.data import AdaINDataModule, TrainingDataError


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("data")
    write_images(root / "content", 7, (64, 48), seed=1)
    write_images(root / "style", 5, (48, 70), seed=2)
    return shard_set(root / "content", root / "shards" / "content"), shard_set(root / "style", root / "shards" / "style")


def module(shards: tuple[str, str], **overrides) -> AdaINDataModule:
    settings = dict(batch_size=2, load_size=40, crop_size=32, steps_per_epoch=3, shuffle_buffer=4, num_workers=0, seed=0)
    return AdaINDataModule(*shards, **{**settings, **overrides})


def first_batches(dm: AdaINDataModule, rank: int = 0, n: int = 2) -> list[torch.Tensor]:
    loader = DataLoader(dm.dataset(rank), batch_size=dm.hparams.batch_size)
    return [torch.cat(batch) for batch in itertools.islice(loader, n)]


def test_batches_are_crop_pairs_and_an_epoch_has_a_fixed_length(shards):
    dm = module(shards, flip=True)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    for content, style in batches:
        assert content.shape == style.shape == (2, 3, 32, 32)
        assert content.dtype == torch.uint8  # made floats on the device (AdaINTraining.on_after_batch_transfer)
    assert list(loader)[0][0].shape == (2, 3, 32, 32)  # the next epoch works too


def test_a_seed_gives_the_same_samples_and_ranks_get_different_ones(shards):
    rank0 = first_batches(module(shards), rank=0)
    again = first_batches(module(shards), rank=0)
    rank1 = first_batches(module(shards), rank=1)
    other_seed = first_batches(module(shards, seed=1), rank=0)
    assert all(torch.equal(a, b) for a, b in zip(rank0, again))
    assert not any(torch.equal(a, b) for a, b in zip(rank0, rank1))
    assert not any(torch.equal(a, b) for a, b in zip(rank0, other_seed))


def test_a_resumed_run_draws_fresh_samples(shards):
    dm = module(shards)
    start = next(iter(DataLoader(dm.dataset(0, start_step=0), batch_size=2)))
    resumed = next(iter(DataLoader(dm.dataset(0, start_step=1000), batch_size=2)))
    assert not torch.equal(start[0], resumed[0])


def test_each_worker_has_its_own_stream_and_the_epoch_stays_exact(shards):
    dm = module(shards, num_workers=2, steps_per_epoch=3)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == 3  # worker 0 yields two batches, worker 1 one
    assert not torch.equal(batches[0][0], batches[1][0])  # consecutive batches come from different workers
    again = list(loader)  # persistent workers: the next epoch draws new samples
    assert not torch.equal(batches[0][0], again[0][0])


def _jpeg(colour: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), colour, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_corrupt_samples_inside_a_shard_are_skipped_and_the_shard_named_once(tmp_path: Path, caplog):
    path = tmp_path / "mixed.tar"
    with wds.TarWriter(str(path)) as tar:
        tar.write({"__key__": "good", "jpg": _jpeg(200)})
        tar.write({"__key__": "corrupt", "jpg": b"\xff\xd8 not really a jpeg"})
        tar.write({"__key__": "truncated", "jpg": _jpeg(10)[:200]})
        tar.write({"__key__": "no_image", "txt": b"caption only"})
    images = data.ShardImages("style", str(path), load_size=0, crop_size=32, flip=False, shuffle_buffer=1)
    with caplog.at_level(logging.WARNING, logger="adain.training.data"):
        crops = list(itertools.islice(images.crops(random.Random(0)), 5))
    assert all(c.shape == (3, 32, 32) and abs(c.float().mean().item() - 200) < 5 for c in crops)
    assert images.skipped >= 12  # three bad samples in each of the 4+ passes over the shard
    assert [r.getMessage().split(", the first:")[0] for r in caplog.records] == [
        f"style data: skipping unreadable samples in shard {path}"
    ]


def _empty_tar(path: Path) -> None:
    with tarfile.open(path, "w"):
        pass


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file (ReadError)"),
        (lambda p: p.write_bytes(bytes(range(256)) * 20), "invalid header (ReadError)"),
        (_empty_tar, "no samples in it"),
    ],
    ids=["zero-byte", "not-a-tar", "empty-tar"],
)
def test_a_shard_without_samples_is_named_once_and_never_drawn_again(tmp_path: Path, caplog, make, reason):
    good = tmp_path / "good.tar"
    with wds.TarWriter(str(good)) as tar:
        tar.write({"__key__": "a", "jpg": _jpeg(90)})
    make(tmp_path / "bad.tar")
    images = data.ShardImages("content", str(tmp_path / "{good,bad}.tar"), 0, 32, False, shuffle_buffer=1)
    with caplog.at_level(logging.WARNING, logger="adain.training.data"):
        crops = list(itertools.islice(images.crops(random.Random(0)), 40))
    assert len(crops) == 40
    assert [r.getMessage() for r in caplog.records] == [f"content data: skipping shard {tmp_path / 'bad.tar'}: {reason}"]
    assert images.bad_shards == {str(tmp_path / "bad.tar"): reason}


def _within(seconds: float, task) -> BaseException | None:
    """Run ``task`` in a thread; what it raised, or a failure if it is still running (it hung)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            task()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            raised.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds} s")
    return raised[0] if raised else None


def test_shards_that_all_yield_nothing_end_in_one_error_instead_of_spinning(tmp_path: Path, caplog):
    (tmp_path / "a.tar").write_bytes(b"")
    _empty_tar(tmp_path / "b.tar")
    images = data.ShardImages("content", str(tmp_path / "{a,b}.tar"), 0, 32, False, shuffle_buffer=4)
    with caplog.at_level(logging.WARNING, logger="adain.training.data"):
        err = _within(20, lambda: next(images.crops(random.Random(0))))
    assert isinstance(err, TrainingDataError)
    assert str(err) == f"content shards {str(tmp_path / '{a,b}.tar')!r}: none of the 2 yields a sample (first: " + (
        f"{tmp_path / 'a.tar'}: empty file (ReadError))" if "a.tar" in caplog.records[0].getMessage() else
        f"{tmp_path / 'b.tar'}: no samples in it)"
    )  # fmt: skip
    assert len(caplog.records) == 2 and "BufferedReader" not in caplog.text


def test_an_empty_tar_alone_ends_in_an_error_not_a_hang(tmp_path: Path):
    _empty_tar(tmp_path / "empty.tar")  # a valid tar with no members: webdataset reports nothing at all
    images = data.ShardImages("style", str(tmp_path / "empty.tar"), 0, 32, False, shuffle_buffer=4)
    err = _within(20, lambda: next(images.crops(random.Random(0))))
    assert isinstance(err, TrainingDataError) and str(err).endswith("none of the 1 yields a sample (first: " + f"{tmp_path / 'empty.tar'}: no samples in it)")


def test_a_truncated_shard_is_read_on_its_own_and_named_once(tmp_path: Path, caplog):
    whole = tmp_path / "whole.tar"
    with wds.TarWriter(str(whole)) as tar:
        for i in range(4):
            tar.write({"__key__": f"k{i}", "jpg": _jpeg(60 + i)})
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[:2200])  # inside the second member's header block
    images = data.ShardImages("content", str(cut), 0, 32, False, shuffle_buffer=1)
    with caplog.at_level(logging.WARNING, logger="adain.training.data"):
        crops = list(itertools.islice(images.crops(random.Random(0)), 6))
    assert all(abs(c.float().mean().item() - 60) < 5 for c in crops)  # only k0 survives, over and over
    assert [r.getMessage() for r in caplog.records] == [
        f"content data: shard {cut} breaks off after 1 samples: unexpected end of data (ReadError)"
    ]  # not "duplicate file name", as when its last sample merged with the next pass's first


def test_shards_without_any_readable_image_are_an_error_after_one_line_each(tmp_path: Path, monkeypatch, caplog):
    for name in ("a", "b"):
        with wds.TarWriter(str(tmp_path / f"{name}.tar")) as tar:
            for i in range(3):
                tar.write({"__key__": f"{name}{i}", "jpg": b"garbage"})
    monkeypatch.setattr(data, "MAX_FAILURES_IN_A_ROW", 12)
    pattern = str(tmp_path / "{a,b}.tar")
    images = data.ShardImages("content", pattern, load_size=0, crop_size=32, flip=False, shuffle_buffer=1)
    with caplog.at_level(logging.WARNING, logger="adain.training.data"), pytest.raises(TrainingDataError) as raised:
        next(images.crops(random.Random(0)))
    assert str(raised.value).startswith(f"content shards {pattern!r}: 12 unreadable samples in a row from 2 shards, none readable")
    assert sorted(r.getMessage().split(", the first:")[0] for r in caplog.records) == [
        f"content data: skipping unreadable samples in shard {tmp_path / name}.tar" for name in "ab"
    ]


def test_missing_shards_and_impossible_sizes_are_refused(shards, tmp_path: Path):
    with pytest.raises(TrainingDataError, match="no such shard .and 2 more."):
        AdaINDataModule(str(tmp_path / "x-{0..2}.tar"), shards[1])
    with pytest.raises(ValueError, match="multiple of 8"):
        module(shards, crop_size=30)
    with pytest.raises(ValueError, match="load_size"):
        module(shards, load_size=24)
    assert data.expand_shards("pipe:cat /nowhere/a-{0..1}.tar") == ["pipe:cat /nowhere/a-0.tar", "pipe:cat /nowhere/a-1.tar"]


def test_in_memory_images_keep_shard_order_and_count_unreadable_samples(tmp_path: Path, caplog):
    """Decoded on threads, kept and counted in order: the same images as one at a time."""
    def png(value: int) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (40, 36), (value, value, value)).save(buffer, "PNG")
        return buffer.getvalue()

    samples = [{"png": png(10)}, {"jpg": b"garbage"}, {"png": png(90)}, {"txt": b"no image"}, {"png": png(170)}]
    for shard in ("a", "b"):
        with wds.TarWriter(str(tmp_path / f"{shard}.tar")) as tar:
            for i, sample in enumerate(samples):
                tar.write({"__key__": f"{shard}{i}", **sample})
    pattern = str(tmp_path / "{a,b}.tar")
    with caplog.at_level(logging.WARNING, logger="adain.training.data"):
        held = data.MemoryImages(data.ShardImages("style", pattern, load_size=0, crop_size=32, flip=False, shuffle_buffer=1))
    assert [int(image[0, 0, 0]) for image in held.images] == [10, 90, 170] * 2
    assert held.skipped == 4
    assert [r.getMessage().split(", the first:")[0] for r in caplog.records] == [
        f"style data: skipping unreadable samples in shard {tmp_path / name}.tar" for name in "ab"
    ]


def test_in_memory_data_decodes_every_image_once_and_then_only_crops(shards, monkeypatch):
    dm = module(shards, in_memory=True, flip=True)
    dm.setup("fit")
    assert [len(dm.content.images), len(dm.style.images)] == [7, 5]
    assert all(image.dtype == torch.uint8 and min(image.shape[1:]) == 40 for image in dm.content.images)  # load_size
    monkeypatch.setattr(data, "decode", lambda *args, **kwargs: pytest.fail("decoded again"))
    dm.setup("fit")  # a second set-up keeps what is in memory
    batches = list(dm.train_dataloader())
    assert len(batches) == 3 and all(c.shape == s.shape == (2, 3, 32, 32) for c, s in batches)
    assert batches[0][0].dtype == torch.uint8
    held = torch.stack([image[:, :32, :32] for image in dm.content.images]).float().mean(dim=(1, 2, 3))
    drawn = torch.cat([c for c, _ in batches]).float().mean(dim=(1, 2, 3))
    assert all((held - m).abs().min() < 20 for m in drawn)  # crops of the held images (each has its own colour)
    assert first_batches(dm) and all(torch.equal(a, b) for a, b in zip(first_batches(dm), first_batches(dm)))  # seeded
