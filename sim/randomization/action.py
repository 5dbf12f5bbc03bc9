"""Action randomization: what happens between the policy's action and the actuators.

Per episode: a constant action bias, a command latency in whole control steps, a delay of
each actuator in physics substeps, and a backlash deadband; per step: action noise and a
sub-step jitter common to all actuators. Latency acts on the actuator command the task
computed when the policy acted (IK of the state it saw), as a command delayed in a real
link does, not on the action re-interpreted later. Within a control step, an actuator with
delay d keeps its previous command for d substeps and then switches, so the step is cut
into segments at the distinct delays (one `mj_step` call when nothing is delayed).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import numpy as np

from sim.randomization.parameters import Parameter
from sim.tasks.base import Task
from sim.twin import Twin

ACTION_PARAMETERS = (
    Parameter("action.noise:std", 0.0, 0.0, 1.0, 0.002,
              "Gaussian noise added to each normalized action component every step"),
    Parameter("action.bias:std", 0.0, 0.0, 0.5, 0.002,
              "std of a per-episode constant offset on each normalized action component"),
    Parameter("action.latency:steps", 0.0, 0.0, 10.0, 0.05,
              "whole control steps between an action and its command reaching the actuators",
              integer=True),
    Parameter("action.substep_jitter:substeps", 0.0, 0.0, 100.0, 0.2,
              "each step, all new commands wait U{0..v} physics substeps", integer=True),
    Parameter("action.actuator_delay:substeps", 0.0, 0.0, 100.0, 0.2,
              "each actuator's command waits U{0..v} substeps, drawn per episode", integer=True),
    Parameter("action.backlash:ctrl_fraction", 0.0, 0.0, 0.1, 0.0005,
              "deadband of each limited actuator, as a fraction of its control range"),
)  # fmt: skip


class ActionPipeline:
    """Turns an action into actuator commands over one control step, with the episode's
    action randomization; with every value at nominal it is exactly the plain env step."""

    parameters = ACTION_PARAMETERS

    def __init__(self, twin: Twin, task: Task):
        model = twin.model
        self._twin, self._task = twin, task
        self._frame_skip = task.frame_skip
        width = np.where(model.actuator_ctrllimited, np.ptp(model.actuator_ctrlrange, 1), 0.0)
        self._ctrl_width = width
        self._low, self._high = task.action_space.low, task.action_space.high
        nominal = {p.path: p.nominal for p in self.parameters}
        self.begin_episode(nominal, np.random.default_rng(0))

    def begin_episode(self, values: Mapping[str, float], rng: np.random.Generator) -> None:
        """Draw the episode's bias and delays; call after the task reset the twin."""
        size, nu = self._low.shape, self._twin.model.nu
        self._noise_std = values["action.noise:std"]
        bias_std = values["action.bias:std"]
        self._bias = rng.normal(0.0, bias_std, size) if bias_std else np.zeros(size)
        self._latency = round(values["action.latency:steps"])
        top = self._frame_skip - 1
        self._jitter = min(round(values["action.substep_jitter:substeps"]), top)
        delay = min(round(values["action.actuator_delay:substeps"]), top)
        self._delays = rng.integers(0, delay + 1, nu) if delay else None
        self._deadband = values["action.backlash:ctrl_fraction"] * self._ctrl_width
        self._has_backlash = bool(self._deadband.any())
        self._rng = rng
        self._active = self._twin.data.ctrl.copy()  # the command the actuators follow
        self._pending: deque[np.ndarray] = deque()
        self.nominal = not (
            self._noise_std or bias_std or self._latency or self._jitter
            or self._delays is not None or self._has_backlash
        )  # fmt: skip

    def step(self, action: np.ndarray) -> None:
        """Apply `action` (already checked and clipped) and advance one control step."""
        twin, task = self._twin, self._task
        if self.nominal:
            task.apply_action(twin, action)
            twin.step(nstep=self._frame_skip)
            return
        task.apply_action(twin, self._perturbed(action))
        self._pending.append(twin.data.ctrl.copy())
        command = self._pending.popleft() if len(self._pending) > self._latency else self._active
        if self._has_backlash:
            command = np.clip(self._active, command - self._deadband, command + self._deadband)
        self._advance(command)

    def _perturbed(self, action: np.ndarray) -> np.ndarray:
        if not (self._noise_std or self._bias.any()):
            return action
        noisy = action + self._bias + self._rng.normal(0.0, self._noise_std, action.shape)
        return np.clip(noisy, self._low, self._high)

    def _advance(self, command: np.ndarray) -> None:
        """Step the physics, each actuator switching to `command` after its delay.

        `command` comes from the task (finite, in range); `Twin.step` still refuses a
        non-finite control before stepping.
        """
        previous, twin, ctrl = self._active, self._twin, self._twin.data.ctrl
        self._active = command
        jitter = int(self._rng.integers(0, self._jitter + 1)) if self._jitter else 0
        if self._delays is None and jitter == 0:
            ctrl[:] = command
            twin.step(nstep=self._frame_skip)
            return
        delays = np.full(command.shape, jitter) if self._delays is None else self._delays + jitter
        delays = np.minimum(delays, self._frame_skip - 1)
        done = 0
        for start in [*np.unique(delays).tolist(), self._frame_skip]:
            if start > done:
                ctrl[:] = np.where(delays < start, command, previous)
                twin.step(nstep=start - done)
                done = start
