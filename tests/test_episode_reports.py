"""Issue 15, defect 9: a bringup's episode count is the one it asked for, or it fails loudly.

The race: `diagnostics` is volatile, so DDS delivers a task node's report only to readers it
has discovered when it publishes. One fast episode can end before the task node discovers
the supervising bringup's observer; the reports went to no one, and the bringup printed
`"episodes": 0` with exit code 0. Now the task node waits for its report readers
(`report_readers`, set by the bringup) before the first episode, and the bringup refuses to
print a count other than the one it asked for.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_processes import ROOT, Client, NodeProcess, private_domain

from ros_ws import bringup
from ros_ws.bringup_plan import SIM_CONFIG, SIM_NODES, plan, teleop_nodes

# -- the bringup's side, without ROS: fake nodes and a fake observer ------------------------


class FakeProcess:
    """A node process that has exited with `code` (None: still running)."""

    def __init__(self, code: int | None) -> None:
        self.code = code

    def poll(self) -> int | None:
        return self.code


class FakeObserver:
    """What BringupObserver gives the supervisor: episode reports, `done`, loop figures."""

    reports: ClassVar[list[dict[str, str]]] = []
    done: ClassVar[dict[str, str] | None] = None
    stuck: ClassVar[list[tuple[str, float]]] = []  # what `silent` says

    def __init__(self, namespace: str) -> None:
        self.loop = {"latency_p50_ms": "1", "latency_p99_ms": "2", "latency_max_ms": "3"}

    def __enter__(self) -> FakeObserver:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def poll(self, timeout_s: float) -> list[dict[str, str]]:
        reports, type(self).reports = type(self).reports, []
        return reports

    def wait_for_done(self, timeout_s: float) -> None:
        pass

    def silent(self, nodes: list[str], limit_s: float) -> list[tuple[str, float]]:
        return [(name, age) for name, age in type(self).stuck if name in nodes]

    def wait_for_loop_figures(self, timeout_s: float) -> None:
        pass


@pytest.fixture
def fake_graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """supervise() on fake processes whose exit codes the test sets; records the launches."""
    import ros_ws.observer

    graph: dict[str, Any] = {"codes": {}, "launches": []}

    def start(launch: Any, env: Any, log_dir: Path, console: bool = False) -> FakeProcess:
        graph["launches"].append(launch)
        return FakeProcess(graph["codes"].get(launch.name))

    monkeypatch.setattr(ros_ws.observer, "BringupObserver", FakeObserver)
    monkeypatch.setattr(bringup, "start_node", start)
    monkeypatch.setattr(bringup, "stop_processes", lambda processes: None)
    monkeypatch.setattr(FakeObserver, "reports", [])
    monkeypatch.setattr(FakeObserver, "done", None)
    monkeypatch.setattr(FakeObserver, "stuck", [])
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield graph
    for signum, handler in handlers.items():  # supervise() installs its own
        signal.signal(signum, handler)


def _supervise(tmp_path: Path, episodes: int, nodes: tuple[str, ...] = SIM_NODES) -> int:
    task = "fetch-pick-and-place"  # one that teleop's scripted operator solves, too
    args = argparse.Namespace(
        command="sim", task=task, episodes=episodes, json=True, log_dir=tmp_path
    )
    with_task = ("twin_node", "task_node", "teleop_node", "recorder_node")
    overrides = {node: {"task": task} for node in nodes if node in with_task}
    return bringup.supervise(args, plan(nodes, SIM_CONFIG, overrides), {})


def _report(index: int, successes: str) -> dict[str, str]:
    return {
        "episode": str(index),
        "seed": str(index),
        "success": str(successes[index] == "1"),
        "final_distance": "0.01",
        "successes": successes,
    }


def test_a_finished_run_whose_reports_were_lost_fails_loudly(fake_graph, tmp_path, capsys):
    """The reported defect: task_node exited 0 after its episode, no report arrived."""
    fake_graph["codes"] = {"task_node": 0}
    assert _supervise(tmp_path, episodes=1) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no summary that could pass for a result
    assert len(err.strip().splitlines()) == 1, err
    assert "asked for 1 episodes" in err and "account for 0" in err
    assert str(tmp_path / "task_node.log") in err


def test_a_count_short_of_the_request_fails_even_with_a_done_report(fake_graph, tmp_path, capsys):
    fake_graph["codes"] = {"task_node": 0}
    FakeObserver.done = {"episodes": "2", "successes": "10"}
    assert _supervise(tmp_path, episodes=3) == 1
    assert "asked for 3 episodes" in capsys.readouterr().err


def test_a_complete_report_is_printed_and_exits_0(fake_graph, tmp_path, capsys):
    fake_graph["codes"] = {"task_node": 0}
    FakeObserver.done = {"episodes": "3", "successes": "101"}
    assert _supervise(tmp_path, episodes=3) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 3 and summary["success_rate"] == pytest.approx(2 / 3)


def test_an_operator_who_quits_early_ends_with_fewer_episodes(fake_graph, tmp_path, capsys):
    """teleop reuses supervise: teleop_node exiting 0 first is the operator's choice."""
    fake_graph["codes"] = {"teleop_node": 0}  # the task node is still running
    FakeObserver.reports = [_report(0, "1")]
    assert _supervise(tmp_path, episodes=10, nodes=teleop_nodes("twin")) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 1


