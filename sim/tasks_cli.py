"""`twinbridge tasks`: list registered tasks (CLI name, Gymnasium id, robot, scene).

Run: `twinbridge tasks`
"""

from __future__ import annotations

import argparse

from sim.tasks import TASKS, TaskSpec, task_class
from sim.tasks.base import Task


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    """Print one line per task."""
    print(f"{'task':28} {'gymnasium id':48} {'robot/scene':22} steps")
    for spec in TASKS.values():
        task = _task(spec)
        variant = f" variant={spec.kwargs['variant']}" if "variant" in spec.kwargs else ""
        print(
            f"{spec.name:28} {spec.gym_id + variant:48} {task.robot + '/' + task.scene:22} "
            f"{spec.max_episode_steps}"
        )
    return 0


def _task(spec: TaskSpec) -> Task:
    """The task as registered (cheap: no model is loaded). Read from an instance, not the
    class: a task may take its scene from its config (the Fetch tasks do)."""
    task: Task = task_class(spec.task_class)(**spec.kwargs)
    return task
