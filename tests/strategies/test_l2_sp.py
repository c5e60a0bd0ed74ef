"""L2-SP: the penalty is zero at the pretrained weights, grows as they move, and the shared loop applies it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.run.train import TensorData, fit
from strategies.l2_sp import l2_sp_penalty

PARAMS = {"batch_size": 16, "epochs": 3, "eval_batch_size": 64, "weight_decay": 0.0, "warmup": 0.0,
          "label_smoothing": 0.0, "min_steps_per_epoch": 10, "precise_bn": 0}


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_penalty_is_zero_at_the_start_and_grows_with_drift():
    model = net()
    head = model[2]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    penalty = l2_sp_penalty(model, head, alpha=0.5, beta=0.01)
    assert penalty().item() == 0.0
    with torch.no_grad():
        model[0].weight += 0.1
    small = penalty().item()
    assert small == pytest.approx(0.5 / 2 * 0.01 * model[0].weight.numel(), rel=1e-5)
    with torch.no_grad():
        model[0].weight += 0.1
    assert penalty().item() == pytest.approx(4 * small, rel=1e-5)  # quadratic in the drift
    with torch.no_grad():
        head.weight += 1.0
    assert penalty().item() == pytest.approx(4 * small + 0.01 / 2 * head.weight.numel(), rel=1e-5)


def test_frozen_parameters_are_left_out():
    model = net()
    model[0].weight.requires_grad_(False)
    penalty = l2_sp_penalty(model, model[2], alpha=1.0, beta=0.0)
    with torch.no_grad():
        model[0].weight += 1.0  # frozen: not part of w
    assert penalty().item() == 0.0


def _drift(alpha: float) -> float:
    model = net()
    start = [p.detach().clone() for p in model[0].parameters()]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 4, generator=g)
    data = TensorData((x,), (x[:, 0] > 0).long())
    penalty = l2_sp_penalty(model, model[2], alpha=alpha, beta=0.0)
    fit(model, [{"params": list(model.parameters()), "lr": 0.05}], data, data, lambda b: b, PARAMS,
        torch.device("cpu"), generator=torch.Generator().manual_seed(0), penalty=penalty)
    return sum(((p - p0) ** 2).sum().item() for p, p0 in zip(model[0].parameters(), start))


def test_the_shared_loop_applies_the_penalty():
    free, pulled = _drift(0.0), _drift(100.0)
    assert pulled < 0.2 * free, (free, pulled)
