"""Full fine-tune: pretrained weights, new head, everything trained; the backbone at a lower learning rate."""

from strategies._base import Strategy, head_and_body_groups


class FullFineTune(Strategy):
    name = "full-fine-tune"
    description = "pretrained init, new head, all layers trained; backbone LR = lr × backbone_lr_mult"
    parameters = {"backbone_lr_mult": [0.1]}

    def run(self, ctx):
        backbone, params = ctx.backbone, ctx.params
        model = backbone.create(ctx.meta.num_classes, pretrained=True, params=params)
        model = backbone.prepare_model(model, ctx.device)
        body_lr = params["lr"] * params["backbone_lr_mult"]
        return ctx.train_and_test(model, head_and_body_groups(model, backbone.head(model), params["lr"], body_lr))
