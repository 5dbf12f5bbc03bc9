"""A third-party client of the topic contract, written from the README's table alone: it
imports rclpy and standard message packages only, never the project's code.

It joins `twinbridge sim` (twin or `--hardware emulator`) at start-up and calls the robot's
services in hostile orders: reset from outside at random moments, partial and malformed
commands, an e-stop held for several episodes (with a reset and a release attempt while
latched), e-stop/enable storms. It records what the contract promises and returns the
findings; tests/test_contract_conformance.py asserts them.

Run (the acceptance runs of issue 15):
`python tests/contract_client.py --hardware twin --external-resets 100 --estop-episodes 10`
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from builtin_interfaces.msg import Duration as DurationMsg
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

ROOT = Path(__file__).resolve().parents[1]
NS = "/fetch"
RATE_HZ = 25.0  # the README: Fetch control rate
EPISODE_S = 4.0  # fetch-push: 100 control steps at 25 Hz
SEED = 100
# The README's QoS for joint_states / joint_command: reliable, keep last 5, deadline and
# liveliness lease of 3 periods (a publisher without them is refused by the robot).
CONTROL_QOS = QoSProfile(
    depth=5,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
    deadline=Duration(seconds=3 / RATE_HZ),
    liveliness=LivelinessPolicy.AUTOMATIC,
    liveliness_lease_duration=Duration(seconds=3 / RATE_HZ),
)
READER_QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)


@dataclass
class Findings:
    """What the client saw; every field is checked by the conformance test."""

    returncode: int = -1
    stdout: str = ""
    stderr: str = ""
    external_resets: list[tuple[bool, str]] = field(default_factory=list)
    longest_state_gap_s: float = 0.0  # up to the e-stop/enable storm
    storm_state_gap_s: float = 0.0  # during and after it
    storm_started_s: float = 0.0
    faults_released: int = 0  # safety faults (e.g. tracking error) the operator released
    longest_clock_gap_s: float = 0.0
    start_markers: list[dict[str, str]] = field(default_factory=list)
    episodes: list[dict[str, str]] = field(default_factory=list)
    answered_in_episode_0: int = -1  # of its 51 judged states, by the task node's report
    estop_applied_change_rad: float = math.nan
    estop_measured_change_rad: float = math.nan
    estop_reset_answer: tuple[bool, str] = (True, "")
    estop_release_answer: tuple[bool, str] = (True, "")
    episodes_started_while_latched: int = -1
    task_waiting_level: int = -1
    task_waiting_reason: str = ""
    robot_level_latched: int = -1
    rejected: dict[str, int] = field(default_factory=dict)
    storm_answers: list[bool] = field(default_factory=list)
    estop_state_after_storm: bool | None = None
    logs: dict[str, str] = field(default_factory=dict)


class ContractClient:
    """The client's ROS side: subscriptions on every contract output, the services."""

    def __init__(self, domain: int):
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("third_party_client", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.states: list[tuple[float, JointState]] = []
        self.clock: list[float] = []
        self.applied: list[tuple[float, JointTrajectory]] = []
        self.diagnostics: list[tuple[float, Any]] = []
        self.estop: list[tuple[float, bool]] = []
        node = self.node
        node.create_subscription(JointState, f"{NS}/joint_states", self._state, READER_QOS)
        node.create_subscription(Clock, "/clock", lambda m: self.clock.append(_now()), 10)
        node.create_subscription(
            JointTrajectory, f"{NS}/joint_command_applied",
            lambda m: self.applied.append((_now(), m)), READER_QOS,
        )  # fmt: skip
        node.create_subscription(
            DiagnosticArray, f"{NS}/diagnostics",
            lambda m: self.diagnostics.append((_now(), m)), READER_QOS,
        )  # fmt: skip
        node.create_subscription(
            Bool, f"{NS}/estop_state", lambda m: self.estop.append((_now(), m.data)), READER_QOS
        )
        self.command_pub = node.create_publisher(
            JointTrajectory, f"{NS}/joint_command", CONTROL_QOS
        )
        self.services = {
            "reset": node.create_client(Trigger, f"{NS}/reset"),
            "enable": node.create_client(Trigger, f"{NS}/enable"),
            "estop": node.create_client(SetBool, f"{NS}/estop"),
        }

    def _state(self, msg: JointState) -> None:
        self.states.append((_now(), msg))

    def spin_for(self, seconds: float) -> None:
        end = _now() + seconds
        while _now() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def wait_for(self, predicate, timeout_s: float, what: str) -> None:
        end = _now() + timeout_s
        while not predicate():
            if _now() > end:
                raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.01)

    def call(self, name: str, data: bool | None = None, timeout_s: float = 10.0) -> tuple:
        client = self.services[name]
        self.wait_for(client.service_is_ready, timeout_s, f"service {name}")
        request = Trigger.Request() if data is None else SetBool.Request(data=data)
        future = client.call_async(request)
        self.wait_for(future.done, timeout_s, f"answer of {name}")
        response = future.result()
        return bool(response.success), str(response.message)

    def statuses(self, name: str) -> list[tuple[float, int, dict[str, str]]]:
        """(receipt time, level, values) of every status `name` received."""
        found = []
        for t, msg in self.diagnostics:
            for status in msg.status:
                if status.name == name:
                    values = {kv.key: kv.value for kv in status.values}
                    found.append((t, status.level[0] if status.level else 0, values))
        return found

    def command_names(self) -> list[str]:
        """The command names, as the robot reports what its actuators were given."""
        self.wait_for(lambda: bool(self.applied), 30.0, "joint_command_applied")
        return list(self.applied[-1][1].joint_names)

    def send(self, names: list[str], positions: list[float]) -> None:
        """A one-point command answering the newest state (so only its content is wrong)."""
        msg = JointTrajectory()
        msg.header.stamp = self.states[-1][1].header.stamp
        msg.joint_names = names
        point = JointTrajectoryPoint(positions=positions, velocities=[0.0] * len(names))
        point.time_from_start = DurationMsg(sec=0, nanosec=int(1e9 / RATE_HZ))
        msg.points = [point]
        self.command_pub.publish(msg)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _now() -> float:
    return time.monotonic()


