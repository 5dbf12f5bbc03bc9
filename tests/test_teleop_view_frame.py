"""Arrow keys move Fetch's gripper in the frame of the view the operator watches: driven in
the twin through the robot.yaml's key bindings and the teleop mapping, the gripper's image
position in the `video` camera (the live view's and the videos') moves left for Left, right
for Right, up for Up (away from the camera) and down for Down."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.teleop import Intent, make_mapping
from hardware.teleop.bindings import teleop_bindings
from hardware.teleop.keyboard import command_words, help_text
from sim.envs import make_task_env
from sim.render import project

TASK = "fetch-reach"
CAMERA = "video"
SIZE_PX = 480
STEPS = 12  # 0.48 s at full speed (0.25 m/s): about 12 cm
# key -> (image axis, sign, least shift in px): u grows to the right of the picture, v
# downwards. Up and Down move along the camera's line of sight (foreshortened in the picture).
EXPECTED = {"left": (0, -1, 15), "right": (0, +1, 15), "up": (1, -1, 5), "down": (1, +1, 5)}


def _pixel(env, position: np.ndarray) -> np.ndarray:
    twin = env.unwrapped.twin
    return project(twin.model, twin.data, CAMERA, position[None], SIZE_PX)[0]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_an_arrow_key_moves_the_gripper_that_way_in_the_picture(key: str) -> None:
    command = teleop_bindings("fetch").keys[key]
    axis, sign = command[1:], 1.0 if command[0] == "+" else -1.0
    mapping = make_mapping(TASK)
    env = make_task_env(TASK, disable_env_checker=True)
    obs, _ = env.reset(seed=0)
    start = obs["observation"][:3].copy()
    before = _pixel(env, start)
    for _ in range(STEPS):
        obs, *_ = env.step(mapping.action(Intent({axis: sign})))
    moved_m = obs["observation"][:3] - start
    after = _pixel(env, obs["observation"][:3])
    env.close()
    image_axis, image_sign, least_px = EXPECTED[key]
    shift = after - before
    assert np.linalg.norm(moved_m) > 0.05, moved_m  # the arm did move
    assert abs(moved_m[2]) < 0.02  # an arrow moves the gripper horizontally
    assert image_sign * shift[image_axis] > least_px, (key, shift)  # the named way
    assert abs(shift[image_axis]) > 2 * abs(shift[1 - image_axis]), (key, shift)


def test_the_legend_says_what_each_arrow_does_in_the_view() -> None:
    bindings = teleop_bindings("fetch")
    text = help_text(TASK, dict(bindings.keys), command_words(bindings))
    assert "left:+y (left in the view)" in text and "right:-y (right in the view)" in text
    assert "up:+x (away from the camera, up in the view)" in text
