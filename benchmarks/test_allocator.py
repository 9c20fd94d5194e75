"""Native bandwidth allocator vs its plain-Python oracle (tests/reference_allocator.py): one
subscriber with 50 tracks x 3 layers, and 1000 subscribers x 10 tracks in one call. "native" is
the SFU's path (a plan built when subscriptions change, then one call per estimate change);
"one-shot" counts packing the dataclasses in and unpacking every allocation out as well."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asv_bench.allocator import SIZES, Workload, workload

_workloads: dict[str, Workload] = {}


def _workload(size: str) -> Workload:
    if size not in _workloads:
        _workloads[size] = workload(*SIZES[size])
    return _workloads[size]


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("role", ["native", "python"])
def test_allocator(compare: Callable[..., Any], benchmark: Any, size: str, role: str) -> None:
    w = _workload(size)
    compare(f"allocator {size}", role, benchmark, w.native if role == "native" else w.python)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("role", ["native", "python"])
def test_allocator_one_shot(compare: Callable[..., Any], benchmark: Any, size: str,
                            role: str) -> None:
    w = _workload(size)
    fn = w.native_one_shot if role == "native" else w.python
    compare(f"allocator one-shot {size}", role, benchmark, fn)


def test_native_and_python_agree_on_the_workloads() -> None:
    for size in SIZES:
        w = _workload(size)
        result = w.native()
        assert [result[i] for i in range(len(result))] == w.python() == w.native_one_shot()
