"""Partial freeze: pretrained weights; the stem and the first stages frozen, the last ``trainable_stages`` and a new
head trained."""

import dataclasses

from bench.core.errors import SkipCell
from bench.core.param import Param
from bench.core.strategy import Strategy
from bench.run.kit import BACKBONE_LR_MULT, freeze, head_and_body_groups, zero_init_head


class PartialFreeze(Strategy):
    name = "partial-freeze"
    uses_pretrained = True
    description = "pretrained init; stem + first stages frozen, last `trainable_stages` stages + new head trained"
    version = "2"  # 1: the new head kept its random init (2: zero-initialised, as in pretrained_model)
    parameters = {"trainable_stages": Param(2, "stages trained from the top (0: only the new head); more than the "
                                            "backbone has skips the cell", int, 0, 100),
                  "backbone_lr_mult": dataclasses.replace(BACKBONE_LR_MULT, default=1.0)}

    def run(self, ctx):
        backbone, params = ctx.backbone, ctx.params
        model = backbone.create(ctx.meta.num_classes, pretrained=True, params=params)
        zero_init_head(backbone.head(model))
        stages = backbone.stages(model)
        k = int(params["trainable_stages"])
        if not 0 <= k <= len(stages):
            raise SkipCell(f"partial-freeze: trainable_stages={k} but {backbone.name} has {len(stages)} stages")
        freeze(model, [name for stage in stages[: len(stages) - k] for name in stage])
        model = backbone.prepare_model(model, ctx.device)
        body_lr = params["lr"] * params["backbone_lr_mult"]
        return ctx.train_and_test(model, head_and_body_groups(model, backbone.head(model), params["lr"], body_lr))
