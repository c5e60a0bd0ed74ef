"""Tests for bench.estimate."""
