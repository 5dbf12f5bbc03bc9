"""Link losses are reported, once each, and only real ones are counted (issue 15, defect 7).

    .venv/bin/pytest -q tests/test_link_loss_reporting.py

driver_node (a real process, the serial driver) against `twinbridge emulate` on a pty: every
unplug of the emulated device is one "link lost" log line with its cause and one "link
recovered" line, and more than `LINK_LOSSES_WARN_PER_MIN` of them in a minute make the
driver's diagnostics a WARN with the rate in its values. The default emulator, run with
scene resets as episodes do, loses no link in 20 s of real time and counts no disconnect
(a scene reset used to count as one, every episode). `LinkHealth` and driver_node's log
path are also checked alone, on a fake clock.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from emulated_device import EmulatedDevice, run_cycles
from ros_processes import Client, NodeProcess, private_domain

from hardware.driver_loop import DriverLoop, StatusLog
from hardware.interface import LINK_LOSSES_WARN_PER_MIN, LinkHealth
from hardware.safety import SafetyConfig
from hardware.serial_backend import SerialConfig, SerialRobot
from ros_ws.driver_node import DriverNode

DROPS = LINK_LOSSES_WARN_PER_MIN + 1  # one more than the rate that is still OK
QUIET_S = 20.0  # the default emulator, real time
EPISODE_S = 2.0  # a scene reset this often, as fetch-push episodes do
LOST = re.compile(r"\[ERROR\].*driver_node\]: link lost: (.+); sending no commands")
RECOVERED = re.compile(r"\[INFO\].*driver_node\]: link recovered after ([\d.]+) s \(it was")


# -- driver_node against the emulator, unplugged DROPS times --------------------------------
def _wait(predicate, timeout_s: float, what: str, client: Client | None = None) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, f"timed out after {timeout_s} s waiting for {what}"
        if client is not None:
            client.spin_for(0.05)
        else:
            time.sleep(0.05)


def _recoveries(node: NodeProcess) -> int:
    return len(RECOVERED.findall(node.log_text()))


def _driver_status(received: list) -> list[tuple[int, dict[str, str]]]:
    """(level, values) of every driver_node status received, oldest first."""
    return [
        (status.level[0], {kv.key: kv.value for kv in status.values})
        for _, msg in received
        for status in msg.status
        if status.name == "driver_node"
    ]


@pytest.fixture(scope="module")
def unplugged(tmp_path_factory: pytest.TempPathFactory):
    """driver_node's log and diagnostics, and the device's log, after DROPS unplugs."""
    tmp = tmp_path_factory.mktemp("link-loss")
    device = EmulatedDevice("fetch", tmp)
    domain = private_domain()
    node = NodeProcess(
        "driver_node", domain, tmp, port=device.port, estop_latch_path=str(tmp / "estop.json")
    )
    client = Client(domain)
    received = client.collect(DiagnosticArray, "/fetch/diagnostics")
    try:
        _wait(lambda: len(device.events("command")) > 20, 60.0, "driver commands", client)
        healthy = lambda: any(level == 0 for level, _ in _driver_status(received))  # noqa: E731
        _wait(healthy, 10.0, "an OK in driver_node's diagnostics", client)
        for drop in range(1, DROPS + 1):
            device.send_signal(signal.SIGUSR1)  # unplugged for UNPLUG_S (1 s)
            _wait(lambda n=drop: _recoveries(node) >= n, 10.0, f"recovery {drop}", client)
        flapping = lambda: any(level == 1 for level, _ in _driver_status(received))  # noqa: E731
        _wait(flapping, 5.0, "a WARN in driver_node's diagnostics", client)
    finally:
        client.close()
        code = node.stop()
        device.stop()
    assert code == 0, node.log_text()[-2000:]
    return node.log_text(), _driver_status(received), device


def test_each_unplug_is_one_loss_line_with_its_cause_and_one_recovery_line(unplugged):
    log, _, device = unplugged
    injected = [e for e in device.events("fault_injection") if e["kind"] == "disconnect"]
    assert len(injected) == DROPS
    causes = LOST.findall(log)
    assert len(causes) == DROPS, log
    assert all("failed" in cause or "no State" in cause for cause in causes), causes
    durations = [float(s) for s in RECOVERED.findall(log)]
    assert len(durations) == DROPS, log
    assert all(0.5 < s < 5.0 for s in durations), durations  # unplugged for 1 s each
    assert log.count("link lost") == DROPS, log  # nothing more per cycle or per retry
    assert "healthy: latches and errors cleared" not in log, log


def test_more_losses_than_the_rate_allows_is_a_warn_with_the_rate(unplugged):
    _, statuses, _ = unplugged
    levels = [level for level, _ in statuses]
    assert 2 in levels, levels  # ERROR while a link was down
    warn = [values for level, values in statuses if level == 1]
    assert warn, levels
    assert int(warn[-1]["link_losses_last_min"]) == DROPS, warn[-1]
    assert int(warn[-1]["link_lost"]) == int(warn[-1]["reconnects"]) == DROPS, warn[-1]
    assert int(warn[-1]["safety_count.disconnects"]) == DROPS, warn[-1]
    before = [level for level, values in statuses if values.get("link_lost", "0") == "0"]
    assert set(before) == {0}, before  # OK until the first loss


# -- the default emulator: no loss, no disconnect ------------------------------------------
def test_the_default_emulator_loses_no_link_and_scene_resets_are_no_disconnects(tmp_path: Path):
    """20 s of 100 Hz cycles, a scene reset every EPISODE_S: the host's own scheduling
    delays (this machine may be busy) are never a link loss, and a reset is not a
    disconnect."""
    device = EmulatedDevice("fetch", tmp_path)
    safety = SafetyConfig(estop_latch_path=str(tmp_path / "estop.json"))
    driver = SerialRobot("fetch", SerialConfig(device.port), safety)
    resets: list[bool] = []

    def episode(cycle: int) -> None:
        if cycle % round(EPISODE_S / 0.01) == 0 and cycle:
            resets.append(driver.scene_reset(len(resets)))

    try:
        driver.connect()
        _wait(lambda: driver.read() is not None, 5.0, "a State")
        driver.activate()
        run_cycles(driver, QUIET_S, on_cycle=episode)
        diagnostics = driver.diagnostics()
    finally:
        driver.close()
        device.stop()
    assert resets and all(resets), resets
    assert len(device.events("scene_reset")) == len(resets)
    lost = {k: v for k, v in diagnostics.items() if k in ("link_lost", "error", "reconnects")}
    assert diagnostics.get("link_lost", 0) == 0, lost
    assert diagnostics.get("safety_count.disconnects", 0) == 0, diagnostics
    assert len(device.events("hello")) == 1  # never a reconnect handshake
    assert [e["priority"] for e in device.events("scheduling")], "the emulator says its priority"
    assert diagnostics["link_losses_last_min"] == 0


# -- LinkHealth and driver_node's log path, on a fake clock ---------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.ns = 10**12

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


def test_link_health_reports_each_loss_and_recovery_once_and_rates_them():
    clock = FakeClock()
    link = LinkHealth(clock, warn_per_min=2)
    for _ in range(3):
        for _ in range(5):  # the same loss seen every cycle
            link.follow("link lost: no State from /dev/x for 90 ms (timeout 80 ms)")
            clock.advance(0.01)
        link.follow("")
        link.follow("")
        clock.advance(10.0)
    events = link.take_events()
    assert [e.lost for e in events] == [True, False] * 3
    assert events[0].text.startswith("link lost: no State from /dev/x for 90 ms")
    assert events[1].text == (
        "link recovered after 0.05 s (it was lost: no State from /dev/x for 90 ms (timeout 80 ms))"
    )
    assert "3 losses in the last minute" in events[4].text  # the loss that made it a WARN
    assert link.losses_last_minute() == 3 and link.flapping
    assert link.take_events() == []
    clock.advance(35.0)  # the first loss is now over a minute old, the second is not
    assert link.losses_last_minute() == 2 and not link.flapping


def test_a_new_reason_while_down_is_one_more_line_not_one_more_loss():
    link = LinkHealth(FakeClock())
    link.follow("link lost: read from /dev/x failed: EIO")
    link.follow("link lost, and the device that came back is wrong: model is 'other'")
    link.follow("link lost, and the device that came back is wrong: model is 'other'")
    link.follow("fault:tracking_error: joint j1 ...")  # not a link error: the link is back
    assert [e.lost for e in link.take_events()] == [True, True, False]
    assert link.losses_last_minute() == 1


class RecordingLogger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def error(self, text: str) -> None:
        self.lines.append(("error", text))

    def info(self, text: str) -> None:
        self.lines.append(("info", text))


def test_driver_node_logs_link_events_once_and_other_latches_as_before():
    """driver_node's log path (`DriverLoop._log_changes`) on a stub core: a loss and its
    recovery that both happened between two cycles are still two lines; a latch is still
    one line."""
    logger = RecordingLogger()
    outputs = SimpleNamespace(get_logger=lambda: logger)
    link = LinkHealth(FakeClock())
    core = SimpleNamespace(interface=SimpleNamespace(link=link), status="")
    loop = SimpleNamespace(outputs=outputs, status_log=StatusLog(), core=core)
    cycle = lambda: DriverLoop._log_changes(loop)  # noqa: E731
    link.follow("link lost: write to /dev/x failed: EIO")
    link.follow("")  # recovered within the same cycle
    cycle()
    core.status = link_error = "link lost: no State from /dev/x for 95 ms (timeout 80 ms)"
    link.follow(link_error)
    cycle()
    cycle()
    core.status = "fault:stuck_joint: joint j1"  # the link came back into a latch
    link.follow(core.status)
    cycle()
    core.status = ""
    cycle()
    levels = [level for level, _ in logger.lines]
    assert levels == ["error", "info", "error", "info", "error", "info"], logger.lines
    assert logger.lines[2][1].startswith(link_error)
    assert logger.lines[4] == ("error", "fault:stuck_joint: joint j1")
    assert logger.lines[5] == ("info", "healthy: latches and errors cleared")


def test_driver_node_warns_on_a_flapping_link():
    link = LinkHealth(FakeClock(), warn_per_min=1)
    core = SimpleNamespace(interface=SimpleNamespace(link=link), status="")
    node = SimpleNamespace(loop=SimpleNamespace(core=core))
    assert DriverNode.diagnostics_level(node) == 0
    for _ in range(2):
        link.follow("link lost: read from /dev/x failed: EIO")
        link.follow("")
    assert DriverNode.diagnostics_level(node) == 1
    core.status = "link lost: again"
    assert DriverNode.diagnostics_level(node) == 2
    assert DriverNode.diagnostics_level(SimpleNamespace(loop=None)) == 2  # not configured
