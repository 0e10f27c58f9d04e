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
from typing import NoReturn

from adain.core.commandline import run_main
from adain.core.errors import UsageError, one_line
from adain.core.extras import MissingExtraError, require

EXIT_SIGTERM = 143  # 128 + SIGTERM: stopped on request after saving last.ckpt (scripts/slurm_train.sh requeues)
EXIT_USAGE = 2  # an impossible setting, as argparse's


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
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from adain.model.decoder_file import DecoderFileError
    from adain.training.data import AdaINDataModule, TrainingDataError
    from adain.training.fit import AdaINCLI
    from adain.training.module import AdaINTraining, StuckRunError
    from adain.vgg.encoder import EncoderWeightsError

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
