"""`twinbridge sim`: the main job, its supervision, and the fidelity of the ROS loop."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros_processes import ROOT, private_domain

from sim.robots import ROBOT_FOLDERS, get_robot

TWINBRIDGE = [sys.executable, "-m", "sim.cli"]
# Robots whose default task has no zoo policy: their graph runs on a random policy.
UNTRAINED = [
    task
    for task in (get_robot(robot).default_task for robot in ROBOT_FOLDERS)
    if not (ROOT / "policies" / "zoo" / f"{task}.onnx").exists()
]


def _sim(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    command = [*TWINBRIDGE, "sim", "--domain-id", str(private_domain()), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_fast_bringup_reaches_rollout_success_on_the_same_seeds(tmp_path: Path) -> None:
    """Issue 4 item 7: within 5 points of `twinbridge rollout` on the same 50 seeds."""
    result = _sim(
        "--episodes", "50", "--fast", "--seed", "0", "--json", "--log-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {
        "task",
        "episodes",
        "success_rate",
        "control_latency_ms",
        "deadline_misses",
    }
    assert summary["episodes"] == 50 and summary["task"] == "fetch-push"
    assert all(math.isfinite(summary["control_latency_ms"][k]) for k in ("p50", "p99", "max"))
    policy = ["--policy", "policies/zoo/fetch-push.onnx"]
    rollout = subprocess.run(
        [
            *TWINBRIDGE,
            "rollout",
            "--task",
            "fetch-push",
            "--episodes",
            "50",
            "--seed",
            "0",
            *policy,
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    reference = json.loads(rollout.stdout.strip().splitlines()[-1])["success_rate"]
    assert abs(summary["success_rate"] - reference) <= 0.05, (summary, reference)


def test_a_policy_whose_bytes_no_longer_match_its_card_is_refused_before_nodes_start(
    tmp_path: Path,
) -> None:
    for suffix in (".onnx", ".json"):
        shutil.copy(ROOT / f"policies/zoo/fetch-push{suffix}", tmp_path / f"fetch-push{suffix}")
    with open(tmp_path / "fetch-push.onnx", "ab") as f:
        f.write(b"\0")
    logs = tmp_path / "logs"
    result = _sim("--policy", str(tmp_path / "fetch-push.onnx"), "--log-dir", str(logs))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "fetch-push.onnx" in line and "sha256" in line
    assert not list(logs.glob("*.log")), "no node started"


def test_a_node_that_dies_is_named_and_the_others_stop(tmp_path: Path) -> None:
    """policy_node killed mid-run: the supervisor names it and stops the others (exit 1)."""
    command = [*TWINBRIDGE, "sim", "--episodes", "1000", "--domain-id", str(private_domain())]
    logs = tmp_path / "logs"
    supervisor = subprocess.Popen(
        [*command, "--log-dir", str(logs)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "episode" not in _read(logs / "task_node.log"):
            assert supervisor.poll() is None
            time.sleep(0.2)
        nodes = _children(supervisor.pid)
        policy = [pid for pid in nodes if "policy_node" in _read(Path(f"/proc/{pid}/cmdline"))]
        assert len(policy) == 1, nodes
        os.kill(policy[0], signal.SIGKILL)
        _, err = supervisor.communicate(timeout=30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    assert supervisor.returncode == 1, err
    assert "policy_node exited with code -9" in err
    assert all(not Path(f"/proc/{pid}").exists() for pid in nodes)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_ctrl_c_stops_every_node_within_two_seconds(tmp_path: Path) -> None:
    command = [*TWINBRIDGE, "sim", "--episodes", "1000", "--domain-id", str(private_domain())]
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        supervisor = subprocess.Popen(
            [*command, "--log-dir", str(tmp_path)], cwd=ROOT, stdout=stdout, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 60
        while "episode" not in out.read_text() and time.monotonic() < deadline:
            assert supervisor.poll() is None, err.read_text()
            time.sleep(0.1)
        assert "episode" in out.read_text(), err.read_text()
        nodes = _children(supervisor.pid)
        assert len(nodes) == 3
        start = time.monotonic()
        supervisor.send_signal(signal.SIGINT)
        try:
            code = supervisor.wait(timeout=10)
        except subprocess.TimeoutExpired:
            alive = [pid for pid in nodes if Path(f"/proc/{pid}").exists()]
            raise AssertionError(
                f"twinbridge sim still running 10 s after Ctrl-C; nodes alive: {alive}\n"
                + err.read_text()[-3000:]
            ) from None
        elapsed = time.monotonic() - start
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    assert code == 130, err.read_text()
    assert elapsed < 2.0, f"stopping took {elapsed:.2f} s"
    assert all(not Path(f"/proc/{pid}").exists() for pid in nodes)


def test_a_policy_for_another_task_is_refused_before_anything_starts() -> None:
    result = _sim("--task", "fetch-reach", "--policy", "policies/zoo/fetch-push.onnx")
    assert result.returncode == 2
    assert "'fetch-push'" in result.stderr and "'fetch-reach'" in result.stderr


def test_nodes_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """No orphaned robot nodes: SIGKILL of `twinbridge sim` makes its nodes shut down."""
    command = [*TWINBRIDGE, "sim", "--episodes", "1000", "--domain-id", str(private_domain())]
    out = tmp_path / "stdout"
    with open(out, "w") as stdout:
        supervisor = subprocess.Popen(
            [*command, "--log-dir", str(tmp_path)], cwd=ROOT, stdout=stdout
        )
    deadline = time.monotonic() + 60
    while len(_children(supervisor.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    nodes = _children(supervisor.pid)
    time.sleep(3)  # the nodes are up (they arm the parent-death signal first thing)
    supervisor.kill()
    supervisor.wait()
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in nodes) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in nodes:  # reap nothing here: they were the supervisor's children
        assert (
            not Path(f"/proc/{pid}/cmdline").exists()
            or not Path(f"/proc/{pid}/cmdline").read_bytes()
        ), f"node {pid} outlived its supervisor"
    assert len(nodes) == 3


@pytest.mark.parametrize("task", UNTRAINED)
def test_a_robot_without_a_trained_policy_runs_its_graph_on_a_random_one(
    task: str, tmp_path: Path
) -> None:
    """`--policy random`: a seeded random ONNX graph and its card, loaded like any policy."""
    result = _sim(
        "--task", task, "--policy", "random", "--episodes", "2", "--fast", "--json",
        "--log-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["task"], summary["episodes"]) == (task, 2)
    card = json.loads((tmp_path / "random-policy" / f"{task}-random.json").read_text())
    assert (card["task"], card["training_config"]) == (task, {"algo": "random"})
