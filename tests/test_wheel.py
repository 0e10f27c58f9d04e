"""A wheel built from the repo works outside the checkout: package data (the bundled decoder, the
example gallery, the app's files, the VGG scales) and the console scripts adain-stylize,
adain-serve and adain-train.

The wheel goes into a fresh virtual environment that borrows this environment's installed
dependencies (torch …) through a path file, for speed, and runs from a folder outside the checkout.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # builds and installs a wheel

ROOT = Path(__file__).resolve().parent.parent
PACKAGED = ("pyproject.toml", "README.md", "adain", "gatys", "compare", "nst", "examples", "checkpoints")  # the wheel's sources


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh venv where only the wheel (no checkout) provides the package,
    with the shipped decoder, so the commands run without ``--decoder`` as a user's would."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building writes build/ and *.egg-info/ next to the sources
    source.mkdir()
    for name in PACKAGED:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((root / "dist").glob("adain_style-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    bin_dir = root / "venv" / "bin"
    site = subprocess.run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(site) / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # appended: the wheel comes first
    install = subprocess.run([bin_dir / "pip", "install", "--quiet", "--no-deps", str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    return bin_dir


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_the_package_comes_from_the_wheel_with_its_data(installed, tmp_path):
    where = run(installed, "python", "-c", "import adain, adain.core.shipped as s; print(adain.__file__); print(s.shipped('examples'))", cwd=tmp_path)
    module, examples = where.stdout.split()
    assert str(installed.parent) in module and str(ROOT) not in module
    assert Path(examples) == Path(module).parent / "examples"
    bundled = Path(module).parent / "checkpoints" / "decoder.safetensors"
    assert bundled.read_bytes() == (ROOT / "checkpoints" / "decoder.safetensors").read_bytes()
    assert sorted(p.name for p in (Path(examples) / "content").iterdir()) == sorted(p.name for p in (ROOT / "examples/content").iterdir())


def test_adain_stylize_works_from_another_folder_with_the_bundled_decoder(installed, tmp_path):
    examples = Path(run(installed, "python", "-c", "import adain.core.shipped as s; print(s.shipped('examples'))", cwd=tmp_path).stdout.strip())
    proc = run(installed, "adain-stylize", "--content", str(examples / "content/chelsea.jpg"), "--style",
               str(examples / "style/munch_the_scream.jpg"), "--content-size", "64",
               "--style-size", "64", "--output", "out.png", "--quiet", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Image.open(tmp_path / "out.png").size == (96, 64)
    assert run(installed, "adain-stylize", "--version", cwd=tmp_path).stdout.startswith("adain-stylize ")


def test_adain_serve_serves_the_gallery_and_both_answer_help(installed, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(installed / "adain-serve"), "--port", str(port)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/examples/content/chelsea", timeout=5) as r:
                    assert r.read() == (ROOT / "examples/content/chelsea.jpg").read_bytes()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read() if server.poll() else "timeout"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert b'id="alpha"' in r.read()  # the page's files are package data too
    finally:
        server.terminate()
        server.wait(timeout=30)
    for command in ("adain-train", "adain-serve"):  # each names itself in its usage
        proc = run(installed, command, "--help", cwd=tmp_path)
        assert proc.returncode == 0 and f"usage: {command}" in proc.stdout, proc.stderr[-3000:]
