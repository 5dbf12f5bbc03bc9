"""`PolicyController`: an actor on measured inputs, deciding act or hold (the core of
policy_node, and of teleop_node with a human or scripted operator as the actor).

Inputs arrive as they are measured (joint state, object pose, goal, e-stop state), each
with the monotonic time it arrived. `decide` returns command targets for the newest state
only when every input is fresh and the e-stop is known to be released; otherwise it holds
(publishes nothing, so the robot keeps its last target) and says why. Every hold reason
and rejected input is counted for `diagnostics`.

Before the first step the controller checks that the policy fits the robot: the card's
task, robot and control rate against the node's configuration, and the card's
observation layout against the task's (both sides are named in the error).

Run: `python -c "from policies.controller import PolicyController as C; c = C.load('policies/zoo/fetch-push.onnx', 'fetch'); print(c.command_names)"`
"""  # noqa: E501

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from policies.card import SCRIPTED_POLICY, ModelCard
from policies.errors import PolicyError
from policies.observation import task_info
from policies.runtime import PolicyRunner
from sim.contract.command_rules import CommandRejected, validate_joint_state
from sim.contract.samples import ObjectPose
from sim.errors import StateError
from sim.mirror import TaskMirror
from sim.object_estimate import ObjectEstimateConfig
from sim.scripted import ScriptedFetchPolicy

# The e-stop source re-publishes its state at 10 Hz; five missed heartbeats and the
# policy no longer knows whether it may move the robot, so it holds.
ESTOP_STALE_S = 0.5


class PolicyMismatchError(PolicyError):
    """A policy whose card does not fit the robot or rate it is asked to drive."""


class Actor(Protocol):
    """What chooses the env action: an ONNX `PolicyRunner`, or a teleop operator."""

    def reset(self) -> None: ...

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class Decision:
    """Targets to publish (in `command_names` order) for the state stamped `stamp_ns`, or a
    hold. The stamp is copied exactly, so the robot can pair the command with its state.
    `action` is the env action the targets came from (recorded with teleop demonstrations)."""

    targets: np.ndarray | None
    stamp_ns: int
    hold_reason: str = ""
    action: np.ndarray | None = None


