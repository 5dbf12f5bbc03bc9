"""A pseudo-terminal that stands in for a USB serial device, with a stable symlink.

Run: `python -c "from hardware.pty_link import PtyLink; l = PtyLink('/tmp/tb-demo'); print(l.device_path, l.link_path); l.close()"`

The host opens the slave side (`device_path`, or `link_path`, a symlink like the ones in
/dev/serial/by-id/ that always points at the current slave); the emulator reads and writes
the master side, non-blocking. The slave is in raw mode (cfmakeraw: every byte, 0x03 0x0A
0x0D 0x11 0x13 included, passes unchanged; no echo, no signals, no flow control), and the
link keeps its own slave fd open, so a host closing and reopening the port never hangs up
the master (no EIO for the emulator). `disconnect()` is a USB unplug: the pty goes away (a
host still holding it reads EOF/EIO) and so does the symlink; `reconnect()` is the replug: a
new pty and the symlink re-pointed to it, atomically.
"""  # noqa: E501

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import termios
from pathlib import Path
from types import TracebackType

from sim.errors import TwinbridgeError

_IFLAG, _OFLAG, _CFLAG, _LFLAG, _CC = 0, 1, 2, 3, 6


class LinkError(TwinbridgeError, OSError):
    """The pty or its symlink could not be created; the message names the path and fix."""


def make_raw(fd: int) -> None:
    """glibc's cfmakeraw on `fd` (8-bit bytes, no processing), plus no XON/XOFF at all."""
    attrs = termios.tcgetattr(fd)
    attrs[_IFLAG] &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
        | termios.IXOFF
        | termios.IXANY
    )
    attrs[_OFLAG] &= ~termios.OPOST
    attrs[_LFLAG] &= ~(
        termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN
    )
    attrs[_CFLAG] = (attrs[_CFLAG] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    attrs[_CC][termios.VMIN] = 1
    attrs[_CC][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class PtyLink:
    """One emulated serial port: a raw pty pair, the master non-blocking, an optional symlink."""

    def __init__(self, link_path: str | Path | None = None):
        self.link_path = Path(link_path) if link_path is not None else None
        self.device_path: str | None = None
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.dropped_backlog_bytes = 0
        self.reconnect()

    @property
    def is_open(self) -> bool:
        return self.master_fd is not None

    def reconnect(self) -> str:
        """(Re)plug: a new pty in raw mode, the symlink pointed at it; returns its path."""
        self.disconnect()
        master, slave = os.openpty()
        make_raw(slave)
        os.set_blocking(master, False)
        self.master_fd, self._slave_fd = master, slave
        self.device_path = os.ttyname(slave)
        if self.link_path is not None:
            _point_link(self.link_path, self.device_path)
        return self.device_path

    def disconnect(self) -> None:
        """Unplug: close the pty (hosts on it read EOF/EIO) and remove our symlink."""
        for fd in (self.master_fd, self._slave_fd):
            if fd is not None:
                os.close(fd)
        self.master_fd = self._slave_fd = None
        if self.link_path is not None and self.device_path is not None:
            with contextlib.suppress(OSError):
                if os.readlink(self.link_path) == self.device_path:
                    self.link_path.unlink()
        self.device_path = None

    close = disconnect

    def read(self, max_bytes: int = 65536) -> bytes:
        """What the host wrote since the last read (b"" if nothing, or unplugged)."""
        if self.master_fd is None:
            return b""
        try:
            return os.read(self.master_fd, max_bytes)
        except BlockingIOError:
            return b""
        except OSError as e:
            if e.errno == errno.EIO:  # cannot happen while we hold the slave; be safe
                return b""
            raise

    def write(self, data: bytes) -> int:
        """Write what the pty takes now; returns the count (0 if full or unplugged)."""
        if self.master_fd is None or not data:
            return 0
        try:
            return os.write(self.master_fd, data)
        except BlockingIOError:
            return 0

    def host_backlog(self) -> int:
        """Bytes written to the host and not read by it yet (the slave's input queue)."""
        if self._slave_fd is None:
            return 0
        raw = fcntl.ioctl(self._slave_fd, termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])

    def drop_backlog(self, max_bytes: int) -> int:
        """If more than `max_bytes` wait unread (no host has the port open, or it stalled),
        discard them, as a USB serial device's small transmit buffer would; returns the count.
        """
        backlog = self.host_backlog()
        if backlog <= max_bytes or self._slave_fd is None:
            return 0
        termios.tcflush(self._slave_fd, termios.TCIFLUSH)
        self.dropped_backlog_bytes += backlog
        return backlog

    def __enter__(self) -> PtyLink:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _point_link(link: Path, target: str) -> None:
    """Make `link` a symlink to `target`, atomically (a reader never finds it missing)."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.symlink(target, temporary)
        os.replace(temporary, link)
    except OSError as e:
        raise LinkError(
            f"cannot point {link} at {target}: {e}; choose a writable --link path"
        ) from e
