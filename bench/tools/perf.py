"""Speed figures through the real training loop (``python -m bench.tools.perf``), printed as a Markdown table.

``throughput``: training samples/s of ``bench.run.train.fit`` for one backbone at one input size, for each variant of
precision × memory format × torch.compile (CUDA variants only on a GPU), with data already on the device, first
epoch (warm-up, autotuning, compilation) reported apart from the steady epochs.
``probe``: feature extraction once vs one epoch of training through the frozen backbone, and one epoch of the
linear head on cached features: what the cached-feature probe saves per extra epoch.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.backbones import resolve_backbone
from bench.plan.params import shared_defaults
from bench.infra.provenance import describe_device, pick_device
from bench.run.train import TensorData, fit, predict, sync

VARIANTS = {  # name: (precision, channels_last, compile)
    "fp32 eager": ("fp32", False, False),
    "bf16 eager": ("bf16", False, False),
    "bf16 eager channels_last": ("bf16", True, False),
    "bf16 compiled channels_last": ("bf16", True, True),
}


def _data(n: int, size: int, classes: int, device: torch.device) -> TensorData:
    # Drawn on the device itself: 20,000 images at 224 px are 3 GB, which a CPU generator takes tens of seconds
    # to fill (a GPU check once spent its whole time limit here and printed nothing).
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g, device=device)
    return TensorData((x,), torch.randint(0, classes, (n,), generator=g, device=device))


def throughput(model_name: str, size: int, batch: int, steps: int, epochs: int, device: torch.device) -> list[dict]:
    backbone = resolve_backbone(model_name)
    rows = []
    names = [v for v in VARIANTS if device.type == "cuda" or VARIANTS[v][0] == "fp32"]
    for name in names:
        precision, channels_last, compile_ = VARIANTS[name]
        params = shared_defaults() | {"image_size": size, "batch_size": batch, "epochs": epochs, "precision": precision,
                                      "compile": compile_, "min_steps_per_epoch": steps, "eval_batch_size": batch}
        model = backbone.create(10, pretrained=False, params=params).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        transform = backbone.transform if channels_last else _contiguous(backbone.transform)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        train, val = _data(batch * steps, size, 10, device), _data(batch, size, 10, device)
        result = fit(model, [{"params": list(model.parameters()), "lr": 1e-3}], train, val,
                     lambda b, p=params, t=transform: t(b, p), params, device)
        trained = [p for p in result.curve if p["epoch"] >= 1]  # epoch 0 is the score before training
        steady = [p["epoch_time_s"] for p in trained[1:]] or [trained[0]["epoch_time_s"]]
        rows.append({"variant": name, "samples_per_s": batch * steps / (sum(steady) / len(steady)),
                     "first_epoch_s": result.first_epoch_time_s,
                     "peak_mem_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None})
        print(f"  {name}: {rows[-1]['samples_per_s']:.0f} samples/s, first epoch {result.first_epoch_time_s:.1f} s",
              flush=True)  # as each variant ends: a time limit that stops a slow variant keeps the others' figures
    best = max(r["samples_per_s"] for r in rows)
    for r in rows:
        r["ratio_to_best"] = r["samples_per_s"] / best
    return rows


def _contiguous(transform):
    def plain(batch, params):
        return tuple(t.contiguous() for t in transform(batch, params))
    return plain


def probe(model_name: str, size: int, n: int, device: torch.device) -> list[dict]:
    backbone = resolve_backbone(model_name)
    params = shared_defaults() | {"image_size": size, "eval_batch_size": 256}
    data = _data(n, size, 10, device)
    frozen = backbone.prepare_model(backbone.feature_model(params), device).eval()

    class Features(torch.nn.Module):
        def forward(self, x):
            return backbone.features(frozen, x)

    sync(device)
    t0 = time.perf_counter()
    feats = predict(Features(), data, lambda b: backbone.transform(b, params), 256)
    extract_s = time.perf_counter() - t0
    # One epoch through the frozen backbone = the same forward pass plus the head's backward.
    head = torch.nn.Linear(feats.shape[1], 10).to(device)
    frozen_model = torch.nn.Sequential(Features(), head)
    step_params = params | {"epochs": 1, "batch_size": 128, "min_steps_per_epoch": 1}
    t0 = time.perf_counter()
    fit(frozen_model, [{"params": list(head.parameters()), "lr": 1e-3}], data, data.take(torch.arange(1)),
        lambda b: backbone.transform(b, params), step_params, device)
    frozen_epoch_s = time.perf_counter() - t0
    cached = TensorData((feats,), data.y)
    t0 = time.perf_counter()
    fit(head, [{"params": list(head.parameters()), "lr": 1e-3}], cached, cached.take(torch.arange(1)),
        lambda b: b, step_params, device)
    head_epoch_s = time.perf_counter() - t0
    return [{"samples": n, "extract_once_s": extract_s, "frozen_backbone_epoch_s": frozen_epoch_s,
             "cached_head_epoch_s": head_epoch_s, "speedup_per_extra_epoch": frozen_epoch_s / head_epoch_s}]


def markdown(rows: list[dict]) -> str:
    cols = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tools.perf", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["throughput", "probe"])
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch (throughput)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs; the first is reported apart (throughput)")
    parser.add_argument("--samples", type=int, default=2048, help="images (probe)")
    parser.add_argument("--device")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    torch.backends.cudnn.benchmark = True
    if args.what == "throughput":
        rows = throughput(args.model, args.image_size, args.batch, args.steps, args.epochs, device)
    else:
        rows = probe(args.model, args.image_size, args.samples, device)
    print(f"{args.what} · {args.model} · {args.image_size}px · {describe_device(device)} · torch {torch.__version__}")
    print(markdown(rows))


if __name__ == "__main__":
    main()
