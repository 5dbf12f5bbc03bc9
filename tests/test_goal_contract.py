"""A task whose goal the topic contract cannot carry is refused before any process starts.

Issue 15, defect 9: every ROS bringup of hand-reach ended with task_node killed by SIGSEGV,
its 15-value goal not fitting the contract's geometry_msgs/PoseStamped `goal`. The rule is
one table (ros_ws/contract.py), used by `adapters.goal_msg` and by every bringup.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ros_ws import adapters
from ros_ws.bringup_plan import SIM_CONFIG, SIM_NODES, plan, teleop_nodes
from ros_ws.contract import GOAL_LAYOUTS, ContractError, check_goal_fits, goal_size
from sim.cli import main
from sim.envs import make_task_env
from sim.robots import ROBOT_FOLDERS, get_robot
from sim.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
REFUSED = [name for name in TASKS if goal_size(name) not in GOAL_LAYOUTS]


def test_the_contract_refuses_exactly_hand_reach_today() -> None:
    """A guard on the table itself: the 15-value fingertip goal is the one misfit."""
    assert REFUSED == ["hand-reach"]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_either_fits_the_goal_message_or_is_refused(task: str) -> None:
    """The bringups' rule and the message packer agree, on the env's real goal."""
    env = make_task_env(task)
    try:
        goal = env.reset(seed=0)[0]["desired_goal"]
    finally:
        env.close()
    assert goal.shape == (goal_size(task),)
    if task in REFUSED:
        with pytest.raises(ContractError, match=f"'{task}' cannot run over ROS"):
            check_goal_fits(task)
        with pytest.raises(ContractError, match=f"a goal of {goal.size} values"):
            adapters.goal_msg(goal, 0)
        return
    check_goal_fits(task)
    back = adapters.goal_from_msg(adapters.goal_msg(goal, 0), goal.size)
    np.testing.assert_array_equal(back, goal)


def _refusal(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> str:
    """Run `twinbridge ARGV` in-process with process creation forbidden; its stderr."""

    def no_process(*args, **kwargs):
        raise AssertionError(f"a process was started: {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "--task", "hand-reach"],
        ["sim", "--task", "hand-reach", "--hardware", "emulator"],
        ["teleop", "--task", "hand-reach", "--device", "gamepad"],
        ["teleop", "--task", "hand-reach", "--device", "keyboard", "--record", "x.mcap"],
        ["robot", "--robot", "shadow_hand", "--port", "/dev/null", "--task", "hand-reach"],
        ["record", "--robot", "shadow_hand", "--task", "hand-reach", "--out", "x.mcap"],
    ],
    ids=lambda argv: " ".join(argv[:3]),
)
def test_every_bringup_refuses_hand_reach_before_starting_anything(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    logs = tmp_path / "logs"
    extra = ["--log-dir", str(logs)] if argv[0] in ("sim", "teleop", "robot") else []
    monkeypatch.chdir(tmp_path)  # relative outputs (x.mcap) land here, if anywhere
    err = _refusal([*argv, *extra, "--domain-id", "40"], monkeypatch, capsys)
    assert err.startswith(f"twinbridge {argv[0]}: error: task 'hand-reach' cannot run over ROS")
    assert "15 values" in err and "PoseStamped" in err and "twinbridge rollout" in err
    assert not logs.exists() and not (tmp_path / "x.mcap").exists()


def test_the_launch_files_plan_refuses_it_too() -> None:
    """ros2 launch reads the task from the YAML: plan() applies the same rule."""
    with pytest.raises(ContractError, match="'hand-reach'"):
        plan(
            SIM_NODES, SIM_CONFIG, {n: {"task": "hand-reach"} for n in ("twin_node", "task_node")}
        )
    nodes = teleop_nodes("twin")
    overrides = {n: {"task": "hand-reach"} for n in ("twin_node", "teleop_node", "task_node")}
    with pytest.raises(ContractError, match="'hand-reach'"):
        plan(nodes, SIM_CONFIG, overrides)


def test_each_robot_bringup_default_task_fits_the_contract() -> None:
    for robot in ROBOT_FOLDERS:
        check_goal_fits(get_robot(robot).default_task)


def test_the_real_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "sim.cli", "sim", "--task", "hand-reach",
               "--domain-id", "40", "--log-dir", str(tmp_path / "logs")]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "'hand-reach' cannot run over ROS" in result.stderr
    assert not (tmp_path / "logs").exists()
