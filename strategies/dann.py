"""DANN, domain-adversarial training (Ganin et al. 2016, "Domain-Adversarial Training of Neural Networks", JMLR).

One network: the backbone body extracts features, the model's head classifies them, and a small MLP domain
classifier behind a gradient reversal layer (``bench.run.grl``) tells source from target features. Each step
concatenates a labelled source batch, an unlabelled target batch (any target training image outside validation)
and, with ``target_labels: true``, a batch of the cell's labelled target fraction; the loss is the classifier's
cross-entropy (source, plus labelled target) + ``dann_weight`` × the domain classifier's binary cross-entropy,
whose gradient reaches the features reversed and scaled by lambda = 2 / (1 + exp(-gamma p)) - 1 (p: training
progress from 0 to 1). ``target_labels: false`` is unsupervised DA: the target's training labels are read
nowhere (the unlabelled images carry -1). Model selection is on the target's validation split, as for every
strategy; an epoch is one pass over the source's training split.
"""

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.strategy import Strategy
from bench.core.param import Param
from bench.run.kit import (CLASS_MAP, INIT, SOURCE, Batches, build_classifier, cat_inputs, dann_lambda, feature_dim,
                           GradientReversal, joint_train_and_test, mixed_transformed, steps_per_epoch)


def domain_classifier(dim: int, hidden: int) -> nn.Module:
    """The paper's small MLP domain classifier: one logit (source = 1, target = 0)."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 1))


class DANN(Strategy):
    name = "dann"
    uses_pretrained = True
    description = "domain-adversarial training: source labels + gradient-reversed domain classifier on both domains"
    needs = ("source",)
    source_classes = "same"
    parameters = {
        "source": SOURCE, "class_map": CLASS_MAP,
        "init": INIT,
        "backbone_lr_mult": [0.1],
        "target_labels": Param(True, "also train the classifier on the cell's labelled target fraction (false: "
                               "unsupervised domain adaptation, no target training label used)", bool),
        "dann_weight": Param(1.0, "weight of the domain classifier's loss", float, 0, 100),
        "dann_gamma": Param(10.0, "gamma of the lambda schedule 2/(1+exp(-gamma p))-1", float, 0, 1000),
        "domain_hidden": Param(256, "hidden width of the domain classifier", int, 1, 1 << 16),
    }

    def run(self, ctx):
        params, backbone = ctx.params, ctx.backbone
        model, groups = build_classifier(ctx)
        head = backbone.head(model)
        source = ctx.source_split("train")
        pool = ctx.unlabelled_target()
        labelled = ctx.split("train") if params["target_labels"] else None
        disc = domain_classifier(feature_dim(ctx, model, source), int(params["domain_hidden"])).to(ctx.device)
        groups.append({"params": list(disc.parameters()), "lr": float(params["lr"])})
        grl = GradientReversal()
        batch = int(params["batch_size"])
        draw = [Batches(source, batch, ctx.generator), Batches(pool, batch, ctx.generator)]
        if labelled is not None:
            draw.append(Batches(labelled, batch, ctx.generator))
        weight, gamma = float(params["dann_weight"]), float(params["dann_gamma"])

        def step_loss(progress: float):
            (xs, ys), (xt, _) = draw[0].next(), draw[1].next()
            parts = [ctx.transform(xs), ctx.transform(xt)]
            if labelled is not None:
                xl, yl = draw[2].next()
                parts.append(ctx.transform(xl))
            ns, nt = len(ys), len(xt[0])
            features = backbone.features(model, *cat_inputs(parts))
            logits = head(features).float()
            loss = F.cross_entropy(logits[:ns], ys, label_smoothing=params["label_smoothing"])
            hits, seen = (logits[:ns].argmax(1) == ys).sum(), ns
            if labelled is not None:
                loss = loss + F.cross_entropy(logits[ns + nt:], yl, label_smoothing=params["label_smoothing"])
                hits, seen = hits + (logits[ns + nt:].argmax(1) == yl).sum(), seen + len(yl)
            grl.lam = dann_lambda(progress, gamma)
            domain = disc(grl(features[:ns + nt])).float().squeeze(1)
            is_source = torch.cat([torch.ones(ns, device=domain.device), torch.zeros(nt, device=domain.device)])
            loss = loss + weight * F.binary_cross_entropy_with_logits(domain, is_source)
            return loss, hits, seen

        per_epoch = steps_per_epoch(len(source), min(batch, len(source)), int(params["min_steps_per_epoch"]))
        bn_data = mixed_transformed(ctx, [source, pool], int(params.get("precise_bn") or 0) or 2)
        return joint_train_and_test(ctx, model, groups, step_loss, per_epoch, bn_data, extra=disc,
                                    bn_transform=lambda batch: batch)
