"""Video on this machine: frames per second at 480p and 720p, peak memory against clip length,
and flicker with and without ``--smoothing``.

    python scripts/video_benchmark.py --out docs/benchmarks/video.md [--decoder DECODER] [--flicker-only]

Two clips are made from a real photo (``examples/content/astronaut.jpg``, enlarged): a *pan*, a
window sliding 4 px per frame across it (camera motion), and a *still* one, the same frame with
a little sensor-like noise per frame; both with a sine-tone audio track. The third is a real
film clip, ``examples/video/big_buck_bunny.mp4`` (a camera pulling back while the character
moves), stylized whole at ``--real-size``. Each run is ``infer.py`` in its own process (peak
resident memory read in the process). Flicker is the mean absolute difference between
consecutive output frames divided by the same for the input frames at the output's size.
Without ``--decoder`` an untrained decoder is used: speed and memory do not depend on the
weights, flicker does.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memory_benchmark import measured_run, report, untrained_decoder  # noqa: E402

from adain.core.commandline import failed, finite_float, report_file, run_main  # noqa: E402

SIZES = {"480p": (854, 480), "720p": (1280, 720)}
RATE = 30
REAL_CLIP = ROOT / "examples/video/big_buck_bunny.mp4"


def make_clip(path: Path, size: tuple[int, int], frames: int, motion: str, rate: float = RATE) -> Path:
    """A clip of ``frames`` frames at ``rate`` fps from the photo: ``pan`` or ``still`` (see the module's doc)."""
    width, height = size
    photo = Image.open(ROOT / "examples/content/astronaut.jpg").convert("RGB")
    scale = max((width + 4 * frames) / photo.width, height / photo.height)
    big = np.asarray(photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS))
    noise = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001), options={"crf": "18"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000)
        for i in range(frames):
            left = 4 * i if motion == "pan" else 0
            image = big[:height, left : left + width].astype(np.int16)
            if motion == "still":
                image = image + noise.integers(-2, 3, image.shape)
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")))
        out.mux(video.encode())
        step, total = sound.codec_context.frame_size or 1024, round(48000 * frames / rate)
        for start in range(0, total, step):
            t = (np.arange(step) + start) / 48000
            chunk = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode())
    return path


