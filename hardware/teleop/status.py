"""The operator's terminal: the key legend once, then one status line redrawn in place.

Run: `python -c "from hardware.teleop.status import status_text as s; print(s({'episode': '0', 'episodes': '2', 'running': 'True', 'time_left_s': '4.2'}, 'gripper open', False, 'left'))"`

A person driving the robot needs to see, without scrolling, which episode runs and how long
it has left (the task node's clock, paused while the e-stop is latched), the gripper's
state, whether the e-stop is latched, and which key was read last. The line is rewritten
with a carriage return and "erase to end of line", so it never scrolls; a message (an
episode's verdict) is printed above it on a line of its own.
"""  # noqa: E501

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

ERASE_LINE = "\x1b[K"


def episode_text(episode: Mapping[str, str] | None) -> str:
    """`episode k/N, 4.2 s left` from task_node's `episode_status` values."""
    if not episode:
        return "waiting for the task node"
    total = episode.get("episodes", "0")
    index = int(episode.get("episode", "0")) + 1
    of = f"{index}/{total}" if total not in ("", "0") else f"{index}"
    if episode.get("running") != "True":
        return f"episode {of} starting"
    left = float(episode.get("time_left_s", "0"))
    paused = " PAUSED" if episode.get("paused") == "True" else ""
    return f"episode {of}, {left:4.1f} s left{paused}"


def status_text(
    episode: Mapping[str, str] | None, state: str, estop: bool | None, last_input: str
) -> str:
    """The whole status line: episode, time left, device state, e-stop, last input."""
    latch = {None: "e-stop ?", False: "e-stop clear", True: "e-stop LATCHED (u releases)"}
    parts = [episode_text(episode), state, latch[estop], f"last: {last_input or '-'}"]
    return " | ".join(p for p in parts if p)


class StatusLine:
    """One line of a terminal, redrawn only when its text changes."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._shown = ""

    def show(self, text: str) -> None:
        text = text[: self._width() - 1]
        if text != self._shown:
            self._write(f"\r{text}{ERASE_LINE}")
            self._shown = text

    def message(self, line: str) -> None:
        """A line of its own above the status line (which is redrawn below it)."""
        shown, self._shown = self._shown, ""
        self._write(f"\r{ERASE_LINE}{line}\n")
        if shown:
            self.show(shown)

    def close(self) -> None:
        """Leave the cursor on a fresh line."""
        if self._shown:
            self._write("\n")
            self._shown = ""

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 100
        except (OSError, ValueError, AttributeError):
            return 100

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal is gone: the e-stop path handles that
            pass


def terminal_status(stream: TextIO) -> StatusLine | None:
    """A status line on `stream` if it is a terminal (a log file gets none)."""
    try:
        return StatusLine(stream) if stream.isatty() else None
    except (OSError, ValueError):
        return None
