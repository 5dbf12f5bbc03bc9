"""`TwinLoop`: the twin as a robot on the topic contract, without ROS (the core of twin_node).

It owns one task's env, steps its physics one control period at a time, reports joint
states and the object's pose with a stamp that never goes backwards across episodes,
applies position targets by command name, resets to seeded episodes, and latches an
e-stop that holds every actuator where it is. A diverging simulation latches the e-stop
too (the twin's safe state), with the reason.

Run: `python -c "from sim.twin_loop import TwinLoop; t = TwinLoop('fetch-push'); t.reset(); t.step(); print(t.joint_state())"`
"""  # noqa: E501

from __future__ import annotations

import numpy as np

from sim.actuation import ActuationConfig
from sim.contract.command_rules import CommandRejected, CommandRules, check_episode
from sim.contract.episode_gate import EpisodeGate, ResetPlan
from sim.contract.samples import JointStateSample, ObjectPose
from sim.envs import make_env
from sim.errors import ConfigError, PhysicsError, StateError
from sim.overlay import Overlay
from sim.robot_io import RobotIO
from sim.tasks import get_task_spec


class TwinLoop:
    """A task's twin stepped per control period, commanded by position targets."""

    def __init__(
        self,
        task: str,
        seed: int = 0,
        actuation: ActuationConfig | str | None = None,
        scene: str | None = None,
    ):
        """`scene` replaces the task's (the emulator's `scene`: the same robot and task in
        another room, e.g. `calibration` with the board on the gripper)."""
        spec = get_task_spec(task)
        self.task_name = task
        actuation = actuation or spec.actuation  # the emulator's device ramps by itself
        kwargs = {**spec.kwargs, **({"scene": scene} if scene else {})}
        try:
            self.env = make_env(spec.task_class, actuation=actuation, **kwargs)
        except (TypeError, KeyError) as e:  # no scene to choose, or one without its objects
            if scene is None:
                raise
            raise ConfigError(
                f"scene {scene!r} does not fit task {task!r} ({e}): drop the scene, or pick "
                "a task of that scene (calibration: fetch-reach)"
            ) from e
        self.twin, self.task = self.env.twin, self.env.task
        self.io = RobotIO.of(self.task.robot, self.twin)
        self.control_period_s = self.env.dt
        self.seed = seed
        self.gate = EpisodeGate(seed, spec.max_episode_steps)  # the registered length
        self.estop_reason: str | None = None
        self.episode_start_ns = 0  # the stamp of the current episode's first state
        # Stamps count control periods in integer nanoseconds: exact, so a command's stamp
        # matches the state it answers after any number of float round trips.
        self._period_ns = round(self.control_period_s * 1e9)
        self._ticks = 1
        model = self.twin.model
        joint = self.twin.object_joint()
        self._object_joint = -1 if joint is None else joint
        self._object_qadr = None if joint is None else int(model.jnt_qposadr[joint])
        self._dof_efforts = self.io.qvel_indices
        self.env.reset(seed=seed)  # a defined first state; no episode has started yet

    @property
    def episodes(self) -> int:
        """Episodes started by a reset."""
        return self.gate.started

    @property
    def estopped(self) -> bool:
        return self.estop_reason is not None

    @property
    def stamp_ns(self) -> int:
        """Sim time of the current state in ns: one control period per step or reset, so
        it never goes backwards, and starts > 0 (a zero stamp is invalid on the contract)."""
        return self._ticks * self._period_ns

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns * 1e-9

    def reset(self) -> ResetPlan:
        """Serve the contract's `reset` (sim.contract.episode_gate rules): start the next seeded
        episode (seed + k), or answer the one awaiting its goal again; `ResetRefused` while
        the e-stop is latched (nothing moves) or an episode runs."""
        plan = self.gate.plan(self.estop_reason)
        if plan.move:
            self._ticks += 1
            self.env.reset(seed=plan.seed)
            self.episode_start_ns = self.stamp_ns
        self.gate.commit(plan)
        return plan

    def command_rules(self, max_age_s: float, allow_partial: bool) -> CommandRules:
        """The boundary checks of a `joint_command` for this robot's commands."""
        low, high = self.io.command_limits(self.twin)
        names = self.io.command_names
        return CommandRules(names, low, high, max_age_s, allow_partial=allow_partial)

    def check_command(self, stamp_ns: int) -> None:
        """`CommandRejected` unless a command answering the state stamped `stamp_ns` may
        be applied: not one answering an older episode, nothing under the e-stop."""
        check_episode(stamp_ns, self.episode_start_ns)
        if self.estopped:
            raise CommandRejected("estop", "e-stop latched")

    def is_episode_goal(self, goal: np.ndarray) -> bool:
        """Whether a received goal is the current episode's (its env sampled it)."""
        return bool(np.allclose(goal, self.env.goal, atol=1e-9))

    def goal_received(self) -> None:
        """The episode's goal is known (twin_node checks it is this episode's): it runs."""
        self.gate.goal_arrived()

    def apply(self, targets: dict[str, float]) -> None:
        """Set position targets by command name (already validated by the caller)."""
        if self.estopped:
            raise CommandRejected("estop", f"e-stop latched ({self.estop_reason}); ignored")
        ctrl = self.twin.data.ctrl
        for name, value in targets.items():
            ctrl[self.io.actuator_of(name)] = value

    def applied_targets(self) -> np.ndarray:
        """The targets the actuators act on, in `io.command_names` order: the commanded
        ones after MuJoCo's control-range clamp, or the hold positions under an e-stop; with
        the robot's actuation, what its driver sends (the rate limiter's newest command)."""
        path = self.twin.command_path
        if path is not None and not self.estopped:
            return path.sent
        ranges = self.twin.model.actuator_ctrlrange[self.io.actuator_ids]
        return np.clip(self.twin.data.ctrl[self.io.actuator_ids], ranges[:, 0], ranges[:, 1])

    def step(self) -> None:
        """Advance one control period; a diverging simulation latches the e-stop."""
        self.gate.period_passed()
        self._ticks += 1
        try:
            self.twin.step(nstep=self.task.frame_skip)
        except PhysicsError as e:
            self.engage_estop(f"physics diverged: {e}")
            self.twin.reset()

    def engage_estop(self, reason: str) -> None:
        """Latch the e-stop and hold every actuator at its current position."""
        if self.estop_reason is None:
            self.estop_reason = reason
        self._hold()

    def release_estop(self) -> None:
        """Explicitly release the latch; targets stay at the held positions."""
        self.estop_reason = None

    def estop_request(self, engage: bool) -> tuple[bool, str]:
        """The `estop` service, as on the hardware: true latches; false is refused (only
        `enable` releases the latch)."""
        if not engage:
            return False, "the e-stop is released only by the 'enable' service"
        self.engage_estop("estop service")
        return True, "e-stop latched"

    def diagnostics(self) -> dict[str, object]:
        return {
            "episodes": self.episodes,
            "holding_for_goal": self.gate.holding,
            "estop": self.estop_reason or "",
            "clipped_controls": self.twin.clipped_controls,
        }

    def _hold(self) -> None:
        """Targets := where each actuator is now (position servos then hold still); the
        robot's command path stops there too, dropping what is in flight."""
        data, model = self.twin.data, self.twin.model
        low, high = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
        data.ctrl[:] = np.clip(data.actuator_length, low, high)
        self.twin.hold_command_path()

    def overlay(self) -> Overlay:
        """The current state as a video frame's text: episode, control periods since its
        reset, success and distance to the goal by the task's own tests, the e-stop."""
        episode = self.gate.started - 1
        return Overlay.measure(
            self.task_name,
            self.task,
            self.twin,
            self.env.goal,
            episode=episode,
            step=(self.stamp_ns - self.episode_start_ns) // self._period_ns if episode >= 0 else 0,
            steps=self.gate.episode_steps,
            seed=self.seed + episode if episode >= 0 else None,
            estop=self.estop_reason or "",
        )

    def joint_state(self) -> JointStateSample:
        data = self.twin.data
        return JointStateSample(
            stamp_ns=self.stamp_ns,
            names=self.io.joint_names,
            positions=data.qpos[self.io.qpos_indices].copy(),
            velocities=data.qvel[self.io.qvel_indices].copy(),
            efforts=data.qfrc_actuator[self._dof_efforts].copy(),
        )

    def set_object_pose(self, pose_wxyz: np.ndarray) -> None:
        """Place the object (position + quaternion wxyz) at rest; call `twin.forward` after."""
        if self._object_qadr is None:
            raise StateError(f"{self.task_name} has no object to place")
        self.twin.data.qpos[self._object_qadr : self._object_qadr + 7] = pose_wxyz
        dof = self.twin.model.jnt_dofadr[self._object_joint]
        self.twin.data.qvel[dof : dof + 6] = 0.0

    def object_pose(self) -> ObjectPose | None:
        """The object's pose (its free joint), or None in tasks without an object."""
        if self._object_qadr is None:
            return None
        q = self.twin.data.qpos[self._object_qadr : self._object_qadr + 7]
        return ObjectPose(q[:3].copy(), q[3:].copy(), self.stamp_ns)
