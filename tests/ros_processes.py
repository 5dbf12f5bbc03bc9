"""Test helpers: node processes on a private ROS domain, and a plain rclpy client.

The client is written from the README's topic contract (names, types, QoS), not from the
nodes' code: it imports only rclpy and message packages.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

ROOT = Path(__file__).resolve().parents[1]
SIM_YAML = ROOT / "ros_ws" / "config" / "sim.yaml"


def private_domain() -> int:
    """A random domain id, so concurrent test runs on one host never meet."""
    return random.SystemRandom().randint(1, 101)


def ros_env(domain: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ROS_LOCALHOST_ONLY"}
    env.update(
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
    )
    return env


class NodeProcess:
    """One node started as `python -m ros_ws.<node>` in `namespace` (default /fetch)."""

    def __init__(
        self, node: str, domain: int, log_dir: Path, namespace: str = "fetch", **params: Any
    ):
        self.node, self.log = node, log_dir / f"{namespace}-{node}.log"
        args = ["--ros-args", "-r", f"__ns:=/{namespace}", "--params-file", str(SIM_YAML)]
        for key, value in params.items():
            args += ["-p", f"{key}:={_yaml(value)}"]
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"ros_ws.{node}", *args],
                env=ros_env(domain),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


class Client:
    """A plain rclpy node in its own context, joined to `domain`."""

    def __init__(self, domain: int, name: str = "contract_client"):
        os.environ.update(ros_env(domain))
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self._service_clients: dict[str, Any] = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.02, max(0.0, end - time.monotonic())))

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        end = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.02)

    def collect(self, msg_type: type, topic: str, qos: QoSProfile | None = None) -> list:
        """Every message on `topic`, with its receipt time, appended as (time, msg)."""
        received: list = []
        self.node.create_subscription(
            msg_type, topic, lambda m: received.append((time.monotonic(), m)), qos or QOS
        )
        return received

    def call(self, srv_type: type, name: str, request: Any, timeout_s: float = 10.0) -> Any:
        """One request; a service's client is made once. Ready only says the client found
        the server: the server may not have found the client's reply reader yet, and Fast
        DDS then drops the reply ("failed to send response"), so a new client waits a
        little more before its first request."""
        client = self._service_clients.get(name)
        if client is None:
            client = self.node.create_client(srv_type, name)
            self.wait_for(client.service_is_ready, timeout_s, f"service {name}")
            self.spin_for(0.5)
            self._service_clients[name] = client
        future = client.call_async(request)
        self.wait_for(future.done, timeout_s, f"answer of {name}")
        return future.result()


QOS = QoSProfile(depth=50)
LATCHED = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def goal_msg(xyz: tuple[float, float, float]) -> Any:
    """A `goal` message (frame world, identity orientation) at `xyz`."""
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header.frame_id = "world"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = xyz
    msg.pose.orientation.w = 1.0
    return msg


def newest_diagnostics(received: list, name: str) -> dict[str, str]:
    """The newest values of status `name` among received (time, DiagnosticArray) pairs."""
    for _, msg in reversed(received):
        for status in msg.status:
            if status.name == name:
                return {kv.key: kv.value for kv in status.values}
    return {}