def test_a_teleop_session_whose_task_node_finished_must_account_for_every_episode(
    fake_graph, tmp_path, capsys
):
    fake_graph["codes"] = {"task_node": 0, "teleop_node": 0}
    FakeObserver.reports = [_report(0, "1")]
    assert _supervise(tmp_path, episodes=2, nodes=teleop_nodes("twin")) == 1
    assert "asked for 2 episodes" in capsys.readouterr().err


@pytest.mark.parametrize(("record", "readers"), [(False, 1), (True, 2)])
def test_the_task_node_is_told_to_wait_for_the_observer_and_a_recorder(
    fake_graph, tmp_path, record, readers
):
    fake_graph["codes"] = {"task_node": 0}
    FakeObserver.done = {"episodes": "1", "successes": "1"}
    nodes = teleop_nodes("twin", record=record)
    assert _supervise(tmp_path, episodes=1, nodes=nodes) == 0
    task = next(launch for launch in fake_graph["launches"] if launch.name == "task_node")
    assert task.parameters()["report_readers"] == readers
    assert all("report_readers" not in launch.overrides for launch in fake_graph["launches"]
               if launch.name != "task_node")  # fmt: skip


# -- the task node's side, on real DDS -------------------------------------------------------


def _statuses(received: list, name: str) -> list[dict[str, str]]:
    return [
        {kv.key: kv.value for kv in status.values}
        for _, msg in received
        for status in msg.status
        if status.name == name
    ]


def test_the_task_node_reports_to_a_reader_discovered_late(tmp_path: Path) -> None:
    """The cause, made deterministic: the bringup's reader joins seconds after the graph is
    up. Without `report_readers` the single fast episode ends, unseen, before it joins (the
    task node exits 0 with its reports delivered to no one); with it, the task node waits."""
    domain = private_domain()
    nodes = [
        NodeProcess("twin_node", domain, tmp_path, task="fetch-reach", real_time=False),
        NodeProcess("policy_node", domain, tmp_path, policy_path="policies/zoo/fetch-reach.onnx"),
        NodeProcess(
            "task_node",
            domain,
            tmp_path,
            task="fetch-reach",
            episodes=1,
            report_readers=1,
            reset_timeout_s=60.0,
        ),
    ]
    client = None
    try:
        # Long enough for the graph to come up and a fast episode to end (about 1 s after
        # the policy is up): the task node must still be waiting, not done.
        deadline = time.monotonic() + 60
        while "at 25.0 Hz" not in nodes[1].log_text() and time.monotonic() < deadline:
            assert all(n.process.poll() is None for n in nodes), nodes[2].log_text()
            time.sleep(0.2)
        time.sleep(4.0)
        assert nodes[2].process.poll() is None, nodes[2].log_text()
        assert "episode 0" not in nodes[2].log_text()
        client = Client(domain, "late_observer")
        received = client.collect(DiagnosticArray, "/fetch/diagnostics")
        client.wait_for(lambda: bool(_statuses(received, "task_node/done")), 60, "task_node/done")
        assert _statuses(received, "task_node/done")[0]["episodes"] == "1"
        assert [r["episode"] for r in _statuses(received, "task_node/episode")] == ["0"]
        assert nodes[2].process.wait(timeout=10) == 0
    finally:
        if client is not None:
            client.close()
        for node in nodes:
            node.stop()


def test_one_fast_episode_is_counted_end_to_end(tmp_path: Path) -> None:
    """The user's command: `twinbridge sim --task fetch-reach --fast --episodes 1 --json`."""
    command = [
        sys.executable, "-m", "sim.cli", "sim", "--task", "fetch-reach", "--fast",
        "--episodes", "1", "--json", "--domain-id", str(private_domain()),
        "--log-dir", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["episodes"] == 1


def test_a_node_that_stops_reporting_stops_the_run_with_its_name(fake_graph, tmp_path, capsys):
    """Issue 15 defect 2: a twin that froze kept `twinbridge sim` waiting for ever."""
    FakeObserver.stuck = [("twin_node", 12.0)]
    assert _supervise(tmp_path, episodes=1) == 1
    err = capsys.readouterr().err
    assert "twin_node has published no diagnostics for 12.0 s" in err


def test_the_observer_names_only_running_nodes_it_heard_and_lost(monkeypatch) -> None:
    from ros_ws.observer import BringupObserver

    observer = BringupObserver.__new__(BringupObserver)  # its bookkeeping, without DDS
    now = 1000.0
    monkeypatch.setattr("ros_ws.observer.time.monotonic", lambda: now)
    observer.last_heard = {"twin_node": now - 11.0, "policy_node": now - 0.4}
    assert observer.silent(["twin_node", "policy_node", "task_node"], 10.0) == [
        ("twin_node", 11.0)
    ]
