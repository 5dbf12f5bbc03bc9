"""Scripted Fetch controllers: solve reach, push, slide and pick-and-place like a careful human.

They read only the Gymnasium-Robotics observation dict (grip_pos, object_pos, gripper_state,
desired_goal), so they run on the twin, on Gymnasium-Robotics' own envs and, later, on the
real robot through the same observation. Used by the demo video and by teleop tests.

Run: `python -c "import sim, sim.scripted as s; print(s.success_rate('fetch-push', 5))"`
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import UnknownNameError

GRIP, OBJECT, FINGERS = slice(0, 3), slice(3, 6), slice(9, 11)
FINGER_VELOCITIES = slice(23, 25)  # gripper_vel (x dt) in an object task's observation
# Observation lengths of Gymnasium-Robotics' layout; the next three values are the target_lead
# of a task whose actions move the arm's target (sim/tasks/fetch.py, action_moves="target").
REACH_OBS, OBJECT_OBS = 10, 25


@dataclass(frozen=True)
class ScriptedConfig:
    """Gains and clearances of the scripted controller (lengths in metres)."""

    gain_per_m: float = 12.0  # action per metre of position error (0.05 m step per unit)
    step_m: float = 0.05  # the task's target displacement per unit action and control step
    hover_height_m: float = 0.07  # above the object while approaching it
    aligned_m: float = 0.012  # horizontal error at which descending starts
    push_standoff_m: float = 0.06  # gripper centre behind the object centre when pushing
    push_lateral_tolerance_m: float = 0.03  # off the push line: back off and realign
    push_speed: float = 0.7  # action magnitude while pushing (the lagging arm makes ~1.4 cm/step)
    grasp_close_steps: int = 6  # control steps the gripper squeezes at least before lifting
    grasp_settled_m: float = 0.0005  # ... and until its opening changes less than this a step
    grasp_height_m: float = 0.0  # gripper site relative to the object centre when grasping
    preshape_finger_m: float = 0.04  # each finger's opening on the way to a grasp: the block's
    # half-width (0.025) and room for the approach's error; the slow robot gripper (5 cm/s)
    # then closes 1.5 cm, not 2.5, on the block
    done_m: float = 0.035  # stop pushing this close to the goal (success: 0.05); nearer, the
    # line to the goal swings with every millimetre and realigning risks knocking the block
    slide_speed_gain: float = 1.6  # slide: strike speed (action) per metre to the goal
    cross_clearance: float = 0.5  # slide: rise in place below this share of the hover height
    push_clearance_m: float = 0.05  # slide: nearest the gripper descends behind the puck's centre
    approach_speed: float = 1.0  # horizontal action magnitude while going to the push position
    push_height_m: float = 0.01  # push: gripper above the block centre (fingertips off the table)
    push_contact_m: float = 0.045  # push: gripper centre behind the block centre in contact
    push_overlap_m: float = 0.02  # push: lost once the gripper is this far past the contact point
    push_lateral_gain: float = 25.0  # push: sideways correction (action per metre off the line);
    # stiffer than gain_per_m: in contact the block drags the gripper along with it
    height_gain_per_m: float = 30.0  # push: stiffer height hold, the arm sags while it moves
    orbit_radius_m: float = 0.085  # push: circle round the block's centre when going around it
    orbit_step_rad: float = 1.0  # push: how far ahead on that circle the aim point leads
    reach_x_m: float = 1.53  # push: farthest gripper x the arm reaches at table height


class ScriptedFetchPolicy:
    """A state machine per task: approach, descend, grasp or push, carry, hold."""

    TASKS = ("fetch-reach", "fetch-push", "fetch-slide", "fetch-pick-and-place")

    def __init__(self, task_name: str, config: ScriptedConfig | None = None):
        if task_name not in self.TASKS:
            raise UnknownNameError("scripted fetch task", task_name, self.TASKS)
        self.task_name = task_name
        self.config = config or ScriptedConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the episode's phase (call at every env reset)."""
        self._phase = "approach"
        self._closed_steps = 0

    def __call__(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """The action [dx, dy, dz, gripper] in [-1, 1] for one observation dict."""
        o = np.asarray(observation["observation"], dtype=np.float64)
        goal = np.asarray(observation["desired_goal"], dtype=np.float64)
        if self.task_name == "fetch-reach":
            action = self._move(o[GRIP], goal, 0.0)
        elif self.task_name == "fetch-pick-and-place":
            action = self._pick_and_place(o, goal)
        else:
            action = self._push(o, goal, slide=self.task_name == "fetch-slide")
        base = REACH_OBS if self.task_name == "fetch-reach" else OBJECT_OBS
        if len(o) > base:
            # The behaviours place the target relative to the gripper; this task's action moves
            # the target from where it is (target_lead ahead of the lagging gripper).
            action[:3] -= o[base : base + 3] / self.config.step_m
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    # -- behaviours --------------------------------------------------------------------
    def _move(
        self, grip: np.ndarray, target: np.ndarray, gripper: float, speed: float = 1.0
    ) -> np.ndarray:
        """Proportional step toward `target`, scaled (not clipped) to keep its direction."""
        velocity = (target - grip) * self.config.gain_per_m
        largest = float(np.max(np.abs(velocity)))
        if largest > speed:
            velocity *= speed / largest
        return np.append(velocity, gripper)

    def _pick_and_place(self, o: np.ndarray, goal: np.ndarray) -> np.ndarray:
        cfg = self.config
        grip, obj = o[GRIP], o[OBJECT]
        above = obj + np.array([0.0, 0.0, cfg.hover_height_m])
        grasp = obj + np.array([0.0, 0.0, cfg.grasp_height_m])
        horizontal = np.linalg.norm((grip - obj)[:2])
        preshape = (cfg.preshape_finger_m - float(np.mean(o[FINGERS]))) / cfg.step_m
        if self._phase == "approach":
            if horizontal < cfg.aligned_m and grip[2] < above[2] + 0.02:
                self._phase = "descend"
            return self._move(grip, above, preshape)
        if self._phase == "descend":
            if horizontal > 2 * cfg.aligned_m + 0.01:
                self._phase = "approach"
            elif abs(grip[2] - grasp[2]) < 0.008:
                self._phase = "close"
            return self._move(grip, grasp, preshape)
        if self._phase == "close":
            self._closed_steps += 1
            closing = float(np.sum(np.abs(o[FINGER_VELOCITIES])))  # m per control step
            if self._closed_steps >= cfg.grasp_close_steps and closing < cfg.grasp_settled_m:
                self._phase = "carry"  # the fingers stopped on the block (a slow gripper too)
            return self._move(grip, grasp, -1.0)
        if np.linalg.norm(grip - obj) > 0.05:  # dropped it: start over
            self.reset()
            return self._move(grip, above, 1.0)
        return self._move(obj, goal, -1.0)  # carry: steer the object, not the gripper

    def _push(self, o: np.ndarray, goal: np.ndarray, slide: bool) -> np.ndarray:
        cfg = self.config
        grip, obj = o[GRIP], o[OBJECT]
        to_goal = (goal - obj)[:2]
        distance = float(np.linalg.norm(to_goal))
        near = distance < cfg.done_m and (self._phase == "push" or not slide)
        if self._phase == "done" or near:  # a pushed block stays put: hold in any phase
            self._phase = "done" if slide else "push"
            return np.zeros(4)
        direction = to_goal / max(distance, 1e-9)
        if not slide:
            return self._push_block(grip, obj, direction, distance)
        # Slide keeps its hover-and-descend approach, then strikes (not retuned for the lag).
        behind = obj[:2] - direction * cfg.push_standoff_m
        offset = grip[:2] - behind
        lateral = abs(offset[0] * direction[1] - offset[1] * direction[0])
        along = float(offset @ direction)  # > 0: the gripper is past the push position
        # in contact the gripper is ~4 cm from the centre (along ~ 0.02); 2 cm means on top
        lost = lateral > cfg.push_lateral_tolerance_m or along > cfg.push_standoff_m - 0.02
        if self._phase != "push" or lost:
            return self._approach_push(grip, behind, obj[2], lateral, along)
        return self._strike(direction, distance, grip, obj)

    def _push_block(
        self, grip: np.ndarray, obj: np.ndarray, direction: np.ndarray, distance: float
    ) -> np.ndarray:
        """Push: circle the block at table height to its far side from the goal, then push it
        along the line to the goal, keeping the gripper on that line."""
        cfg = self.config
        height = obj[2] + cfg.push_height_m
        contact = obj[:2] - direction * cfg.push_contact_m  # fingers against the block's back
        offset = grip[:2] - contact
        along = float(offset @ direction)  # > 0: the gripper is past the contact point
        sideways = offset - along * direction
        lateral = float(np.linalg.norm(sideways))
        standoff = cfg.push_standoff_m
        if direction[0] < 0.0:  # pushing toward the robot: stay within the arm's reach
            standoff = min(standoff, (cfg.reach_x_m - obj[0]) / -direction[0])
        standoff = max(standoff, cfg.push_contact_m)
        if self._phase == "push":
            if lateral > cfg.push_lateral_tolerance_m or along > cfg.push_overlap_m:
                self._phase = "approach"
        elif lateral < cfg.aligned_m and (
            cfg.push_contact_m - standoff - cfg.aligned_m < along < cfg.aligned_m
        ):
            self._phase = "push"
        if self._phase != "push":
            return self._orbit(grip, obj, obj[:2] - direction * standoff, height)
        velocity = direction * min(distance * cfg.gain_per_m, cfg.push_speed)
        return self._level(grip, velocity - sideways * cfg.push_lateral_gain, height)

    def _orbit(
        self, grip: np.ndarray, obj: np.ndarray, behind: np.ndarray, height: float
    ) -> np.ndarray:
        """Go around the block at table height toward `behind`: the aim point sits on a circle
        round the block, at most orbit_step_rad ahead of the gripper's bearing, and shrinks
        to `behind` as the bearings meet (no rising over the block, no sagging onto it)."""
        cfg = self.config
        here, there = grip[:2] - obj[:2], behind - obj[:2]
        turn = float(
            np.arctan2(here[0] * there[1] - here[1] * there[0], float(here @ there))
        )  # signed angle from the gripper's bearing to the push position's
        share = min(1.0, abs(turn) / cfg.orbit_step_rad)
        radius = float(np.linalg.norm(there))
        radius += (cfg.orbit_radius_m - radius) * share
        bearing = float(np.arctan2(here[1], here[0])) + np.clip(
            turn, -cfg.orbit_step_rad, cfg.orbit_step_rad
        )
        aim = obj[:2] + radius * np.array([np.cos(bearing), np.sin(bearing)])
        return self._level(grip, (aim - grip[:2]) * cfg.gain_per_m, height)

    def _level(self, grip: np.ndarray, velocity: np.ndarray, height: float) -> np.ndarray:
        """Horizontal `velocity` (scaled to approach_speed, keeping its direction) at `height`,
        which gets its own gain and clip: the lagging arm sags while it moves fast."""
        cfg = self.config
        largest = float(np.max(np.abs(velocity)))
        if largest > cfg.approach_speed:
            velocity = velocity * (cfg.approach_speed / largest)
        climb = float(np.clip((height - grip[2]) * cfg.height_gain_per_m, -1.0, 1.0))
        return np.array([velocity[0], velocity[1], climb, 0.0])

    def _approach_push(
        self, grip: np.ndarray, behind: np.ndarray, low: float, lateral: float, along: float
    ) -> np.ndarray:
        """Hover behind the object on the goal line, then descend next to the table."""
        cfg = self.config
        hover = np.append(behind, low + cfg.hover_height_m)
        tolerance = 2.5 * cfg.aligned_m if self._phase == "descend" else cfg.aligned_m
        # In place anywhere on the push line between the standoff and the object's clearance:
        # near the edge of the arm's reach the standoff itself may be out of reach.
        closest = cfg.push_standoff_m - cfg.push_clearance_m
        in_place = lateral < tolerance and -tolerance < along < closest
        if not in_place:
            self._phase = "approach"
            # rise before crossing over the object; stay low if already well behind it
            if grip[2] < low + cfg.cross_clearance * cfg.hover_height_m and (
                lateral > 0.03 or along > -0.01
            ):
                return self._move(grip, np.append(grip[:2], hover[2]), 0.0)
            return self._move(grip, hover, 0.0, cfg.approach_speed)
        self._phase = "descend"
        if grip[2] - low < 0.01:
            self._phase = "push"
        return self._move(grip, np.append(behind, low), 0.0)

    def _strike(
        self, direction: np.ndarray, distance: float, grip: np.ndarray, obj: np.ndarray
    ) -> np.ndarray:
        """Slide: accelerate through the puck toward the goal, speed by distance."""
        speed = min(1.0, self.config.slide_speed_gain * distance)
        if np.linalg.norm((grip - obj)[:2]) > 0.08:  # puck has left: hold still
            self._phase = "done"
            return np.zeros(4)
        return np.append(np.append(direction * speed, (obj[2] - grip[2]) * 10.0), 0.0)


def success_rate(task_name: str, episodes: int = 20, seed: int = 0) -> float:
    """Fraction of seeded episodes the scripted policy ends successfully."""
    from sim.envs import make_task_env

    env = make_task_env(task_name, disable_env_checker=True)
    policy = ScriptedFetchPolicy(task_name)
    successes = 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        policy.reset()
        truncated = terminated = False
        info: dict = {}
        while not (truncated or terminated):
            obs, _, terminated, truncated, info = env.step(policy(obs))
        successes += int(info.get("is_success", 0.0) > 0.5)
    env.close()
    return successes / episodes
