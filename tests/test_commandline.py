"""adain.core.commandline, adain.core.errors and the packages: one-line errors, Ctrl-C handling, lazy exports."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from adain.core.commandline import EXIT_INTERRUPTED, run_main
from adain.core.errors import one_line

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("err", "last", "expected"),
    [
        (ValueError("bad size\n  detail"), False, "bad size"),
        (RuntimeError("\n\nworker failed:\nTraceback ...\nOSError: shard.tar: truncated\n\n"), True, "OSError: shard.tar: truncated"),
        (RuntimeError("  \n  first  \nsecond"), False, "first"),
        (KeyError(), False, "KeyError"),
        (OSError(""), True, "OSError"),
    ],
)
def test_one_line(err, last, expected):
    assert one_line(err, last=last) == expected


def test_run_main_exits_with_mains_status():
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: 3)
    assert exit_info.value.code == 3


def test_run_main_turns_ctrl_c_into_one_word_and_130(capsys):
    def interrupted() -> int:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_info:
        run_main(interrupted)
    assert exit_info.value.code == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("infer.py", []),
        ("train.py", ["export", "a.ckpt", "b.safetensors"]),
        ("scripts/benchmark.py", []),
        ("scripts/make_shards.py", []),
        ("scripts/time_gatys.py", []),
        ("adain.app", []),  # python -m adain.app
    ],
)
@pytest.mark.slow
def test_every_entry_point_uses_it(script, args):
    """A Ctrl-C (KeyboardInterrupt) while each script parses its arguments: one word on stderr, status 130, no traceback."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = {[script, *args]!r}\n"
        "def interrupt(*args, **kwargs):\n"
        "    raise KeyboardInterrupt\n"
        "import argparse\n"
        "argparse.ArgumentParser.parse_args = interrupt\n"
        + (
            f"runpy.run_path({str(ROOT / script)!r}, run_name='__main__')\n"
            if script.endswith(".py")
            else f"runpy.run_module({script!r}, run_name='__main__', alter_sys=True)\n"
        )
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["adain", "gatys", "adain.app"])
def test_package_exports_load_on_first_use(name):
    package = importlib.import_module(name)
    assert package.__all__ == sorted(package._EXPORTS)
    for export in package.__all__:
        assert getattr(package, export) is getattr(importlib.import_module(f"{name}.{package._EXPORTS[export]}"), export)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        package.nothing
