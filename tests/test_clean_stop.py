"""Issue 15: a node stopped by SIGINT or SIGTERM exits 0 and logs nothing alarming, also
while it is still starting (`exit_quietly_while_starting`).

rclpy's own signal handler shut the context down while the EventsExecutor could still
dispatch, and Python's raised KeyboardInterrupt inside whichever callback ran: the twin's
`_on_command` or a diagnostics timer then logged FATAL ("publishing on a closed context")
while the process exited 0. Here a twin_node's e-stop heartbeat is made slow (it runs most
of the time), so a signal lands inside a callback on nearly every stop.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_injection import CLOSED
from ros_processes import ROOT, SIM_YAML, Client, private_domain, ros_env
from sensor_msgs.msg import JointState

from ros_ws.node_runtime_env import STOP_SIGNALS, SUPERVISOR_PID_VARIABLE

HELPER = ROOT / "tests" / "fault_injection.py"
ALARMING = re.compile(r"FATAL|ERROR|Traceback|Exception|Segmentation fault")


def _slow_twin(domain: int, log: Path) -> subprocess.Popen:
    args = ["--ros-args", "-r", "__ns:=/fetch", "--params-file", str(SIM_YAML)]
    command = [sys.executable, str(HELPER), "twin_node", "TwinNode", "_publish_estop", "slow"]
    with open(log, "w") as out:
        return subprocess.Popen(
            [*command, *args, "-p", "wait_for_goal:=false"],
            env=ros_env(domain),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_callback_stops_the_node_quietly(tmp_path: Path, signum: int) -> None:
    domain = private_domain()
    log = tmp_path / "twin_node.log"
    client = Client(domain, name="stop_watcher")
    twin = _slow_twin(domain, log)
    try:
        states = client.collect(JointState, "/fetch/joint_states")
        client.wait_for(lambda: len(states) > 0, 60, "the twin to run")
        client.spin_for(random.uniform(0.5, 1.5))
        twin.send_signal(signum)
        code = twin.wait(timeout=10)
    finally:
        client.close()
        if twin.poll() is None:
            twin.kill()
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert CLOSED in text, "close() did not run"
    assert not ALARMING.search(text), text[-3000:]


STARTING = """
import sys, time
print("importing", flush=True)
time.sleep(float(sys.argv[1]))  # a node's imports, with the stop signals maybe blocked
from ros_ws.node_runtime_env import exit_quietly_while_starting
exit_quietly_while_starting()
for _ in range(3000):  # more imports: a signal is handled between bytecodes
    time.sleep(0.01)
"""


def _starting_node(supervised: bool, blocked: bool, wait_s: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != SUPERVISOR_PID_VARIABLE}
    if supervised:
        env[SUPERVISOR_PID_VARIABLE] = "1"

    def as_from_a_shell() -> None:
        # An ignored signal stays ignored across exec, and Python then never installs its
        # KeyboardInterrupt handler: a node is started from a shell or a supervisor with the
        # default dispositions, whatever an earlier test left in this pytest process.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        if blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    return subprocess.Popen(
        [sys.executable, "-c", STARTING, str(wait_s)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_from_a_shell,
    )


@pytest.mark.parametrize("blocked", [False, True])
def test_a_signal_while_starting_exits_0_without_a_traceback(blocked: bool) -> None:
    """Unblocked: the signal arrives after the hook; blocked (as a supervisor may start
    its nodes): it arrives before, during the "imports", and waits for the hook."""
    node = _starting_node(supervised=True, blocked=blocked, wait_s=1.0)
    assert node.stdout is not None and node.stdout.readline() == "importing\n"
    if not blocked:
        time.sleep(1.5)  # past the hook
    node.send_signal(signal.SIGINT)
    _, stderr = node.communicate(timeout=10)
    assert node.returncode == 0 and stderr == ""


def test_a_node_started_by_hand_keeps_pythons_ctrl_c() -> None:
    node = _starting_node(supervised=False, blocked=False, wait_s=0.0)
    assert node.stdout is not None and node.stdout.readline() == "importing\n"
    time.sleep(0.5)
    node.send_signal(signal.SIGINT)
    _, stderr = node.communicate(timeout=10)
    assert node.returncode != 0 and "KeyboardInterrupt" in stderr
