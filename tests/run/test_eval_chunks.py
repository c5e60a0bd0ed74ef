"""Evaluation on the CPU runs in cache-sized chunks: same predictions as one big batch, every sample once."""

from __future__ import annotations

import torch
from torch import nn

from bench.run import train


def test_cpu_predict_in_chunks_matches_one_pass():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3))
    model.train()
    model(torch.randn(32, 1, 8, 8))  # non-trivial running statistics
    n = 2 * train.CPU_EVAL_CHUNK + 7  # a ragged last chunk
    data = train.TensorData((torch.randn(n, 1, 8, 8),), torch.randint(0, 3, (n,)))
    seen = []

    def transform(batch):
        seen.append(len(batch[0]))
        return batch

    logits = train.predict(model, data, transform, batch_size=256)
    assert seen == [train.CPU_EVAL_CHUNK, train.CPU_EVAL_CHUNK, 7] and not model.training
    with torch.no_grad():
        whole = model(data.inputs[0])
    torch.testing.assert_close(logits, whole, rtol=1e-5, atol=1e-6)
    assert train.predict(model, data, transform, batch_size=16).shape == (n, 3)  # smaller batches stay as asked
    assert seen[3:] == [16] * (n // 16) + [n % 16]
