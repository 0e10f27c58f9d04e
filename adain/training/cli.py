"""Train an AdaIN decoder (LightningCLI), and export decoders from its checkpoints:
``adain-train`` (installed) or ``python train.py``.

    python train.py fit --config configs/adain.yaml \\
        --data.content_shards 'shards/coco-{000000..000082}.tar' --data.style_shards 'shards/wikiart-{000000..000080}.tar'
    python train.py fit --config configs/adain.yaml ... --ckpt_path last          # resume
    python train.py export runs/adain/checkpoints/last.ckpt decoder.safetensors   # decoder file for infer.py

Every ``--trainer.*`` option of Lightning works (``devices``, ``num_nodes``, ``strategy ddp``,
``precision bf16-mixed`` …); ``python train.py fit --help`` lists them all. Checkpoints go to
``<trainer.default_root_dir>/checkpoints`` (``last.ckpt``, also written when the run is stopped
by SIGTERM or Ctrl-C), and a finished run exports ``decoder.safetensors`` there.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from adain.core.commandline import run_main
from adain.core.errors import UsageError, one_line
from adain.core.extras import MissingExtraError, require

EXIT_SIGTERM = 143  # 128 + SIGTERM: stopped on request after saving last.ckpt (scripts/slurm_train.sh requeues)
EXIT_USAGE = 2  # an impossible setting, as argparse's
HALF_PRECISIONS = ("16-true", "bf16-true")  # Lightning's whole-model casts


def checkpoint_dir(root_dir: str | None) -> str:
    """Where ModelCheckpoint writes: ``<default_root_dir>/checkpoints``."""
    return os.path.join(root_dir or os.getcwd(), "checkpoints")


def export_command(argv: Sequence[str]) -> int:
    """``train.py export CKPT OUT [--fp16]``: a checkpoint's decoder as a ``.safetensors`` file."""
    prog = f"{os.path.basename(sys.argv[0])} export"
    parser = argparse.ArgumentParser(prog=prog, description="Export a train.py checkpoint's decoder.")
    parser.add_argument("checkpoint", help="a train.py checkpoint (.ckpt), e.g. runs/adain/checkpoints/last.ckpt")
    parser.add_argument("output", help="decoder file to write (.safetensors), for infer.py --decoder")
    parser.add_argument("--fp16", action="store_true", help="store the weights as fp16: half the file; read back as fp32")
    args = parser.parse_args(argv)
    if not args.output.endswith(".safetensors"):
        parser.error(f"{args.output}: the output must end in .safetensors")
    import torch

    from adain.model.decoder_file import DecoderFileError
    from adain.training.module import export_decoder

    try:
        meta = export_decoder(args.checkpoint, args.output, torch.float16 if args.fp16 else torch.float32)
    except (DecoderFileError, OSError) as err:
        print(f"error: {one_line(err, last=True)}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} (step {meta.get('steps', '?')})", file=sys.stderr)
    return 0


