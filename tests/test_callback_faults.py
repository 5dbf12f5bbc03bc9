"""Issue 15: an exception in any callback of any node is one FATAL log line naming the
node, the callback and the exception, then `close()` and exit code 1; never a SIGSEGV.

Each case starts the real node as its own process (tests/fault_injection.py) with one
callback made to raise, and a plain rclpy peer that makes that callback run. Under rclpy's
EventsExecutor an exception escaping a response callback or a QoS-event callback used to
kill the process with SIGSEGV (task_node: exit -11).

R10: see hardware/RELIABILITY.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from emulated_device import EmulatedDevice
from fault_injection import CLOSED
from rclpy.qos import DurabilityPolicy, QoSProfile
from ros_processes import ROOT, SIM_YAML, Client, private_domain, ros_env
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from hardware.robots import robot_tables
from ros_ws.node_runtime import EXIT_FAILED
from ros_ws.qos import control_qos

HELPER = ROOT / "tests" / "fault_injection.py"
TIMEOUT_S = 60.0
CRASH_SIGNS = ("Segmentation fault", "Fatal Python error", "core dumped", "Aborted")


def _commands(client: Client) -> None:
    """Publish `joint_command` at 10 Hz (its content does not matter: the callback raises)."""
    publisher = client.node.create_publisher(
        JointTrajectory, "/fetch/joint_command", control_qos(25.0)
    )
    client.node.create_timer(0.1, lambda: publisher.publish(JointTrajectory()))


def _reset_call(client: Client) -> None:
    """Call the robot's `reset` once it is there."""
    reset = client.node.create_client(Trigger, "/fetch/reset")
    calls: list = []

    def call() -> None:
        if not calls and reset.service_is_ready():
            calls.append(reset.call_async(Trigger.Request()))

    client.node.create_timer(0.1, call)


def _transient_local_reader(client: Client) -> None:
    """A late reader asking `joint_states` for TRANSIENT_LOCAL: a QoS event at the twin."""
    qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    client.node.create_subscription(JointState, "/fetch/joint_states", lambda _: None, qos)


def _robot_with_reset(client: Client) -> None:
    """What task_node needs before its first reset: the robot's `reset`, a commander."""

    def answer(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = True, "seed=0 stamp_ns=0"
        return response

    client.node.create_service(Trigger, "/fetch/reset", answer)
    _commands(client)


def _graph_for_a_recorder(client: Client) -> None:
    """What a recorder waits for before it reads `diagnostics`: the robot's states, a
    commander and a task node (a publisher of diagnostics); the broken callback then gets
    the recorder's own diagnostics."""
    states = client.node.create_publisher(JointState, "/fetch/joint_states", 10)
    client.node.create_timer(0.1, lambda: states.publish(JointState(name=["j"], position=[0.0])))
    client.node.create_publisher(DiagnosticArray, "/fetch/diagnostics", 10)
    _commands(client)


def _nothing(client: Client) -> None:
    """The broken callback is a timer of the node, or its own diagnostics coming back."""


@dataclass
class Case:
    node: str
    node_class: str
    method: str
    trigger: Callable[[Client], None]
    where: str  # how the log line names the callback's registration
    params: dict[str, str] = field(default_factory=dict)


CASES = {
    "twin-subscription": Case(
        "twin_node", "TwinNode", "_on_command", _commands, "subscription joint_command"
    ),
    "twin-service": Case("twin_node", "TwinNode", "_on_reset", _reset_call, "service reset"),
    "twin-qos-event": Case(
        "twin_node",
        "TwinNode",
        "_incompatible",
        _transient_local_reader,
        "incompatible_qos event on joint_states",
    ),
    "policy-timer": Case("policy_node", "PolicyNode", "_act", _nothing, "timer 0.04 s"),
    "task-response": Case(
        "task_node", "TaskNode", "_on_reset_done", _robot_with_reset, "response of reset"
    ),
    "driver-subscription": Case(
        "driver_node", "DriverNode", "_on_command", _commands, "subscription joint_command"
    ),
    "teleop-timer": Case("teleop_node", "TeleopNode", "_tick", _nothing, "timer 0.04 s"),
    "recorder-subscription": Case(
        "recorder_node",
        "RecorderNode",
        "_on_diagnostics",
        _graph_for_a_recorder,
        "subscription diagnostics",
    ),
}


def _start(case: Case, domain: int, log: Path) -> subprocess.Popen:
    args = ["--ros-args", "-r", "__ns:=/fetch", "--params-file", str(SIM_YAML)]
    for key, value in case.params.items():
        args += ["-p", f"{key}:={value}"]
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, str(HELPER), case.node, case.node_class, case.method, "raise", *args],
            env=ros_env(domain),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def _run_until_exit(case: Case, domain: int, log: Path) -> int:
    """Start the node with its peer; spin the peer until the node exits."""
    client = Client(domain, name="fault_peer")
    try:
        case.trigger(client)
        process = _start(case, domain, log)
        end = time.monotonic() + TIMEOUT_S
        while process.poll() is None and time.monotonic() < end:
            client.spin_for(0.1)
        if process.poll() is None:
            process.kill()
        return process.wait()
    finally:
        client.close()


@pytest.mark.parametrize("name", list(CASES))
def test_an_exception_in_a_callback_stops_the_node_cleanly(tmp_path: Path, name: str) -> None:
    case, device = CASES[name], None
    if case.node == "driver_node":
        device = EmulatedDevice("fetch", tmp_path)
        params = {"port": device.port, "estop_latch_path": str(tmp_path / "estop.json")}
        case = replace(case, params=params)
    if case.node == "recorder_node":
        case = replace(case, params={"output_path": str(tmp_path / "faulty.mcap")})
    log = tmp_path / f"{case.node}.log"
    try:
        code = _run_until_exit(case, private_domain(), log)
        text = log.read_text(errors="replace")
        assert code == EXIT_FAILED, f"exit {code}\n{text[-3000:]}"
        raised = f"callback {case.node_class}.{case.method} raised InjectedFault"
        if case.method == "_incompatible":  # called from the event's lambda
            raised = "callback ContractNode.contract_publisher.<locals>.<lambda> raised"
        line = rf"\[FATAL\] \[[0-9.]+\] \[fetch\.{case.node}\]: {re.escape(case.where)}: "
        assert re.search(line + re.escape(raised), text), text[-3000:]
        assert f"InjectedFault: injected into {case.node_class}.{case.method}" in text
        assert CLOSED in text, "close() did not run"
        assert f"{case.node_class} stopped: {case.where}" in text, "no reason on stderr"
        assert not [sign for sign in CRASH_SIGNS if sign in text], text[-3000:]
        if device is not None:  # the driver's close(): torque off on every servo (R10)
            time.sleep(0.2)
            servos = {e["servo"] for e in device.events("torque_disable") if e["reason"] == "host"}
            assert servos == set(robot_tables("fetch").command_names)
    finally:
        if device is not None:
            device.stop()
