"""Serving a Rerun recording to a browser on this host: the data over gRPC on
`web_port + 1` (bound to 127.0.0.1: the measurements never leave the machine) and Rerun's
bundled web viewer on `web_port` (static files, no data); both work offline.

A robot PC over SSH: `ssh -L 9090:localhost:9090 -L 9091:localhost:9091 robot`, then open
the printed URL on the laptop.
"""

from __future__ import annotations

import errno
import socket
from typing import Any
from urllib.parse import quote

from sim.errors import TwinbridgeError

LOCALHOST = "127.0.0.1"


class ViewError(TwinbridgeError):
    """The live view cannot be served (its port is taken)."""


def grpc_port(web_port: int) -> int:
    """The data port that goes with a page port."""
    return web_port + 1


def view_url(web_port: int) -> str:
    """The page to open: the web viewer, told where its data is."""
    data = f"rerun+http://{LOCALHOST}:{grpc_port(web_port)}/proxy"
    return f"http://{LOCALHOST}:{web_port}/?url={quote(data, safe='')}"


def check_ports_free(web_port: int, flag: str = "--view-port") -> None:
    """Refuse, in one line, a page or data port another program holds (Rerun itself would
    only log the failure from a background thread)."""
    for port, host in ((web_port, "0.0.0.0"), (grpc_port(web_port), LOCALHOST)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Rerun binds
            try:
                probe.bind((host, port))
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                raise ViewError(
                    f"{flag} {web_port}: port {port} is in use (another live view or "
                    f"program; `ss -ltnp | grep {port}` names it); pass {flag} with a free "
                    f"port, e.g. {flag} {web_port + 10}"
                ) from e


class ViewServer:
    """One Rerun recording stream served to browsers; `url` is the page to open."""

    def __init__(self, web_port: int, memory_limit_mb: int, blueprint: Any) -> None:
        import rerun as rr

        check_ports_free(web_port)
        self.stream = rr.RecordingStream("twinbridge", recording_id="live")
        sink = rr.GrpcServerSink(
            bind_ip=LOCALHOST,
            port=grpc_port(web_port),
            server_memory_limit=f"{memory_limit_mb}MiB",
        )
        self.stream.set_sinks(sink, default_blueprint=blueprint)
        try:
            rr.serve_web_viewer(web_port=web_port, open_browser=False, connect_to=sink.uri)
        except RuntimeError as e:  # the port was taken between the check and now
            raise ViewError(f"--view-port {web_port}: {e}; pass a free port") from e
        self.url = view_url(web_port)

    def close(self) -> None:
        self.stream.flush()
        self.stream.disconnect()
