"""Test helper: `twinbridge emulate` as its own process, with its device log read back.

The emulator is a separate OS process on a pseudo-terminal, as a real device would be a
separate board on a serial line: the driver under test shares nothing with it but bytes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from hardware.emulator_cli import EmulatorStartError, spawn_emulator

ROOT = Path(__file__).resolve().parents[1]


class EmulatedDevice:
    """`python -m sim.cli emulate --robot R ...`; `port` is its stable symlink."""

    def __init__(
        self,
        robot: str,
        tmp: Path,
        seed: int = 0,
        config: Path | None = None,
        task: str | None = None,
    ):
        self.port = str(tmp / f"{robot}-device")
        self.log_path = tmp / f"{robot}-emulator.jsonl"
        self.stderr_path = tmp / f"{robot}-emulator.stderr"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 (closed in stop)
        try:
            self.process = spawn_emulator(
                robot, self.port, log=self.log_path, seed=seed, task=task, config=config,
                stderr=self._stderr, cwd=ROOT,
            )  # fmt: skip
        except EmulatorStartError as e:
            self._stderr.close()
            raise RuntimeError(f"{e}\n{self.stderr()}") from e

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The device log so far (JSON lines, flushed per line). The emulator may be
        writing a line as we read: only lines it has finished (newline-terminated) count."""
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text()
        finished = text[: text.rfind("\n") + 1]
        rows = [json.loads(line) for line in finished.splitlines() if line]
        return [r for r in rows if event is None or r.get("event") == event]

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 5.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.wait()
        self._stderr.close()
        return code

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def run_cycles(interface, seconds: float, period_s: float = 0.01, on_cycle=None) -> list:
    """Read + write every `period_s` in real time; returns the commands sent."""
    sent = []
    deadline = time.monotonic()
    end = deadline + seconds
    while time.monotonic() < end:
        interface.read()
        if on_cycle is not None:
            on_cycle(len(sent))
        sent.append(interface.write())
        deadline += period_s
        time.sleep(max(0.0, deadline - time.monotonic()))
    return sent
