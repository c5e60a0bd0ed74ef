"""Linear probe: full-batch multinomial logistic regression on frozen features, its L2 strength chosen on validation.

The field's linear-evaluation protocol (Kornblith et al. 2019, "Do Better ImageNet Models Transfer Better?"; CLIP,
Radford et al. 2021): standardise the features with statistics of the training split, solve the convex
L2-regularised problem to convergence with L-BFGS, choose the L2 strength on the validation split only, and score
the test split once. A few epochs of mini-batch SGD leave this convex head far from its optimum (a GloVe probe on
Rotten Tomatoes scored the majority-class rate after 2 epochs; the solved problem reaches 0.69).

The objective for one strength ``lam`` is ``mean cross-entropy + lam / 2 * ||W||^2`` (the bias is not penalised),
which is scikit-learn's ``LogisticRegression`` with ``C = 1 / (lam * n_train)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.errors import UserError
from bench.run.train import scores

# Strong to weak over eight decades; warm starts make the weak end (the slow one) start near its optimum.
DEFAULT_L2_GRID: tuple[float, ...] = tuple(float(v) for v in np.logspace(2, -6, 10))
METRICS = ("accuracy", "macro_f1")
RESTARTS = 3


@dataclass
class ProbeResult:
    """The solved probe and how it was chosen.

    Attributes:
        head: maps RAW (unstandardised) features to logits; the standardisation is folded into weight and bias.
        l2: the chosen strength (``lam`` of ``mean loss + lam / 2 * ||W||^2``).
        index: position of the chosen strength in ``curve`` (0-based).
        curve: one dict per strength tried, strong to weak: ``l2``, ``val_accuracy``, ``val_macro_f1``,
            ``train_loss`` (the objective), ``train_accuracy``, ``iterations``, ``grad_norm``, ``converged``,
            ``time_s`` (seconds since the solve began).
        iterations: L-BFGS iterations over the whole grid.
        converged: whether the chosen strength's solve reached ``grad_norm <= tol``.
        solve_time_s: seconds for standardisation, every solve and the validation scoring.
        val_score: the validation ``metric`` at the chosen strength.
    """

    head: nn.Linear
    l2: float
    index: int
    curve: list[dict[str, Any]] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    solve_time_s: float = 0.0
    val_score: float = 0.0


def solve_probe(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                num_classes: int, l2_grid: Sequence[float] | float | None = None, metric: str = "accuracy",
                max_iter: int = 500, tol: float | None = None, history_size: int = 20) -> ProbeResult:
    """Solve the L2-regularised multinomial logistic regression probe for each strength, pick one on validation.

    Works on the device of ``train_x``, in float64 when the features are float64 and float32 otherwise.

    Args:
        train_x, train_y: training features ``(n, d)`` and int labels ``(n,)``; the only data the weights see.
        val_x, val_y: validation features and labels; used only to choose the strength.
        num_classes: logits per sample (classes absent from the training split still get a row).
        l2_grid: strengths to try (any order; solved strong to weak, each warm-started from the previous one);
            one number fixes the strength; None: ``DEFAULT_L2_GRID``.
        metric: validation metric that chooses, ``accuracy`` or ``macro_f1``; ties go to the stronger strength.
        max_iter: L-BFGS iterations per strength at most.
        tol: convergence when the largest absolute gradient entry of the objective is at most this (scipy's
            ``pgtol``); None: 1e-4 in float32 (scikit-learn's default), 1e-6 in float64.
        history_size: L-BFGS memory.

    Raises:
        UserError: a bad grid or metric.
        ValueError: features and labels of mismatched shapes.
        FloatingPointError: the features or the objective are not finite.
    """
    t0 = time.perf_counter()
    grid = _check_grid(l2_grid)
    if metric not in METRICS:
        raise UserError(f"probe metric {metric!r} is unknown; use one of {', '.join(METRICS)}")
    if train_x.ndim != 2 or val_x.ndim != 2 or val_x.shape[1] != train_x.shape[1] or len(train_x) != len(train_y) \
            or len(val_x) != len(val_y) or len(train_x) == 0:
        raise ValueError(f"probe needs (n, d) features with one label each; got train {tuple(train_x.shape)} / "
                         f"{len(train_y)} labels, val {tuple(val_x.shape)} / {len(val_y)} labels")
    dtype = torch.float64 if train_x.dtype == torch.float64 else torch.float32
    tol = (1e-6 if dtype == torch.float64 else 1e-4) if tol is None else float(tol)
    device = train_x.device
    x = train_x.to(dtype)
    if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(val_x).all()):
        raise FloatingPointError("probe features contain NaN or inf")
    y = train_y.to(device=device, dtype=torch.long)
    mean, std = _train_statistics(x.double())
    z = ((x.double() - mean) / std).to(dtype)
    val_z = ((val_x.to(device=device, dtype=torch.float64) - mean) / std).to(dtype)
    vy = val_y.to(device)

    # Weights, bias, loss and penalty in float64; only the (n, d) x (d, k) products run in the features' dtype.
    w = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, device=device, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, device=device, requires_grad=True)
    curve: list[dict[str, Any]] = []
    best: tuple[float, int, torch.Tensor, torch.Tensor] | None = None
    total_iterations = 0
    for i, lam in enumerate(grid):
        iterations = _lbfgs(z, y, w, b, lam, max_iter, tol, history_size)
        total_iterations += iterations
        loss, grad_norm, train_acc = _diagnose(z, y, w, b, lam)
        with torch.no_grad():
            val = scores(_logits(val_z, w, b), vy)
        curve.append({"l2": lam, "val_accuracy": val.accuracy, "val_macro_f1": val.macro_f1, "train_loss": loss,
                      "train_accuracy": train_acc, "iterations": iterations, "grad_norm": grad_norm,
                      "converged": grad_norm <= tol, "time_s": time.perf_counter() - t0})
        if best is None or val.get(metric) > best[0]:  # strictly better: ties keep the stronger strength
            best = (val.get(metric), i, w.detach().clone(), b.detach().clone())
    assert best is not None
    score, index, w_best, b_best = best
    head = _fold(w_best, b_best, mean, std, dtype)
    return ProbeResult(head=head, l2=grid[index], index=index, curve=curve, iterations=total_iterations,
                       converged=bool(curve[index]["converged"]), solve_time_s=time.perf_counter() - t0,
                       val_score=score)


def _check_grid(l2_grid: Sequence[float] | float | None) -> list[float]:
    if l2_grid is None:
        return list(DEFAULT_L2_GRID)
    values = [l2_grid] if isinstance(l2_grid, (int, float)) else list(l2_grid)
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                             for v in values):
        raise UserError(f"probe L2 grid {l2_grid!r} must be positive numbers (or None for the default grid)")
    return sorted({float(v) for v in values}, reverse=True)


def _train_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std of the training split; a (numerically) constant feature gets std 1.

    Rounding makes the std of a constant float32 column a few ulps above zero, and dividing by it would turn
    noise into a large feature: anything below 100 ulps of the column's magnitude counts as constant.
    """
    mean = x.mean(0)
    std = x.std(0, unbiased=False) if len(x) > 1 else torch.zeros_like(mean)
    floor = 100 * torch.finfo(x.dtype).eps * x.abs().amax(0)
    return mean, torch.where(std > floor, std, torch.ones_like(std))


def _logits(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """float64 logits from the product in ``z``'s dtype.

    A float32 loss cannot resolve the last digits of progress (one ulp of a loss near 2 is 2.4e-7, while a step at
    gradient 1e-4 under strong L2 gains ~1e-9), so the line search stalled there; reducing in float64 costs only
    (n, k) work.
    """
    return (z @ w.to(z.dtype).T).double() + b


def _objective(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, lam: float) -> torch.Tensor:
    return F.cross_entropy(_logits(z, w, b), y) + 0.5 * lam * (w * w).sum()


def _lbfgs(z, y, w, b, lam: float, max_iter: int, tol: float, history_size: int) -> int:
    """Full-batch L-BFGS with a strong-Wolfe line search from the current (warm) ``w``, ``b``; iterations run.

    With float32 products, curvature pairs from the last tiny steps are mostly rounding noise and the line search
    then stalls a little above ``tol`` (seen under strong L2, where the unpenalised bias is ~1000x flatter than the
    weights); a fresh history gets it moving again, so a stalled solve restarts up to ``RESTARTS`` times.
    """
    def closure() -> torch.Tensor:
        for p in (w, b):
            if p.grad is not None:
                p.grad.zero_()
        loss = _objective(z, y, w, b, lam)
        loss.backward()
        return loss

    total = 0
    for _ in range(1 + RESTARTS):
        # tolerance_change at one float64 ulp: stop when a step no longer changes the loss at all, never because
        # progress is merely slow.
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter - total, max_eval=2 * (max_iter - total),
                                tolerance_grad=tol, tolerance_change=torch.finfo(torch.float64).eps,
                                history_size=history_size, line_search_fn="strong_wolfe")
        opt.step(closure)
        ran = int(opt.state[w].get("n_iter", 0))
        total += ran
        if ran == 0 or total >= max_iter or _diagnose(z, y, w, b, lam)[1] <= tol:
            break
    return total


def _diagnose(z, y, w, b, lam: float) -> tuple[float, float, float]:
    """(objective, largest absolute gradient entry, training accuracy) at the current solution."""
    w_, b_ = w.detach().requires_grad_(True), b.detach().requires_grad_(True)
    logits = _logits(z, w_, b_)
    loss = F.cross_entropy(logits, y) + 0.5 * lam * (w_ * w_).sum()
    gw, gb = torch.autograd.grad(loss, [w_, b_])
    value = float(loss.detach())
    if not math.isfinite(value):
        raise FloatingPointError(f"probe objective is {value} at l2={lam:g}")
    grad = max(float(gw.abs().max()), float(gb.abs().max()))
    return value, grad, float((logits.argmax(1) == y).float().mean())


def _fold(w: torch.Tensor, b: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, dtype: torch.dtype) -> nn.Linear:
    """A head on raw features: ``(x - mean) / std @ W.T + b == x @ (W / std).T + (b - (W / std) @ mean)``.

    Folded in float64 so the bias's cancellation costs no float32 precision.
    """
    w64 = w.double() / std.double()
    b64 = b.double() - w64 @ mean.double()
    head = nn.Linear(w.shape[1], w.shape[0], device=w.device, dtype=dtype)
    with torch.no_grad():
        head.weight.copy_(w64.to(dtype))
        head.bias.copy_(b64.to(dtype))
    return head
