"""`LiveView`: what the live web page shows, fed from measurements, never from a simulation.

The robot is drawn from MEASURED joint states through the task's kinematic mirror
(sim/mirror.py: the measurements written into a private twin), so on hardware the page
shows the real robot's pose, not what a simulation believes. Beside it: the object and the
goal in 3D, camera images when they are published, joint position, command and applied
command plots, the e-stop and the episode status. Rendering the mirrored twin is the only
costly part: it happens at `render_rate_hz` at most, and only when something moved.

Run: `twinbridge sim --view` (README "Live view"), or in Python:
`python -c "from hardware.view.live_view import LiveView, LiveViewConfig as C; v = LiveView.serve(C()); print(v.url); input()"`
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hardware.recording.episodes import END_STATUS, START_STATUS, marker_from_status
from hardware.view.config import LiveViewConfig
from hardware.view.layout import blueprint
from hardware.view.server import ViewServer
from sim.contract.command_rules import CommandRejected, validate_joint_state
from sim.contract.samples import ObjectPose
from sim.errors import StateError

TIMELINE = "time"  # receipt (or recorded) wall time of each sample
OBJECT_RGB, GOAL_RGB, ROBOT_RGB = (242, 184, 75), (229, 72, 77), (122, 162, 247)


class LiveView:
    """Logs what the page shows into a Rerun recording stream (`serve` makes one that a
    browser can open). Every method takes the time the sample belongs to, in ns."""

    def __init__(self, config: LiveViewConfig, stream: Any, url: str = "") -> None:
        from sim.mirror import TaskMirror  # MuJoCo: only when a view is made

        self.config, self.stream, self.url = config, stream, url
        self.mirror = TaskMirror(config.task)
        self.io = self.mirror.io
        self.camera = config.render_camera or self.mirror.task.video_camera
        self.rejected = 0  # joint states that could not be mirrored (names, sizes)
        self.renders = 0
        self._moved = True
        self._server: ViewServer | None = None
        self._status: dict[str, str] = {"episode": "waiting for the first episode"}
        self._estop: bool | None = None
        self._skeleton = _skeleton_bodies(self.mirror.twin.model, self.io.joint_names)
        self._static_labels()

    @classmethod
    def serve(cls, config: LiveViewConfig) -> LiveView:
        """A view served on localhost (`view.url`); ViewError if its port is taken."""
        server = ViewServer(config.web_port, config.memory_limit_mb, blueprint(config))
        view = cls(config, server.stream, server.url)
        view._server = server
        return view

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    # -- measurements ----------------------------------------------------------------
    def joint_state(
        self,
        stamp_ns: int,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float] = (),
    ) -> bool:
        """Plot the positions and move the mirrored twin; False (counted) if the message
        does not carry this robot's joints."""
        try:
            pos, vel = validate_joint_state(names, positions, velocities, self.io.joint_names)
        except CommandRejected:
            self.rejected += 1
            return False
        self.mirror.update(pos, vel)
        self._moved = True
        self._log(stamp_ns, "joints/position", _scalars(pos))
        return True

    def command(
        self, stamp_ns: int, names: Sequence[str], targets: Sequence[float], applied: bool = False
    ) -> None:
        """A `joint_command` target (or, `applied`, what the robot's safety layer sent)."""
        order = {name: i for i, name in enumerate(names)}
        values = [targets[order[n]] if n in order else math.nan for n in self.io.command_names]
        kind = "applied" if applied else "command"
        self._log(stamp_ns, f"joints/targets/{kind}", _scalars(np.asarray(values, float)))

    def object_pose(
        self, stamp_ns: int, position_m: ArrayLike, quat_wxyz: ArrayLike | None = None
    ) -> None:
        if not self.mirror.has_object:
            return
        quat = np.asarray(quat_wxyz if quat_wxyz is not None else (1.0, 0.0, 0.0, 0.0))
        pose = ObjectPose(np.asarray(position_m, dtype=float), quat, 0)
        try:
            self.mirror.update(*self._mirrored_joints(), pose)
        except StateError:  # non-finite or not a rotation
            self.rejected += 1
            return
        self._moved = True
        self._log(stamp_ns, "world/object", _point(position_m, OBJECT_RGB, "object"))

    def goal(self, stamp_ns: int, goal: ArrayLike) -> None:
        values = np.asarray(goal, dtype=float)[: self.mirror.task.goal_dim]
        self.mirror.goal = values.copy()
        if values.size >= 3:
            self._log(stamp_ns, "world/goal", _point(values[:3], GOAL_RGB, "goal"))

    def camera_image(self, stamp_ns: int, name: str, rgb: np.ndarray) -> None:
        import rerun as rr

        self._log(stamp_ns, f"cameras/{name}", rr.Image(rgb))

    def estop(self, stamp_ns: int, latched: bool) -> None:
        if latched != self._estop:
            self._estop = latched
            self._log_status(stamp_ns)

    def diagnostics(self, stamp_ns: int, name: str, values: Mapping[str, str]) -> None:
        """Episode status from task_node's reports on `diagnostics`."""
        status = _episode_line(name, values)
        if status is None:
            return
        key, line = status
        self._status[key] = line
        if key == "last":  # an episode ended
            self._status["episode"] = "between episodes"
        if name == START_STATUS and "seed" in values:
            self.mirror.sample_goal(int(values["seed"]))  # the twin's goal marker, too
            self._moved = True
        self._log_status(stamp_ns)

    # -- the picture -------------------------------------------------------------------
    def render(self, stamp_ns: int) -> bool:
        """Draw the mirrored twin (and its skeleton in 3D) if anything moved since the last
        picture; the caller paces it (`render_rate_hz`)."""
        if not self._moved:
            return False
        import rerun as rr

        from sim.render import render_rgb

        cfg = self.config
        rgb = render_rgb(self.mirror.twin, self.camera, cfg.render_width_px, cfg.render_height_px)
        self._log(stamp_ns, "twin", rr.Image(rgb))
        xpos = self.mirror.twin.data.xpos
        strips = [[xpos[parent], xpos[child]] for parent, child in self._skeleton]
        self._log(stamp_ns, "world/robot", rr.LineStrips3D(strips, radii=0.012, colors=ROBOT_RGB))
        self._moved = False
        self.renders += 1
        return True

    # -- helpers -----------------------------------------------------------------------
    def _mirrored_joints(self) -> tuple[np.ndarray, np.ndarray]:
        data = self.mirror.twin.data
        return data.qpos[self.io.qpos_indices].copy(), data.qvel[self.io.qvel_indices].copy()

    def _log(self, stamp_ns: int, path: str, value: Any) -> None:
        self.stream.set_time(TIMELINE, timestamp=np.datetime64(int(stamp_ns), "ns"))
        self.stream.log(path, value)

    def _log_status(self, stamp_ns: int) -> None:
        import rerun as rr

        estop = {None: "unknown", False: "released", True: "**LATCHED**"}[self._estop]
        lines = [f"**{self.config.task}** · e-stop: {estop}"]
        lines += [self._status[k] for k in ("episode", "last", "waiting") if self._status.get(k)]
        text = rr.TextDocument("\n\n".join(lines), media_type="text/markdown")
        self._log(stamp_ns, "status", text)

    def _static_labels(self) -> None:
        import rerun as rr

        commands = list(self.io.command_names)
        series = {
            "joints/position": list(self.io.joint_names),
            "joints/targets/command": commands,
            "joints/targets/applied": [f"{n} (applied)" for n in commands],
        }
        for path, names in series.items():
            self.stream.log(path, rr.SeriesLines(names=names), static=True)
        self.stream.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)