class PolicyController:
    """Observation assembly, inference and the act/hold decision."""

    def __init__(
        self,
        runner: Actor,
        mirror: TaskMirror,
        stale_after_s: float,
        control_rate_hz: float,
    ):
        if not (stale_after_s > 0 and control_rate_hz > 0):
            raise ValueError("stale_after_s and control_rate_hz must be > 0")
        self.runner, self.mirror, self.stale_after_s = runner, mirror, stale_after_s
        self.control_rate_hz = control_rate_hz
        # States closer than half a period to the last one acted on are skipped, so the
        # policy never runs faster than its rate however fast states arrive.
        self._min_interval_ns = round(0.5e9 / control_rate_hz)
        self.counters: Counter[str] = Counter()
        self._state: tuple[float, int, np.ndarray, np.ndarray] | None = None
        self._pose: tuple[float, ObjectPose] | None = None
        self._goal: tuple[float, np.ndarray] | None = None
        self._estop: tuple[float, bool] | None = None
        self._acted_stamp_ns: int | None = None

    @classmethod
    def load(
        cls,
        policy_path: str | Path,
        robot: str,
        control_rate_hz: float = 0.0,
        stale_after_s: float = 0.0,
        task: str = "",
        object_estimate: ObjectEstimateConfig | None = None,
    ) -> PolicyController:
        """Load and check a zoo policy for `robot`; rate 0 means the card's rate. `task`
        (when given) must be the card's; the scripted policy needs it. The policy acts on
        `object_estimate`'s filtered object pose (None: the raw pose)."""
        if str(policy_path) == SCRIPTED_POLICY:
            return cls._scripted(task, robot, control_rate_hz, stale_after_s, object_estimate)
        runner = PolicyRunner.load(Path(policy_path), expected_task=task or None)
        card = runner.card
        if card.robot != robot:
            raise PolicyMismatchError(
                f"{policy_path}: the card's robot is {card.robot!r}, this node drives {robot!r}"
            )
        if control_rate_hz and abs(control_rate_hz - card.control_rate_hz) > 1e-9:
            # Allowed (benchmarks run faster), but never silently.
            logging.getLogger(__name__).warning(
                "running %s at %s Hz; its card says %s Hz",
                policy_path,
                control_rate_hz,
                card.control_rate_hz,
            )
        mirror = TaskMirror(card.task, object_estimate)
        _check_layout(runner, mirror, policy_path)
        rate = control_rate_hz or card.control_rate_hz
        return cls(runner, mirror, stale_after_s or 3.0 / rate, rate)

    @classmethod
    def _scripted(
        cls,
        task: str,
        robot: str,
        control_rate_hz: float,
        stale_after_s: float,
        object_estimate: ObjectEstimateConfig | None,
    ) -> PolicyController:
        """sim.scripted's Fetch controller as the actor, at the task's rate."""
        check_policy_for_task(SCRIPTED_POLICY, task)
        mirror = TaskMirror(task, object_estimate)
        if mirror.robot != robot:
            raise PolicyMismatchError(
                f"policy {SCRIPTED_POLICY!r} for {task} drives {mirror.robot!r}, "
                f"this node drives {robot!r}"
            )
        rate = control_rate_hz or task_info(task).control_rate_hz
        actor = ScriptedActor(ScriptedFetchPolicy(task))
        return cls(actor, mirror, stale_after_s or 3.0 / rate, rate)

    @property
    def command_names(self) -> tuple[str, ...]:
        return self.mirror.io.command_names

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.mirror.io.joint_names

    @property
    def goal_size(self) -> int:
        return self.mirror.task.goal_dim

    # -- inputs ----------------------------------------------------------------------
    def on_joint_state(
        self,
        stamp_ns: int,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
        now_s: float,
    ) -> bool:
        """Keep a valid joint state; count and drop an invalid one."""
        try:
            pos, vel = validate_joint_state(names, positions, velocities, self.joint_names)
        except CommandRejected as e:
            self.counters[f"dropped_joint_states_{e.reason}"] += 1
            return False
        self._state = (now_s, stamp_ns, pos, vel)
        return True

    def on_object_pose(self, pose: ObjectPose, now_s: float) -> bool:
        values = np.concatenate((pose.position_m, pose.quaternion_wxyz))
        if not np.isfinite(values).all() or np.linalg.norm(pose.quaternion_wxyz) < 0.5:
            self.counters["dropped_object_pose_invalid"] += 1
            return False
        self.mirror.measure_object(pose)  # every pose, not only those acted on
        self._pose = (now_s, pose)
        return True

    def on_goal(self, goal: ArrayLike, now_s: float) -> bool:
        values = np.asarray(goal, dtype=np.float64)
        if values.shape != (self.goal_size,) or not np.isfinite(values).all():
            self.counters["dropped_goal_invalid"] += 1
            return False
        if self._goal is None or not np.array_equal(values, self._goal[1]):
            self.runner.reset()  # a new goal is a new episode: fresh recurrent state
            self.mirror.new_episode()
        self._goal = (now_s, values)
        return True

    def on_estop(self, engaged: bool, now_s: float) -> None:
        self._estop = (now_s, bool(engaged))

    # -- decision --------------------------------------------------------------------
    def decide(self, now_s: float) -> Decision:
        """Targets for the newest state, or a hold with its reason (counted)."""
        reason = self._hold_reason(now_s)
        stamp = self._state[1] if self._state else 0
        if reason:
            if reason != "no_new_state":  # waiting for the next state is not a hold
                self.counters[f"hold_{reason}"] += 1
                self.mirror.hold()
            return Decision(None, stamp, reason)
        if self._state is None or self._goal is None:  # unreachable: _hold_reason checks
            return Decision(None, stamp, "waiting_for_inputs")
        _, stamp, pos, vel = self._state
        pose = self._pose[1] if self._pose else None
        try:
            self.mirror.goal = self._goal[1]
            self.mirror.update(pos, vel, pose)
            action = self.runner.act(self.mirror.observation())
            targets, clamped = self.mirror.command_targets(action)
        except (PolicyError, StateError) as e:
            self.counters["hold_policy_error"] += 1
            return Decision(None, stamp, f"policy_error: {e}")
        self._acted_stamp_ns = stamp
        self.counters["commands"] += 1
        self.counters["targets_clamped_to_limits"] += clamped
        return Decision(targets, stamp, action=np.asarray(action, dtype=np.float64))

    def _hold_reason(self, now_s: float) -> str:
        if self._estop is None or now_s - self._estop[0] > ESTOP_STALE_S:
            return "estop_unknown"
        if self._estop[1]:
            return "estop"
        if self._state is None or self._goal is None:
            return "waiting_for_inputs"
        if now_s - self._state[0] > self.stale_after_s:
            return "stale_joint_states"
        if self.mirror.has_object and (
            self._pose is None or now_s - self._pose[0] > self.stale_after_s
        ):
            return "stale_object_pose"
        acted = self._acted_stamp_ns
        if acted is not None and self._state[1] - acted < self._min_interval_ns:
            return "no_new_state"
        if (
            self.mirror.has_object
            and self._pose is not None
            and self._pose[1].stamp_ns != self._state[1]
        ):
            return "no_new_state"  # the object pose of this state is still on its way
        return ""


