"""`twinbridge view`: the live web view of a running graph; and `--view` for the bringups.

Run: `twinbridge view --robot fetch --host-only` beside a running `twinbridge sim` (or
`twinbridge teleop`, `twinbridge robot --host-only`), then open the printed URL; Ctrl-C
stops it. Or `twinbridge sim --view` (also `teleop`, `robot`): the bringup adds view_node
to its processes and prints the URL.

The view only reads the contract topics (ros_ws/view_node.py), so attaching it to a robot
never changes what the robot does. Without `--host-only` it joins the environment's
domain, which must be locked down as for `twinbridge robot` (R21).

R21: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hardware.view.server import check_ports_free, view_url
from ros_ws.bringup_plan import CONFIG_DIR, NodeLaunch
from ros_ws.node_configs import NODE_CONFIGS, node_config
from sim.robots import ROBOT_FOLDERS, get_robot
from sim.tasks import get_task_spec

VIEW_NODE = "view_node"
DEFAULT_VIEW_PORT = 9090


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """`--view` and `--view-port`, for every bringup."""
    parser.add_argument(
        "--view",
        action="store_true",
        help="serve a live web view of the robot on localhost (its URL is printed)",
    )
    parser.add_argument(
        "--view-port",
        type=int,
        default=DEFAULT_VIEW_PORT,
        help=f"the view's web page port; its data uses the next one (default {DEFAULT_VIEW_PORT})",
    )


def with_view(args: argparse.Namespace, launches: list[NodeLaunch]) -> list[NodeLaunch]:
    """`launches` plus view_node when `--view` was given: its port checked and its URL
    printed before any process starts."""
    if not getattr(args, "view", False):
        return launches
    first = launches[0]
    launch = view_launch(args, first.namespace, first.params_file)
    print(
        f"twinbridge {getattr(args, 'command', 'sim')}: live view at {view_url(args.view_port)} "
        "(up within a few seconds; Ctrl-C stops it with the rest)",
        file=sys.stderr,
        flush=True,
    )
    return [*launches, launch]


def view_launch(args: argparse.Namespace, namespace: str, params_file: Path) -> NodeLaunch:
    """view_node for `args.task`, validated, its port free (one-line errors otherwise)."""
    overrides = {"task": args.task, "web_port": args.view_port}
    if getattr(args, "cameras", None):
        overrides["cameras"] = args.cameras
    launch = NodeLaunch(VIEW_NODE, namespace, params_file, overrides)
    node_config(NODE_CONFIGS[VIEW_NODE], launch.parameters(), params_file)
    check_ports_free(args.view_port)
    return launch


# -- `twinbridge view` ------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", default="fetch", choices=sorted(ROBOT_FOLDERS))
    parser.add_argument("--task", default=None, help="task (default: the robot's zoo task)")
    parser.add_argument("--cameras", default=None, help="comma-separated cameras to show")
    parser.add_argument("--view-port", type=int, default=DEFAULT_VIEW_PORT, help="page port")
    parser.add_argument("--host-only", action="store_true", help="keep DDS on this host")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID")


def run(args: argparse.Namespace) -> int:
    from ros_ws.robot_bringup import _environment

    args.task = args.task or get_robot(args.robot).default_task
    if get_task_spec(args.task).robot != args.robot:
        from sim.errors import TwinbridgeError

        raise TwinbridgeError(
            f"--task {args.task} drives {get_task_spec(args.task).robot}, not --robot "
            f"{args.robot}; pass a task of {args.robot} (`twinbridge tasks`)"
        )
    namespace = get_robot(args.robot).namespace
    launch = view_launch(args, namespace, CONFIG_DIR / "sim.yaml")
    os.environ.update(_environment(args))
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    print(f"twinbridge view: live view at {view_url(args.view_port)}; Ctrl-C stops it", flush=True)
    from ros_ws.view_node import main  # rclpy, only for this command

    main([VIEW_NODE, *launch.ros_arguments()])
    return 0