def _scalars(values: np.ndarray) -> Any:
    import rerun as rr

    return rr.Scalars(np.asarray(values, dtype=float))


def _point(position: ArrayLike, colour: tuple[int, int, int], label: str) -> Any:
    import rerun as rr

    return rr.Points3D(
        [np.asarray(position, dtype=float)[:3]], radii=0.025, colors=colour, labels=label
    )


def _episode_line(name: str, values: Mapping[str, str]) -> tuple[str, str] | None:
    """(which status line, its text) for one of task_node's reports, or None."""
    if name in (START_STATUS, END_STATUS):
        marker = marker_from_status(name, values)
        if marker is None:
            return None
        event, index, fields = marker
        if event == "start":
            return "episode", f"episode {index} (seed {fields.get('seed')}) running"
        outcome = "success" if fields.get("success") else "failure"
        distance = fields.get("final_distance", math.nan)
        return "last", f"episode {index}: **{outcome}**, final distance {distance:.3f} m"
    if name == "task_node/done":
        return "episode", f"done: {values.get('episodes')} episodes"
    if name == "task_node":
        return "waiting", f"task node waits: {values['waiting']}" if values.get("waiting") else ""
    return None


def _skeleton_bodies(model: Any, joint_names: Sequence[str]) -> list[tuple[int, int]]:
    """(parent, child) body pairs from the world to every body that carries a robot joint."""
    pairs: set[tuple[int, int]] = set()
    for name in joint_names:
        body = int(model.joint(name).bodyid[0])
        while body > 0 and int(model.body_parentid[body]) > 0:
            parent = int(model.body_parentid[body])
            pairs.add((parent, body))
            body = parent
    return sorted(pairs)
