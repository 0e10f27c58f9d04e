"""The device-side L-BFGS: the iterates of torch.optim.LBFGS(max_iter=1), and a Gatys loop that never
reads a value back from the device."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

import gatys.optimize as optimize
from gatys import DEFAULTS, stylize
from gatys.lbfgs import DeviceLBFGS


def wavy(x: torch.Tensor) -> torch.Tensor:
    """Smooth and not convex (a chained quartic plus ripples), so some curvature pairs are refused."""
    return 10 * (x[1:] - x[:-1] ** 2).square().sum() + (1 - x).square().sum() + torch.cos(3 * x).sum()


def minimise(optimizer: torch.optim.Optimizer, x: torch.Tensor, steps: int) -> list[torch.Tensor]:
    path = []
    for _ in range(steps):

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = wavy(x)
            loss.backward()
            return loss

        optimizer.step(closure)
        path.append(x.detach().clone())
    return path


@pytest.mark.parametrize("history", [3, 100])  # 3: the stored pairs wrap around many times
def test_the_iterates_are_those_of_torch_lbfgs(history):
    start = 0.5 * torch.randn(20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours, theirs = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    optimizer = DeviceLBFGS(ours, history_size=history)  # lr 1, as Gatys uses it
    got = minimise(optimizer, ours, 40)
    expected = minimise(torch.optim.LBFGS([theirs], max_iter=1, history_size=history), theirs, 40)
    for step, (a, b) in enumerate(zip(got, expected)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9, msg=f"step {step + 1}")
    assert wavy(got[-1]) < wavy(start) - 100
    kept = optimizer.state["lbfgs"]["valid"].sum().item()
    assert history == 3 or kept < 39  # some of the 39 pairs had s·y <= 1e-10 and were refused (measured: 9)


def test_no_step_where_the_gradient_vanishes():
    x = torch.ones(5, dtype=torch.float64, requires_grad=True)  # the minimum of (1 - x)²
    optimizer = DeviceLBFGS(x)
    for _ in range(3):

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = (1 - x).square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    assert torch.equal(x.detach(), torch.ones(5, dtype=torch.float64))
    assert optimizer.state["lbfgs"]["valid"].sum() == 0  # the zero steps stored no pair


READBACKS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")


def test_the_gatys_loop_reads_nothing_back_from_the_device(encoder, monkeypatch):
    """On the CPU nothing waits, so what is checked is that no value is pulled to the host in the
    loop (each such read is a synchronisation on a GPU): every way of reading one raises until the
    loop's clock is read after the last step."""
    guarded = {name: getattr(torch.Tensor, name) for name in READBACKS}
    reads = []

    def refuse(name):
        def read(self, *args, **kwargs):
            reads.append(name)
            raise AssertionError(f"Tensor.{name} inside the Gatys loop")

        return read

    for name in READBACKS:
        monkeypatch.setattr(torch.Tensor, name, refuse(name))
    seconds = optimize.StepClock.seconds

    def loop_done(self):
        for name, method in guarded.items():
            monkeypatch.setattr(torch.Tensor, name, method)
        return seconds(self)

    monkeypatch.setattr(optimize.StepClock, "seconds", loop_done)
    content = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    style = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    result = stylize(content, style, replace(DEFAULTS, steps=4), encoder=encoder, progress=False)
    assert reads == [] and len(result.history) == 5
    assert result.history[-1]["style"] < result.history[0]["style"]
    assert [h["seconds"] for h in result.history] == sorted(h["seconds"] for h in result.history)


@pytest.mark.gpu
def test_the_gatys_loop_never_synchronises_a_gpu(encoder, monkeypatch):
    """PyTorch's sync debug mode raises on any synchronising call from the first step to the clock's read-out."""
    gpu_encoder = copy.deepcopy(encoder).to("cuda")
    content, style = torch.rand(1, 3, 64, 64, device="cuda"), torch.rand(1, 3, 64, 64, device="cuda")
    seconds = optimize.StepClock.seconds

    def loop_done(self):
        torch.cuda.set_sync_debug_mode(0)
        return seconds(self)

    monkeypatch.setattr(optimize.StepClock, "seconds", loop_done)
    stylize(content, style, replace(DEFAULTS, steps=2), encoder=gpu_encoder, progress=False)  # first-call set-up
    torch.cuda.set_sync_debug_mode("error")
    try:
        result = stylize(content, style, replace(DEFAULTS, steps=5), encoder=gpu_encoder, progress=True)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len(result.history) == 6
