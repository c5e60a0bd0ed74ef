"""Source then target: the source-only model (selected on source validation), then fine-tuned on the cell's
labelled target fraction through the shared loop (selected on target validation) at ``lr × ft_lr_mult``.

The row's curve is the target stage's; ``train_time_s`` includes the source stage.
"""

from bench.core.strategy import Strategy
from bench.core.param import Param
from bench.run.kit import CLASS_MAP, INIT, SOURCE, build_classifier, fit



class SourceThenTarget(Strategy):
    name = "source-then-target"
    uses_pretrained = True
    description = "trained on the labelled source, then fine-tuned on the labelled target fraction"
    needs = ("source",)
    source_classes = "same"
    parameters = {"source": SOURCE, "class_map": CLASS_MAP, "init": INIT, "backbone_lr_mult": [0.1],
                  "ft_lr_mult": Param(0.5, "target-stage learning rate = lr × ft_lr_mult", float, 0, 100,
                                      open_low=True)}

    def run(self, ctx):
        params = ctx.params
        model, groups = build_classifier(ctx)
        source = fit(model, groups, ctx.source_split("train"), ctx.source_split("val"), ctx.transform, params,
                     ctx.device, ctx.meta.main_metric, ctx.clock, None, ctx.generator)
        lr = float(params["lr"]) * float(params["ft_lr_mult"])
        outcome = ctx.train_and_test(model, [{"params": list(model.parameters()), "lr": lr}])
        outcome.train_time_s += source.train_time_s
        return outcome