def fit_command(argv: Sequence[str] | None) -> int:
    """Lightning's own subcommands (``fit`` …) through LightningCLI; ``None`` reads ``sys.argv``."""
    from lightning.fabric.plugins import TorchCheckpointIO
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from adain.model.decoder_file import DecoderFileError
    from adain.training.data import AdaINDataModule, TrainingDataError
    from adain.training.module import (
        AdaINTraining,
        AtomicCheckpointIO,
        ImagesPerSecond,
        LastCheckpoint,
        SigtermDeadline,
        StuckRunError,
    )
    from adain.vgg.encoder import EncoderWeightsError

    class AdaINCLI(LightningCLI):
        @staticmethod
        def subcommands() -> dict[str, set[str]]:
            """Only ``fit``: the module has no validation, test or prediction step."""
            return {"fit": LightningCLI.subcommands()["fit"]}

        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
            parser.set_defaults(
                {
                    "checkpoint.every_n_train_steps": 1000,
                    "checkpoint.save_last": True,
                    "checkpoint.save_top_k": 0,
                    "checkpoint.save_on_exception": True,
                    "checkpoint.enable_version_counter": False,  # always last.ckpt, also after a resume
                }
            )
            parser.link_arguments("trainer.default_root_dir", "checkpoint.dirpath", compute_fn=checkpoint_dir)
            parser.add_lightning_class_args(ImagesPerSecond, "throughput")
            parser.add_lightning_class_args(SigtermDeadline, "sigterm")

        def _parse_ckpt_path(self) -> None:
            """Not Lightning's, which merges a ``--ckpt_path FILE``'s hyperparameters over the
            configuration: the command line's settings win, as with ``--ckpt_path last``, and the
            module checks that the checkpoint was trained on its encoder when it loads it."""

        def before_instantiate_classes(self) -> None:
            """Refuse, before anything is built, a step count that trains nothing and a precision
            that casts the whole model to 16 bits (the frozen encoder and the decoder's weights
            with it), which the fp32 batches and AdaIN's fp32 statistics do not take."""
            trainer = self.config[self.subcommand].trainer
            steps = trainer.max_steps
            if steps == 0 or steps < -1:
                raise UsageError(
                    f"--trainer.max_steps {steps} trains nothing: give a positive number of steps "
                    "(or -1, no limit, with --trainer.max_epochs)"
                )
            if str(trainer.precision) in HALF_PRECISIONS:
                half = str(trainer.precision).removesuffix("-true")
                raise UsageError(f"--trainer.precision {trainer.precision} is not supported: use {half}-mixed (autocast)")

        def before_fit(self) -> None:
            """Atomic checkpoint writes (unless another checkpoint plugin was chosen), a
            ``metrics.csv`` beside the first logger's files (a log that needs no TensorBoard to
            read), the whole configuration for the module to record, and a word when
            ``--ckpt_path last`` finds nothing to resume: the run then starts fresh."""
            strategy = self.trainer.strategy
            if type(strategy.checkpoint_io) is TorchCheckpointIO:
                strategy.checkpoint_io = AtomicCheckpointIO()
            loggers = self.trainer.loggers
            if loggers and loggers[0].save_dir and not any(isinstance(logger, CSVLogger) for logger in loggers):
                first = loggers[0]  # a local logger (TensorBoard by default): the CSV joins its folder
                self.trainer.loggers = [*loggers, CSVLogger(first.save_dir, first.name, first.version)]
            self._dump_config()  # the whole configuration as plain data (Lightning's, for the module's hparams)
            self.model.run_config = self.config_dump  # recorded in checkpoints and the exported decoder
            config = self.config_init[self.subcommand]
            folder = Path(self.trainer.checkpoint_callback.dirpath)
            if config.get("ckpt_path") == "last" and not (folder / "last.ckpt").is_file():
                print(f"nothing to resume in {folder}: starting fresh", file=sys.stderr)
                config["ckpt_path"] = None

    # Known, intended situations: the resampled stream has a length by design and a resumed run
    # draws fresh samples (seeded by its start step) instead of replaying a position, the frozen
    # encoder stays in eval mode, and the CSV log is written into the folder the TensorBoard
    # logger has just made for this run.
    warnings.filterwarnings("ignore", message=r".*IterableDataset.*has `__len__` defined")
    warnings.filterwarnings("ignore", message=r".*your dataloader is not resumable")
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")  # metrics.csv joins TensorBoard's new folder
    warnings.filterwarnings("ignore", message=r"You have overridden `on_after_batch_transfer`")  # the module's, on purpose
    try:
        AdaINCLI(
            AdaINTraining,
            AdaINDataModule,
            args=None if argv is None else list(argv),
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"description": "Train an AdaIN decoder. Also: train.py export CKPT OUT.safetensors"},
        )
    except SIGTERMException:
        print("stopped by SIGTERM; last.ckpt is saved, resume with --ckpt_path last", file=sys.stderr)
        return EXIT_SIGTERM
    except StuckRunError as err:
        print(f"stopped by SIGTERM: {err}; last.ckpt, if any, has the last finished step", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_SIGTERM)  # now: the interpreter's clean-up would wait on the stuck reader (a pipe's process …)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (TrainingDataError, DecoderFileError, EncoderWeightsError, FloatingPointError) as err:
        print(f"error: {one_line(err, last=True)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        require("train", "adain-train")
    except MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["export"]:
        return export_command(args[1:])
    return fit_command(argv)


def cli() -> NoReturn:
    """The ``adain-train`` command."""
    run_main(main)


if __name__ == "__main__":
    cli()
