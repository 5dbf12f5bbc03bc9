"""Smoke test of `bench/command_flood.py`: a short flood into driver_node over the emulator.

Runs `bench/command_flood.py --commands 2000 --oversized 2 --json` as a command (about
20 s: the emulator and driver_node start, then 0.2 s of flood) and checks the report's
shape. Of the goals, 2000 commands can show the memory one (RSS growth < 10 MB) and that the
device receives no more than one command frame per control period; the lateness goal needs
the full run (`.venv/bin/python bench/command_flood.py`, 10^5 commands).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "command_flood.py"
TIMEOUT_S = 60  # a hung child must fail the test, not stall the suite
GOALS = {
    "driver_alive",
    "driver_kept_commanding",
    "rss_growth_lt_10MB",
    "frames_per_T_le_1",
    "no_burst_10T_le_11",
    "lateness_p99_le_2.5ms",
}


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def run_bench(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH), "--json", *args]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode in (0, 1), f"bench crashed ({out.returncode}):\n{out.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(out.stdout)
    assert (out.returncode == 1) == bool(report["failures"]), out.stderr[-2000:]
    return report


def test_a_short_flood_reports_every_figure_and_meets_memory_and_rate() -> None:
    report = run_bench("--commands", "2000", "--oversized", "2")
    flood, rss, device, driver = (report[k] for k in ("flood", "rss", "device", "driver"))
    assert flood["sent"] == 2000 and flood["oversized_sent"] == 2
    assert flood["oversized_acked"] == 2, "the 1 MB messages never reached driver_node"
    assert all(_finite(rss[k]) for k in ("before_mb", "after_mb", "peak_mb", "growth_mb"))
    assert len(report["rss_timeline_mb"]) == 11
    for key in ("frames_per_T_max", "frames_per_T_p99", "frames_per_T_rate"):
        assert _finite(device[key]), key
    assert device["frames_per_10T_max"] >= 1 and _finite(device["lateness_p99_ms"])
    assert device["command_frames"] > 0 and device["expected_frames"] >= 10
    assert report["device_quiet"]["command_frames"] > 100  # 2 s at 100 Hz before the flood
    # driver_node read the flood: counted accepted, and refused both 1 MB messages
    assert driver["commands_accepted"] > 0 and driver["driver_errors"] == 0
    assert sum(driver["rejected"].values()) >= 2, driver["rejected"]
    assert set(report["goals"]) == GOALS
    assert all(isinstance(ok, bool) for ok in report["goals"].values())
    assert report["failures"] == [f"flood: {k}" for k, ok in report["goals"].items() if not ok]
    assert report["goals"]["driver_alive"] and report["exit_codes"]["driver_node"] == 0
    assert report["goals"]["rss_growth_lt_10MB"], rss
    assert report["goals"]["frames_per_T_le_1"], device
