"""Shared test setup: an isolated cache per test session, quiet progress, tiny generated tasks."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("CI", "true")  # plain progress lines, no live bars
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Every test session gets its own cache unless TRANSFERBENCH_TEST_CACHE points at a warm one
    (handy locally: assets are then fetched once, not per session)."""
    from bench.infra.cache import set_cache_dir

    path = os.environ.get("TRANSFERBENCH_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    os.environ["TRANSFERBENCH_CACHE"] = path
    set_cache_dir(path)
    yield path
    set_cache_dir(None)
