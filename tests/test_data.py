"""adain/data.py: batches, per-rank and per-worker streams, determinism, bad samples."""

from __future__ import annotations

import io
import itertools
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image
from test_shards import shard_set, write_images
from torch.utils.data import DataLoader

from adain import data
from adain.data import AdaINDataModule, TrainingDataError


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
        assert content.dtype == torch.float32 and 0 <= content.min() and content.max() <= 1
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


def test_corrupt_samples_inside_a_shard_are_skipped_with_a_warning_and_counted(tmp_path: Path, caplog):
    path = tmp_path / "mixed.tar"
    with wds.TarWriter(str(path)) as tar:
        tar.write({"__key__": "good", "jpg": _jpeg(200)})
        tar.write({"__key__": "corrupt", "jpg": b"\xff\xd8 not really a jpeg"})
        tar.write({"__key__": "truncated", "jpg": _jpeg(10)[:200]})
        tar.write({"__key__": "no_image", "txt": b"caption only"})
    images = data.ShardImages("style", str(path), load_size=0, crop_size=32, flip=False, shuffle_buffer=1)
    with caplog.at_level(logging.WARNING, logger="adain.data"):
        crops = list(itertools.islice(images.crops(random.Random(0)), 5))
    assert all(c.shape == (3, 32, 32) and abs(c.mean().item() - 200 / 255) < 0.02 for c in crops)
    assert images.skipped >= 3
    for key in ("corrupt", "truncated", "no_image"):
        assert f"{key} in {path}" in caplog.text
    assert "style data: skipped an unreadable sample" in caplog.text


def test_shards_without_any_readable_image_are_an_error(tmp_path: Path, monkeypatch):
    path = tmp_path / "bad.tar"
    with wds.TarWriter(str(path)) as tar:
        tar.write({"__key__": "a", "jpg": b"garbage"})
    monkeypatch.setattr(data, "MAX_FAILURES_IN_A_ROW", 5)
    images = data.ShardImages("content", str(path), load_size=0, crop_size=32, flip=False, shuffle_buffer=1)
    with pytest.raises(TrainingDataError, match="5 unreadable samples in a row"):
        next(images.crops(random.Random(0)))


def test_missing_shards_and_impossible_sizes_are_refused(shards, tmp_path: Path):
    with pytest.raises(TrainingDataError, match="no such shard .and 2 more."):
        AdaINDataModule(str(tmp_path / "x-{0..2}.tar"), shards[1])
    with pytest.raises(ValueError, match="multiple of 8"):
        module(shards, crop_size=30)
    with pytest.raises(ValueError, match="load_size"):
        module(shards, load_size=24)
    assert data.expand_shards("pipe:cat /nowhere/a-{0..1}.tar") == ["pipe:cat /nowhere/a-0.tar", "pipe:cat /nowhere/a-1.tar"]
