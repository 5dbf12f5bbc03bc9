"""Every command-line mistake is one line naming the value given, and exit code 2.

Run: `.venv/bin/python -m pytest -q tests/test_cli_errors.py`

Each case runs the real `twinbridge` command in a subprocess with one bad input (a path,
a task or robot name, a number, a config file) and checks stderr: exactly one line,
`twinbridge <command>: error: ...`, that names the bad value. Every case is refused before
a ROS graph or a device starts, so the whole file takes seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("twinbridge")
TWINBRIDGE = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "sim.cli"]
TIMEOUT_S = 60

FILES = {
    "bad.yaml": "parameters: [1\n",
    "badfault.yaml": "faults:\n  device_to_host: {flip: 0.1}\n",
    "badparam.yaml": "twin_node:\n  ros__parameters:\n    tsak: fetch-push\n",
    "notbag.mcap": "not an mcap file\n",
}

# (arguments with {tmp} for the temporary folder, the bad value the line must name)
CASES = {
    "unknown task": (["rollout", "--task", "fetch-psh"], "fetch-psh"),
    "bad number": (["rollout", "--episodes", "-3"], "-3"),
    "not a number": (["rollout", "--seed", "abc"], "abc"),
    "missing onnx": (["rollout", "--policy", "{tmp}/missing.onnx"], "missing.onnx"),
    "bad randomization yaml": (["rollout", "--randomization", "{tmp}/bad.yaml"], "bad.yaml"),
    "unknown robot": (["emulate", "--robot", "fetchh"], "fetchh"),
    "misspelled config key": (
        ["emulate", "--robot", "fetch", "--config", "{tmp}/badfault.yaml"],
        "flip",
    ),
    "missing config": (["emulate", "--robot", "fetch", "--config", "{tmp}/no.yaml"], "no.yaml"),
    "not a bag": (["replay", "{tmp}/notbag.mcap"], "notbag.mcap"),
    "missing bag": (["bag", "info", "{tmp}/gone.mcap"], "gone.mcap"),
    "train task": (["train", "--task", "fetch-psh", "--out", "{tmp}/run"], "fetch-psh"),
    "train config": (["train", "--config", "{tmp}/none.yaml", "--out", "{tmp}/run"], "none.yaml"),
    "sim parameter key": (["sim", "--config", "{tmp}/badparam.yaml"], "tsak"),
    "robot port": (["robot", "--robot", "fetch", "--port", "{tmp}/ttyNONE"], "ttyNONE"),
    "record path": (["record", "--out", "{tmp}/bag.txt"], "bag.txt"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-errors")
    for name, text in FILES.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_input_is_one_line_naming_the_value_and_exit_2(case: str, bad_files: Path):
    arguments, bad_value = CASES[case]
    argv = [a.format(tmp=bad_files) for a in arguments]
    env = {**os.environ, "MUJOCO_GL": "egl"}
    done = subprocess.run(
        [*TWINBRIDGE, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    lines = done.stderr.splitlines()
    assert done.returncode == 2, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f"twinbridge {argv[0]}"), lines[0]
    assert ": error: " in lines[0] and bad_value in lines[0], lines[0]
