"""LP-FT (Kumar, Raghunathan, Jones, Ma, Liang 2022, "Fine-tuning can distort pretrained features and
underperform out-of-distribution"): first a linear probe on the frozen pretrained features, then full fine-tuning
that starts from that head, at a small learning rate.

Stage 1 reuses the feature cache that feature-extraction fills (``ctx.features``: same key, so the two strategies
share one computation) and solves an L2-regularised multinomial logistic regression on the standardised features
with full-batch L-BFGS (a near-exact solution in a fixed number of steps, no learning rate to pick); the
standardisation is folded back into the weights. Stage 2 builds the full pretrained model, loads the probe into
its head, freezes the pretrained BatchNorm (as full-fine-tune does) and trains every weight at
``lr × ft_lr_mult``. The row's curve is stage 2's; stage 1's time is ``feature_time_s`` (features) plus
``train_time_s`` (the probe).

Heads that are not a single linear layer on the cached features (word vectors: an MLP on mean‖max pooling) are
probed on the full model's own pooled features instead (computed in memory, not cached), with L-BFGS over the
head's parameters.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from timm.layers import freeze_batch_norm_2d
from torch import nn

from bench.core.errors import SkipCell
from bench.core.strategy import Strategy

PASSIVE = (nn.Dropout, nn.Identity, nn.Flatten)  # head modules that change nothing at evaluation time


def single_linear(head: nn.Module) -> nn.Linear | None:
    """The head's one ``nn.Linear`` when the head is that layer plus parameter-free passthroughs (dropout)."""
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    others = [m for m in head.modules() if not isinstance(m, (nn.Linear, nn.Sequential, *PASSIVE))]
    return linears[0] if len(linears) == 1 and not others else None


def lbfgs_fit(params: list[torch.Tensor], loss_fn, steps: int) -> None:
    """Minimise ``loss_fn()`` over ``params`` with full-batch L-BFGS (strong Wolfe line search)."""
    optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)


def linear_probe(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float, steps: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [K, D], bias [K]) of an L2-regularised logistic regression on raw features ``x``.

    Solved on standardised features (L-BFGS converges in few steps there); ``W x' + b`` with ``x' = (x − μ)/σ``
    is returned as ``(W/σ) x + (b − (W/σ) μ)``, so it applies to the raw features the model's head sees.
    """
    x = x.float()
    mu, sigma = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mu) / sigma
    w = torch.zeros(num_classes, x.shape[1], device=x.device, requires_grad=True)
    b = torch.zeros(num_classes, device=x.device, requires_grad=True)
    lbfgs_fit([w, b], lambda: F.cross_entropy(z @ w.T + b, y) + l2 / 2 * (w ** 2).sum(), steps)
    weight = (w / sigma).detach()
    return weight, (b - weight @ mu).detach()


class LinearProbeThenFineTune(Strategy):
    name = "lp-ft"
    description = "linear probe on cached frozen features (L-BFGS), then all layers fine-tuned from that head"
    version = "1"
    parameters = {"ft_lr_mult": [0.1], "probe_l2": [1e-3], "probe_steps": [100], "batchnorm": ["frozen"]}

    def run(self, ctx):
        backbone, params = ctx.backbone, ctx.params
        if params["batchnorm"] not in ("frozen", "train"):
            raise SkipCell(f"lp-ft: batchnorm must be 'train' or 'frozen', not {params['batchnorm']!r}")
        model = backbone.create(ctx.meta.num_classes, pretrained=True, params=params)
        if params["batchnorm"] == "frozen":
            model = freeze_batch_norm_2d(model)
        model = backbone.prepare_model(model, ctx.device)
        head = backbone.head(model)
        linear = single_linear(head)
        t0 = time.perf_counter()
        if linear is not None:
            make_model = lambda: backbone.feature_model(params)  # noqa: E731 - only built on a cache miss
            train = ctx.features("train", make_model)
            feature_time = time.perf_counter() - t0
            if train.inputs[0].shape[1] != linear.in_features:
                raise SkipCell(f"lp-ft: cached features have {train.inputs[0].shape[1]} dimensions, the head of "
                               f"{backbone.name} takes {linear.in_features}")
            t1 = time.perf_counter()
            weight, bias = linear_probe(train.inputs[0], train.y, ctx.meta.num_classes,
                                        float(params["probe_l2"]), int(params["probe_steps"]))
            with torch.no_grad():
                linear.weight.copy_(weight.to(linear.weight.dtype))
                linear.bias.copy_(bias.to(linear.bias.dtype))
        else:
            feature_time = 0.0
            t1 = time.perf_counter()
            self._probe_head(ctx, model, head)
        probe_time = time.perf_counter() - t1
        lr = params["lr"] * params["ft_lr_mult"]
        outcome = ctx.train_and_test(model, [{"params": list(model.parameters()), "lr": lr}])
        outcome.feature_time_s = feature_time
        outcome.train_time_s += probe_time
        return outcome

    @staticmethod
    def _probe_head(ctx, model: nn.Module, head: nn.Module) -> None:
        """Fit a non-linear head on the frozen model's pooled training features (in memory)."""
        train = ctx.split("train")
        batch = int(ctx.params["eval_batch_size"])
        model.eval()
        with torch.no_grad():
            x = torch.cat([ctx.backbone.features(model, *ctx.transform(tuple(t[i:i + batch] for t in train.inputs)))
                           for i in range(0, len(train), batch)]).float()
        params = [p for p in head.parameters() if p.requires_grad]
        l2 = float(ctx.params["probe_l2"])
        lbfgs_fit(params, lambda: F.cross_entropy(head(x).float(), train.y) + l2 / 2 * sum((p ** 2).sum()
                                                                                        for p in params),
                  int(ctx.params["probe_steps"]))
