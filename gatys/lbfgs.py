"""L-BFGS that never waits for the device: every decision is a tensor operation.

``torch.optim.LBFGS`` decides on the host: it reads the loss, the gradient tests and the curvature
test back, and its two-loop recursion passes each of its up to 2·history coefficients as a Python
number (about 200 host synchronisations per step at the default history of 100), so a GPU idles
between tiny kernels. Here the curvature test and the early stops are masks, and the product of
the inverse-Hessian estimate with the gradient uses the compact representation of Byrd, Nocedal &
Schnabel (1994, "Representations of quasi-Newton matrices and their use in limited memory methods",
Math. Programming 63, eq. 3.1): a few matrix-vector products with the stored pairs and two m×m
triangular solves (in float64; float32 on MPS, which has none), instead of 2m dependent dot
products. It is the same algorithm as ``torch.optim.LBFGS(max_iter=1)`` without line search, as
Gatys uses it (``tests/test_lbfgs.py`` checks the iterates against it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

CURVATURE_EPS = 1e-10  # a pair (s, y) is kept only if s·y exceeds this, as in torch.optim.LBFGS


def compact_direction(
    grad: Tensor, s: Tensor, y: Tensor, sy: Tensor, yy: Tensor, valid: Tensor, order: Tensor, gamma: Tensor
) -> Tensor:
    """``−H·grad`` for the L-BFGS inverse-Hessian estimate ``H`` of the stored pairs (Byrd et al. 1994, eq. 3.1).

    ``s``, ``y``: m×n pairs in slots; ``sy[i, j] = s_i·y_j`` and ``yy[i, j] = y_i·y_j``; ``valid``: which
    slots hold a pair; ``order``: the slots from oldest to newest; ``gamma``: ``H₀ = γ·I``. With
    ``a = Sᵀg``, ``b = Yᵀg``, ``R`` the upper triangle of ``SᵀY`` (chronological) and ``D`` its diagonal:
    ``H·g = γ·g + S·R⁻ᵀ((D + γ·YᵀY)·R⁻¹a − γ·b) − γ·Y·R⁻¹a``. Empty slots act as rows of an identity
    with zero data, so they add nothing.
    """
    small = torch.float64 if grad.device.type != "mps" else torch.float32
    v = valid[order].to(small)
    both = v[:, None] * v[None, :]
    sy_o = sy[order][:, order].to(small) * both
    r = torch.triu(sy_o) + torch.diag(1 - v)
    diag = torch.diagonal(sy_o)
    g = gamma.to(small)
    a = (s @ grad)[order].to(small) * v
    b = (y @ grad)[order].to(small) * v
    u = torch.linalg.solve_triangular(r, a[:, None], upper=True)
    inner = diag[:, None] * u + g * (yy[order][:, order].to(small) * both) @ u - g * b[:, None]
    p = torch.linalg.solve_triangular(r.T, inner, upper=False)
    coeff_s = torch.zeros_like(p[:, 0]).index_copy(0, order, p[:, 0]).to(grad.dtype)
    coeff_y = torch.zeros_like(u[:, 0]).index_copy(0, order, -g * u[:, 0]).to(grad.dtype)
    return -(gamma * grad + coeff_s @ s + coeff_y @ y)


class DeviceLBFGS(torch.optim.Optimizer):
    """L-BFGS on one tensor, one iteration per :meth:`step`, no line search, no host synchronisation.

    As ``torch.optim.LBFGS(max_iter=1)``: the first step goes along ``−g`` with length
    ``min(1, 1/‖g‖₁)·lr``, later ones along ``−H·g`` with length ``lr``; a pair is stored only if
    ``s·y > 1e-10`` (then ``H₀ = (s·y / y·y)·I``); no step is taken when ``max|g| ≤ tolerance_grad``
    or the direction is not one of descent (``g·d > −tolerance_change``). The ``history_size`` pairs
    are allocated at the start (2·history·numel values, as torch's list holds once full).
    """

    def __init__(
        self,
        param: Tensor,
        lr: float = 1.0,
        history_size: int = 100,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
    ):
        super().__init__([param], {"lr": lr})
        self.param = param
        self.history_size, self.tolerance_grad, self.tolerance_change = history_size, tolerance_grad, tolerance_change
        self.iterations = 0

    def _init_state(self, grad: Tensor) -> dict[str, Tensor]:
        m, n = self.history_size, grad.numel()
        like = {"device": grad.device}
        return {
            "s": grad.new_zeros(m, n), "y": grad.new_zeros(m, n),
            "sy": grad.new_zeros(m, m), "yy": grad.new_zeros(m, m),
            "valid": torch.zeros(m, dtype=torch.bool, **like), "next": torch.zeros((), dtype=torch.long, **like),
            "gamma": grad.new_ones(()), "prev_grad": torch.empty_like(grad),
        }  # fmt: skip  # the last step's direction "d" and length "t" are added by step()

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        """Evaluate ``closure`` (which computes the loss and its gradient) once, then move the tensor."""
        with torch.enable_grad():
            loss = closure()
        lr = self.param_groups[0]["lr"]
        grad = self.param.grad.reshape(-1)
        if self.iterations == 0:
            self.state["lbfgs"] = st = self._init_state(grad)
            d = -grad
            t = torch.clamp(1.0 / grad.abs().sum(), max=1.0) * lr
        else:
            st = self.state["lbfgs"]
            self._remember(st, grad)
            m = self.history_size
            order = (st["next"] + torch.arange(m, device=grad.device)) % m  # oldest first
            d = compact_direction(grad, st["s"], st["y"], st["sy"], st["yy"], st["valid"], order, st["gamma"])
            t = grad.new_full((), lr)
        moves = (grad.abs().max() > self.tolerance_grad) & (grad @ d < -self.tolerance_change)
        t = torch.where(moves, t, torch.zeros_like(t))  # no move: the next pair is s = 0, and is not stored
        self.param.view(-1).add_(t * d)
        st["prev_grad"].copy_(grad)
        st["d"], st["t"] = d, t
        self.iterations += 1
        return loss

    def _remember(self, st: dict[str, Tensor], grad: Tensor) -> None:
        """Store the pair of the last step in the next slot if its curvature ``s·y`` is positive."""
        s_new, y_new = st["d"] * st["t"], grad - st["prev_grad"]
        ys = y_new @ s_new
        keep = ys > CURVATURE_EPS
        slot = st["next"].view(1)
        for name, new in (("s", s_new), ("y", y_new)):
            st[name].index_copy_(0, slot, torch.where(keep, new, st[name].index_select(0, slot)[0])[None])
        s_slot, y_slot = st["s"].index_select(0, slot)[0], st["y"].index_select(0, slot)[0]
        st["sy"].index_copy_(1, slot, (st["s"] @ y_slot)[:, None])  # s_i·y_slot
        st["sy"].index_copy_(0, slot, (st["y"] @ s_slot)[None])  # s_slot·y_j
        yy = st["y"] @ y_slot
        st["yy"].index_copy_(1, slot, yy[:, None])
        st["yy"].index_copy_(0, slot, yy[None])
        st["valid"].index_copy_(0, slot, st["valid"].index_select(0, slot) | keep)
        st["gamma"] = torch.where(keep, ys / (y_new @ y_new), st["gamma"])
        st["next"] = (st["next"] + keep.long()) % self.history_size
