"""Smoke test of `bench/control_loop.py`: every part runs across processes and gets messages.

Checks the report's shape and that messages really went between processes, never the
latency goals (machines are noisy). Each test runs the bench as a command with ~2 s of
measurement per variant.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "control_loop.py"
POLICY_NODE = ROOT / "ros_ws" / "policy_node.py"
TIMEOUT_S = 150  # a hung child must fail the test, not stall the suite


def run_bench(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH), "--json", "--duration-s", "2", "--rounds", "1", *args]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, f"bench failed ({out.returncode}):\n{out.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _check_latency(stats: dict[str, Any]) -> None:
    assert stats["sent"] > 0 and stats["received"] > 0
    assert 0.0 <= stats["loss_pct"] < 100.0
    assert 0.0 < stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"]


def test_pingpong_and_cameras_cross_processes() -> None:
    report = run_bench(
        "--parts", "pingpong", "cameras",
        "--pingpong", "localhost_xml/single", "localhost_xml/events",
        # The project's transport (large SHM segment; on `localhost` 640x480 frames are
        # lost), with both executors; LARGE_DATA's multicast discovery is slow to match
        # on a loaded host, so it stays out of the suite.
        "--cameras", "localhost_xml/events", "localhost_xml/single",
    )  # fmt: skip
    assert set(report["pingpong"]) == {"localhost_xml/single", "localhost_xml/events"}
    for v in report["pingpong"].values():
        _check_latency(v["rtt"])
        assert _finite(v["ping_cpu_pct"]) and _finite(v["echo_cpu_pct"])
    assert set(report["cameras"]) == {"localhost_xml/events", "localhost_xml/single"}
    for v in report["cameras"].values():
        assert set(v["streams"]) == {"camera_0", "camera_1", "camera_2", "camera_3"}
        for stream in v["streams"].values():
            _check_latency(stream)
        assert set(v["by_size"]) == {"200x200", "640x480"}
        assert _finite(v["sub_cpu_pct"]) and _finite(v["pub_cpu_pct"])
        assert v["wrong_size"] == 0
    assert _finite(report["inference"]["p99_ms"])
    names = {c["check"] for c in report["checks"]}
    assert "cameras localhost_xml/single 640x480 p99 ms" in names
    assert report["recommendation"]["variant"] in report["cameras"]
    assert isinstance(report["failures"], list)


def test_node_loop_through_the_policy_node() -> None:
    assert POLICY_NODE.is_file(), (
        "ros_ws/policy_node.py does not exist: the node_loop part measures the project's "
        "policy node and cannot run without it"
    )
    report = run_bench("--parts", "pingpong", "node_loop", "--pingpong", "localhost_xml/single")
    assert set(report["node_loop"]) == {"25", "100"}
    for v in report["node_loop"].values():
        _check_latency(v["latency"])
        assert v["unmatched_commands"] == 0
        assert _finite(v["policy_cpu_pct"]) and v["policy_cpu_pct"] > 0
        assert v["deadline_misses"] == v["misses_late"] + v["misses_no_command"]
    budgets = [c for c in report["checks"] if c["check"].endswith("Hz p99 ms")]
    assert len(budgets) == 2 and all(_finite(c["target"]) for c in budgets)
