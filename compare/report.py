"""The benchmark's outputs: a Markdown report, the same numbers as JSON, and an image grid; and
the facts that open both comparison tools' reports (:func:`run_facts`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torchvision.utils import make_grid

from adain.core.atomicfile import atomic_path
from adain.core.device import device_name
from adain.media.image_io import resize, save_image

from . import metrics
from .benchmark import QualityRow, SizeResult, SpeedRow

SPEED_COLUMNS = {
    "method": "method",
    "size": "size (px)",
    "batch": "batch",
    "cached_s": "s/image, style cached",
    "with_style_s": "s/image, incl. style encoding",
    "peak_mib": "peak memory (MiB)",
    "speedup": "speed-up vs plain",
    "max_abs_diff": "max abs diff vs plain",
}
QUALITY_COLUMNS = {
    "method": "method",
    "size": "size (px)",
    "content_loss": "content loss",
    "adain_style_loss": "AdaIN style loss",
    "gram_style_loss": "Gram style loss",
}
MEMORY_NOTE = {
    "cuda": "torch.cuda.max_memory_allocated (weights included)",
    "cpu": "the process's peak resident memory (libraries, weights and the allocator's cache included)",
}
GRID_METHODS = ("adain", "gatys")  # columns after content and style, where measured
GRID_TILE = 256  # px: largest side of a grid tile
FILES = ("benchmark.md", "benchmark.json", "grid.jpg")


def run_facts(
    script: str, argv: Sequence[str], device: torch.device, args: argparse.Namespace,
    pairs: Sequence[tuple[Path, Path]], skipped: list[str],
) -> dict[str, object]:  # fmt: skip
    """What ``scripts/benchmark.py`` and ``scripts/evaluate.py`` both record of a run: device and
    versions, the model options both take (``--precision``, ``--vgg``), the pairs, the command line
    and the images left out."""
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "precision": args.precision,
        "vgg": args.vgg,
        "evaluation_vgg": metrics.EVALUATION_VGG,
        "pairs": len(pairs),
        "pair_names": [f"{c.name} + {s.name}" for c, s in pairs],
        "command": " ".join([script, *argv]),
        "skipped": skipped,
    }


def markdown(meta: Mapping[str, object], results: Mapping[int, SizeResult]) -> str:
    """The report: how it was measured, then the speed and quality tables."""
    speed = [row for r in results.values() for row in r.speed]
    quality = [row for r in results.values() for row in r.quality]
    lines = [
        "# AdaIN vs Gatys benchmark",
        "",
        (
            f"{meta['date']} · {meta['device_name']} · torch {meta['torch']} · AdaIN precision {meta['precision']}"
            f"{'' if meta['compile'] is None else ', compiled ' + meta['compile']} · "
            f"{meta['pairs']} content/style pairs · AdaIN: median of {meta['repeat']} timed runs after a warm-up, "
            f"Gatys: one run per pair after a warm-up · 1-min load average {meta['load_average']} (this run included)"
        ),
        "",
        f"Decoder: `{meta['decoder']}` ({meta['decoder_note']}).",
        "",
        *(f"Left out, unreadable: {reason}." for reason in meta.get("skipped", [])),
        *([""] if meta.get("skipped") else []),
        "## Speed (seconds per image; the reference is plain fp32 eager PyTorch, same weights)",
        "",
        *markdown_table(SPEED_COLUMNS, speed),
        "",
        f"Peak memory: {MEMORY_NOTE.get(str(meta['device']), 'not measured on this device')}.",
        "",
        "## Quality (mean over the pairs; lower is better)",
        "",
        f"Measured on the `{meta['evaluation_vgg']}` encoder (fixed, whatever `--vgg` the model uses).",
        "",
        *markdown_table(QUALITY_COLUMNS, quality),
        "",
    ]
    return "\n".join(lines)


def markdown_table(columns: Mapping[str, str], rows: Sequence[SpeedRow] | Sequence[QualityRow]) -> list[str]:
    """A Markdown table of dataclass ``rows`` with ``columns`` (field → header), as lines."""
    out = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        values = asdict(row)
        out.append("| " + " | ".join(_cell(key, values[key]) for key in columns) + " |")
    return out


def _cell(key: str, value: object) -> str:
    """One formatted table cell ("—": does not apply)."""
    if value is None:
        return "—"
    if key == "speedup":
        return f"{value:.2f}×"
    if key == "max_abs_diff":
        return f"{value:.1e}"
    if key == "peak_mib":
        return f"{value:.0f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def grid(result: SizeResult) -> torch.Tensor:
    """One row per pair: content | style | AdaIN | Gatys (the methods measured), as :func:`tile_grid`."""
    methods = [m for m in GRID_METHODS if m in result.outputs]
    return tile_grid([
        [content, style, *(result.outputs[m][i] for m in methods)]
        for i, (content, style) in enumerate(zip(result.contents, result.styles))
    ])  # fmt: skip


def tile_grid(rows: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """Rows of equal square images (each 1×3×S×S) as one 3×H×W image, 4 px of white between tiles,
    each tile at most :data:`GRID_TILE` px (the file stays small at any size)."""
    tiles = torch.cat([tile.detach().float().cpu() for row in rows for tile in row])
    if tiles.shape[-1] > GRID_TILE:
        tiles = resize(tiles, (GRID_TILE, GRID_TILE))
    return make_grid(tiles, nrow=len(rows[0]), padding=4, pad_value=1.0)


def write(out_dir: Path, meta: Mapping[str, object], results: Mapping[int, SizeResult]) -> list[Path]:
    """Write :data:`FILES` to ``out_dir`` (each atomically); the grid shows the largest size."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": dict(meta),
        "speed": [asdict(row) for r in results.values() for row in r.speed],
        "quality": [asdict(row) for r in results.values() for row in r.quality],
    }
    md, js, img = (out_dir / name for name in FILES)
    write_text(md, markdown(meta, results))
    write_text(js, json.dumps(payload, indent=2) + "\n")
    save_image(grid(results[max(results)]), img)
    return [md, js, img]


def write_text(path: Path, text: str) -> None:
    """Write ``text`` through a temporary file and a rename, so no partial file is left."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
