"""`twinbridge robot`: the robot bringup (driver, policy and task nodes) without `ros2 launch`.

Run: `twinbridge robot --robot fetch --port /dev/serial/by-id/twinbridge-fetch-arm`, or
against the emulator: `twinbridge emulate --robot fetch --link /tmp/fetch` in one shell and
`twinbridge robot --robot fetch --port /tmp/fetch --host-only --episodes 5` in another.

Starts what ros_ws/launch/robot.launch.py starts (ros_ws/bringup_plan.py: the same nodes
and ros_ws/config/robot.yaml), supervised like `twinbridge sim`. It refuses an open network
(R21: discovery must be limited and SROS2 enforced) unless `--host-only`, which keeps every
participant on this host instead (a bench rig, or a robot PC whose nodes all run locally).

R21: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ros_ws.bringup import (
    _check_policy_task,
    _policy_task,
    add_allow_ideal_argument,
    check_hardware_policy,
    supervise,
)
from ros_ws.bringup_plan import ROBOT_CONFIG, ROBOT_NODES, plan
from ros_ws.contract import check_goal_fits
from ros_ws.discovery import default_domain_id, lint_environment, sim_environment
from ros_ws.view_bringup import add_view_arguments
from sim.errors import TwinbridgeError
from sim.robots import ROBOT_FOLDERS, get_robot


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", required=True, choices=sorted(ROBOT_FOLDERS))
    parser.add_argument("--port", required=True, help="serial device (a udev symlink is best)")
    parser.add_argument("--task", default=None, help="task (default: the robot's zoo task)")
    parser.add_argument(
        "--policy", default=None, help="ONNX policy (default: zoo/<task>.onnx), or 'scripted'"
    )
    parser.add_argument("--episodes", type=int, default=0, help="episodes (0: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=0, help="episode k uses seed + k")
    add_allow_ideal_argument(parser)
    parser.add_argument("--config", type=Path, default=ROBOT_CONFIG, help="parameter YAML")
    parser.add_argument("--host-only", action="store_true", help="keep DDS on this host")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.add_argument("--log-dir", type=Path, default=Path("out/robot-logs"), help="logs")
    add_view_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.episodes < 0:
        raise TwinbridgeError(f"--episodes must be >= 0, got {args.episodes}")
    _check_port(args.port)
    args.task = args.task or get_robot(args.robot).default_task
    check_goal_fits(args.task)
    overrides = _overrides(args)
    policy = overrides["policy_node"]["policy_path"]
    _check_policy_task(policy, args.task, args.policy is not None)
    check_hardware_policy(policy, args.allow_ideal_actuation)
    launches = plan(ROBOT_NODES, args.config, overrides)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    return supervise(args, launches, _environment(args))


def _check_port(port: str) -> None:
    """A wrong --port is the common mistake: refuse it before any process starts."""
    if not Path(port).exists():
        raise TwinbridgeError(
            f"--port {port}: no such device; check the cable and the path (ls /dev/serial/by-id/)"
        )


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    policy = args.policy or f"policies/zoo/{args.task}.onnx"
    return {
        "driver_node": {
            "robot": args.robot,
            "port": args.port,
            "task": args.task,
            "seed": args.seed,
        },
        "policy_node": {"policy_path": policy, **_policy_task(args)},
        "task_node": {"task": args.task, "episodes": args.episodes},
    }


def _environment(args: argparse.Namespace) -> dict[str, str]:
    if args.host_only:
        domain = args.domain_id if args.domain_id is not None else default_domain_id()
        return sim_environment(domain)
    env = dict(os.environ)
    if args.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(args.domain_id)
    problems = lint_environment(env, profile="robot")
    if problems:
        raise TwinbridgeError(
            "twinbridge robot refuses an open network: "
            + "; ".join(problems)
            + ". Fix the environment, or pass --host-only if every node runs on this host"
        )
    return env
