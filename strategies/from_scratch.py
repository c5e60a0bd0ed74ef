"""From scratch: the same architecture, randomly initialised, all trained (the "traditional ML" baseline)."""

from bench.core.strategy import Strategy


class FromScratch(Strategy):
    name = "from-scratch"
    description = "same architecture, random init, every layer trained"
    parameters = {"lr": [2e-3]}

    def run(self, ctx):
        model = ctx.backbone.create(ctx.meta.num_classes, pretrained=False, params=ctx.params)
        model = ctx.backbone.prepare_model(model, ctx.device)
        return ctx.train_and_test(model, [{"params": list(model.parameters()), "lr": ctx.params["lr"]}])
