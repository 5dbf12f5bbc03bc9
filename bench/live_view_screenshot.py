"""Screenshots of the live view (twin and emulator) in headless Chromium, and its cost.

Run: `.venv/bin/python bench/live_view_screenshot.py` (writes bench/results/live_view_twin.png,
bench/results/live_view_emulator.png and bench/results/live_view.json), or only the pictures:
`.venv/bin/python bench/live_view_screenshot.py --variants twin --rounds 0 --out-dir out/view`

Each variant runs `twinbridge sim --view` (the twin, or `--hardware emulator`: the serial
driver on the emulated device), opens the printed URL in the system's headless Chromium
(Debian `chromium` + `chromium-driver`, installed by `make system-deps`; software WebGL) and
waits until the page shows the mirrored robot and the joint plots. The cost is the twin
loop's deadline misses and latency with and without `--view` (medians over `--rounds` runs
of `--episodes` real-time episodes) and the view node's own CPU use.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TWINBRIDGE = [sys.executable, "-m", "sim.cli"]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-angle=swiftshader",  # WebGL on the CPU: the page renders on a headless host
    "--enable-unsafe-swiftshader",
    # Rerun's web viewer posts usage events to tel.rerun.io: never leave the host.
    "--host-resolver-rules=MAP tel.rerun.io ~NOTFOUND, MAP fonts.googleapis.com ~NOTFOUND",
)
URL_LINE = re.compile(r"live view at (\S+)")


# -- what a screenshot shows ------------------------------------------------------------
def coloured(image: np.ndarray) -> np.ndarray:
    """Saturated, not dark pixels: the twin's picture and plot lines, not the viewer's
    grey chrome."""
    hsv = np.asarray(Image.fromarray(image).convert("HSV"), dtype=float) / 255.0
    return (hsv[..., 1] > 0.35) & (hsv[..., 2] > 0.25)


def page_content(image: np.ndarray) -> dict[str, float]:
    """Fractions of coloured pixels where the robot (left, top) and the plots (right,
    below the status) are laid out (hardware/view/layout.py)."""
    height, width = image.shape[:2]
    mask = coloured(image[..., :3])
    robot = mask[int(0.08 * height) : int(0.58 * height), : width // 2]
    plots = mask[int(0.35 * height) : int(0.95 * height), width // 2 :]
    return {"robot": float(robot.mean()), "plots": float(plots.mean())}


def shows_robot_and_plots(content: dict[str, float]) -> bool:
    return content["robot"] > 0.15 and content["plots"] > 0.01


# -- the browser ------------------------------------------------------------------------
def browser(width: int = 1600, height: int = 1000) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot_when_ready(url: str, path: Path, timeout_s: float, settle_s: float) -> dict:
    """Open `url`; once the robot and the plots show, wait `settle_s` (the plots fill)
    and save the screenshot at `path`. Its content fractions, and the seconds it took."""
    driver = browser()
    start = time.monotonic()
    try:
        driver.get(url)
        ready_at = None
        while time.monotonic() - start < timeout_s:
            time.sleep(1.0)
            image = np.asarray(Image.open(_png(driver)).convert("RGB"))
            content = page_content(image)
            if ready_at is None and shows_robot_and_plots(content):
                ready_at = time.monotonic()
            if ready_at is not None and time.monotonic() - ready_at >= settle_s:
                break
        path.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(path))
        content = page_content(np.asarray(Image.open(path).convert("RGB")))
        return {**content, "seconds_to_ready": _since(start, ready_at)}
    finally:
        driver.quit()


def _png(driver: Any) -> Any:
    import io

    return io.BytesIO(driver.get_screenshot_as_png())


def _since(start: float, moment: float | None) -> float | None:
    return None if moment is None else round(moment - start, 1)


# -- the graph --------------------------------------------------------------------------
def free_port_pair() -> int:
    from hardware.view.server import check_ports_free

    for _ in range(50):
        port = random.SystemRandom().randint(20000, 40000)
        try:
            check_ports_free(port)
            return port
        except Exception:
            continue
    raise RuntimeError("no free port pair for the view")


def start_sim(variant: str, port: int, log_dir: Path, view: bool, episodes: int) -> Any:
    domain = random.SystemRandom().randint(1, 101)
    command = [*TWINBRIDGE, "sim", "--episodes", str(episodes), "--domain-id", str(domain)]
    command += ["--log-dir", str(log_dir), "--json"]
    command += ["--view", "--view-port", str(port)] if view else []
    command += ["--hardware", "emulator"] if variant == "emulator" else []
    stderr = open(log_dir / "sim.stderr", "w")  # noqa: SIM115 - closed by the caller
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
    )


def wait_for_page(url: str, process: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"twinbridge sim exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"no page at {url} after {timeout_s} s")


def stop(process: Any) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def screenshot_variant(variant: str, out_dir: Path, settle_s: float) -> dict:
    port = free_port_pair()
    with tempfile.TemporaryDirectory(prefix=f"view-{variant}-") as tmp:
        log_dir = Path(tmp)
        process = start_sim(variant, port, log_dir, view=True, episodes=1000)
        try:
            url = _printed_url(log_dir / "sim.stderr", process, timeout_s=60)
            wait_for_page(url.split("?")[0], process, timeout_s=60)
            shot = screenshot_when_ready(url, out_dir / f"live_view_{variant}.png", 90, settle_s)
        finally:
            stop(process)
    return {"variant": variant, "url": url, **shot}


def _printed_url(stderr_path: Path, process: Any, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = URL_LINE.search(stderr_path.read_text())
        if match:
            return match.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"twinbridge sim exited: {stderr_path.read_text()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError("twinbridge sim printed no live view URL")


# -- the cost -----------------------------------------------------------------------------
def cost_run(view: bool, episodes: int) -> dict:
    """One real-time run of the twin: the loop's figures, and the view node's CPU use."""
    port = free_port_pair()
    with tempfile.TemporaryDirectory(prefix="view-cost-") as tmp:
        process = start_sim("twin", port, Path(tmp), view, episodes)
        cpu = _view_node_cpu(process) if view else None
        out, _ = process.communicate(timeout=600)
    summary = json.loads(out.strip().splitlines()[-1])
    return {
        "deadline_misses": summary["deadline_misses"],
        "latency_p99_ms": summary["control_latency_ms"]["p99"],
        "view_node_cpu_percent": cpu,
    }


def _view_node_cpu(process: Any) -> float | None:
    """The view node's CPU time over its life, as % of one core (sampled just before the
    run ends: the run's last episodes are still going)."""
    import psutil

    parent, node, samples = psutil.Process(process.pid), None, []
    while process.poll() is None:
        time.sleep(1.0)
        try:
            children = parent.children(recursive=True)
            node = node or next((c for c in children if "ros_ws.view_node" in c.cmdline()), None)
            if node is not None:
                times = node.cpu_times()
                samples.append((time.monotonic(), times.user + times.system))
        except psutil.Error:
            break
    if len(samples) < 4:
        return None
    (t0, c0), (t1, c1) = samples[2], samples[-1]  # after start-up (imports, MuJoCo)
    return round(100.0 * (c1 - c0) / (t1 - t0), 1)


