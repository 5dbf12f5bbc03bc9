"""Observation randomization: what the policy sees of the true state.

Noise correlated per episode (a constant offset, like a miscalibrated sensor) and
uncorrelated per step, a delay in whole control steps, and dropped updates (the previous
observation is seen again, as when a sensor message is late). Only the policy's
`observation` vector is changed: achieved and desired goals stay true, so rewards and
success are still measured on the real state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import numpy as np

from sim.randomization.parameters import Parameter

OBSERVATION_PARAMETERS = (
    Parameter("observation.noise:std", 0.0, 0.0, 1.0, 0.0005,
              "Gaussian noise on each observation component, fresh every step"),
    Parameter("observation.bias:std", 0.0, 0.0, 1.0, 0.0005,
              "std of a per-episode constant offset on each observation component"),
    Parameter("observation.delay:steps", 0.0, 0.0, 10.0, 0.05,
              "the policy sees the observation of this many control steps ago", integer=True),
    Parameter("observation.dropout:probability", 0.0, 0.0, 0.9, 0.005,
              "probability that a step's observation is not updated"),
)  # fmt: skip


class ObservationPipeline:
    """Filters each step's observation vector with the episode's randomization."""

    parameters = OBSERVATION_PARAMETERS

    def __init__(self) -> None:
        self.nominal = True

    def begin_episode(
        self, values: Mapping[str, float], rng: np.random.Generator, first: np.ndarray
    ) -> np.ndarray:
        """Start an episode at its first true observation; returns what the policy sees."""
        self._rng = rng
        self._noise_std = values["observation.noise:std"]
        bias_std = values["observation.bias:std"]
        self._bias = rng.normal(0.0, bias_std, first.shape) if bias_std else np.zeros(first.shape)
        self._delay = round(values["observation.delay:steps"])
        self._dropout = values["observation.dropout:probability"]
        self._history: deque[np.ndarray] = deque([first.copy()], maxlen=self._delay + 1)
        self.nominal = not (self._noise_std or bias_std or self._delay or self._dropout)
        self._seen = self._corrupted(first)
        return self._seen.copy()

    def observe(self, true: np.ndarray) -> np.ndarray:
        """What the policy sees this step, given the true observation."""
        if self.nominal:
            return true
        self._history.append(true.copy())
        if self._dropout and self._rng.random() < self._dropout:
            return self._seen.copy()
        self._seen = self._corrupted(self._history[0])
        return self._seen.copy()

    def _corrupted(self, vector: np.ndarray) -> np.ndarray:
        if not self._noise_std:
            return vector + self._bias
        return vector + self._bias + self._rng.normal(0.0, self._noise_std, vector.shape)
