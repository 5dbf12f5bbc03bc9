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
_HISTORY_COUNTER = "randomization_history"  # [[from_env_steps, file], ...] (JSON)


class TrainingRandomization:
    """The run's randomization: its config (or None) and, with ADR, the ADR state.

    `history` lists which randomization file (or "" for none) the run used from which env
    step on: a run resumed with another `--randomization` (fine-tuning on randomized
    physics) has two entries, and its model card's reproduce command replays both.
    """

    def __init__(self, config: RandomizationConfig | None, path: str = ""):
        self.config = config
        self.history: list[tuple[int, str]] = [(0, path)]
        self.adr: AutomaticDomainRandomization | None = None
        if config is not None and config.adr is not None and config.adr_steps:
            parameters = [get_parameter(path) for path in config.adr_steps]
            self.adr = AutomaticDomainRandomization(parameters, config.adr, config.adr_steps)
        self._plans: list[EpisodePlan] = []

    @classmethod
    def from_path(cls, path: str) -> TrainingRandomization:
        """From the `randomization` option: a YAML path, or "" for none."""
        return cls(load_randomization(path) if path else None, path)

    def plan(self, num_envs: int, rng: np.random.Generator) -> Options:
        """Reset options for the next episode batch (None: the envs draw their own)."""
        if self.adr is None:
            self._plans = []
            return None
        self._plans = [self.adr.plan(rng) for _ in range(num_envs)]
        options: Options = [{"randomization": dict(plan.values)} for plan in self._plans]
        return options

    def report(self, final_success: np.ndarray, counted: np.ndarray | None = None) -> None:
        """Each pinned episode's performance (success at its last step) to ADR; with
        `counted`, only the episodes it marks (DAgger: those the student drove)."""
        if self.adr is None:
            return
        counted = np.ones(len(self._plans), bool) if counted is None else counted
        rows = zip(self._plans, final_success.tolist(), counted.tolist(), strict=True)
        for plan, success, count in rows:
            if plan.pinned is not None and count:
                self.adr.report_episode(plan, float(success))
        self._plans = []

    def log_epoch(self, run_dir: Path, env_steps: int) -> None:
        """Append ADR's ranges and entropy to `adr.csv` and redraw `adr.png`."""
        if self.adr is not None:
            log = AdrLog(run_dir)
            log.log(env_steps, self.adr)
            log.plot()

    def counters(self) -> dict[str, Any]:
        """Checkpoint counters: the history, and the ADR state, as JSON strings (counters
        are scalars)."""
        out: dict[str, Any] = {_HISTORY_COUNTER: json.dumps(self.history)}
        if self.adr is not None:
            out[_STATE_COUNTER] = json.dumps(self.adr.state_dict())
        return out

    def restore(self, counters: dict[str, Any], env_steps: int) -> None:
        """Take the history and ADR state back out of checkpoint counters (removing them).

        A checkpoint of another randomization (or of none: a run resumed to fine-tune with
        ADR) adds an entry to the history at `env_steps`, and ADR starts from nominal.
        """
        saved = counters.pop(_STATE_COUNTER, None)
        saved_history = json.loads(counters.pop(_HISTORY_COUNTER, '[[0, ""]]'))
        history = [(int(steps), str(p)) for steps, p in saved_history]
        path = self.history[-1][1]
        if history[-1][1] != path:
            self.history = [*history, (env_steps, path)]
            return
        self.history = history
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
