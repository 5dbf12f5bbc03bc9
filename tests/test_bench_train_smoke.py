"""`bench/train_fetch_push.py`: our side runs and reports; the verdict logic counts right.

The peer side (stable-baselines3 in its own venv) is not built here: it needs a second torch
install and an hour to mean anything. Its script shares the JSON-line protocol checked below.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "train_fetch_push.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_train_fetch_push", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _args(**overrides: object) -> argparse.Namespace:
    values = {"target": 0.9, "cap_minutes": 90.0, "parallel": False, "seed": 0,
              "eval_every": 10_000, "eval_episodes": 50}  # fmt: skip
    return argparse.Namespace(**{**values, **overrides})


def _curve(*points: tuple[int, float, float]) -> list[dict]:
    return [{"env_steps": s, "train_s": m * 60, "success_rate": r} for s, m, r in points]


def test_our_worker_trains_and_prints_one_json_line_per_evaluation() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--worker", "--cap-minutes", "0.02", "--eval-every",
         "200", "--eval-episodes", "4"],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    points = [json.loads(line) for line in out.stdout.splitlines()]
    assert points and [p["env_steps"] for p in points] == [200 * (i + 1) for i in
                                                          range(len(points))]  # fmt: skip
    assert all(0.0 <= p["success_rate"] <= 1.0 and p["train_s"] > 0 for p in points)
    assert points[-1]["train_s"] >= 0.02 * 60 or points[-1]["success_rate"] >= 0.9


def test_a_peer_short_at_its_cap_counts_as_the_cap(bench: ModuleType) -> None:
    curves = {"ours": _curve((10_000, 5, 0.1), (300_000, 30, 0.92)),
              "peer": _curve((10_000, 3, 0.05), (500_000, 90.5, 0.85))}  # fmt: skip
    report = bench.summarize(curves, _args())
    assert report["sides"]["ours"]["env_steps_to_target"] == 300_000
    assert report["sides"]["peer"]["minutes_counted"] == 90.0
    assert report["ratio_minutes_ours_over_peer"] == pytest.approx(30 / 90, abs=1e-3)
    assert report["failures"] == []
    assert "ours/peer minutes: 0.333" in bench.format_table(report)


def test_goals_are_judged_on_minutes_and_ratio(bench: ModuleType) -> None:
    slow = {"ours": _curve((400_000, 50, 0.9)), "peer": _curve((300_000, 20, 0.95))}
    failures = bench.summarize(slow, _args())["failures"]
    assert any("goal 45" in f for f in failures) and any("goal <= 0.5" in f for f in failures)
    late = {"ours": _curve((400_000, 91, 0.95)), "peer": _curve((100_000, 90, 0.0))}
    report = bench.summarize(late, _args())  # a hit after the cap is a miss
    assert report["sides"]["ours"]["minutes_to_target"] is None and report["failures"]


def test_bad_arguments_are_refused(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--eval-every", "300"])  # not whole episode batches
    with pytest.raises(SystemExit):
        bench.parse_args(["--cap-minutes", "0"])
