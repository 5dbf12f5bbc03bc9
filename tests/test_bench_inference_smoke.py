"""Smoke test of `bench/inference.py` on tiny policies: every measurement runs, results are sane.

Checks the shape and sanity of the results, never the speed (machines are noisy).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("torch", reason="the inference bench compares against torch (train extra)")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "inference.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_inference", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(bench: ModuleType) -> dict:
    return {
        "tiny-mlp": bench.ModelSpec("fetch-push", "mlp", (8, 8)),
        "tiny-lstm": bench.ModelSpec("fetch-push", "lstm", (8, 4)),
    }


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


@pytest.mark.parametrize("name", ["tiny-mlp", "tiny-lstm"])
def test_calls_agree_and_return_actions(bench: ModuleType, tiny: dict, name: str, tmp_path):
    spec = tiny[name]
    graph = bench.build_graph(spec)
    path = bench.export_deployable(graph, spec, tmp_path / "p.onnx", 0, parity_samples=20)
    batched = bench.open_session(bench.export_batched(graph, 3, tmp_path / "b.onnx"))
    bench.check_parity(graph, batched, 3)  # raises BenchError on a mismatch
    assert bench.ort_call(batched, graph, 3)()[0].shape == (3, graph.action_dim)
    step = bench.control_step(path, spec.task)
    first, second = step(), step()
    assert first.shape == (graph.action_dim,) and first.dtype == np.float64
    if spec.kind == "lstm":  # the state is carried: same observation, new action
        assert not np.allclose(first, second)
        no_io = bench.open_session(bench.without_state_io(path, tmp_path / "z.onnx"))
        assert [o.name for o in no_io.get_outputs()] == ["action"]
        assert bench.ort_call(no_io, graph, 1)()[0].shape == (1, graph.action_dim)


def test_time_calls_and_stats(bench: ModuleType):
    times = bench.time_calls(lambda: None, seconds=0.0, min_calls=7, warmup=2)
    assert times.shape == (7,) and (times >= 0).all()
    stats = bench.latency_stats(np.array([1000, 2000, 3000]), batch=4)
    assert stats["p50_us"] == pytest.approx(2.0) and stats["p99_us"] <= 3.0
    assert stats["samples_per_s"] == pytest.approx(2e6) and stats["calls"] == 3


def test_full_run_report_shape(bench: ModuleType, tiny: dict):
    config = bench.BenchConfig(
        rounds=2,
        seconds_b1=0.005,
        seconds_batch=0.005,
        min_calls_batch=1,
        batch=8,
        parity_samples=20,
    )
    report = bench.run(config, specs=tiny)
    assert set(report["models"]) == set(tiny)
    for model in report["models"].values():
        for kind in ("torch_b1", "ort_b1", "ort_step", "torch_batch", "ort_batch"):
            assert _positive(model["kinds"][kind]["p50_us"])
            assert model["kinds"][kind]["p99_us"] >= model["kinds"][kind]["p50_us"]
        assert _positive(model["ort_over_torch_b1_p50"])
        assert isinstance(model["meets_target"], bool)
        assert all(len(v) == 2 for v in model["samples_p50_us"].values())
    assert math.isfinite(report["models"]["tiny-lstm"]["state_io_cost_us"])
    assert all(math.isfinite(m["step_overhead_us"]) for m in report["models"].values())
    assert "state_io_cost_us" not in report["models"]["tiny-mlp"]
    assert isinstance(report["failures"], list)
    table = bench.format_table(report)
    assert "tiny-mlp" in table and "tiny-lstm" in table and "state I/O" in table
