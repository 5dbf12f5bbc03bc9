"""Domain randomization seen from a trainer: which values each episode gets, and ADR.

With fixed ranges only, the envs draw their own values (nothing to plan here). With ADR,
this object owns the one `AutomaticDomainRandomization` state of the run: before each
episode batch it plans every env's episode (values, and perhaps one pinned bound) with the
trainer's generator, the plans travel to the envs (in-process or worker processes) as
reset options, and after the batch each pinned episode's performance - success at its last
step - is reported back. ADR state is checkpointed with the run and logged every epoch
(`adr.csv`, `adr.png`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from policies.training.envs import Options
from sim.randomization.adr import AutomaticDomainRandomization, EpisodePlan
from sim.randomization.adr_log import AdrLog
from sim.randomization.config import RandomizationConfig, load_randomization
from sim.randomization.registry import get_parameter

_STATE_COUNTER = "randomization_state"  # checkpoint counter holding the ADR state (JSON)


class TrainingRandomization:
    """The run's randomization: its config (or None) and, with ADR, the ADR state."""

    def __init__(self, config: RandomizationConfig | None):
        self.config = config
        self.adr: AutomaticDomainRandomization | None = None
        if config is not None and config.adr is not None and config.adr_steps:
            parameters = [get_parameter(path) for path in config.adr_steps]
            self.adr = AutomaticDomainRandomization(parameters, config.adr, config.adr_steps)
        self._plans: list[EpisodePlan] = []

    @classmethod
    def from_path(cls, path: str) -> TrainingRandomization:
        """From the `randomization` option: a YAML path, or "" for none."""
        return cls(load_randomization(path) if path else None)

    def plan(self, num_envs: int, rng: np.random.Generator) -> Options:
        """Reset options for the next episode batch (None: the envs draw their own)."""
        if self.adr is None:
            self._plans = []
            return None
        self._plans = [self.adr.plan(rng) for _ in range(num_envs)]
        options: Options = [{"randomization": dict(plan.values)} for plan in self._plans]
        return options

    def report(self, final_success: np.ndarray) -> None:
        """Each pinned episode's performance (success at its last step) to ADR."""
        if self.adr is None:
            return
        for plan, success in zip(self._plans, final_success.tolist(), strict=True):
            if plan.pinned is not None:
                self.adr.report_episode(plan, float(success))
        self._plans = []

    def log_epoch(self, run_dir: Path, env_steps: int) -> None:
        """Append ADR's ranges and entropy to `adr.csv` and redraw `adr.png`."""
        if self.adr is not None:
            log = AdrLog(run_dir)
            log.log(env_steps, self.adr)
            log.plot()

    def counters(self) -> dict[str, Any]:
        """Checkpoint counters: the ADR state as one JSON string (counters are scalars)."""
        if self.adr is None:
            return {}
        return {_STATE_COUNTER: json.dumps(self.adr.state_dict())}

    def restore(self, counters: dict[str, Any]) -> None:
        """Take the ADR state back out of checkpoint counters (removing it from them).

        A checkpoint without one (a run that had no ADR, resumed to fine-tune with ADR)
        starts ADR from nominal.
        """
        saved = counters.pop(_STATE_COUNTER, None)
        if self.adr is not None and saved is not None:
            self.adr.load_state_dict(json.loads(saved))

    def summary(self) -> dict[str, Any]:
        """What a log row or model card says about the randomization."""
        if self.config is None:
            return {}
        out: dict[str, Any] = {"randomization": self.config.to_dict()}
        if self.adr is not None:
            out["adr_bounds"] = {p: list(b) for p, b in self.adr.bounds.items()}
            out["adr_entropy_nats_per_dim"] = self.adr.entropy()
        return out
