"""The `twinbridge` command: one entry point, subcommands registered by module path.

Run: `twinbridge --help`, `twinbridge rollout --task fetch-push --episodes 10 --json`.

Subcommand modules are imported only when chosen, so `twinbridge rollout` never imports
the training or ROS stacks. Each module provides `add_arguments(parser)` and `run(args)`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from sim.errors import TwinbridgeError, did_you_mean

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bag": (
        "hardware.recording.bag_cli",
        "recorded MCAP bags: recover a truncated file, info, export a demonstration dataset",
    ),
    "calibrate": (
        "ros_ws.calibrate_bringup",
        "camera calibration: the board to print, the rig's cameras end to end",
    ),
    "emulate": (
        "hardware.emulator_cli",
        "an emulated serial device (the twin behind the protocol) on a pseudo-terminal",
    ),
    "robot": (
        "ros_ws.robot_bringup",
        "robot bringup: driver (serial hardware), policy and task nodes as processes",
    ),
    "record": (
        "ros_ws.record_bringup",
        "record a running graph's contract topics to a crash-safe MCAP bag",
    ),
    "replay": (
        "hardware.replay",
        "re-run a recorded episode in the twin and report the divergence",
    ),
    "rollout": ("policies.rollout", "evaluate a policy (random, scripted or ONNX) on a task"),
    "sim": (
        "ros_ws.bringup",
        "simulation-only ROS 2 bringup: twin, policy and task nodes as processes",
    ),
    "tasks": ("sim.tasks_cli", "list the registered tasks and robots"),
    "teleop": (
        "ros_ws.teleop_bringup",
        "teleoperate the twin or emulator (keyboard, gamepad, scripted) and record demos",
    ),
    "train": (
        "policies.training.cli",
        "train a policy (HER + SAC/TD3, PPO-LSTM) with checkpoints and export",
    ),
    "view": ("ros_ws.view_bringup", "a live web view (localhost) of a running graph's robot"),
    "vision": (
        "policies.vision.cli",
        "vision state estimators: render a training dataset from the rig's cameras",
    ),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line naming the value, like every other error
    of the command (exit 2); subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}; see `{self.prog} --help`\n")

    def _check_value(self, action: argparse.Action, value: object) -> None:
        """A value outside `choices` is named with the closest choice (argparse's own
        check, with a did-you-mean; subcommand names included)."""
        choices = action.choices
        if choices is not None and value not in choices:
            valid = [str(c) for c in choices]
            raise argparse.ArgumentError(
                action,
                f"invalid choice {value!r}; {did_you_mean(value, valid)}"
                f"choose from {', '.join(valid)}",
            )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all subcommands)."""
    parser = OneLineParser(prog="twinbridge", description="Twinbridge: sim-to-real control stack.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        implementation = importlib.import_module(module)
        own_help = getattr(implementation, "OWN_HELP", False)  # e.g. train's help per --algo
        sub_parser = sub.add_parser(
            name, help=help_text, description=help_text, add_help=not own_help
        )
        implementation.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; typed errors become one-line messages."""
    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except TwinbridgeError as e:
        print(f"twinbridge {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"twinbridge {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `twinbridge tasks | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 0


def one_line(message: BaseException | str) -> str:
    """A message on one line (a YAML or ONNX error's text may span several)."""
    return " ".join(str(message).split())


if __name__ == "__main__":
    sys.exit(main())
