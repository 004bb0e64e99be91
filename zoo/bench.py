"""Stable path: `zoo.tasks.bench`."""

from __future__ import annotations

from .tasks.bench import (
    PEAK_TFLOPS,
    BenchResult,
    benchmark,
    cpu_supports,
    peak_tflops,
)

__all__ = [
    "PEAK_TFLOPS",
    "BenchResult",
    "benchmark",
    "cpu_supports",
    "peak_tflops",
]