class ScriptedActor:
    """`ScriptedFetchPolicy` behind the `Actor` protocol (`--policy scripted`)."""

    def __init__(self, policy: ScriptedFetchPolicy):
        self.policy = policy

    def reset(self) -> None:
        self.policy.reset()

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.policy(observation), dtype=np.float32)


def check_policy_for_task(policy: str | Path, task: str) -> None:
    """Refuse, before any node starts, a policy that cannot drive `task` on its twin: the
    scripted policy for a task it does not solve, or an ONNX file that is missing, has no
    card, was trained for another task, or runs at another rate than the task's."""
    if str(policy) == SCRIPTED_POLICY:
        if task not in ScriptedFetchPolicy.TASKS:
            raise PolicyMismatchError(
                f"policy {SCRIPTED_POLICY!r} solves {', '.join(ScriptedFetchPolicy.TASKS)}, "
                f"not {task}; give a policy .onnx trained for {task}, or 'random'"
            )
        return
    card = PolicyRunner.load(Path(policy), expected_task=task).card
    rate_hz = task_info(task).control_rate_hz
    if abs(card.control_rate_hz - rate_hz) > 1e-6:
        raise PolicyMismatchError(
            f"{policy}: runs at {card.control_rate_hz} Hz (its card), but {task} steps at "
            f"{rate_hz} Hz; give a policy trained at {rate_hz} Hz"
        )


ALLOW_IDEAL_FLAG = "--allow-ideal-actuation"


def check_policy_for_hardware(policy: str | Path, allow_ideal: bool = False) -> str:
    """Refuse, before a robot moves, a policy trained for servos the robot does not have:
    its card's `actuation.model` must be "robot" (sim/actuation.py). A card without the
    field predates it: its policy was trained on ideal servos, and the message says so.
    Returns a warning line when `allow_ideal` lets one through, else ""."""
    if str(policy) == SCRIPTED_POLICY:
        return ""
    card = ModelCard.load(Path(policy).with_suffix(".json"))
    if card.actuation_model == "robot":
        return ""
    recorded = (
        "has no actuation field (older cards: ideal)"
        if not card.actuation
        else (f"has actuation.model {card.actuation_model!r}")
    )
    message = (
        f"{policy}: its card {recorded}: it was trained on servos that follow their target "
        "at once, not on the robot's speed-limited command path, and loses most of its "
        f"success on hardware; train it on the task's robot actuation (its -v1 task), or "
        f"pass {ALLOW_IDEAL_FLAG} to run it anyway"
    )
    if not allow_ideal:
        raise PolicyMismatchError(message)
    return f"warning: {message.split(';')[0]}; running it because of {ALLOW_IDEAL_FLAG}"


def _check_layout(runner: PolicyRunner, mirror: TaskMirror, path: str | Path) -> None:
    """The card's observation fields must be the task's, in order, by name and size."""
    card_fields = [(f.name, f.size) for f in runner.card.observation]
    task_fields = [(name, size) for name, size, _ in mirror.task.observation_fields()]
    task_fields.append(("desired_goal", mirror.task.goal_dim))
    if card_fields != task_fields:
        raise PolicyMismatchError(
            f"{path}: observation layout differs; card: {card_fields}; "
            f"task {mirror.task_name}: {task_fields}"
        )
