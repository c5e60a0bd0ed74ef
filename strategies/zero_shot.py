"""Zero-shot: no training on target labels. Vision maps ImageNet classes to target classes by label-name
similarity (or a task's hand ``imagenet_map``); text compares text embeddings with label-prompt embeddings (see each
backbone's ``zero_shot``).

``invert: true`` (images only) turns light-on-dark scans such as Fashion-MNIST into dark-on-light pictures, closer to
the product photos on white that ImageNet's clothing classes show."""

from bench.core.errors import SkipCell
from bench.core.param import Param
from bench.core.strategy import Strategy


class ZeroShot(Strategy):
    name = "zero-shot"
    uses_pretrained = True
    description = "no training: class scores from the pretrained model and the task's class names / prompts"
    parameters = {"invert": Param(False, "images only: invert pixels first (light-on-dark scans → dark-on-light)",
                                  bool)}
    searchable = ()  # nothing is trained: a search would run the same cell several times

    def run(self, ctx):
        if not ctx.meta.classes:
            raise SkipCell("zero-shot: task has no class names")
        invert = bool(ctx.params.get("invert"))
        if invert and ctx.meta.modality != "vision":
            raise SkipCell("zero-shot: invert applies to images only")
        model = ctx.backbone.prepare_model(ctx.backbone.zero_shot(ctx.meta, ctx.params), ctx.device)
        transform = (lambda batch: ctx.transform((255 - batch[0], *batch[1:]))) if invert else None
        return ctx.test_only(model, transform)
