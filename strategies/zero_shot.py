"""Zero-shot: no training on target labels. Vision maps ImageNet classes to target classes by label-name
similarity; text compares text embeddings with label-prompt embeddings (see each backbone's ``zero_shot``)."""

from bench.core.errors import SkipCell
from bench.core.strategy import Strategy


class ZeroShot(Strategy):
    name = "zero-shot"
    description = "no training: class scores from the pretrained model and the task's class names / prompts"
    parameters = {}
    searchable = ()  # nothing is trained: a search would run the same cell several times

    def run(self, ctx):
        if not ctx.meta.classes:
            raise SkipCell("zero-shot: task has no class names")
        model = ctx.backbone.prepare_model(ctx.backbone.zero_shot(ctx.meta, ctx.params), ctx.device)
        return ctx.test_only(model)
