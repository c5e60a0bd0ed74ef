"""Source only: train on the labelled source task, test on the target (the lower anchor of domain adaptation).

Model selection uses the SOURCE validation split: no target label is used at all (the cell's label fraction does
not change the result; the row's ``val_accuracy`` and curve are the source's). Precise BatchNorm averages over
source images, so the target is scored with the source's statistics, as a model shipped from the source would be.
"""

from bench.core.strategy import Strategy
from bench.run.kit import CLASS_MAP, INIT, SOURCE, build_classifier



class SourceOnly(Strategy):
    name = "source-only"
    uses_pretrained = True
    description = "trained on the labelled source task only (selected on source validation), tested on the target"
    needs = ("source",)
    source_classes = "same"
    parameters = {"source": SOURCE, "class_map": CLASS_MAP, "init": INIT, "backbone_lr_mult": [0.1]}

    def run(self, ctx):
        model, groups = build_classifier(ctx)
        # Trained and selected on the source; scored on the cell's own test split. Its stored predictions have no
        # validation part: the validation split it was selected on is the source's, not the cell's.
        data = {"train": ctx.source_split("train"), "val": ctx.source_split("val")}
        return ctx.train_and_test(model, groups, data=data)
