"""The shared training loop against a bare PyTorch loop doing the same work (``python -m bench.tools.loop_bench``).

Both train the same model from the same initial weights on the same generated data (Fashion-MNIST-like 28×28
uint8 grey images, resized on the fly by the vision backbone's own transform), same batch, steps, optimizer
(AdamW) and warmup-cosine schedule. Repetitions are interleaved (fit, bare, bare, fit, ...) because the machine is
shared: a load spike then hits both sides, and the median of each side is reported with their ratio.

Two comparisons, like with like:

Times are process CPU seconds by default (``--clock cpu``): with one intra-op thread that is the work done, which
other jobs on a shared machine disturb far less than the wall clock (``--clock wall``).

- **train**: samples/s of the optimizer steps only (``FitResult.train_time_s`` against the bare loop's own timer
  around the same steps).
- **epoch**: samples/s of the whole epoch as the protocol defines it, training plus the per-epoch work that
  model selection needs: precise BatchNorm recalibration and the validation pass (the bare loop does the same
  recalibration and evaluation, written plainly), and keeping the best weights.

No assets, no network: the model is timm's ``tf_efficientnet_lite0`` with random weights.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
import types
from typing import Any

import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from bench.backbones import resolve_backbone
from bench.plan.params import shared_defaults
from bench.run import train as train_module
from bench.run.train import TensorData, fit, make_optimizer, warmup_cosine

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter  # set by main: both loops read the same clock


def make_data(n: int, classes: int = 10, seed: int = 0) -> TensorData:
    """Fashion-MNIST-like data: uint8 [n, 1, 28, 28] with a class-dependent pattern, so the task is learnable."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    base = torch.rand(classes, 1, 28, 28, generator=g) * 200
    x = (base[y] + torch.rand(n, 1, 28, 28, generator=g) * 55).to(torch.uint8)
    return TensorData((x,), y)


