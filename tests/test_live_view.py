"""The live view (hardware/view/, ros_ws/view_node.py): `twinbridge sim --view` looked at in
a real headless Chromium, and the core's parts without a browser.

The browser test runs bench/live_view_screenshot.py's twin variant (the real bringup, the
printed URL, the system's Chromium through selenium) and checks the screenshot itself:
the mirrored robot's picture and the joint plots' lines are on the page.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from live_view_screenshot import coloured, screenshot_variant  # noqa: E402

from hardware.view.config import LiveViewConfig  # noqa: E402
from hardware.view.server import ViewError, check_ports_free, view_url  # noqa: E402
from sim.errors import ConfigError  # noqa: E402


def test_the_page_shows_the_robot_and_the_plots_in_headless_chromium(tmp_path: Path) -> None:
    shot = screenshot_variant("twin", tmp_path, settle_s=3.0)
    assert shot["seconds_to_ready"] is not None, shot
    image = np.asarray(Image.open(tmp_path / "live_view_twin.png").convert("RGB"))
    height, width = image.shape[:2]
    mask = coloured(image)
    robot = mask[int(0.08 * height) : int(0.58 * height), : width // 2]
    plots = mask[int(0.35 * height) : int(0.95 * height), width // 2 :]
    chrome = mask[int(0.08 * height) :, :][:, width // 2 :][: int(0.1 * height)]  # status
    assert robot.mean() > 0.3, f"no twin picture: {robot.mean():.3f} coloured"
    # the twin's scene: the Fetch's blue links on MuJoCo's green backdrop
    pixels = image[int(0.08 * height) : int(0.58 * height), : width // 2].reshape(-1, 3)
    r, g, b = (pixels[:, i].astype(int) for i in range(3))
    assert np.mean((g > 150) & (g - r > 60) & (g - b > 30)) > 0.2, "no green backdrop"
    assert np.mean((b > 150) & (b - r > 80)) > 0.002, "no blue robot links"
    # plot lines: many coloured pixels spread over the plot columns, not only legend dots
    columns = plots.any(axis=0).mean()
    assert plots.mean() > 0.01 and columns > 0.5, (plots.mean(), columns)
    assert chrome.mean() < 0.05  # the status text is not coloured


def test_a_taken_port_is_one_line_naming_it_and_the_fix() -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ViewError) as error:
            check_ports_free(port)
        message = str(error.value)
        assert f"--view-port {port}" in message and "in use" in message
        assert "pass --view-port" in message and "\n" not in message
        # the bringup refuses it before any node starts: exit 2, one line, no traceback
        out = subprocess.run(
            [sys.executable, "-m", "sim.cli", "sim", "--view", "--view-port", str(port),
             "--episodes", "1", "--domain-id", "77"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and f"port {port} is in use" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_the_url_points_the_page_at_its_data_port_on_this_host() -> None:
    url = view_url(9090)
    assert url.startswith("http://127.0.0.1:9090/?url=")
    assert "127.0.0.1%3A9091%2Fproxy" in url


def test_view_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="web_port"):
        LiveViewConfig(web_port=80)
    with pytest.raises(ConfigError, match="not registered"):
        LiveViewConfig(task="fetch-pusj")
    assert LiveViewConfig(cameras="video, head_camera_rgb").camera_names == (
        "video",
        "head_camera_rgb",
    )


def test_the_robot_is_drawn_from_measured_joints() -> None:
    import rerun as rr

    from hardware.view.live_view import LiveView

    stream = rr.RecordingStream("twinbridge-test")
    stream.memory_recording()
    view = LiveView(LiveViewConfig(render_width_px=160, render_height_px=120), stream)
    names = list(view.io.joint_names)
    view.joint_state(1, names, np.zeros(len(names)))
    assert view.render(1)
    from sim.render import render_rgb

    rest = render_rgb(view.mirror.twin, view.camera, 160, 120)
    assert not view.render(2)  # nothing moved: no new picture
    bent = np.zeros(len(names))
    bent[names.index("shoulder_pan_joint")] = 1.0
    assert view.joint_state(3, names, bent)
    assert view.render(3)
    turned = render_rgb(view.mirror.twin, view.camera, 160, 120)
    assert np.abs(turned.astype(int) - rest).mean() > 1.0  # the arm moved in the picture
    assert not view.joint_state(4, names[:-1], bent[:-1])  # not this robot's joints
    assert view.rejected == 1
    view.diagnostics(5, "task_node/episode_start", {"episode": "2", "seed": "7"})
    assert view._status["episode"] == "episode 2 (seed 7) running"
    view.diagnostics(6, "task_node/episode", {"episode": "2", "success": "True",
                                              "final_distance": "0.01"})  # fmt: skip
    assert view._status["last"].startswith("episode 2: **success**")
    assert view._status["episode"] == "between episodes"
