"""--precision auto: bf16 only where the CPU computes bf16 in hardware (AMX or AVX512-BF16), fp32
on other CPUs (bf16 is emulated there, several times slower) and on GPUs; the detection is mocked
every way, since a machine has one of them."""

from __future__ import annotations

import pytest
import torch

import nst.stylize as infer
from adain.core import device as devices
from adain.model.style_transfer import StyleTransfer

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(params=["amx_bf16", "avx512_bf16", None], ids=["amx", "avx512-bf16", "avx2"])
def amx(request, monkeypatch) -> bool:
    """Whether this mocked CPU computes bf16 in hardware: AMX, AVX512-BF16, or AVX2 alone."""
    flags = {"amx_bf16": False, "avx512_bf16": False, "avx2": True}
    if request.param:
        flags[request.param] = True
    monkeypatch.setattr(devices.torch.cpu, "get_capabilities", lambda: flags)
    return request.param is not None


def test_auto_is_bf16_only_on_a_cpu_with_bf16_hardware(amx):
    precision, why = devices.auto_precision(CPU)
    assert precision == ("bf16" if amx else "fp32") and devices.cpu_model() in why
    assert devices.auto_precision(CUDA)[0] == "fp32"  # until a GPU measurement says otherwise
    assert devices.resolve_precision("auto", CPU) == precision
    training = devices.cpu_training_precision()
    assert training[:2] == (("bf16-mixed", True) if amx else ("32-true", False))


def test_a_precision_asked_for_is_kept_and_checked(amx):
    assert devices.resolve_precision("fp32", CPU) == "fp32" and devices.resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="fp16 has no fast kernels on the CPU"):
        devices.resolve_precision("fp16", CPU)


def test_the_model_and_the_command_line_default_to_auto(amx, decoder_file):
    model = StyleTransfer.load(decoder=str(decoder_file), device="cpu")
    assert model.precision == ("bf16" if amx else "fp32")
    assert model.dtype == (torch.bfloat16 if amx else torch.float32)
    assert infer.build_parser().parse_args(["--content", "c.jpg", "--style", "s.jpg"]).precision == "auto"
