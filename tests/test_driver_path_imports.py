"""The safety-critical driver path runs with the physics engine, Gymnasium and torch blocked:
the serial driver, protocol and safety code, and driver_node over a real emulated device.

pyproject's import-linter contract checks the static imports; these tests run the code in a
subprocess whose importer refuses those packages, so a lazy import on a code path that only
runs (never just parses) is caught too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from emulated_device import EmulatedDevice
from ros_processes import ROOT, SIM_YAML, Client, private_domain, ros_env
from sensor_msgs.msg import JointState

BLOCKED = ("mujoco", "gymnasium", "gymnasium_robotics", "torch")
BLOCKER = f"""
import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked on the driver path")
sys.meta_path.insert(0, _Blocked())
"""
DRIVER_PATH = (
    "hardware.protocol", "hardware.safety", "hardware.plausibility", "hardware.robots",
    "hardware.interface", "hardware.serial_backend", "hardware.backends",
    "hardware.driver_settings", "hardware.driver_loop", "hardware.driver_core",
    "ros_ws.driver_node", "ros_ws.bridge_backend",
)  # fmt: skip


def _blocked_python(code: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip


def test_the_blocker_really_blocks() -> None:
    """Without this, the tests below would pass on a machine where the blocker did nothing."""
    result = _blocked_python("import mujoco")
    assert result.returncode != 0 and "mujoco is blocked" in result.stderr


def test_every_driver_path_module_imports_without_them() -> None:
    code = "".join(f"import {m}\n" for m in DRIVER_PATH)
    code += f"assert not {{n for n in {BLOCKED!r} if n in sys.modules}}\nprint('ok')\n"
    result = _blocked_python(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_serial_driver_runs_a_session_without_them(tmp_path: Path) -> None:
    """connect -> read -> activate -> write -> e-stop -> deactivate -> close, on the wire."""
    device = EmulatedDevice("fetch", tmp_path)
    try:
        result = _blocked_python(
            f"""
import time
import numpy as np
from hardware.serial_backend import SerialRobot
robot = SerialRobot("fetch", {device.port!r})
robot.connect()
measured = None
for _ in range(500):
    measured = robot.read() or measured
    if measured is not None:
        break
    time.sleep(0.002)
robot.activate()
targets = measured.servo_positions.copy()
robot.set_target(targets)
sent = []
for _ in range(50):
    robot.read()
    sent.append(robot.write())
    time.sleep(0.01)
robot.estop("test")
robot.deactivate()
robot.close()
moving = [c for c in sent if c.positions is not None]
assert moving and all(np.isfinite(c.positions).all() for c in moving)
print("session ok", len(targets))
"""
        )
    finally:
        device.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "session ok 8"


def test_driver_node_serves_the_contract_without_them(tmp_path: Path) -> None:
    """driver_node as a process over the emulated device publishes joint_states."""
    domain = private_domain()
    device = EmulatedDevice("fetch", tmp_path)
    latch = tmp_path / "estop.json"
    args = ["--ros-args", "-r", "__ns:=/fetch", "--params-file", str(SIM_YAML),
            "-p", f"port:={device.port}", "-p", f"estop_latch_path:={latch}"]  # fmt: skip
    code = f"import runpy; sys.argv = ['driver_node', *{args!r}]\n"
    code += "runpy.run_module('ros_ws.driver_node', run_name='__main__')\n"
    log = tmp_path / "driver_node.log"
    with open(log, "w") as out:
        node = subprocess.Popen(
            [sys.executable, "-c", BLOCKER + code], cwd=ROOT, env=ros_env(domain),
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = Client(domain)
    states: list[JointState] = []
    try:
        client.node.create_subscription(JointState, "/fetch/joint_states", states.append, 10)
        client.wait_for(lambda: len(states) >= 5, 60, "joint_states from driver_node")
    finally:
        client.close()
        node.send_signal(2)
        code_ = node.wait(timeout=30)
        device.stop()
    assert code_ == 0, log.read_text()[-3000:]
    assert "blocked on the driver path" not in log.read_text()
    assert len(states[-1].name) == 9
