"""LP-FT (Kumar, Raghunathan, Jones, Ma, Liang 2022, "Fine-tuning can distort pretrained features and
underperform out-of-distribution"): first a linear probe on the frozen pretrained features, then full fine-tuning
that starts from that head, at a small learning rate.

Stage 1 is feature-extraction's probe: the same cached features (``ctx.features``, same key, so the two
strategies share one computation) and the same solver (``bench.run.probe.solve_probe``: standardised features,
full-batch L-BFGS logistic regression, the L2 strength chosen on validation, standardisation folded into the
weights). Stage 2 builds the full pretrained model, loads the probe into
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
from torch import nn

from bench.core.errors import SkipCell
from bench.core.strategy import Strategy
from bench.core.param import Param
from bench.run.kit import BATCHNORM, pretrained_model, solve_probe

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


class LinearProbeThenFineTune(Strategy):
    name = "lp-ft"
    uses_pretrained = True
    description = "linear probe on cached frozen features (L-BFGS), then all layers fine-tuned from that head"
    version = "2"  # 1: stage 1 with a fixed L2 strength instead of feature-extraction's probe
    parameters = {"ft_lr_mult": Param(0.1, "stage-2 learning rate = lr × ft_lr_mult", float, 0, 10, open_low=True),
                  "probe_l2": Param(None, "stage-1 L2 strength (null: chosen on validation from the probe's grid)",
                                    float, 0, 1e6, nullable=True),
                  "probe_steps": Param(100, "L-BFGS iterations for a non-linear head (word vectors)", int, 1, 10_000),
                  "batchnorm": BATCHNORM}

    def run(self, ctx):
        backbone, params = ctx.backbone, ctx.params
        model = pretrained_model(ctx)
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
            val = ctx.features("val", make_model)
            t1 = time.perf_counter()
            probe = solve_probe(train.inputs[0], train.y, val.inputs[0], val.y, ctx.meta.num_classes,
                                l2_grid=params.get("probe_l2"), metric=ctx.meta.main_metric)
            with torch.no_grad():
                linear.weight.copy_(probe.head.weight.to(linear.weight.device, linear.weight.dtype))
                linear.bias.copy_(probe.head.bias.to(linear.bias.device, linear.bias.dtype))
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
        l2 = float(ctx.params["probe_l2"] if ctx.params["probe_l2"] is not None else 1e-3)
        lbfgs_fit(params, lambda: F.cross_entropy(head(x).float(), train.y) + l2 / 2 * sum((p ** 2).sum()
                                                                                        for p in params),
                  int(ctx.params["probe_steps"]))
