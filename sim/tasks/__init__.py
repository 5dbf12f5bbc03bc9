"""The task registry: CLI names (`fetch-push`), Gymnasium ids and the Task classes behind them.

The table is plain data (no physics engine, no Gymnasium), so the robot side may read a
task's episode length. `import sim.envs` registers every id with Gymnasium, so
`gymnasium.make("twinbridge/FetchPush-v1")` works; `sim.envs.make_task_env("fetch-push")` is
the same by CLI name. Task classes are imported lazily, by "module:Class" path.

A robot folder declares further tasks as data: each entry of its robot.yaml `tasks:` list
names a generic task `kind` (TASK_KINDS) and that task's parameters, and is registered here
like a built-in one (sim/robots/README.md), so adding a robot never edits this file.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.errors import ConfigError, UnknownNameError
from sim.robots import robots


@dataclass(frozen=True)
class TaskSpec:
    """One registered task: how users name it and how to build it."""

    name: str  # CLI name, e.g. "fetch-push"
    gym_id: str  # e.g. "twinbridge/FetchPush-v1"
    task_class: str  # "module:Class"
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)  # task constructor arguments
    control_rate_hz: float = 25.0  # env steps per second (the suite checks it against the env)
    robot: str = ""  # the registered robot it drives (the suite checks it against the task)
    actuation: str = "ideal"  # the env's default sim.actuation model: "robot" or "ideal"


_FETCH = "sim.tasks.fetch"
_HAND = "sim.tasks.hand"
_F, _H = "fetch", "shadow_hand"
# The Fetch tasks run with the robot's actuation (sim/actuation.py: the driver's rate
# limiter, delays and the device's ramp), on a horizon the real arm can meet (README,
# "Tasks": the scripted controller's ceiling). Their -v0 versions keep
# Gymnasium-Robotics' ideal servos and 50 steps, for parity with it.
# On reach an action moves the arm's previous target (a zero action holds it) and the
# observation adds the target's lead and the arm's joint state: 1.00 where Gymnasium-Robotics'
# meaning and layout reached 0.82. The object tasks keep those (their scripted demonstrations
# clone and learn best so: README, "Tasks").
_REACH_V1: dict[str, Any] = {"action_moves": "target", "observe_arm_joints": True}
_FETCH_TASKS: tuple[tuple[str, str, int, dict[str, Any]], ...] = (
    ("fetch-reach", "FetchReach", 50, _REACH_V1),
    ("fetch-push", "FetchPush", 100, {}),
    ("fetch-slide", "FetchSlide", 100, {}),
    ("fetch-pick-and-place", "FetchPickAndPlace", 100, {}),
)
_BUILT_IN = (
    *(
        TaskSpec(
            name,
            f"twinbridge/{cls}-v1",
            f"{_FETCH}:{cls}",
            steps,
            dict(kwargs),
            robot=_F,
            actuation="robot",
        )
        for name, cls, steps, kwargs in _FETCH_TASKS
    ),
    *(
        TaskSpec(f"{name}-v0", f"twinbridge/{cls}-v0", f"{_FETCH}:{cls}", 50, robot=_F)
        for name, cls, _, _ in _FETCH_TASKS
    ),
    TaskSpec("hand-reach", "twinbridge/HandReach-v0", f"{_HAND}:HandReach", 50, robot=_H),
    *(
        TaskSpec(
            f"hand-block-{variant}" if variant != "full" else "hand-block",
            "twinbridge/HandBlock-v0",
            f"{_HAND}:HandBlock",
            100,
            {"variant": variant},
            robot=_H,
        )
        for variant in ("rotate-z", "rotate-parallel", "rotate-xyz", "full")
    ),
    TaskSpec("hand-egg", "twinbridge/HandEgg-v0", f"{_HAND}:HandEgg", 100, robot=_H),
    TaskSpec("hand-pen", "twinbridge/HandPen-v0", f"{_HAND}:HandPen", 100, robot=_H),
)

# Generic tasks a robot folder may declare in its robot.yaml `tasks:` list, by `kind`.
TASK_KINDS = {"reach": "sim.tasks.reach:JointReach"}
_SPEC_KEYS = ("name", "gym_id", "max_episode_steps", "control_rate_hz")


def declared_task(robot: str, entry: Mapping[str, Any]) -> TaskSpec:
    """The spec of one robot.yaml `tasks:` entry: the spec's keys, `kind`, and the rest as
    the task's constructor arguments (the robot's name among them)."""
    where = f"sim/robots/{robot}/robot.yaml, tasks"
    if not isinstance(entry, Mapping) or entry.get("kind") not in TASK_KINDS:
        kind = entry.get("kind") if isinstance(entry, Mapping) else entry
        raise ConfigError(
            f"{where}: task kind {kind!r} is not one of {sorted(TASK_KINDS)}; "
            "see sim/robots/README.md"
        )
    params = {k: v for k, v in entry.items() if k not in (*_SPEC_KEYS, "kind")}
    try:
        return TaskSpec(
            task_class=TASK_KINDS[entry["kind"]],
            kwargs={**params, "robot": robot},
            robot=robot,
            **{k: entry[k] for k in _SPEC_KEYS if k in entry},
        )
    except TypeError as e:  # a missing name, gym_id or max_episode_steps
        raise ConfigError(f"{where}: {e}; see sim/robots/README.md") from e


def _table(specs: tuple[TaskSpec, ...]) -> dict[str, TaskSpec]:
    """Specs by name; a name declared twice is refused, naming both robots."""
    table: dict[str, TaskSpec] = {}
    for spec in specs:
        if spec.name in table:
            raise ConfigError(
                f"task {spec.name!r} is declared twice (robots {table[spec.name].robot!r} and "
                f"{spec.robot!r}); rename one in its robot.yaml"
            )
        table[spec.name] = spec
    return table


_DECLARED = tuple(declared_task(d.name, entry) for d in robots().values() for entry in d.tasks)
TASKS: dict[str, TaskSpec] = _table(_BUILT_IN + _DECLARED)

DEFAULT_TASK = "fetch-push"


def get_task_spec(name: str) -> TaskSpec:
    """The spec registered under CLI name `name`, or an error listing valid names."""
    if name not in TASKS:
        raise UnknownNameError("task", name, TASKS)
    return TASKS[name]


def task_class(path: str) -> type:
    """Import a Task class from its "module:Class" path."""
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)