def readme_environment(domain: int) -> dict[str, str]:
    """The README's one-line environment for a third-party tool on this host, read from the
    README itself (its `export ROS_DOMAIN_ID=...` line), with this run's domain id."""
    line = next(
        line for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("export ROS_DOMAIN_ID=")
    )  # fmt: skip
    variables = dict(word.split("=", 1) for word in line.split()[1:])
    variables["ROS_DOMAIN_ID"] = str(domain)
    return {k: v.replace("$PWD", str(ROOT)) for k, v in variables.items()}


def _environment(domain: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ROS_LOCALHOST_ONLY"}
    env.update(readme_environment(domain))
    return env


def run(
    hardware: str, episodes: int, external_resets: int, estop_episodes: float, domain: int
) -> Findings:
    """Start the bringup and the client together; play the hostile script; collect."""
    os.environ.update(_environment(domain))
    log_dir = Path(tempfile.mkdtemp(prefix=f"contract-{hardware}-"))
    command = [
        sys.executable, "-m", "sim.cli", "sim", "--episodes", str(episodes), "--seed",
        str(SEED), "--domain-id", str(domain), "--log-dir", str(log_dir), "--json",
    ]  # fmt: skip
    if hardware == "emulator":
        command += ["--hardware", "emulator"]
    bringup = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    client = ContractClient(domain)  # joins at the same moment as the bringup
    findings = Findings()
    try:
        _script(client, findings, external_resets, estop_episodes, bringup)
        findings.stdout, findings.stderr = bringup.communicate(timeout=60 + 3 * episodes)
        findings.returncode = bringup.returncode
    finally:
        if bringup.poll() is None:
            bringup.kill()
            bringup.communicate()
        _collect(client, findings, log_dir)
        client.close()
    return findings


def episodes_for(external_resets: int) -> int:
    """Episodes that outlast the resets at random moments (0.25 s apart on average, plus
    the answer) and leave a few for the latched phase and the storm: the bringup must still
    be up when the script calls its services."""
    return 8 + math.ceil(external_resets * 0.35 / EPISODE_S)


def _script(client, findings, external_resets, estop_episodes, bringup) -> None:
    findings.external_resets.append(client.call("reset", timeout_s=30.0))  # at start-up
    names = client.command_names()
    client.wait_for(lambda: client.statuses("task_node/episode"), 60.0, "episode 0")
    rng = random.Random(0)
    for _ in range(external_resets):
        client.spin_for(rng.uniform(0.0, 0.5))
        findings.external_resets.append(client.call("reset"))
        _release_fault(client, findings)
    _latched_phase(client, findings, names, estop_episodes)
    findings.storm_started_s = _now()
    for _ in range(10):  # e-stop / enable storm, as fast as answers come
        findings.storm_answers += [client.call("estop", True)[0], client.call("enable")[0]]
    client.spin_for(0.5)
    findings.estop_state_after_storm = client.estop[-1][1] if client.estop else None
    while bringup.poll() is None:
        client.spin_for(0.5)
        _release_fault(client, findings)


def _release_fault(client: ContractClient, findings: Findings) -> bool:
    """As an operator: release a safety fault (a tracking error) the task node waits on, so
    the run goes on; every release is counted. Never an e-stop: that is the script's."""
    statuses = client.statuses("task_node")
    if not statuses or "fault:" not in statuses[-1][2].get("waiting", ""):
        return False
    findings.faults_released += 1
    client.call("enable")
    client.spin_for(1.0)
    return True


def _latched_phase(client, findings, names, estop_episodes) -> None:
    """Latch mid-episode, then hold for `estop_episodes` episodes' time while poking the
    robot. (Latching right after a reset would see that reset's scene published late.)"""
    started = len(client.statuses("task_node/episode_start"))

    def episode_started() -> bool:  # an operator releases a fault meanwhile
        _release_fault(client, findings)
        return len(client.statuses("task_node/episode_start")) > started

    client.wait_for(episode_started, 30.0, "an episode")
    client.spin_for(0.5)
    assert client.call("estop", True)[0]
    latched_at = _now()
    client.spin_for(0.3)
    applied_from = len(client.applied)
    states_from = len(client.states)
    findings.estop_reset_answer = client.call("reset")
    findings.estop_release_answer = client.call("estop", False)
    arm = list(client.states[-1][1].position)
    for bad_names, values in (
        (names[:-1], [0.0] * (len(names) - 1)),  # 7 of 8: partial
        (names[:2], [0.0, 0.0]),  # 2 of 8: partial
        ([*names[:-1], "no_such_joint"], [0.0] * len(names)),
        (names, [math.nan] * len(names)),
    ):
        client.send(bad_names, values)
        client.spin_for(0.1)  # a driver keeps the newest command per cycle: one at a time
    client.spin_for(estop_episodes * EPISODE_S)
    applied = [list(m.points[0].positions) for _, m in client.applied[applied_from:]]
    findings.estop_applied_change_rad = _largest_change(applied)
    measured = [list(m.position) for _, m in client.states[states_from:]]
    findings.estop_measured_change_rad = _largest_change([arm, *measured])
    findings.episodes_started_while_latched = sum(
        1 for t, _, _ in client.statuses("task_node/episode_start") if t > latched_at + 0.2
    )
    _, level, values = client.statuses("task_node")[-1]
    findings.task_waiting_level, findings.task_waiting_reason = level, values.get("waiting", "")
    robot = next(s for s in ("twin_node", "driver_node") if client.statuses(s))
    _, findings.robot_level_latched, counters = client.statuses(robot)[-1]
    findings.rejected = {k: int(v) for k, v in counters.items() if k.startswith("rejected_")}
    assert client.call("enable")[0]


def _largest_change(rows: list[list[float]]) -> float:
    if len(rows) < 2:
        return math.nan
    return max(abs(a - b) for row in rows for a, b in zip(row, rows[0], strict=True))


def _collect(client: ContractClient, findings: Findings, log_dir: Path) -> None:
    client.spin_for(0.3)
    storm = findings.storm_started_s or math.inf
    gaps = [(b - a, a) for a, b in itertools.pairwise([t for t, _ in client.states])]
    findings.longest_state_gap_s = max((g for g, t in gaps if t < storm), default=0.0)
    findings.storm_state_gap_s = max((g for g, t in gaps if t >= storm), default=0.0)
    ticks = [t for t in client.clock if t < storm]
    findings.longest_clock_gap_s = max((b - a for a, b in itertools.pairwise(ticks)), default=0.0)
    findings.start_markers = [v for _, _, v in client.statuses("task_node/episode_start")]
    findings.episodes = [v for _, _, v in client.statuses("task_node/episode")]
    reports = client.statuses("task_node/episode")
    if reports:
        findings.answered_in_episode_0 = int(reports[0][2].get("answered_states", -1))
    findings.logs = {p.name: p.read_text(errors="replace") for p in log_dir.glob("*.log")}


def _stamp(msg: JointTrajectory) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hardware", choices=("twin", "emulator"), default="twin")
    parser.add_argument(
        "--episodes", type=int, default=None,
        help="episodes of the bringup (default: enough to outlast the external resets)",
    )  # fmt: skip
    parser.add_argument("--external-resets", type=int, default=100)
    parser.add_argument("--estop-episodes", type=float, default=10.0)
    parser.add_argument("--domain-id", type=int, default=random.randint(1, 101))
    args = parser.parse_args()
    episodes = args.episodes or episodes_for(args.external_resets)
    findings = run(
        args.hardware, episodes, args.external_resets, args.estop_episodes, args.domain_id
    )
    report = {k: v for k, v in vars(findings).items() if k != "logs"}
    report["external_resets_refused"] = sum(1 for ok, _ in findings.external_resets if not ok)
    report["log_alarms"] = {
        name: [line for line in text.splitlines() if _alarming(line)]
        for name, text in findings.logs.items()
    }
    print(json.dumps(report, indent=1, default=str))


def _alarming(line: str) -> bool:
    return any(word in line for word in ("FATAL", "Traceback", "Segmentation"))


if __name__ == "__main__":
    main()
