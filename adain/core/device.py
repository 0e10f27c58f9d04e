"""Where and in what precision the models run, chosen the same way by every tool and both methods."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # by options.PRECISIONS


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA if available, else MPS, else CPU; anything else as given (checked)."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {str(device)!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {str(device)!r} is not supported; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("MPS was requested but is not available on this machine")
    return device


def check_precision(precision: str, device: torch.device) -> None:
    """ValueError for fp16 on the CPU: there are no fast kernels for it there, and it hangs."""
    if device.type == "cpu" and precision == "fp16":
        raise ValueError("fp16 has no fast kernels on the CPU; use --precision bf16 or fp32 there")


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and the thread count in use: what every measurement names."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what :mod:`platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


BF16_UNITS = {"amx_bf16": "bf16 matrix units (AMX)", "avx512_bf16": "bf16 dot-product instructions (AVX512-BF16)"}


def cpu_bf16_hardware() -> str | None:
    """What this CPU computes bf16 with in hardware, as torch reports it, or None.

    Intel AMX tiles, or AVX512-BF16 dot products (Intel Cooper Lake and later, AMD Zen 4 and
    later): there bf16 runs the network faster than fp32 (measured: several times with AMX; on an
    AMD EPYC Zen 5, 2.2× for a training step, not slower for inference). On CPUs with neither
    (AVX2-only AMD EPYCs, for one) bf16 is emulated and several times *slower* than fp32."""
    get = getattr(torch.cpu, "get_capabilities", None)  # torch ≥ 2.8
    capabilities = get() if get is not None else {}
    return next((unit for flag, unit in BF16_UNITS.items() if capabilities.get(flag, False)), None)


def auto_precision(device: torch.device) -> tuple[str, str]:
    """What ``--precision auto`` runs the network in on ``device``, and why, in a few words: bf16
    on a CPU that computes bf16 in hardware (:func:`cpu_bf16_hardware`), fp32 on other CPUs (bf16
    is emulated there, several times slower) and, until measured otherwise, on GPUs."""
    if device.type != "cpu":
        return "fp32", f"{device.type}: fp32 (reduced precision not yet measured faster there)"
    unit = cpu_bf16_hardware()
    if unit is not None:
        return "bf16", f"{cpu_model()} has {unit}: bf16"
    return "fp32", f"{cpu_model()} has no bf16 hardware (AMX, AVX512-BF16), where bf16 is emulated and slower: fp32"


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision`` for ``device``: ``auto`` as :func:`auto_precision` picks, anything else checked."""
    if precision == "auto":
        return auto_precision(device)[0]
    check_precision(precision, device)
    return precision


def cpu_training_precision() -> tuple[str, bool, str]:
    """Lightning precision and channels-last for training on this CPU, and why, in one line: the
    choice :func:`auto_precision` makes for inference, as autocast (bf16-mixed) with NHWC."""
    precision, why = auto_precision(torch.device("cpu"))
    return ("bf16-mixed", True, f"{why}-mixed + channels-last") if precision == "bf16" else ("32-true", False, why)
