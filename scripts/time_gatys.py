"""Seconds per Gatys step: ``gatys.stylize`` against a plain PyTorch loop, same encoder, same run.

    .venv/bin/python scripts/time_gatys.py --sizes 256 512 --steps 10 --device cpu

The plain loop is the textbook one (Gram matrices, L-BFGS with one iteration per step, a clamp,
and the gradient scaling that keeps L-BFGS stable on this encoder, see gatys/optimize.py) in a
few lines, so the comparison shows what the package's bookkeeping costs. Both start
from the content image; the first step of each is a warm-up and is not timed. Prints one
Markdown table row per size, and the machine's load average, since a busy machine slows both.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from adain.core.commandline import failed, run_main
from adain.core.device import device_name, resolve_device
from adain.media.image_io import load_image
from adain.vgg.encoder import VGG19Encoder
from compare.benchmark import sync
from gatys import DEFAULTS, stylize

ROOT = Path(__file__).resolve().parent.parent


def plain_seconds_per_step(encoder: VGG19Encoder, content: torch.Tensor, style: torch.Tensor, steps: int) -> float:
    """A minimal Gatys loop with the default layers and weights; seconds per step after one warm-up step."""
    style_layers, content_layer = DEFAULTS.style_layers, DEFAULTS.content_layer

    def gram(f: torch.Tensor) -> torch.Tensor:
        f = f.flatten(2)
        return f @ f.transpose(1, 2)

    with torch.no_grad():
        target_c = encoder(content, [content_layer])[content_layer]
        target_s = {k: gram(v) for k, v in encoder(style, style_layers).items()}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], max_iter=1)
    scale: list[float] = []  # fixed at the first evaluation

    def closure() -> torch.Tensor:
        opt.zero_grad()
        f = encoder(x, [content_layer, *style_layers])
        loss = DEFAULTS.content_weight * 0.5 * (f[content_layer] - target_c).square().sum()
        for k in style_layers:
            n, m = f[k].shape[1], f[k][0, 0].numel()
            layer_loss = (gram(f[k]) - target_s[k]).square().sum() / (4 * n**2 * m**2)
            loss = loss + DEFAULTS.style_weight / len(style_layers) * layer_loss
        loss.backward()
        if not scale:
            scale.append(1 / x.grad.abs().max().item())
        x.grad.mul_(scale[0])
        return loss * scale[0]

    for step in range(steps + 1):
        if step == 1:
            sync(x.device)
            start = time.perf_counter()
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
    sync(x.device)
    return (time.perf_counter() - start) / steps


def package_seconds_per_step(encoder: VGG19Encoder, content: torch.Tensor, style: torch.Tensor, steps: int) -> float:
    """``gatys.stylize`` with its defaults; seconds per step after one warm-up step (from its history)."""
    history = stylize(content, style, replace(DEFAULTS, steps=steps + 1), encoder=encoder, progress=False).history
    return (history[-1]["seconds"] - history[1]["seconds"]) / steps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sides in px")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--device", default="auto")
    p.add_argument("--content", default=str(ROOT / "examples/content/chelsea.jpg"))
    p.add_argument("--style", default=str(ROOT / "examples/style/van_gogh_starry_night.jpg"))
    args = p.parse_args()
    if min(args.sizes) < 1 or args.steps < 1:  # a size of 0 would keep the photo's own size, labelled 0×0
        p.error("--sizes and --steps must be >= 1")
    try:
        return measure(args)
    except (ValueError, OSError) as err:  # bad images, devices, sizes too small for the layers: one line
        return failed(err)


def measure(args: argparse.Namespace) -> int:
    """Print the header and one row per size."""
    device = resolve_device(args.device)
    encoder = VGG19Encoder.load().to(device)
    print(f"# {time.strftime('%Y-%m-%d')} · {device.type} ({device_name(device)}) · torch {torch.__version__} · L-BFGS · {args.steps} steps")
    print("| size | gatys.stylize s/step | plain loop s/step | load average before |")
    print("|---|---|---|---|")
    for size in args.sizes:
        content = load_image(args.content, size, crop=True).rgb.to(device)
        style = load_image(args.style, size, crop=True).rgb.to(device)
        load = os.getloadavg()[0]
        ours = package_seconds_per_step(encoder, content, style, args.steps)
        plain = plain_seconds_per_step(encoder, content, style, args.steps)
        print(f"| {size}×{size} | {ours:.3f} | {plain:.3f} | {load:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
