"""`LiveViewConfig`: the live view's settings (plain data: no MuJoCo, no Rerun)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.errors import ConfigError
from sim.tasks import TASKS


@dataclass(frozen=True)
class LiveViewConfig:
    """The live view: which task's twin mirrors the robot, where it is served, how often
    the mirrored twin is drawn."""

    task: str = "fetch-push"  # its robot, kinematics, object and goal
    web_port: int = 9090  # the page; its data is served on web_port + 1 (127.0.0.1 only)
    render_rate_hz: float = 5.0  # the mirrored twin's picture; off the control path
    render_width_px: int = 480
    render_height_px: int = 360
    render_camera: str = ""  # a twin camera; "" is the task's video camera
    cameras: str = ""  # comma-separated camera_<n>/image_raw streams to show
    memory_limit_mb: int = 512  # history kept for a browser that opens the page late

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task {self.task!r} is not registered; valid: {sorted(TASKS)}")
        if not 1024 <= self.web_port <= 65534:
            raise ConfigError(f"web_port must be in 1024..65534, got {self.web_port}")
        for name in ("render_rate_hz", "render_width_px", "render_height_px", "memory_limit_mb"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be > 0, got {value!r}")

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.cameras.split(",") if c.strip())
