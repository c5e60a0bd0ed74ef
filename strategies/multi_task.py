"""Multi-task learning: one shared backbone, one head per task, trained jointly on the cell's target task and the
auxiliary task(s) named by ``source`` (one name, or several comma-separated; any class counts: each has its head).

Each step draws a batch of the target's labelled fraction and a batch of one auxiliary task, chosen with
probability proportional to its training size ^ (1 / ``temperature``) (1: proportional, large: uniform); the
loss is target cross-entropy + ``aux_weight`` × auxiliary cross-entropy, each task in its own forward pass (so
``aux_weight: 0`` is exactly single-task training's gradient). Scored on the target like every strategy.
"""

import torch
from torch import nn

from bench.core.strategy import Strategy
from bench.core.param import Param
from bench.run.kit import (AUX, INIT, Batches, build_classifier, feature_dim, joint_train_and_test, multitask_loss,
                           source_names, task_metadata)


class MultiTask(Strategy):
    name = "multi-task"
    uses_pretrained = True
    description = "shared backbone, one head per task, trained jointly on the target and auxiliary task(s)"
    needs = ("source",)
    parameters = {
        "source": AUX,
        "init": INIT,
        "backbone_lr_mult": [0.1],
        "aux_weight": Param(1.0, "weight of the auxiliary tasks' cross-entropy", float, 0, 100),
        "temperature": Param(1.0, "auxiliary task sampling: size ^ (1 / temperature)", float, 0, 1000,
                             open_low=True),
    }

    def run(self, ctx):
        params, backbone = ctx.params, ctx.backbone
        model, groups = build_classifier(ctx)
        names = source_names(params["source"])
        aux = [ctx.source_split("train", name) for name in names]
        dim = feature_dim(ctx, model, aux[0])
        heads = nn.ModuleList([nn.Linear(dim, task_metadata(name).num_classes) for name in names])
        heads = heads.to(ctx.device)
        groups.append({"params": list(heads.parameters()), "lr": float(params["lr"])})
        batch = int(params["batch_size"])
        target = Batches(ctx.split("train"), batch, ctx.generator)
        draws = [Batches(a, batch, ctx.generator) for a in aux]
        sizes = torch.tensor([len(a) for a in aux], dtype=torch.float64)
        probs = sizes ** (1.0 / float(params["temperature"]))
        weights = [1.0, float(params["aux_weight"])]

        def features(*inputs):
            return backbone.features(model, *inputs)

        def step_loss(progress: float):
            k = int(torch.multinomial(probs, 1, generator=ctx.generator)) if len(draws) > 1 else 0
            (xt, yt), (xa, ya) = target.next(), draws[k].next()
            batches = [(ctx.transform(xt), yt), (ctx.transform(xa), ya)]
            return multitask_loss(model, [heads[k]], features, batches, weights, params["label_smoothing"])

        return joint_train_and_test(ctx, model, groups, step_loss, extra=heads)
