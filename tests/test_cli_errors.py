"""Every command-line mistake is one line naming the value given and the fix, and exit 2.

Run: `.venv/bin/python -m pytest -q tests/test_cli_errors.py`

Each case runs `twinbridge` (`sim.cli.main`, the console script's function) with one bad
input: a path, a task, robot, camera or policy name, a number, a config file or section, a
device. stderr must be exactly one line, `twinbridge <command>: error: ...`, naming the bad
value and the fix (a did-you-mean, the valid names, the flag to use), with no traceback.
Every case is refused before a ROS graph or a device starts, so the cases run in this
process (fast); the ones that depend on this process's terminal run the real command in a
subprocess with stdin from /dev/null.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("twinbridge")
TWINBRIDGE = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "sim.cli"]
ZOO = ROOT / "policies" / "zoo"

FILES = {
    "bad.yaml": "parameters: [1\n",
    "badfault.yaml": "faults:\n  device_to_host: {flip: 0.1}\n",
    "badparam.yaml": "twin_node:\n  ros__parameters:\n    tsak: fetch-push\n",
    "badsection.yaml": "twin_nod:\n  ros__parameters:\n    task: fetch-push\n",
    "badtop.yaml": "foo: 1\n",
    "badwild.yaml": "/**:\n  ros__parameters:\n    epsiodes: 3\n",
    "badrand.yaml": "parameters:\n  physics.fricton:scale: [0.5, 2]\n",
    "notbag.mcap": "not an mcap file\n",
    "cardless.onnx": "",
    "existing.mcap": "",
    "run/progress.csv": "epoch\n",
}

# name: (arguments with {tmp} for the temporary folder, the bad value the line must name,
# the fix it must contain)
CASES = {
    # top level
    "unknown command": (["simm"], "simm", "did you mean 'sim'?"),
    # rollout
    "unknown task": (
        ["rollout", "--task", "fetch-psh"],
        "fetch-psh",
        "did you mean 'fetch-push'?",
    ),
    "bad number": (["rollout", "--episodes", "-3"], "-3", ">= 1"),
    "zero episodes": (["rollout", "--episodes", "0"], "got 0", ">= 1"),
    "not a number": (["rollout", "--seed", "abc"], "abc", "--help"),
    "misspelled named policy": (
        ["rollout", "--policy", "randm"],
        "randm",
        "did you mean 'random'?",
    ),
    "misspelled zoo policy": (
        ["rollout", "--task", "fetch-push", "--policy", f"{ZOO}/fetch-psh.onnx"],
        "fetch-psh.onnx",
        f"did you mean '{ZOO}/fetch-push.onnx'?",
    ),
    "missing onnx": (
        ["rollout", "--policy", "{tmp}/missing.onnx"],
        "missing.onnx",
        "twinbridge train --export",
    ),
    "onnx without card": (
        ["rollout", "--policy", "{tmp}/cardless.onnx"],
        "cardless.onnx",
        "its model card cardless.json is missing",
    ),
    "ideal policy on the emulator": (
        [
            "sim",
            "--task",
            "fetch-push-v0",
            "--hardware",
            "emulator",
            "--policy",
            "{tmp}/ideal.onnx",
        ],
        "actuation.model 'ideal'",
        "--allow-ideal-actuation",
    ),
    "policy from before actuation on a robot": (
        [
            "robot",
            "--robot",
            "fetch",
            "--task",
            "fetch-push-v0",
            "--port",
            "{tmp}/notbag.mcap",
            "--policy",
            "{tmp}/older.onnx",
        ],
        "no actuation field (older cards: ideal)",
        "--allow-ideal-actuation",
    ),
    "unknown policy name": (
        ["rollout", "--policy", "scriptd"],
        "scriptd",
        "did you mean 'scripted'? valid policies",
    ),
    "policy of another task": (
        ["rollout", "--policy", str(ZOO / "fetch-reach.onnx")],
        "fetch-reach.onnx",
        "give a policy of fetch-push",
    ),
    "rollout video": (["rollout", "--video", "{tmp}/out.avi"], "out.avi", ".mp4"),
    "bad randomization yaml": (
        ["rollout", "--randomization", "{tmp}/bad.yaml"],
        "bad.yaml",
        "at line 2, column",
    ),
    "misspelled randomization": (
        ["rollout", "--randomization", "{tmp}/badrand.yaml"],
        "physics.fricton:scale",
        "did you mean 'physics.friction:scale'?",
    ),
    # sim
    "sim task": (["sim", "--task", "fetch-psh"], "fetch-psh", "did you mean 'fetch-push'?"),
    "sim episodes": (["sim", "--episodes", "0"], "got 0", ">= 1"),
    "sim video": (["sim", "--video", "{tmp}/sim.avi"], "sim.avi", ".mp4"),
    "sim onnx without card": (
        ["sim", "--policy", "{tmp}/cardless.onnx"],
        "cardless.onnx",
        "twinbridge train --export",
    ),
    "sim missing onnx": (["sim", "--policy", "{tmp}/none.onnx"], "none.onnx", "give a policy"),
    "sim policy of another task": (
        ["sim", "--policy", str(ZOO / "fetch-reach.onnx")],
        "fetch-reach.onnx",
        "give a policy of fetch-push",
    ),
    "sim no zoo policy": (["sim", "--task", "hand-egg"], "hand-egg", "--policy random"),
    "sim scripted hand": (
        ["sim", "--task", "hand-egg", "--policy", "scripted"],
        "hand-egg",
        "'random'",
    ),
    "sim camera": (["sim", "--cameras", "nope"], "nope", "valid fetch cameras: "),
    "sim camera typo": (
        ["sim", "--cameras", "video,head_camra"],
        "head_camra",
        "did you mean 'head_camera_rgb'?",
    ),
    "sim parameter key": (
        ["sim", "--config", "{tmp}/badparam.yaml"],
        "tsak",
        "did you mean 'task'?",
    ),
    "sim node section": (
        ["sim", "--config", "{tmp}/badsection.yaml"],
        "twin_nod",
        "did you mean 'twin_node'?",
    ),
    "sim top-level key": (["sim", "--config", "{tmp}/badtop.yaml"], "foo", "valid sections"),
    "sim wildcard key": (
        ["sim", "--config", "{tmp}/badwild.yaml"],
        "epsiodes",
        "did you mean 'episodes'?",
    ),
    "sim missing config": (["sim", "--config", "{tmp}/no.yaml"], "no.yaml", "give the path"),
    "sim emulator config": (
        ["sim", "--emulator-config", "{tmp}/badfault.yaml"],
        "--emulator-config",
        "needs --hardware emulator",
    ),
    "sim domain id": (["sim", "--domain-id", "999"], "999", "0..101"),
    # teleop
    "teleop episodes": (["teleop", "--episodes", "0"], "got 0", ">= 1"),
    "teleop fast": (["teleop", "--fast", "--device", "gamepad"], "--fast", "--device scripted"),
    "teleop scripted hand": (
        ["teleop", "--device", "scripted", "--task", "hand-egg"],
        "hand-egg",
        "--device keyboard",
    ),
    "teleop record": (
        ["teleop", "--device", "scripted", "--record", "{tmp}/demo.bag"],
        "demo.bag",
        ".mcap",
    ),
    "teleop speed": (["teleop", "--device", "scripted", "--max-speed", "-1"], "-1", "> 0"),
    "teleop camera": (
        ["teleop", "--device", "scripted", "--cameras", "head_camra"],
        "head_camra",
        "did you mean 'head_camera_rgb'?",
    ),
    "teleop node section": (
        ["teleop", "--device", "scripted", "--config", "{tmp}/badsection.yaml"],
        "twin_nod",
        "did you mean 'twin_node'?",
    ),
    "teleop no gamepad": (["teleop", "--device", "gamepad"], "gamepad", "--device keyboard"),
    "teleop device": (["teleop", "--device", "keybord"], "keybord", "did you mean 'keyboard'?"),
    # robot
    "robot port": (
        ["robot", "--robot", "fetch", "--port", "{tmp}/ttyNONE"],
        "ttyNONE",
        "/dev/serial/by-id",
    ),
    "robot name": (["robot", "--robot", "fetchh", "--port", "x"], "fetchh", "did you mean"),
    "robot episodes": (
        ["robot", "--robot", "fetch", "--port", "x", "--episodes", "-1"],
        "-1",
        ">=",
    ),
    "robot task": (
        ["robot", "--robot", "fetch", "--port", "/dev/null", "--task", "fetch-psh"],
        "fetch-psh",
        "did you mean 'fetch-push'?",
    ),
    "robot policy": (
        ["robot", "--robot", "fetch", "--port", "/dev/null", "--policy", "{tmp}/cardless.onnx"],
        "cardless.onnx",
        "twinbridge train --export",
    ),
    "robot node section": (
        ["robot", "--robot", "fetch", "--port", "/dev/null", "--config", "{tmp}/badsection.yaml"],
        "twin_nod",
        "did you mean 'twin_node'?",
    ),
    # record
    "record path": (["record", "--out", "{tmp}/bag.txt"], "bag.txt", ".mcap"),
    "record exists": (["record", "--out", "{tmp}/existing.mcap"], "existing.mcap", "--resume"),
    "record camera": (
        ["record", "--out", "{tmp}/new.mcap", "--cameras", "front"],
        "front",
        "valid fetch cameras",
    ),
    "record robot": (["record", "--robot", "fetchh", "--out", "x.mcap"], "fetchh", "did you mean"),
    # replay and bags
    "not a bag": (["replay", "{tmp}/notbag.mcap"], "notbag.mcap", "not an MCAP file"),
    "replay missing bag": (["replay", "{tmp}/gone.mcap"], "gone.mcap", "no such file"),
    "replay episode": (["replay", "{tmp}/one.mcap", "--episode", "7"], "7", "it has [0]"),
    "missing bag": (["bag", "info", "{tmp}/gone.mcap"], "gone.mcap", "no such file"),
    "bag action": (["bag", "inf", "{tmp}/gone.mcap"], "inf", "did you mean 'info'?"),
    "bag export": (
        ["bag", "export", "{tmp}/notbag.mcap", "--out", "{tmp}/ds"],
        "notbag.mcap",
        "not an MCAP",
    ),
    # emulate
    "unknown robot": (["emulate", "--robot", "fetchh"], "fetchh", "did you mean 'fetch'?"),
    "misspelled config key": (
        ["emulate", "--robot", "fetch", "--config", "{tmp}/badfault.yaml"],
        "flip",
        "valid keys",
    ),
    "missing config": (
        ["emulate", "--robot", "fetch", "--config", "{tmp}/no.yaml"],
        "no.yaml",
        "give the path",
    ),
    "emulate duration": (["emulate", "--robot", "fetch", "--duration-s", "0"], "got 0", "> 0"),
    # train
    "train task": (
        ["train", "--task", "fetch-psh", "--out", "{tmp}/r"],
        "fetch-psh",
        "did you mean",
    ),
    "train algo": (
        ["train", "--algo", "ppo", "--out", "{tmp}/r"],
        "ppo",
        "did you mean 'ppo-lstm'",
    ),
    "train config": (
        ["train", "--config", "{tmp}/none.yaml", "--out", "{tmp}/r"],
        "none.yaml",
        "give the path",
    ),
    "train export": (["train", "--export", "{tmp}/p.pt", "--out", "{tmp}/r"], "p.pt", ".onnx"),
    "train foreign flag": (
        ["train", "--algo", "ppo-lstm", "--batch-size", "8", "--out", "{tmp}/r"],
        "--batch-size",
        "twinbridge train --algo ppo-lstm --help",
    ),
    "train old run": (["train", "--out", "{tmp}/run"], "run", "--resume"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-errors")
    for name, text in FILES.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    _one_episode_bag(folder / "one.mcap")
    _ideal_policies(folder)
    return folder


def _ideal_policies(folder: Path) -> None:
    """A policy of the ideal-servo task, and the same with a card from before cards
    recorded the actuation."""
    from policy_fixtures import linear_model, task_dims, write_policy

    model = linear_model(*task_dims("fetch-push-v0"))
    unused = [i for i in model.graph.initializer if i.name == "zero"]  # (for its nan variant)
    model.graph.initializer.remove(unused[0])  # onnxruntime would warn on stderr
    for name in ("ideal", "older"):
        write_policy(folder / f"{name}.onnx", model, "fetch-push-v0")
    card = folder / "older.json"
    card.write_text(re.sub(r',\n  "actuation": \{[^}]*\}', "", card.read_text()))


def _one_episode_bag(path: Path) -> None:
    """A finished bag with episode 0 (markers only): enough to ask for another episode."""
    from hardware.recording.writer import BagWriter, BagWriterConfig

    writer = BagWriter(path, BagWriterConfig(fsync=False), robot="fetch", task="fetch-push")
    writer.start_episode(0, 1_000_000_000, seed=0)
    writer.end_episode(0, 2_000_000_000, success=True)
    writer.close()


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_input_is_one_line_naming_the_value_and_the_fix(
    case: str, bad_files: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arguments, bad_value, fix = CASES[case]
    argv = [a.format(tmp=bad_files) for a in arguments]
    monkeypatch.chdir(bad_files)  # anything a command creates (log folders) stays here
    monkeypatch.setenv("MUJOCO_GL", "egl")
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's errors
        code = e.code
    lines = capfd.readouterr().err.splitlines()
    assert code == 2, f"exit {code}: {lines}"
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"twinbridge {argv[0]}".replace(" simm", "")), lines[0]
    assert ": error: " in lines[0] and bad_value in lines[0], lines[0]
    assert fix in lines[0], lines[0]


def test_keyboard_teleop_without_a_terminal_is_refused_before_any_node(tmp_path: Path) -> None:
    """stdin from /dev/null: one line naming stdin and the other devices, and no node log."""
    done = subprocess.run(
        [*TWINBRIDGE, "teleop", "--device", "keyboard", "--log-dir", str(tmp_path / "logs")],
        cwd=tmp_path, env={**os.environ, "MUJOCO_GL": "egl"}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("twinbridge teleop: error: keyboard teleop needs a terminal")
    assert "(stdin) is not a tty" in lines[0] and "--device scripted" in lines[0]
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "logs").glob("*.log"))  # no node was started
