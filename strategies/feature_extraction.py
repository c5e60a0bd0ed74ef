"""Feature extraction (linear probe): the pretrained backbone frozen; its pooled features are computed once,
cached on disk, and a new linear head is trained on them."""

import time

from torch import nn

from bench.core.strategy import Strategy


class FeatureExtraction(Strategy):
    name = "feature-extraction"
    description = "frozen pretrained backbone, features cached once, new linear head trained on them"
    parameters = {"lr": [3e-3]}
    # The probe is to be solved in closed form (no lr, no epochs): the suite's search leaves it alone; list its
    # regulariser here once it has one.
    searchable = ()

    def run(self, ctx):
        t0 = time.perf_counter()
        make_model = lambda: ctx.backbone.feature_model(ctx.params)  # noqa: E731 - only built on a cache miss
        data = {which: ctx.features(which, make_model) for which in ("train", "val", "test")}
        feature_time = time.perf_counter() - t0
        head = nn.Linear(data["train"].inputs[0].shape[1], ctx.meta.num_classes).to(ctx.device)
        outcome = ctx.train_and_test(head, [{"params": list(head.parameters()), "lr": ctx.params["lr"]}],
                                     transform=lambda batch: batch, data=data)
        outcome.feature_time_s = feature_time
        outcome.total_params += ctx.backbone_param_count()
        return outcome
