"""Peak memory and time of stylizing whole photos at 1, 4, 16 and 36 megapixels, tiled and not.

    python scripts/resolution_benchmark.py --out docs/benchmarks/resolution.md

Each case runs ``infer.py --content-size 0`` (the photo kept at its size) in its own process, with
an untrained decoder (memory and time do not depend on the weights), and reads that process's
peak resident memory (VmHWM), with ``--device cuda`` also its peak of allocated GPU memory
(``torch.cuda.max_memory_allocated``), and its wall time, start-up (~3 s) included. 4:3 photos, as
phones take them. Untiled runs stop where the pixel limit for one piece refuses them. Writes a
Markdown table with the machine and the date.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memory_benchmark import measured_run, report, smooth_image, untrained_decoder  # noqa: E402

from adain.core.commandline import failed, report_file, run_main  # noqa: E402
from adain.media.image_io import MAX_WORK_PIXELS  # noqa: E402

SIZES = {1: (1152, 864), 4: (2304, 1728), 16: (4608, 3456), 36: (6912, 5184)}  # megapixels: (width, height)
CASES = {"untiled": ["--max-tile", "0"], "tiled (1024)": ["--max-tile", "1024"], "--look-size 512": ["--look-size", "512"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=report_file, help="write the Markdown table here too")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=list(SIZES), help="megapixels")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where infer.py runs (default cpu)")
    args = parser.parse_args()
    try:
        return measure(args)
    except (RuntimeError, ValueError, OSError) as err:  # a failed infer.py run (no CUDA …): one line
        return failed(err)


def measure(args: argparse.Namespace) -> int:
    """Run every size and case and write the report."""
    cuda = args.device == "cuda"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        decoder = untrained_decoder(folder, "memory only")
        for megapixels in args.sizes:
            width, height = SIZES[megapixels]
            photo = folder / f"photo_{megapixels}mp.jpg"
            smooth_image(width, height).save(photo, quality=90)
            for case in args.cases:
                if case == "untiled" and width * height > MAX_WORK_PIXELS:
                    rows.append(f"| {width}×{height} ({width * height / 1e6:.1f} MP) | {case} | refused: over the "
                                f"{MAX_WORK_PIXELS:,}-pixel limit for one piece |{' |' * cuda} |")  # fmt: skip
                    continue
                command = ["infer.py", "--content", str(photo), "--style", "examples/style/munch_the_scream.jpg",
                           "--decoder", str(decoder), "--content-size", "0", "--output", str(folder / "out.jpg"),
                           "--device", args.device, "--quiet", *CASES[case]]  # fmt: skip
                start = time.perf_counter()
                run = measured_run(command)
                seconds = time.perf_counter() - start
                gpu = f" {run.cuda_mb:,.0f} MB |" if cuda else ""
                rows.append(f"| {width}×{height} ({width * height / 1e6:.1f} MP) | {case} | {run.rss_mb:,.0f} MB |{gpu} "
                            f"{seconds:,.0f} s ({seconds / (width * height / 1e6):.1f} s/MP) |")  # fmt: skip
                print(rows[-1], file=sys.stderr, flush=True)
    columns = ["photo", "how", "peak RSS", *(["peak CUDA (allocated)"] * cuda), "time"]
    header = f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}\n"
    report("resolution_benchmark.py", header + "\n".join(rows) + "\n", args.out, f", {args.device}")
    return 0


if __name__ == "__main__":
    run_main(main)