def bare_run(model: torch.nn.Module, train: TensorData, val: TensorData, transform, params: dict[str, Any],
             generator: torch.Generator) -> dict[str, float]:
    """The same work as ``fit`` written as the textbook loop; returns train and whole-run seconds."""
    batch, steps, epochs = int(params["batch_size"]), int(params["min_steps_per_epoch"]), int(params["epochs"])
    opt = make_optimizer([{"params": list(model.parameters()), "lr": params["lr"]}], params, torch.device("cpu"))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(epochs * steps, params["warmup"]))
    eval_batch, precise = int(params["eval_batch_size"]), int(params["precise_bn"] or 0)
    train_s, best, best_state = 0.0, -1.0, None
    t_all = clock()
    order = torch.empty(0, dtype=torch.long)
    for _ in range(epochs):
        model.train()
        t0 = clock()
        for _ in range(steps):
            if len(order) < batch:
                order = torch.randperm(len(train), generator=generator)
            idx, order = order[:batch], order[batch:]
            (x,) = transform((train.inputs[0][idx],))
            loss = F.cross_entropy(model(x), train.y[idx], label_smoothing=params["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        train_s += clock() - t0
        with torch.no_grad():
            if precise:  # precise BatchNorm, as the loop does it
                bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
                for m in bns:
                    m.reset_running_stats()
                    m.momentum = None
                for start in range(0, min(len(train), precise), eval_batch):
                    model(*transform((train.inputs[0][start:min(start + eval_batch, precise)],)))
                for m in bns:
                    m.momentum = 0.1
            model.eval()
            pred = torch.cat([model(*transform((val.inputs[0][s:s + eval_batch],))).argmax(1)
                              for s in range(0, len(val), eval_batch)])
        acc = float((pred == val.y).float().mean())
        f1_score(val.y.numpy(), pred.numpy(), average="macro", zero_division=0)
        if acc > best:
            best, best_state = acc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return {"train_s": train_s, "total_s": clock() - t_all}


def fit_run(model: torch.nn.Module, train: TensorData, val: TensorData, transform, params: dict[str, Any],
            generator: torch.Generator) -> dict[str, float]:
    # fit times its epochs with time.perf_counter; give its module the benchmark's clock for this run only
    real = train_module.time
    train_module.time = types.SimpleNamespace(perf_counter=clock)
    try:
        t0 = clock()
        result = fit(model, [{"params": list(model.parameters()), "lr": params["lr"]}], train, val, transform,
                     params, torch.device("cpu"), generator=generator)
        return {"train_s": result.train_time_s, "total_s": clock() - t0}
    finally:
        train_module.time = real


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved repetitions of both loops; median samples/s of each and their ratio (fit / bare)."""
    import timm

    torch.manual_seed(0)
    init = timm.create_model(args.model, pretrained=False, num_classes=10)
    backbone = resolve_backbone(args.model)
    params = shared_defaults() | {"image_size": args.image_size, "batch_size": args.batch, "epochs": args.epochs,
                                  "min_steps_per_epoch": args.steps, "eval_batch_size": args.eval_batch,
                                  "precise_bn": args.precise_bn, "lr": 1e-3}
    train = make_data(args.batch * args.steps)  # one pass = one epoch: no cycling, no ragged batch
    val = make_data(args.val, seed=1)

    def transform(batch):
        return backbone.transform(batch, params)

    samples = args.batch * args.steps * args.epochs
    runs: dict[str, list[dict[str, float]]] = {"fit": [], "bare": []}
    for rep in range(args.repeats):
        for name in (("fit", "bare") if rep % 2 == 0 else ("bare", "fit")):
            model = copy.deepcopy(init)
            runner = fit_run if name == "fit" else bare_run
            runs[name].append(runner(model, train, val, transform, params, torch.Generator().manual_seed(rep)))
    out: dict[str, Any] = {"samples_per_run": samples}
    for part in ("train", "total"):
        for name in runs:
            out[f"{name}_{part}_sps"] = statistics.median(samples / r[f"{part}_s"] for r in runs[name])
        out[f"{part}_ratio"] = out[f"fit_{part}_sps"] / out[f"bare_{part}_sps"]
        # the ratio of each interleaved pair too: its spread shows how much the shared machine moved
        pairs = [b[f"{part}_s"] / f[f"{part}_s"] for f, b in zip(runs["fit"], runs["bare"])]
        out[f"{part}_pair_ratios"] = [round(p, 3) for p in pairs]
    return out


def profile(args: argparse.Namespace) -> dict[str, float]:
    """Seconds per epoch of each part of ``fit``'s work, timed piece by piece with the loop's own functions:
    where an epoch's time goes (transform, forward, backward, optimizer, schedule, precise BN, validation,
    keeping the best weights)."""
    import timm

    from bench.run.train import evaluate, recalibrate_batchnorm

    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False, num_classes=10)
    backbone = resolve_backbone(args.model)
    params = shared_defaults() | {"image_size": args.image_size, "batch_size": args.batch, "epochs": args.epochs,
                                  "min_steps_per_epoch": args.steps, "eval_batch_size": args.eval_batch,
                                  "precise_bn": args.precise_bn, "lr": 1e-3}
    train, val = make_data(args.batch * args.steps), make_data(args.val, seed=1)
    opt = make_optimizer([{"params": list(model.parameters()), "lr": 1e-3}], params, torch.device("cpu"))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(args.epochs * args.steps, params["warmup"]))
    parts: dict[str, float] = dict.fromkeys(["transform", "forward", "backward", "optimizer", "schedule",
                                             "precise BN", "validation", "best weights"], 0.0)

    def timed(name: str, fn, *a):
        t0 = clock()
        out = fn(*a)
        parts[name] += clock() - t0
        return out

    def tf(batch):
        return backbone.transform(batch, params)

    for _ in range(args.epochs):
        model.train()
        for step in range(args.steps):
            idx = torch.arange(step * args.batch, (step + 1) * args.batch)
            (x,) = timed("transform", tf, (train.inputs[0][idx],))
            loss = timed("forward", lambda x=x, y=train.y[idx]: F.cross_entropy(model(x), y))
            opt.zero_grad(set_to_none=True)
            timed("backward", loss.backward)
            timed("optimizer", opt.step)
            timed("schedule", sched.step)
        timed("precise BN", recalibrate_batchnorm, model, train, tf, args.eval_batch, args.precise_bn)
        timed("validation", evaluate, model, val, tf, args.eval_batch)
        timed("best weights", lambda: copy.deepcopy(model.state_dict()))
    return {k: v / args.epochs for k, v in parts.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--val", type=int, default=256, help="validation samples")
    parser.add_argument("--eval-batch", type=int, default=256)
    parser.add_argument("--precise-bn", type=int, default=int(shared_defaults()["precise_bn"]),
                        help="samples for precise BatchNorm before each evaluation (0: off), in both loops")
    parser.add_argument("--repeats", type=int, default=4, help="interleaved repetitions of each loop")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (set OMP_NUM_THREADS too)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: process CPU time (default: steadier on a shared machine with 1 thread); wall")
    parser.add_argument("--eval-chunk", type=int, default=train_module.CPU_EVAL_CHUNK,
                        help="fit's CPU evaluation chunk (0: whole eval batches, as before the chunking)")
    parser.add_argument("--profile", action="store_true", help="only print where one epoch's time goes")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    train_module.CPU_EVAL_CHUNK = args.eval_chunk or 10**9
    torch.set_num_threads(args.threads)
    if args.profile:
        parts = profile(args)
        total = sum(parts.values())
        print("| part of an epoch | s/epoch | share |\n|---|---|---|")
        for name, seconds in parts.items():
            print(f"| {name} | {seconds:.3f} | {seconds / total:.1%} |")
        return
    out = compare(args)
    print(f"{args.model} {args.image_size}px batch {args.batch}, {args.steps} steps × {args.epochs} epochs, "
          f"{args.repeats} interleaved repeats, {args.threads} thread(s), precise_bn {args.precise_bn}, "
          f"{args.clock} clock")
    print("| part | fit samples/s | bare samples/s | fit / bare | per-pair ratios |")
    print("|---|---|---|---|---|")
    for part, label in (("train", "train steps"), ("total", "epoch (train + precise BN + validation)")):
        print(f"| {label} | {out[f'fit_{part}_sps']:.1f} | {out[f'bare_{part}_sps']:.1f} | "
              f"{out[f'{part}_ratio']:.3f} | {', '.join(map(str, out[f'{part}_pair_ratios']))} |")
    if not all(math.isfinite(out[f"{p}_ratio"]) for p in ("train", "total")):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
