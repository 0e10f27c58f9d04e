"""Training data: endless (content, style) crop pairs from two webdataset shard sets.

Shards are drawn *with replacement* (resampled), so a stream never runs dry and every
rank of a multi-GPU/multi-node run can take exactly ``steps_per_epoch`` batches per epoch:
no rank waits for another's data, so DDP never hangs at an epoch end. Each rank and each
data-loading worker seeds its own random generator from ``(seed, rank, worker, resume
step, epoch)``, so they all see different samples and a run is reproducible given its
seed. A sample that cannot be read (corrupt JPEG, truncated tar, no image in it) is
skipped and counted, with one warning per shard; a shard set that yields nothing readable
is an error, never an endless loop.

Augmentation follows the paper (Sec. 6.2): the shorter side is resized to ``load_size``
(512) keeping the aspect ratio, then a random ``crop_size`` (256) square is cut out; a
random horizontal flip is optional (off in the paper). Crops travel as 8-bit images (a quarter
of the bytes to queue and copy to the GPU); the training module makes them floats on the device.

With ``in_memory``, every image is decoded once, at the start, and held (8-bit): each crop is
then a slice instead of a decode, which keeps a fast GPU fed from a data set that fits in memory
(the stand-in data: ~1 GB). Crops are then drawn from uniformly chosen images.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import lightning as L
import torch
import webdataset as wds
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from adain.core.errors import ImageError, UsageError
from adain.core.options import IMAGE_EXTENSIONS
from adain.media.image_io import MAX_INPUT_PIXELS, open_image, prepare_image

log = logging.getLogger(__name__)

IMAGE_KEYS = tuple(ext.removeprefix(".") for ext in IMAGE_EXTENSIONS)  # a sample's image field, by extension
# A stream that fails this many samples in a row has no readable data (wrong URL, wrong files).
MAX_FAILURES_IN_A_ROW = 200


class TrainingDataError(ValueError):
    """Shards that are missing, or contain no readable image at all."""


def expand_shards(pattern: str) -> list[str]:
    """The shard URLs in a brace pattern (``a-{000..009}.tar``, ``::``-separated lists, ``pipe:``,
    ``s3://`` …); local files are checked to exist."""
    urls = wds.shardlists.expand_urls(pattern)
    if not urls:
        raise TrainingDataError(f"{pattern!r}: no shards")
    missing = [u for u in urls if _is_local(u) and not Path(u.removeprefix("file:")).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise TrainingDataError(f"{missing[0]}: no such shard{more}; check the pattern {pattern!r}")
    return urls


def _is_local(url: str) -> bool:
    return url.startswith("file:") or ":" not in url.split("/", 1)[0]


def decode(data: bytes, load_size: int, crop_size: int, name: str = "sample") -> Tensor:
    """An image as training crops it: its shorter side resized to ``load_size`` (0: kept, but at
    least ``crop_size``), 3×H×W, 8-bit."""
    img = open_image(data, name=name, short_side=load_size)
    side = load_size or (crop_size if min(img.size) < crop_size else 0)
    rgb = prepare_image(img, side, max_pixels=MAX_INPUT_PIXELS, name=name).rgb[0]
    return rgb.mul(255).round_().to(torch.uint8)


def random_crop(image: Tensor, crop_size: int, flip: bool, rng: random.Random) -> Tensor:
    """A random ``crop_size`` square of a 3×H×W image, maybe flipped, as a new tensor."""
    height, width = image.shape[-2:]
    top, left = rng.randint(0, height - crop_size), rng.randint(0, width - crop_size)
    crop = image[:, top : top + crop_size, left : left + crop_size]
    if flip and rng.random() < 0.5:
        crop = crop.flip(-1)
    return crop.contiguous()


class ShardImages:
    """Random crops from one shard set, forever: shards drawn with replacement, samples shuffled
    in a buffer, unreadable samples skipped and counted (:attr:`skipped`).

    Each problem is reported on one line, once per data-loading process: a shard that yields no
    sample (empty, not a tar, unreadable) is named and never drawn again; a shard with unreadable
    samples is named at its first one and the rest are only counted. A set whose shards all yield
    nothing, or that fails ``MAX_FAILURES_IN_A_ROW`` samples in a row, is a
    :class:`TrainingDataError`: a run never spins forever on data it cannot use.
    """

    def __init__(self, name: str, pattern: str, load_size: int, crop_size: int, flip: bool, shuffle_buffer: int):
        self.name, self.pattern = name, pattern
        self.urls = expand_shards(pattern)
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.shuffle_buffer = shuffle_buffer
        self.skipped = 0
        self.bad_shards: dict[str, str] = {}  # shard → why it yields no sample
        self._reported: set[str] = set()  # shards already named for unreadable samples
        self._failures_in_a_row = 0
        self._failing: set[str] = set()  # shards of the current run of failures

    def crops(self, rng: random.Random) -> Iterator[Tensor]:
        """An endless stream of crops; ``rng`` decides shards, order, crop positions and flips."""
        pipeline = wds.DataPipeline(
            partial(self._samples, rng),
            wds.shuffle(self.shuffle_buffer, initial=min(100, self.shuffle_buffer), rng=rng),
            partial(self._decode, rng=rng),
        )
        return iter(pipeline)

    def _samples(self, rng: random.Random) -> Iterator[dict]:
        """Samples of randomly drawn shards, each shard read on its own (so a truncated shard's
        last sample never merges with the next shard's first)."""
        while True:
            usable = [url for url in self.urls if url not in self.bad_shards]
            if not usable:
                url, reason = next(iter(self.bad_shards.items()))
                raise TrainingDataError(
                    f"{self.name} shards {self.pattern!r}: none of the {len(self.urls)} yields a sample (first: {url}: {reason})"
                )
            url = rng.choice(usable)
            errors: list[Exception] = []
            count = 0
            for sample in _read_shard(url, errors):
                count += 1
                yield sample
            if count == 0:
                self.bad_shards[url] = _reason(errors[0]) if errors else "no samples in it"
                log.warning("%s data: skipping shard %s: %s", self.name, url, self.bad_shards[url])
            elif errors and url not in self._reported:
                self._reported.add(url)
                log.warning("%s data: shard %s breaks off after %d samples: %s", self.name, url, count, _reason(errors[0]))

    def _decode(self, samples: Iterator[dict], rng: random.Random) -> Iterator[Tensor]:
        for sample in samples:
            image = self._image(sample)
            if image is not None:
                yield random_crop(image, self.crop_size, self.flip, rng)

    def _image(self, sample: dict) -> Tensor | None:
        """A sample's image at its working size (:func:`decode`), or None (counted) if unreadable."""
        return self._kept(sample, self._decoded(sample))

    def _decoded(self, sample: dict) -> Tensor | ImageError:
        """A sample's image at its working size, or the error that says why there is none; no
        bookkeeping, so that threads can run it."""
        name = f"{sample['__key__']} in {sample['__url__']}"
        key = next((k for k in IMAGE_KEYS if k in sample), None)
        try:
            if key is None:
                raise ImageError(name, f"no image ({'/'.join(IMAGE_KEYS)}) in the sample")
            return decode(sample[key], self.load_size, self.crop_size, name)
        except ImageError as err:
            return err

    def _kept(self, sample: dict, decoded: Tensor | ImageError) -> Tensor | None:
        """The decoded image, or None with the failure counted (:meth:`_unreadable`)."""
        if isinstance(decoded, ImageError):
            self._unreadable(sample["__url__"], decoded)
            return None
        self._failing.clear()
        self._failures_in_a_row = 0
        return decoded

    def all_images(self) -> list[Tensor]:
        """Every readable image of every shard, once, in shard order, at its working size (8-bit).
        Decoded on a thread per core (Pillow decodes outside the GIL: 1.4× faster on 2 cores),
        then kept and counted in order, as the stream does."""
        images = []
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            for url in self.urls:
                errors: list[Exception] = []
                samples = list(_read_shard(url, errors))
                decoded = zip(samples, pool.map(self._decoded, samples))
                images += [image for sample, result in decoded if (image := self._kept(sample, result)) is not None]
                if errors:
                    log.warning("%s data: shard %s: %s", self.name, url, _reason(errors[0]))
        if not images:
            raise TrainingDataError(f"{self.name} shards {self.pattern!r}: no readable image in any of the {len(self.urls)}")
        return images

    def _unreadable(self, url: str, err: ImageError) -> None:
        """Count a skipped sample, name its shard the first time, give up after too many in a row."""
        self.skipped += 1
        self._failures_in_a_row += 1
        self._failing.add(url)
        if url not in self._reported:
            self._reported.add(url)
            log.warning("%s data: skipping unreadable samples in shard %s, the first: %s", self.name, url, err)
        if self._failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            shards = len(self._failing)
            raise TrainingDataError(
                f"{self.name} shards {self.pattern!r}: {self._failures_in_a_row} unreadable samples in a row "
                f"from {shards} shard{'s' * (shards != 1)}, none readable; the last: {err}"
            )


class MemoryImages:
    """A shard set decoded once and held in memory; :meth:`crops` as :class:`ShardImages`'s."""

    def __init__(self, shards: ShardImages):
        self.name, self.crop_size, self.flip = shards.name, shards.crop_size, shards.flip
        self.images = shards.all_images()
        self.skipped = shards.skipped
        megabytes = sum(image.numel() for image in self.images) / 2**20
        log.info("%s data: %d images in memory (%.0f MiB)", self.name, len(self.images), megabytes)

    def crops(self, rng: random.Random) -> Iterator[Tensor]:
        """An endless stream of crops of uniformly drawn images."""
        while True:
            yield random_crop(rng.choice(self.images), self.crop_size, self.flip, rng)


def _read_shard(url: str, errors: list[Exception]) -> Iterator[dict]:
    """The samples of one shard, read on its own; reading errors are appended to ``errors`` and
    end the shard (what came before them is kept)."""

    def keep_going(err: Exception) -> bool:
        errors.append(err)
        return True

    return wds.tariterators.tarfile_samples([{"url": url}], handler=keep_going)


def _reason(err: Exception) -> str:
    """What webdataset's reading error says, without the stream and URL it appends to ``args``."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    first = str(err.args[0]).split(" @ <")[0] if err.args else ""
    return f"{first} ({type(err).__name__})" if first else type(err).__name__


class CropPairs(IterableDataset):
    """(content crop, style crop) pairs; ``len()`` is the samples in one epoch.

    The data-loading workers share the epoch's ``batches_per_epoch`` batches between them,
    each yielding whole batches, so a loader gives exactly that many batches per epoch.
    """

    def __init__(
        self,
        content: ShardImages | MemoryImages,
        style: ShardImages | MemoryImages,
        batch_size: int,
        batches_per_epoch: int,
        seed: int = 0,
        rank: int = 0,
        start_step: int = 0,
    ):
        super().__init__()
        self.content, self.style = content, style
        self.batch_size, self.batches_per_epoch = batch_size, batches_per_epoch
        self.seed, self.rank, self.start_step = seed, rank, start_step
        self.epoch = -1  # counts iterations in this process (persistent workers keep it)

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        self.epoch += 1
        rng = random.Random(f"{self.seed}/{self.rank}/{worker}/{self.start_step}/{self.epoch}")
        content = self.content.crops(random.Random(rng.getrandbits(64)))
        style = self.style.crops(random.Random(rng.getrandbits(64)))
        batches = self.batches_per_epoch // workers + (worker < self.batches_per_epoch % workers)
        return itertools.islice(zip(content, style), batches * self.batch_size)


class AdaINDataModule(L.LightningDataModule):
    """Content (COCO) and style (WikiArt) shards → batches of (content, style) crops.

    Args:
        content_shards: content shard pattern: a brace pattern of local paths
            (``shards/coco-{000000..000082}.tar``), or any URL webdataset opens
            (``pipe:aws s3 cp s3://bucket/coco-{000000..000082}.tar -``, ``https://…``).
        style_shards: the same for the style images.
        batch_size: pairs per batch on each device (paper: 8).
        load_size: shorter side before cropping (paper: 512); 0 keeps the stored size.
        crop_size: side of the random square crop (paper: 256); a multiple of 8.
        flip: random horizontal flips (not in the paper).
        steps_per_epoch: batches per epoch on every device; an "epoch" of resampled data
            is only a logging and checkpointing unit.
        shuffle_buffer: samples held per stream and worker for shuffling.
        num_workers: data-loading processes per device.
        seed: base seed of all data randomness (shards, order, crops, flips).
        in_memory: decode every image once and hold them (for data sets that fit in memory),
            instead of decoding each crop's image again.
    """

    def __init__(
        self,
        content_shards: str,
        style_shards: str,
        batch_size: int = 8,
        load_size: int = 512,
        crop_size: int = 256,
        flip: bool = False,
        steps_per_epoch: int = 1000,
        shuffle_buffer: int = 256,
        num_workers: int = 4,
        seed: int = 0,
        in_memory: bool = False,
    ):
        super().__init__()
        if batch_size < 1 or steps_per_epoch < 1 or shuffle_buffer < 1 or num_workers < 0:
            raise UsageError(
                f"batch_size ({batch_size}), steps_per_epoch ({steps_per_epoch}) and shuffle_buffer ({shuffle_buffer}) "
                f"must be ≥ 1, num_workers ({num_workers}) ≥ 0"
            )
        if crop_size < 16 or crop_size % 8:
            raise UsageError(f"crop_size must be a multiple of 8 and at least 16, got {crop_size}")
        if load_size and load_size < crop_size:
            raise UsageError(f"load_size ({load_size}) must be 0 or at least crop_size ({crop_size})")
        self.save_hyperparameters()
        self.content: ShardImages | MemoryImages = ShardImages("content", content_shards, load_size, crop_size, flip, shuffle_buffer)
        self.style: ShardImages | MemoryImages = ShardImages("style", style_shards, load_size, crop_size, flip, shuffle_buffer)

    def setup(self, stage: str) -> None:
        """With ``in_memory``, decode the shards now, once (not again when a trainer sets up anew)."""
        if self.hparams.in_memory and isinstance(self.content, ShardImages):
            self.content, self.style = MemoryImages(self.content), MemoryImages(self.style)

    def dataset(self, rank: int = 0, start_step: int = 0) -> CropPairs:
        """The pair stream for one rank; ``start_step`` (the resumed global step) gives a
        resumed run fresh samples instead of replaying the ones it already trained on."""
        h = self.hparams
        return CropPairs(self.content, self.style, h.batch_size, h.steps_per_epoch, h.seed, rank, start_step)

    def train_dataloader(self) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        step = self.trainer.global_step if self.trainer is not None else 0
        workers = self.hparams.num_workers
        return DataLoader(
            self.dataset(rank, step),
            batch_size=self.hparams.batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,  # workers keep their epoch counter between epochs
            pin_memory=torch.cuda.is_available(),
        )
