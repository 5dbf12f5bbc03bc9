"""`twinbridge tasks` lists every registered task (issue 15, defect 9: it crashed on the
Fetch tasks, whose scene is set per instance from their config, not on the class)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sim.tasks import TASKS, task_class

ROOT = Path(__file__).resolve().parents[1]


def _twinbridge() -> list[str]:
    """The installed `twinbridge` command beside this interpreter, else its module."""
    script = Path(sys.executable).parent / "twinbridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sim.cli"]


def test_tasks_lists_every_registered_task_with_its_robot_and_scene() -> None:
    result = subprocess.run(
        [*_twinbridge(), "tasks"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert sorted(rows) == sorted(TASKS)
    for name, spec in TASKS.items():
        task = task_class(spec.task_class)(**spec.kwargs)
        assert spec.gym_id in rows[name]
        assert f" {task.robot}/{task.scene} " in rows[name], rows[name]
        assert rows[name].split()[-1] == str(spec.max_episode_steps)


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """`twinbridge tasks | head -2`: the pipe closes early; exit 0, nothing on stderr."""
    result = subprocess.run(
        f"{' '.join(_twinbridge())} tasks | head -2", shell=True, cwd=ROOT, capture_output=True,
        text=True, timeout=60, executable="/bin/bash",
    )  # fmt: skip
    assert result.stderr == "" and len(result.stdout.splitlines()) == 2, result.stderr