def cost(rounds: int, episodes: int) -> dict:
    runs: dict[str, list[dict]] = {"without_view": [], "with_view": []}
    for _ in range(rounds):
        runs["without_view"].append(cost_run(False, episodes))
        runs["with_view"].append(cost_run(True, episodes))
    medians = {}
    for key, results in runs.items():
        medians[key] = {
            name: statistics.median(r[name] for r in results if r[name] is not None)
            for name in results[0]
            if any(r[name] is not None for r in results)
        }
    return {"rounds": rounds, "episodes_per_run": episodes, "median": medians, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="twin,emulator", help="twin,emulator")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--settle-s", type=float, default=8.0, help="plots fill this long")
    parser.add_argument("--rounds", type=int, default=3, help="cost runs each way (0: none)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per cost run")
    args = parser.parse_args()
    report: dict[str, Any] = {"screenshots": []}
    for variant in filter(None, args.variants.split(",")):
        shot = screenshot_variant(variant, args.out_dir, args.settle_s)
        report["screenshots"].append(shot)
        print(json.dumps(shot), flush=True)
    if args.rounds:
        report["cost"] = cost(args.rounds, args.episodes)
        print(json.dumps(report["cost"]["median"]), flush=True)
        (args.out_dir / "live_view.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all(shows_robot_and_plots(s) for s in report["screenshots"]) else 1


if __name__ == "__main__":
    sys.exit(main())