def frames_of(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A clip's frames as floats (N×H×W×3, 0–255), resized to ``size`` (width, height) if given."""
    width, height = size or (None, None)
    with av.open(str(path)) as clip:
        frames = clip.decode(clip.streams.video[0])
        return np.stack([f.to_ndarray(width=width, height=height, format="rgb24") for f in frames]).astype(np.float64)


def flicker(output: Path, source: Path) -> float:
    out = frames_of(output)
    inp = frames_of(source, (out.shape[2], out.shape[1]))
    return np.abs(np.diff(out, axis=0)).mean() / np.abs(np.diff(inp, axis=0)).mean()


def stylize(clip: Path, output: Path, decoder: Path, *flags: str, size: int = 0) -> tuple[float, float]:
    """Peak memory (MB) and frames per second of one ``infer.py`` run on the CPU in fp32 (what the
    report says, also on a machine with a GPU), frames at shorter side ``size`` (0: as they are)."""
    command = ["infer.py", "--content", str(clip), "--style", "examples/style/munch_the_scream.jpg", "--decoder", str(decoder),
               "--content-size", str(size), "--output", str(output), "--device", "cpu", "--precision", "fp32", *flags]  # fmt: skip
    run = measured_run(command)
    fps = float(re.search(r"\(([\d.]+) frames/s\)", run.printed).group(1))
    return run.rss_mb, fps


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse impossible settings before any clip is made (exit 2 with the usage)."""
    if args.frames < 2:
        parser.error("--frames must be >= 2: flicker compares consecutive frames")
    if args.long < 1 or args.long_rate <= 0:
        parser.error("--long must be >= 1 and --long-rate > 0")
    if args.real_size < 0:
        parser.error("--real-size must be >= 0 (0: the clip's own size)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=report_file, help="write the Markdown tables here too")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the clips and their stylized outputs here, to look at")
    parser.add_argument("--decoder", type=Path, help="a trained decoder (default: an untrained one)")
    parser.add_argument("--frames", type=int, default=12, help="frames per speed and flicker clip (default 12)")
    parser.add_argument("--long", type=int, default=36, help="frames of the longer 720p clip for memory (default 36)")
    parser.add_argument("--long-rate", type=finite_float, default=RATE, help=f"its frames per second (default {RATE})")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--memory-only", action="store_true", help="measure only the longer clip's memory")
    only.add_argument("--flicker-only", action="store_true", help="only the flicker clips (pan and still at 480p, the real clip)")
    parser.add_argument("--real-size", type=int, default=360, help="shorter side the real clip is stylized at (default 360)")
    args = parser.parse_args()
    check(args, parser)
    try:
        return measure(args)
    except (RuntimeError, ValueError, OSError) as err:  # a failed infer.py run, a bad --decoder: one line
        return failed(err)


def measure(args: argparse.Namespace) -> int:
    """Make the clips, stylize them and write the report."""
    speed, memory, flickers = [], [], []
    with contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        decoder = args.decoder if args.decoder is not None else untrained_decoder(folder, "speed and memory")
        # speed; the 480p runs give the pan's flicker, the 720p ones the short clip's memory
        sizes = {} if args.memory_only else {"480p": SIZES["480p"]} if args.flicker_only else SIZES
        for name, size in sizes.items():
            clip = make_clip(folder / f"pan_{name}.mp4", size, args.frames, "pan")
            row = []
            for smoothing in ("0", "0.8"):
                peak, fps = stylize(clip, folder / f"{clip.stem}_out_{smoothing}.mp4", decoder, "--smoothing", smoothing)
                row.append(flicker(folder / f"{clip.stem}_out_{smoothing}.mp4", clip))
                speed.append(f"| {name} ({size[0]}×{size[1]}) | {smoothing} | {fps:.2f} | {peak:,.0f} MB |")
                print(speed[-1], file=sys.stderr, flush=True)
            if name == "480p":
                flickers.append(f"| pan (480p, {args.frames} frames) | {row[0]:.2f} | {row[1]:.2f} |")
            else:
                memory.append(f"| 720p, {args.frames} frames ({args.frames / RATE:.1f} s at {RATE} fps) | {peak:,.0f} MB |")
        if not args.flicker_only:
            clip = make_clip(folder / "long.mp4", SIZES["720p"], args.long, "pan", args.long_rate)
            peak, _ = stylize(clip, folder / "out.mp4", decoder)
            seconds = args.long / args.long_rate
            memory.append(f"| 720p, {args.long} frames ({seconds:.1f} s at {args.long_rate:g} fps) | {peak:,.0f} MB |")
            print(memory[-1], file=sys.stderr, flush=True)
        if args.memory_only:
            table = "| clip (`--smoothing 0.8`) | peak RSS |\n|---|---|\n" + memory[-1] + "\n"
            report("video_benchmark.py", table, args.out, ", CPU, fp32")
            return 0
        clip = make_clip(folder / "still.mp4", SIZES["480p"], args.frames, "still")
        row = []
        for smoothing in ("0", "0.8"):
            stylize(clip, folder / f"{clip.stem}_out_{smoothing}.mp4", decoder, "--smoothing", smoothing)
            row.append(flicker(folder / f"{clip.stem}_out_{smoothing}.mp4", clip))
        flickers.append(f"| still (480p, {args.frames} frames) | {row[0]:.2f} | {row[1]:.2f} |")
        print(flickers[-1], file=sys.stderr, flush=True)
        row, rates = [], []
        for smoothing in ("0", "0.8"):
            _, fps = stylize(REAL_CLIP, folder / f"real_{smoothing}.mp4", decoder, "--smoothing", smoothing, size=args.real_size)
            row.append(flicker(folder / f"real_{smoothing}.mp4", REAL_CLIP))
            rates.append(fps)
        frames = len(frames_of(folder / "real_0.mp4"))
        where = f"`{REAL_CLIP.name}` ({args.real_size}p, {frames} frames; {rates[0]:.2f} / {rates[1]:.2f} frames/s)"
        flickers.append(f"| real: {where} | {row[0]:.2f} | {row[1]:.2f} |")
        print(flickers[-1], file=sys.stderr, flush=True)
    which = f"decoder `{args.decoder}`" if args.decoder else "an untrained decoder (flicker figures are not those of a trained one)"
    tables = "\n".join(
        head + "".join(row + "\n" for row in rows)
        for head, rows in (
            ("| clip | `--smoothing` | frames/s | peak RSS |\n|---|---|---|---|\n", speed),
            ("| clip (`--smoothing 0.8`) | peak RSS |\n|---|---|\n", memory),
            ("| flicker (output change / input change) | `--smoothing 0` | `--smoothing 0.8` |\n|---|---|---|\n", flickers),
        )
        if rows
    )  # fmt: skip
    report("video_benchmark.py", tables, args.out, f", CPU, fp32, {which}")
    return 0


if __name__ == "__main__":
    run_main(main)
