"""`twinbridge vision`: data and models for the vision state estimators.

Run: `twinbridge vision dataset --robot fetch --frames 2000 --out out/vision/fetch`
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from policies.vision.dataset import VISION_TASKS, DatasetConfig

    defaults = DatasetConfig()
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    dataset = actions.add_parser(
        "dataset", help="render the rig's cameras over rollouts, with the object's true pose"
    )
    dataset.add_argument("--robot", default=defaults.robot, choices=sorted(VISION_TASKS))
    dataset.add_argument("--out", type=Path, help="default: out/vision/<robot>")
    dataset.add_argument("--frames", type=int, default=defaults.frames)
    dataset.add_argument("--shard-frames", type=int, default=defaults.shard_frames)
    dataset.add_argument("--width-px", type=int, default=defaults.width_px)
    dataset.add_argument("--height-px", type=int, default=defaults.height_px)
    dataset.add_argument(
        "--every-steps", type=int, default=defaults.every_steps,
        help="one frame every this many control steps of each episode",
    )  # fmt: skip
    dataset.add_argument(
        "--policy", default=defaults.policy,
        help="zoo (the task's shipped policy, else random), random, or a policy .onnx",
    )  # fmt: skip
    dataset.add_argument(
        "--randomization", type=Path,
        help="visual randomization YAML (default sim/randomization/configs/<robot>-vision.yaml)",
    )  # fmt: skip
    dataset.add_argument("--calibration", type=Path, help="the rig's calibration file")
    dataset.add_argument("--seed", type=int, default=defaults.seed)


def run(args: argparse.Namespace) -> int:
    from policies.vision.dataset import DatasetConfig, generate

    config = DatasetConfig(
        robot=args.robot, out=args.out or Path("out/vision") / args.robot, frames=args.frames,
        shard_frames=args.shard_frames, width_px=args.width_px, height_px=args.height_px,
        every_steps=args.every_steps, policy=args.policy, randomization=args.randomization,
        calibration=args.calibration, seed=args.seed,
    )  # fmt: skip
    meta = generate(config)
    print(json.dumps({k: meta[k] for k in ("frames", "shards", "renders_per_s",
                                           "raw_renders_per_s")}))  # fmt: skip
    print(f"dataset: {config.out}")
    return 0
