"""Peak memory of stylizing very large input files at the default working size (512 px).

    python scripts/memory_benchmark.py --out docs/benchmarks/memory.md

Generates the inputs (a 9000×9000 PNG of a few hundred KB, the same as a JPEG, a 6000×4000
phone-sized JPEG), then runs ``infer.py`` on each in its own process with an untrained decoder
(memory does not depend on the weights) and reads that process's peak resident memory (VmHWM). The app's case, two 6300×6300 uploads, is measured on a served
``python -m adain.app``: its resident memory before and after the two requests; and so is the
largest request the app accepts by default (a 1024×1024 upload kept at its size), with its render
time. Writes a Markdown table with the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adain.app.limits import Limits  # noqa: E402
from adain.core.commandline import failed, report_file, run_main  # noqa: E402
from adain.core.device import cpu_model  # noqa: E402
from adain.model.decoder_file import save_decoder  # noqa: E402
from adain.vgg.encoder import VGG19Encoder  # noqa: E402
from compare.inputs import random_decoder  # noqa: E402
from compare.report import write_text  # noqa: E402


def smooth_image(width: int, height: int) -> Image.Image:
    """Gentle gradients with a little texture: compresses to a small file, decodes to a huge one."""
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    return Image.fromarray((rgb * 255).astype(np.uint8), "RGB")


# Runs a script and reports, as its last line, the interpreter's own peak resident memory (VmHWM,
# kB) and, if the script used CUDA, its peak of allocated GPU memory (bytes; -1 if not). Read in
# the process itself: a child's rusage would start from this parent's memory, which Linux
# carries over through fork and exec, and CUDA's statistics are per process.
PEAK_PROBE = """
import runpy, sys
script, *sys.argv[1:] = sys.argv[1:]
sys.argv[0] = script
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as done:
    code = done.code
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
torch = sys.modules.get("torch")
cuda = torch.cuda.max_memory_allocated() if torch is not None and torch.cuda.is_initialized() else -1
print(int(peak.split()[1]), cuda, file=sys.stderr)
sys.exit(code)
"""


@dataclass(frozen=True)
class MeasuredRun:
    """One script run's peak resident memory, its peak CUDA memory (None: it used no GPU), and its stderr."""

    rss_mb: float
    cuda_mb: float | None
    printed: str


