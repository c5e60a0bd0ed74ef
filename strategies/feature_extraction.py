"""Feature extraction (linear probe): the pretrained backbone frozen; its pooled features are computed once,
cached on disk, and a linear head is solved on them (bench.run.probe: standardised features, full-batch L-BFGS
logistic regression, the L2 strength chosen on validation). The shared SGD loop is not used, so the suite's
``epochs`` and ``lr`` do not affect this strategy."""

import time

from bench.core.strategy import Strategy
from bench.core.context import Outcome
from bench.run.kit import count_params, evaluate, solve_probe


class FeatureExtraction(Strategy):
    name = "feature-extraction"
    uses_pretrained = True
    description = "frozen pretrained backbone, features cached once, linear probe solved by L-BFGS (L2 chosen on val)"
    version = "2"  # 1: a linear head trained by the shared SGD loop for `epochs`
    # None: bench.run.probe's default grid, chosen on validation; a number fixes the strength; a nested list is a grid.
    parameters = {"probe_l2": [None]}
    searchable = ()  # no learning rate or epochs: the L2 strength is chosen on validation by the solver itself

    def run(self, ctx):
        t0 = time.perf_counter()
        make_model = lambda: ctx.backbone.feature_model(ctx.params)  # noqa: E731 - only built on a cache miss
        data = {which: ctx.features(which, make_model) for which in ("train", "val", "test")}
        feature_time = time.perf_counter() - t0
        since_cell_start = time.perf_counter() - ctx.clock
        probe = solve_probe(data["train"].inputs[0], data["train"].y, data["val"].inputs[0], data["val"].y,
                            ctx.meta.num_classes, l2_grid=ctx.params.get("probe_l2"), metric=ctx.meta.main_metric)
        t1 = time.perf_counter()
        batch = int(ctx.params["eval_batch_size"])
        # fp32 on every device: the probe was chosen on fp32 validation logits, bf16 would re-round them.
        val = evaluate(probe.head, data["val"], _identity, batch, "fp32")
        test = evaluate(probe.head, data["test"], _identity, batch, "fp32")
        trainable, head_total = count_params(probe.head)
        # One curve point per strength tried (strong to weak); `epoch` numbers them so curve readers keep working,
        # and `time_s` counts from the start of the cell, as the shared loop's does.
        curve = [{**point, "epoch": i + 1, "time_s": since_cell_start + point["time_s"]}
                 for i, point in enumerate(probe.curve)]
        return Outcome(accuracy=test.accuracy, macro_f1=test.macro_f1, val_accuracy=val.accuracy, curve=curve,
                       best_epoch=probe.index + 1, train_time_s=probe.solve_time_s,
                       eval_time_s=time.perf_counter() - t1, feature_time_s=feature_time, trainable_params=trainable,
                       total_params=head_total + ctx.backbone_param_count(), val_macro_f1=val.macro_f1,
                       curve_kind="l2-path", predictions=ctx.predictions(test, data["test"].y, val, data["val"].y))


def _identity(batch):
    return batch
