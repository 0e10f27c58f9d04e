"""``train.py fit``: Lightning's CLI with this project's checkpoints, callbacks and checks.

Imported only when a run starts (Lightning takes seconds to import; ``train.py export`` and
``--help`` of the wrapper do without it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from adain.core.errors import UsageError
from adain.training.module import AtomicCheckpointIO, ImagesPerSecond, LastCheckpoint, SigtermDeadline

HALF_PRECISIONS = ("16-true", "bf16-true")  # Lightning's whole-model casts


def checkpoint_dir(root_dir: str | None) -> str:
    """Where ModelCheckpoint writes: ``<default_root_dir>/checkpoints``."""
    return os.path.join(root_dir or os.getcwd(), "checkpoints")


class AdaINCLI(LightningCLI):
    """LightningCLI for :class:`~adain.training.module.AdaINTraining`: ``fit`` only, the decoder's
    checkpoints, throughput and SIGTERM callbacks as options, and the settings that cannot train refused."""

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
