"""The child processes of bench/control_loop.py: one ROS 2 endpoint per OS process.

Run: `.venv/bin/python bench/ros_procs.py ROLE CONFIG_JSON` (bench/control_loop.py starts
these with the environment of the transport under test; by hand only to debug one role).

Roles come in pairs; each pair runs in two processes that meet over DDS:

- `ping` / `echo`: JointState (10 joints) at `rate_hz` on `ping`, echoed at once on `pong`;
  `ping` times each round trip on its monotonic clock.
- `camera_pub` / `camera_sub`: rgb8 Images at `rate_hz` on `camera_<n>/image_raw`, the same
  frame every time with a fresh header stamp (ROS time = system time); `camera_sub` takes
  `time.time_ns()` on receipt, so latency needs no clock shared beyond the host's.
- `twin`: the plant side of the project's policy node (topic contract, namespace `/fetch`):
  joint_states + object_pose at `rate_hz`, goal once (latched), estop_state False at
  10 Hz; a joint_command is matched to its joint_states by header stamp.

`header.frame_id` carries a sequence number (bench-only topics) so the passive side knows
which messages are warm-up. The active side (`ping`, `camera_pub`, `twin`) runs warm-up and
measurement and then stops; the passive side (`echo`, `camera_sub`) stops when its stdin
says `stop` or closes. Each role prints one line `RESULT <json>` on stdout; CPU time comes
from /proc/<pid>/stat (utime + stime, all threads) over the measurement window.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ros_ws.qos from a checkout

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FETCH_JOINTS = (
    "shoulder_pan_joint", "shoulder_lift_joint", "upperarm_roll_joint", "elbow_flex_joint",
    "forearm_roll_joint", "wrist_flex_joint", "wrist_roll_joint", "r_gripper_finger_joint",
    "l_gripper_finger_joint",
)  # fmt: skip
SHM_PREFIXES = ("/dev/shm/fastdds_", "/dev/shm/fastrtps_")  # Fast DDS 3.x, 2.x
SHUTDOWN_GRACE_S = 5.0  # rclpy teardown that takes longer than this is cut short
PROC_READ_EVERY_S = 0.1  # passive roles move their CPU window's end at most this often
STAMP_GRID_NS = 1000  # twin stamps are whole microseconds (see TwinLoop)


ENDPOINTS: list[Endpoint] = []  # closed by main() once the result is out


class RoleError(RuntimeError):
    """The role could not measure (no peer discovered, no reply): reported, not raised on."""


# -- CPU and shared-memory probes ---------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid` (s), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuWindow:
    """CPU % of one process (100 = one core) between `start()` and `stop()`."""

    def __init__(self, pid: int):
        self.pid = pid
        self._t0 = self._c0 = self._t1 = self._c1 = 0.0

    def start(self) -> None:
        self._t0, self._c0 = time.monotonic(), cpu_seconds(self.pid)

    def stop(self, every_s: float = 0.0) -> None:
        """End (or move the end of) the window; `every_s` limits /proc reads per second."""
        now = time.monotonic()
        if now - self._t1 >= every_s:
            self._t1, self._c1 = now, cpu_seconds(self.pid)

    @property
    def started(self) -> bool:
        return self._t0 > 0

    @property
    def percent(self) -> float | None:
        wall = self._t1 - self._t0
        return 100.0 * (self._c1 - self._c0) / wall if self._t0 and wall > 0 else None

    @property
    def seconds(self) -> float:
        return max(0.0, self._t1 - self._t0)


def shm_mappings() -> dict[str, int]:
    """Fast DDS shared-memory files this process maps: data segments and port queues.

    A process that exchanges user data over SHM maps its peer's data segment as well as its
    own, so `segments >= 2` is evidence that data went over shared memory; 0 means none.
    """
    names = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1].removesuffix(" (deleted)")
        if path.startswith(SHM_PREFIXES):
            names.add(path.removeprefix("/dev/shm/"))
    ports = {n for n in names if "_port" in n}
    return {"segments": len(names - ports), "ports": len(ports)}


# -- one node, one executor, spun until done ----------------------------------------------
class Endpoint:
    """An rclpy node on the chosen executor, spun until `finish()` or a stdin `stop`."""

    def __init__(self, name: str, namespace: str, executor: str):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.experimental import EventsExecutor
        from rclpy.task import Future

        self.node = rclpy.create_node(name, namespace=namespace)
        kinds: dict[str, Callable[[], Any]] = {
            "single": SingleThreadedExecutor,
            "events": EventsExecutor,
        }
        if executor not in kinds:
            raise ValueError(f"executor must be one of {sorted(kinds)}, not {executor!r}")
        self.executor = kinds[executor]()
        self.executor.add_node(self.node)
        self.done: Future = Future()
        self.error: str | None = None
        self.pid = os.getpid()
        ENDPOINTS.append(self)

    def close(self) -> None:
        """Executor and node down: the participant removes its SHM segment from /dev/shm."""
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()

    def finish(self, error: str | None = None) -> None:
        if not self.done.done():
            self.error = error
            self.done.set_result(True)

    def stop_on_stdin(self) -> None:
        """Passive roles: finish when the parent writes `stop` or closes stdin."""

        def wait() -> None:
            for line in sys.stdin:
                if line.strip() == "stop":
                    break
            self.finish()

        threading.Thread(target=wait, daemon=True).start()

    def spin(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while not self.done.done():
            if time.monotonic() > end:
                self.finish(f"{self.node.get_name()}: no result after {timeout_s:.0f} s")
                break
            self.executor.spin_until_future_complete(self.done, timeout_sec=0.25)

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)


def seq_of(header: Any) -> int:
    try:
        return int(header.frame_id)
    except ValueError:
        return -1


class Phases:
    """Sequence numbers: [0, warmup) untimed, [warmup, warmup + measured) measured."""

    def __init__(self, rate_hz: float, warmup_s: float, duration_s: float):
        self.warmup = max(1, round(rate_hz * warmup_s))
        self.measured = max(1, round(rate_hz * duration_s))

    @property
    def end(self) -> int:
        return self.warmup + self.measured

    def is_measured(self, seq: int) -> bool:
        return self.warmup <= seq < self.end


def matched(publishers: list[Any], subscriptions: list[Any]) -> bool:
    return all(p.get_subscription_count() > 0 for p in publishers) and all(
        s.get_publisher_count() > 0 for s in subscriptions
    )


# -- ping / echo --------------------------------------------------------------------------
def joint_state_message(n_joints: int = 10) -> Any:
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.name = [f"joint_{i}" for i in range(n_joints)]
    msg.position = [0.1 * i for i in range(n_joints)]
    msg.velocity = [0.0] * n_joints
    msg.effort = [0.0] * n_joints
    return msg


def run_ping(config: dict[str, Any]) -> dict[str, Any]:
    """Publish on `ping` at `rate_hz`; round-trip times (ns) of the measured messages."""
    from sensor_msgs.msg import JointState

    from ros_ws.qos import control_qos

    rate = config["rate_hz"]
    ep = Endpoint("ping", "/bench", config["executor"])
    phases = Phases(rate, config["warmup_s"], config["duration_s"])
    qos = control_qos(rate)
    pub = ep.node.create_publisher(JointState, "ping", qos)
    msg = joint_state_message()
    sent: dict[int, int] = {}  # seq -> monotonic send time (ns)
    rtt: dict[int, int] = {}  # seq -> round trip (ns)
    cpu, seq, started = CpuWindow(ep.pid), 0, time.monotonic()

    def on_pong(reply: JointState) -> None:
        now, n = time.monotonic_ns(), seq_of(reply.header)
        if phases.is_measured(n) and n in sent:
            rtt[n] = now - sent[n]

    sub = ep.node.create_subscription(JointState, "pong", on_pong, qos)

    def tick() -> None:
        nonlocal seq
        if seq == 0 and not matched([pub], [sub]):
            if time.monotonic() - started > config["discovery_timeout_s"]:
                ep.finish("ping: the echo process was never discovered")
            return
        if seq == phases.warmup:
            cpu.start()
        if seq == phases.end:
            cpu.stop()
            ep.node.create_timer(config["drain_s"], lambda: ep.finish())
            timer.cancel()
            return
        msg.header.frame_id = str(seq)
        msg.header.stamp = ep.node.get_clock().now().to_msg()
        sent[seq] = time.monotonic_ns()
        pub.publish(msg)
        seq += 1

    timer = ep.node.create_timer(1.0 / rate, tick)
    ep.spin(config["timeout_s"])
    rtts = [rtt.get(n, -1) for n in range(phases.warmup, phases.end)]
    return {"sent": phases.measured, "rtt_ns": rtts, "cpu_pct": cpu.percent, **_tail(ep)}


def run_echo(config: dict[str, Any]) -> dict[str, Any]:
    """Echo every `ping` on `pong` at once; CPU over the measured messages."""
    from sensor_msgs.msg import JointState

    from ros_ws.qos import control_qos

    ep = Endpoint("echo", "/bench", config["executor"])
    phases = Phases(config["rate_hz"], config["warmup_s"], config["duration_s"])
    qos = control_qos(config["rate_hz"])
    pub = ep.node.create_publisher(JointState, "pong", qos)
    cpu, count = CpuWindow(ep.pid), 0

    def on_ping(msg: JointState) -> None:
        nonlocal count
        pub.publish(msg)
        n = seq_of(msg.header)
        if n == phases.warmup:
            cpu.start()
        if phases.is_measured(n):
            count += 1
            cpu.stop(every_s=PROC_READ_EVERY_S)

    ep.node.create_subscription(JointState, "ping", on_ping, qos)
    ep.stop_on_stdin()
    ep.spin(config["timeout_s"])
    return {"echoed": count, "cpu_pct": cpu.percent, **_tail(ep)}


# -- cameras ------------------------------------------------------------------------------
def image_message(stream: dict[str, Any]) -> Any:
    import array

    import numpy as np
    from sensor_msgs.msg import Image

    frame = np.load(stream["frame_file"])
    if frame.shape != (stream["height"], stream["width"], 3) or frame.dtype != np.uint8:
        raise RoleError(f"{stream['frame_file']}: {frame.shape} {frame.dtype} is not rgb8")
    msg = Image()
    msg.height, msg.width, msg.encoding = frame.shape[0], frame.shape[1], "rgb8"
    msg.is_bigendian, msg.step = 0, frame.shape[1] * 3
    msg.data = array.array("B", frame.tobytes())
    return msg


def run_camera_pub(config: dict[str, Any]) -> dict[str, Any]:
    """Publish every stream at `rate_hz` (small ones first), each with a fresh stamp."""
    from sensor_msgs.msg import Image

    from ros_ws.qos import image_qos

    ep = Endpoint("cameras", "/bench", config["executor"])
    phases = Phases(config["rate_hz"], config["warmup_s"], config["duration_s"])
    streams = config["streams"]
    msgs = [image_message(s) for s in streams]
    pubs = [
        ep.node.create_publisher(Image, f"{s['name']}/image_raw", image_qos()) for s in streams
    ]
    publish_ns: list[list[int]] = [[] for _ in streams]
    clock, cpu, seq, started = ep.node.get_clock(), CpuWindow(ep.pid), 0, time.monotonic()

    def tick() -> None:
        nonlocal seq
        if seq == 0 and not matched(pubs, []):
            if time.monotonic() - started > config["discovery_timeout_s"]:
                ep.finish("camera_pub: the subscriber process was never discovered")
            return
        if seq == phases.warmup:
            cpu.start()
        if seq == phases.end:
            cpu.stop()
            ep.node.create_timer(config["drain_s"], lambda: ep.finish())
            timer.cancel()
            return
        for i, (pub, msg) in enumerate(zip(pubs, msgs, strict=True)):
            msg.header.frame_id = str(seq)
            t0 = time.perf_counter_ns()
            msg.header.stamp = clock.now().to_msg()
            pub.publish(msg)
            if phases.is_measured(seq):
                publish_ns[i].append(time.perf_counter_ns() - t0)
        seq += 1

    timer = ep.node.create_timer(1.0 / config["rate_hz"], tick)
    ep.spin(config["timeout_s"])
    return {
        "sent": phases.measured,
        "publish_call_ns": publish_ns,
        "cpu_pct": cpu.percent,
        **_tail(ep),
    }


def run_camera_sub(config: dict[str, Any]) -> dict[str, Any]:
    """Receive every stream; latency = time.time_ns() on receipt - header stamp."""
    from sensor_msgs.msg import Image

    from ros_ws.qos import image_qos

    ep = Endpoint("camera_sub", "/bench", config["executor"])
    phases = Phases(config["rate_hz"], config["warmup_s"], config["duration_s"])
    latency: list[dict[int, int]] = [{} for _ in config["streams"]]
    cpu, wrong_size = CpuWindow(ep.pid), 0

    def receiver(i: int, size: int) -> Callable[[Image], None]:
        def on_image(msg: Image) -> None:
            nonlocal wrong_size
            now = time.time_ns()
            n = seq_of(msg.header)
            if not phases.is_measured(n):
                return
            if not cpu.started:
                cpu.start()
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            latency[i][n] = now - stamp
            wrong_size += len(msg.data) != size
            cpu.stop(every_s=PROC_READ_EVERY_S)

        return on_image

    for i, s in enumerate(config["streams"]):
        size = s["width"] * s["height"] * 3
        topic = f"{s['name']}/image_raw"
        ep.node.create_subscription(Image, topic, receiver(i, size), image_qos())
    ep.stop_on_stdin()
    ep.spin(config["timeout_s"])
    return {
        "latency_ns": [list(d.values()) for d in latency],
        "wrong_size": wrong_size,
        "cpu_pct": cpu.percent,
        **_tail(ep),
    }


# -- twin (plant side of the policy node) -------------------------------------------------
class TwinMessages:
    """joint_states, object_pose, goal and estop_state as the twin would publish them."""

    def __init__(self, scene: dict[str, Any]):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool

        self.state = JointState()
        self.state.name = list(FETCH_JOINTS)
        self.state.position = [float(scene["joint_positions"][n]) for n in FETCH_JOINTS]
        self.state.velocity = [0.0] * len(FETCH_JOINTS)
        self.object = _pose(PoseStamped(), scene["object_position"], scene["object_quat_wxyz"])
        self.goal = _pose(PoseStamped(), scene["goal_position"], (1.0, 0.0, 0.0, 0.0))
        self.estop = Bool(data=False)


def _pose(msg: Any, xyz: list[float], wxyz: tuple[float, ...] | list[float]) -> Any:
    msg.header.frame_id = "world"
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in xyz)
    q.w, q.x, q.y, q.z = (float(v) for v in wxyz)
    return msg


def run_twin(config: dict[str, Any]) -> dict[str, Any]:
    """Drive the policy node at `rate_hz`; command latency matched by header stamp."""
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool
    from trajectory_msgs.msg import JointTrajectory

    from ros_ws.qos import ESTOP_HEARTBEAT_HZ, control_qos, estop_qos, latched_qos

    rate = config["rate_hz"]
    ep = Endpoint("bench_twin", "/fetch", config["executor"])
    qos, m = control_qos(rate), TwinMessages(config["scene"])
    state_pub = ep.node.create_publisher(JointState, "joint_states", qos)
    object_pub = ep.node.create_publisher(PoseStamped, "object_pose", qos)
    estop_pub = ep.node.create_publisher(Bool, "estop_state", estop_qos())
    goal_pub = ep.node.create_publisher(PoseStamped, "goal", latched_qos())
    m.goal.header.stamp = ep.node.get_clock().now().to_msg()
    goal_pub.publish(m.goal)
    estop_pub.publish(m.estop)
    ep.node.create_timer(1.0 / ESTOP_HEARTBEAT_HZ, lambda: estop_pub.publish(m.estop))
    loop = TwinLoop(ep, config, m, state_pub, object_pub)
    ep.node.create_subscription(JointTrajectory, "joint_command", loop.on_command, qos)
    loop.timer = ep.node.create_timer(1.0 / rate, loop.tick)
    ep.spin(config["timeout_s"])
    return {**loop.result(), **_tail(ep)}


class TwinLoop:
    """Phases: wait for the first command, warm up, measure `duration_s`, drain.

    Stamps sit on a 1 us grid and commands match the nearest grid point: a node that carries
    the stamp through float seconds (about 0.2 us resolution at today's epoch) still
    matches; `inexact_stamps` counts the commands whose stamp was not copied exactly.
    """

    def __init__(self, ep: Endpoint, config: dict[str, Any], m: TwinMessages, *pubs: Any):
        self.ep, self.config, self.m, self.pubs = ep, config, m, pubs
        self.warmup_left = max(1, round(config["rate_hz"] * config["warmup_s"]))
        self.measured_n = max(1, round(config["rate_hz"] * config["duration_s"]))
        self.early: set[int] = set()  # stamps (ns) sent before measuring: matched, not timed
        self.sent: list[int] = []  # stamps of the measured joint_states, in order
        self.sent_set: set[int] = set()
        self.latency: dict[int, int] = {}  # stamp -> receipt - stamp (ns)
        self.commands = self.unmatched = self.inexact = 0
        self.first_command_s: float | None = None
        self.started = time.monotonic()
        self.cpu_twin, self.cpu_policy = CpuWindow(ep.pid), CpuWindow(config["policy_pid"])
        self.timer: Any = None

    def tick(self) -> None:
        if self.first_command_s is None and self._startup_timed_out():
            return
        measuring = self.first_command_s is not None and self.warmup_left == 0
        if measuring and len(self.sent) == self.measured_n:
            self._stop()
            return
        ns = self.ep.now_ns() // STAMP_GRID_NS * STAMP_GRID_NS
        for msg in (self.m.state, self.m.object):
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        if measuring:
            if not self.sent:
                self.cpu_twin.start()
                self.cpu_policy.start()
            self.sent.append(ns)
            self.sent_set.add(ns)
        else:
            self.early.add(ns)
            self.warmup_left -= self.first_command_s is not None
        for pub, msg in zip(self.pubs, (self.m.state, self.m.object), strict=True):
            pub.publish(msg)

    def on_command(self, msg: Any) -> None:
        now = time.time_ns()
        exact = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        stamp = round(exact / STAMP_GRID_NS) * STAMP_GRID_NS
        self.commands += 1
        self.inexact += exact != stamp
        if stamp in self.sent_set:
            self.latency[stamp] = now - stamp
        elif stamp not in self.early:
            self.unmatched += 1
        elif self.first_command_s is None:
            self.first_command_s = time.monotonic() - self.started

    def _startup_timed_out(self) -> bool:
        if time.monotonic() - self.started <= self.config["startup_timeout_s"]:
            return False
        self.ep.finish(
            f"twin: no joint_command carrying a joint_states stamp within "
            f"{self.config['startup_timeout_s']:.0f} s ({self.commands} commands, "
            f"{self.unmatched} with unknown stamps): is the policy node up, and does it "
            "copy the stamp of the joint_states it acted on?"
        )
        self.timer.cancel()
        return True

    def _stop(self) -> None:
        self.cpu_twin.stop()
        self.cpu_policy.stop()
        self.timer.cancel()
        self.ep.node.create_timer(self.config["drain_s"], lambda: self.ep.finish())

    def _close_states(self) -> int:
        """Measured states sent less than half a period after the previous one (a late
        timer tick then an on-time one): a node that never acts faster than its rate may
        skip them."""
        half_ns = 0.5e9 / self.config["rate_hz"]
        return sum(b - a < half_ns for a, b in zip(self.sent, self.sent[1:], strict=False))

    def result(self) -> dict[str, Any]:
        return {
            "sent": len(self.sent),
            "latency_ns": [self.latency.get(s, -1) for s in self.sent],
            "commands": self.commands,
            "unmatched_commands": self.unmatched,
            "inexact_stamps": self.inexact,
            "close_states": self._close_states(),
            "first_command_s": self.first_command_s,
            "cpu_pct": self.cpu_twin.percent,
            "policy_cpu_pct": self.cpu_policy.percent,
            "window_s": self.cpu_twin.seconds,
        }


# -- entry point --------------------------------------------------------------------------
def _tail(ep: Endpoint) -> dict[str, Any]:
    return {"error": ep.error, "shm": shm_mappings(), "pid": ep.pid}


ROLES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ping": run_ping,
    "echo": run_echo,
    "camera_pub": run_camera_pub,
    "camera_sub": run_camera_sub,
    "twin": run_twin,
}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ROLES:
        print(f"usage: ros_procs.py {{{','.join(ROLES)}}} CONFIG_JSON", file=sys.stderr)
        return 2
    import rclpy

    rclpy.init(args=None)
    try:
        result = ROLES[argv[1]](json.loads(argv[2]))
    except RoleError as e:
        result = {"error": str(e)}
    print("RESULT " + json.dumps(result), flush=True)
    # rclpy/Fast DDS teardown can stall on a loaded host; the result is already out.
    threading.Timer(SHUTDOWN_GRACE_S, lambda: os._exit(0)).start()
    for endpoint in ENDPOINTS:
        endpoint.close()
    rclpy.try_shutdown()
    os._exit(0)  # skip interpreter teardown (and the watchdog thread)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
