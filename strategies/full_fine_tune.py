"""Full fine-tune: pretrained weights, new head, everything trained; the backbone at a lower learning rate."""

from bench.core.strategy import Strategy
from bench.run.kit import BACKBONE_LR_MULT, BATCHNORM, head_and_body_groups, pretrained_model


class FullFineTune(Strategy):
    name = "full-fine-tune"
    uses_pretrained = True
    description = "pretrained init, new head, all layers trained; backbone LR = lr × backbone_lr_mult"
    version = "2"  # 1: the new head kept timm's random init (2: zero-initialised, see pretrained_model)
    parameters = {"backbone_lr_mult": BACKBONE_LR_MULT, "batchnorm": BATCHNORM}

    def run(self, ctx):
        backbone, params = ctx.backbone, ctx.params
        model = pretrained_model(ctx)  # BatchNorm frozen by default: see bench.run.kit.new_classifier
        body_lr = params["lr"] * params["backbone_lr_mult"]
        return ctx.train_and_test(model, head_and_body_groups(model, backbone.head(model), params["lr"], body_lr))
