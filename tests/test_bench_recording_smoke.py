"""Smoke test of `bench/recording.py`: ~10 s of publishing through a real recorder_node
process; checks the report's shape and that the recorder really recorded across processes,
not the CPU goal (machines are noisy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 150  # a hung child must fail the test, not stall the suite


def test_recording_bench_runs_and_reports() -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "recording.py"), "--duration-s", "10", "--json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout)
    streams = report["streams"]
    assert set(streams) == {"joint_states"} | {
        f"camera_{i}/{kind}" for i in range(3) for kind in ("image_raw", "camera_info")
    }
    assert 900 <= streams["joint_states"]["published"] <= 1001
    assert streams["joint_states"]["dropped"] == 0  # reliable: every message recorded
    for i in range(3):
        image = streams[f"camera_{i}/image_raw"]
        assert image["published"] >= 270 and image["recorded"] >= 0.9 * image["published"]
    assert 0 < report["recorder_cpu_pct"] < 200
    assert report["recorder_exit_code"] == 0 and report["recorder_stop_s"] < 5.0
    assert report["file_bytes"] > 10 * 2**20  # ~3 MiB/s of compressed images
