"""The install shaped like its uses: stylizing needs only the core install; adain-train and
adain-serve name the extra to install, in one line, when theirs is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adain.app import __main__ as serve
from adain.core import extras
from adain.training import cli as train

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("lightning", "jsonargparse", "webdataset", "tensorboard", "fastapi", "uvicorn", "python_multipart", "fastapi_offline")


@pytest.mark.parametrize("command, extra, argv", [(train.main, "train", ["fit", "--help"]), (serve.main, "app", [])])
def test_a_command_without_its_extra_says_which_to_install(command, extra, argv, monkeypatch, capsys):
    missing = extras.EXTRAS[extra][0]
    monkeypatch.setattr(extras, "find_spec", lambda name: None if name == missing else object())
    assert command(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"({missing} missing): pip install 'adain-style[{extra}]'" in err


def test_stylizing_needs_none_of_the_extras(tmp_path):
    """infer.py with the training and serving stacks made unimportable stylizes all the same."""
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked")
sys.meta_path.insert(0, Block())
import nst.stylize
sys.exit(nst.stylize.main(sys.argv[1:]))
"""
    out = tmp_path / "out.png"
    args = ["--content", str(ROOT / "examples/content/chelsea.jpg"), "--style", str(ROOT / "examples/style/munch_the_scream.jpg"),
            "--content-size", "32", "--style-size", "32", "--device", "cpu", "--quiet", "--output", str(out)]  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.is_file()
