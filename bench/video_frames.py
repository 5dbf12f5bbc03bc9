"""Frame strips for the README: real `twinbridge rollout --video` MP4s, four frames each.

Run: `.venv/bin/python bench/video_frames.py` (writes bench/results/video_frames_fetch.png
and bench/results/video_frames_hand.png in about half a minute)

Each strip is the title card of episode 0, a frame in the middle of it, the episode's last
frame (its verdict) and the next episode's title card, read back from the MP4 the command
wrote, so what is shown is what a user gets.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
# (name, task, policy): the shipped push policy; the zoo has no hand policy, so the hand
# moves at random (its goal marker stands 0.15 m aside: the rotation tasks ignore position).
STRIPS = (
    ("fetch", "fetch-push", "policies/zoo/fetch-push.onnx"),
    ("hand", "hand-block-rotate-z", "random"),
)


def strip(task: str, policy: str, seed: int, out: Path) -> np.ndarray:
    """Four frames of a two-episode rollout video, side by side (360 px each)."""
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "v.mp4"
        command = [sys.executable, "-m", "sim.cli", "rollout", "--task", task, "--policy"]
        args = [policy, "--episodes", "2", "--seed", str(seed), "--video", str(video), "--json"]
        subprocess.run([*command, *args], check=True, capture_output=True)
        frames = iio.imread(video)
    length = len(frames) // 2  # frames per episode (its states, the last one too)
    picks = [2, length // 2, length - 1, length + 2]
    small = [cv2.resize(frames[i], (360, 360), interpolation=cv2.INTER_AREA) for i in picks]
    row = np.concatenate(small, axis=1)
    iio.imwrite(out, row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    for name, task, policy in STRIPS:
        out = RESULTS / f"video_frames_{name}.png"
        strip(task, policy, args.seed, out)
        print(f"{out}: {task} on {policy}")


if __name__ == "__main__":
    main()
