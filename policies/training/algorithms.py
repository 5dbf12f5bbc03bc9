"""The training algorithms `twinbridge train --algo` knows: config class, trainer, graph.

A registry instead of if/elif in the CLI: adding an algorithm is one entry here. Trainers
and graph builders are named by "module:attribute" and imported only when used, so the
CLI's `--help` never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from policies.training.dagger.config import DaggerConfig
from policies.training.errors import TrainingConfigError
from policies.training.her.config import HerSacConfig
from policies.training.options import RESUMABLE
from policies.training.ppo import config as ppo_config
from sim.errors import did_you_mean


@dataclass(frozen=True)
class Algorithm:
    """One `--algo` value: its options dataclass, trainer class and policy-graph builder."""

    config_class: type
    resumable: tuple[str, ...]  # options a resumed run may change (they do not affect learning)
    trainer: str  # "module:Class" with __init__(config), resume(directory, **overrides)
    policy_graph: str  # "module:function" of (trainer, which) -> its deployable graph


_HER = Algorithm(
    HerSacConfig, RESUMABLE, "policies.training.her.trainer:HerSacTrainer",
    "policies.training.export.trained:mlp_policy_graph",
)  # fmt: skip
ALGORITHMS: dict[str, Algorithm] = {
    "her-sac": _HER,
    "her-td3": _HER,
    ppo_config.ALGO: Algorithm(
        ppo_config.PpoLstmConfig,
        RESUMABLE,
        "policies.training.ppo.trainer:PpoLstmTrainer",
        "policies.training.export.trained:lstm_policy_graph",
    ),
    "dagger": Algorithm(
        DaggerConfig,
        RESUMABLE,
        "policies.training.dagger.trainer:DaggerTrainer",
        "policies.training.export.trained:mlp_policy_graph",
    ),
}
DEFAULT_ALGO = "her-sac"


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm `name`, or an error listing the valid ones."""
    if name not in ALGORITHMS:
        raise TrainingConfigError(
            f"option algo {name!r}; {did_you_mean(name, ALGORITHMS)}valid: {', '.join(ALGORITHMS)}"
        )
    return ALGORITHMS[name]


def config_classes() -> list[type]:
    """Each algorithm's options dataclass once, in registry order."""
    return list(dict.fromkeys(a.config_class for a in ALGORITHMS.values()))


def algorithms_using(config_class: type) -> list[str]:
    """The `--algo` names whose options `config_class` holds."""
    return [name for name, a in ALGORITHMS.items() if a.config_class is config_class]


def load(path: str) -> Any:
    """The attribute a "module:attribute" path names."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