def measured_run(command: list[str]) -> MeasuredRun:
    """Run a Python script with arguments from the repository root, measuring its peaks."""
    proc = subprocess.run([sys.executable, "-c", PEAK_PROBE, *command], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        said = [line for line in proc.stderr.splitlines() if line.strip() and not re.fullmatch(r"\d+ -?\d+", line)]
        reason = said[-1].removeprefix("error: ") if said else "no message"  # its one-line error, not the probe's peaks
        raise RuntimeError(f"{command[0]} failed (exit {proc.returncode}): {reason}")
    *printed, peaks = proc.stderr.splitlines()
    rss_kb, cuda_bytes = (int(v) for v in peaks.split())
    return MeasuredRun(rss_kb / 1024, None if cuda_bytes < 0 else cuda_bytes / 2**20, "\n".join(printed))


def peak_rss_mb(command: list[str]) -> float:
    """Run a Python script with arguments; its peak resident memory (MB)."""
    return measured_run(command).rss_mb


def report(script: str, tables: str, out: Path | None, details: str = "") -> None:
    """Print Markdown ``tables`` under a line saying when, on what machine and by which script
    they were measured (plus ``details``), and write them to ``out`` too."""
    text = (
        f"Measured {datetime.date.today().isoformat()} on {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}{details}, `scripts/{script}`.\n\n{tables}"
    )
    print(text)
    if out is not None:
        write_text(out, text)


def untrained_decoder(folder: Path, purpose: str) -> Path:
    """An untrained, seeded decoder file in ``folder`` (memory and speed do not depend on the weights;
    the seed makes the untrained flicker figures repeat)."""
    path = folder / "decoder.safetensors"
    save_decoder(random_decoder(), path, VGG19Encoder.load().identity, {"note": f"untrained, for {purpose}"})
    return path


def memory_mb(pid: int, field: str) -> float:
    """A running process's ``VmRSS`` (resident now) or ``VmHWM`` (peak so far), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def post_image(url: str, content: bytes, **form: str) -> float:
    """POST a content upload with a bundled style (and more form fields) to the app's API; the
    render seconds it reports."""
    boundary = uuid.uuid4().hex
    fields = {"style_example": "munch_the_scream", **form}
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + content + b"\r\n"
    for name, value in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return float(response.headers["X-Render-Seconds"])
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"the app answered {err.code}: {err.read().decode()}") from None


def served_app(decoder: Path) -> tuple[subprocess.Popen, str]:
    """``python -m adain.app`` on a free port, once it answers; (process, API base URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "adain.app", "--decoder", str(decoder), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).close()
            return server, f"http://127.0.0.1:{port}/api"
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the app did not start")


def app_rows(decoder: Path) -> list[str]:
    """The app's memory after a burst of large uploads, and its largest default request."""
    rows = []
    upload = io.BytesIO()
    smooth_image(6300, 6300).save(upload, format="PNG")
    server, api = served_app(decoder)
    try:
        before = memory_mb(server.pid, "VmRSS")
        for _ in range(2):
            post_image(f"{api}/stylize", upload.getvalue())
        time.sleep(Limits().release_after_idle_s + 2)  # idle: the server gives memory back
        after, peak = memory_mb(server.pid, "VmRSS"), memory_mb(server.pid, "VmHWM")
        rows.append(f"| app, two 6300×6300 PNG uploads ({len(upload.getvalue()) / 1024:,.0f} KB) at 512 px | "
                    f"resident {before:,.0f} MB before, {after:,.0f} MB after ({after - before:+,.0f}); peak {peak:,.0f} MB |")  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    largest = io.BytesIO()
    smooth_image(1024, 1024).save(largest, format="PNG")
    server, api = served_app(decoder)  # fresh, so its peak is this request's
    try:
        post_image(f"{api}/stylize", largest.getvalue(), content_size="0")  # warm-up
        seconds = post_image(f"{api}/stylize", largest.getvalue(), content_size="0")
        peak = memory_mb(server.pid, "VmHWM")
        rows.append(f"| app, its largest default request (1024×1024 upload, `content_size=0`) | "
                    f"peak {peak:,.0f} MB; {seconds:.1f} s per render |")  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=report_file, help="write the Markdown table here too")
    args = parser.parse_args()
    try:
        return measure(args)
    except (RuntimeError, ValueError, OSError) as err:  # a failed infer.py run, the app not starting: one line
        return failed(err)


def measure(args: argparse.Namespace) -> int:
    """Run every case and write the report."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        decoder = untrained_decoder(folder, "memory only")
        cases = {
            "9000×9000 PNG": (smooth_image(9000, 9000), "big.png"),
            "9000×9000 JPEG": (smooth_image(9000, 9000), "big.jpg"),
            "6000×4000 JPEG": (smooth_image(6000, 4000), "phone.jpg"),
        }
        for label, (image, name) in cases.items():
            image.save(folder / name, quality=90) if name.endswith(".jpg") else image.save(folder / name)
            size_kb = (folder / name).stat().st_size / 1024
            command = ["infer.py", "--content", str(folder / name), "--style", "examples/style/munch_the_scream.jpg",
                       "--decoder", str(decoder), "--output", str(folder / f"out_{name}"), "--quiet"]  # fmt: skip
            peak = peak_rss_mb(command)
            rows.append(f"| `infer.py`, {label} ({size_kb:,.0f} KB) at 512 px | {peak:,.0f} MB peak RSS |")
            print(rows[-1], file=sys.stderr)
        rows += app_rows(decoder)
        for row in rows[-2:]:
            print(row, file=sys.stderr)
    report("memory_benchmark.py", "| case | memory |\n|---|---|\n" + "\n".join(rows) + "\n", args.out)
    return 0


if __name__ == "__main__":
    run_main(main)
