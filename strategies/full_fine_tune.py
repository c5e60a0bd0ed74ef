"""Full fine-tune: pretrained weights, new head, everything trained; the backbone at a lower learning rate."""

from timm.layers import freeze_batch_norm_2d

from bench.core.errors import SkipCell
from bench.core.strategy import Strategy, head_and_body_groups


class FullFineTune(Strategy):
    name = "full-fine-tune"
    description = "pretrained init, new head, all layers trained; backbone LR = lr × backbone_lr_mult"
    # batchnorm="frozen" keeps the pretrained BatchNorm statistics (and affine terms) fixed while every
    # convolution trains: with small data and small batches, batch statistics of the target images replace the
    # ImageNet ones at the first step and scramble the very features being fine-tuned.
    parameters = {"backbone_lr_mult": [0.1], "batchnorm": ["frozen"]}

    def run(self, ctx):
        backbone, params = ctx.backbone, ctx.params
        model = backbone.create(ctx.meta.num_classes, pretrained=True, params=params)
        if params["batchnorm"] == "frozen":
            model = freeze_batch_norm_2d(model)
        elif params["batchnorm"] != "train":
            raise SkipCell(f"full-fine-tune: batchnorm must be 'train' or 'frozen', not {params['batchnorm']!r}")
        model = backbone.prepare_model(model, ctx.device)
        body_lr = params["lr"] * params["backbone_lr_mult"]
        return ctx.train_and_test(model, head_and_body_groups(model, backbone.head(model), params["lr"], body_lr))
