"""Fixtures for the speed benchmarks (this folder only; nothing here changes the rest of the test suite)."""

from __future__ import annotations

import os

import pytest
import torch

from bench.run.taskdata import load_task_data
from tests.benchmarks import BenchShapes
from tests.helpers.tiny import TINY_MODEL, register, tiny_weights

THREADS_ENV = "TRANSFERBENCH_BENCH_THREADS"


@pytest.fixture(scope="session", autouse=True)
def torch_threads() -> int:
    """Intra-op threads for the benchmarks: 1 unless TRANSFERBENCH_BENCH_THREADS says otherwise.

    One thread because figures are meant to be compared between runs: on a shared 2-core machine, two OpenMP
    threads competing with other processes made a tiny model's training step 10-60x slower and wildly variable.
    The previous setting is restored at the end of the session.
    """
    before = torch.get_num_threads()
    threads = int(os.environ.get(THREADS_ENV, "1"))
    torch.set_num_threads(threads)
    yield threads
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _record_threads(request, torch_threads):
    """Every saved benchmark says how many threads it ran with (part of what a comparison must hold equal)."""
    if "benchmark" in request.fixturenames:
        request.getfixturevalue("benchmark").extra_info["torch_threads"] = torch_threads


@pytest.fixture()
def bench_backbone(monkeypatch, tmp_path) -> str:
    """Registers the ``bench-shapes`` task and returns the tiny timm model with (random) pretrained weights from a
    file, so the pretrained code path runs offline."""
    register(monkeypatch, "task", BenchShapes())
    load_task_data.cache_clear()
    yield f"{TINY_MODEL}@{tiny_weights(tmp_path / 'tiny.safetensors')}"
    load_task_data.cache_clear()
