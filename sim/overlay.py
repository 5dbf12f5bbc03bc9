"""Text drawn on video frames: which episode, which step, success and distance to the goal.

A video without it cannot be read: nobody can tell where one episode ends, whether the
robot succeeded, or why it stood still (a latched e-stop). Each frame carries an `Overlay`
measured from the episode's real state when it was captured; `draw` paints it with
OpenCV. The first `CARD_STEPS` frames of an episode carry a title card (a banner and a
yellow border), so episode boundaries are visible when scrubbing.

Run: `python -c "import numpy as np; from sim.overlay import Overlay, draw; print(draw(np.zeros((480, 480, 3), np.uint8), Overlay('fetch-push', 0, 3, 50, True, {'position_m': 0.02})).max())"`
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

CARD_STEPS = 12  # title-card frames at an episode's start (~0.5 s at 25 Hz)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE, _GREEN, _RED, _YELLOW = (255, 255, 255), (90, 230, 90), (255, 70, 60), (255, 215, 0)
_GREY = (200, 200, 200)


class GoalTask(Protocol):
    """What an overlay needs of a task (sim.tasks.Task has it)."""

    def achieved_goal(self, twin: Any) -> np.ndarray: ...

    def is_success(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray: ...

    def goal_distances(self, achieved: np.ndarray, desired: np.ndarray) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Overlay:
    """One frame's episode state. `episode` < 0: before the first episode; `estop`: the
    latch's reason, empty when released; distances are named with their unit last."""

    task: str
    episode: int
    step: int
    steps: int | None  # the episode's length, None when the operator ends it
    success: bool
    distances: dict[str, float] = field(default_factory=dict)
    seed: int | None = None
    estop: str = ""

    @classmethod
    def measure(
        cls, name: str, task: GoalTask, twin: Any, goal: np.ndarray, **episode: Any
    ) -> Overlay:
        """The overlay of `twin`'s current state: success and distances by the task's own
        tests; `episode` gives episode, step, steps and optionally seed and estop."""
        achieved = task.achieved_goal(twin)
        success = bool(task.is_success(achieved, goal))
        distances = {k: float(v) for k, v in task.goal_distances(achieved, goal).items()}
        return cls(name, success=success, distances=distances, **episode)


def draw(frame: np.ndarray, overlay: Overlay) -> np.ndarray:
    """Paint `overlay` onto `frame` (H x W x 3 uint8 RGB, changed in place and returned)."""
    scale = frame.shape[0] / 480
    left, size = int(14 * scale), 0.55 * scale
    _band(frame, 0, int(56 * scale))
    _text(frame, _title(overlay), (left, int(24 * scale)), size, _WHITE)
    verdict, colour = ("SUCCESS", _GREEN) if overlay.success else ("not yet", _GREY)
    x = _text(frame, _distance_text(overlay.distances), (left, int(47 * scale)), size, _WHITE)
    _text(frame, verdict, (x + int(14 * scale), int(47 * scale)), size, colour)
    if overlay.estop:
        h = frame.shape[0]
        _band(frame, h - int(30 * scale), h)
        _text(frame, f"E-STOP: {overlay.estop}", (left, h - int(9 * scale)), size, _RED)
        _border(frame, _RED, max(2, int(6 * scale)))
    elif overlay.episode >= 0 and overlay.step < CARD_STEPS:
        _card(frame, overlay, scale)
    elif overlay.success:
        _border(frame, _GREEN, max(2, int(4 * scale)))
    return frame


def _title(overlay: Overlay) -> str:
    if overlay.episode < 0:
        return f"{overlay.task}  waiting for the first episode"
    seed = "" if overlay.seed is None else f" (seed {overlay.seed})"
    steps = "" if overlay.steps is None else f"/{overlay.steps}"
    return f"{overlay.task}  episode {overlay.episode}{seed}  step {overlay.step}{steps}"


def _distance_text(distances: dict[str, float]) -> str:
    """`{"position_m": 0.04, "rotation_rad": 1.2}` -> "to goal 0.040 m, 1.20 rad"."""
    parts = []
    for name, value in distances.items():
        unit = name.rsplit("_", 1)[-1]
        parts.append(f"{value:.3f} {unit}" if unit == "m" else f"{value:.2f} {unit}")
    return "to goal " + ", ".join(parts) if parts else "no goal distance"


def _card(frame: np.ndarray, overlay: Overlay, scale: float) -> None:
    """The episode's title card: a banner low in the frame and a yellow border."""
    h, w = frame.shape[:2]
    top, bottom = int(h * 0.74), int(h * 0.88)  # below the robot, over the table's front
    _band(frame, top, bottom, alpha=0.7)
    words = f"episode {overlay.episode}"
    size = cv2.getTextSize(words, _FONT, 1.2 * scale, max(1, int(2 * scale)))[0]
    origin = ((w - size[0]) // 2, (top + bottom + size[1]) // 2)
    _text(frame, words, origin, 1.2 * scale, _YELLOW, thickness=max(1, int(2 * scale)))
    _border(frame, _YELLOW, max(2, int(6 * scale)))


def _band(frame: np.ndarray, top: int, bottom: int, alpha: float = 0.55) -> None:
    """Darken rows [top, bottom) so text on them reads over any background."""
    rows = frame[top:bottom]
    rows[:] = (rows * (1.0 - alpha)).astype(np.uint8)


def _border(frame: np.ndarray, colour: tuple[int, int, int], width: int) -> None:
    h, w = frame.shape[:2]
    cv2.rectangle(frame, (0, 0), (w - 1, h - 1), colour, thickness=2 * width)


def _text(
    frame: np.ndarray,
    text: str,
    origin: tuple[int, int],
    scale: float,
    colour: tuple[int, int, int],
    thickness: int = 1,
) -> int:
    """Draw antialiased `text` with its baseline at `origin`; the x where it ends."""
    cv2.putText(frame, text, origin, _FONT, scale, colour, thickness, cv2.LINE_AA)
    return origin[0] + cv2.getTextSize(text, _FONT, scale, thickness)[0][0]
