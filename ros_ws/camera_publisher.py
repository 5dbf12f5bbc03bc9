"""`CameraPublisher`: the twin's rendered cameras as `camera_<n>/image_raw` + `camera_info`.

Off unless `cameras` names some: software rendering costs 8-40 ms a frame here, so it runs
on a worker (sim/snapshot_render.py) from snapshots the node's timer takes, never in the
control loop. Images use the image QoS (best effort, newest only), so a slow reader never
stalls the twin; a snapshot the worker has no time for is dropped and counted. Each image
is stamped with the sim time of its snapshot, and camera_info carries the intrinsics the
twin renders with (calibrated ones with `calibration_path`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from ros_ws import adapters
from ros_ws.node_configs import TwinNodeConfig
from ros_ws.qos import image_qos
from sim.camera_calibration import Intrinsics, camera_intrinsics_px
from sim.errors import UnknownNameError
from sim.snapshot_render import SnapshotRenderer
from sim.twin_loop import TwinLoop


class CameraPublisher:
    """Renders each named camera of the loop's twin off the loop and publishes it with the
    intrinsics it was rendered with."""

    def __init__(self, node: Node, loop: TwinLoop, config: TwinNodeConfig):
        self.names = tuple(name.strip() for name in config.cameras.split(",") if name.strip())
        valid = loop.twin.camera_names
        for name in self.names:  # an unknown camera fails at start, by name, not KeyError
            if name not in valid:
                raise UnknownNameError("camera", name, valid)
        self._loop = loop
        size = (config.camera_width_px, config.camera_height_px)
        model = loop.twin.model
        self._intrinsics = {
            name: Intrinsics(*size, *camera_intrinsics_px(model, model.camera(name).id, *size))
            for name in self.names
        }
        self._publishers = [
            (
                node.create_publisher(Image, f"camera_{i}/image_raw", image_qos()),
                node.create_publisher(CameraInfo, f"camera_{i}/camera_info", image_qos()),
            )
            for i in range(len(self.names))
        ]
        self._renderer: SnapshotRenderer | None = None
        if self.names:
            self._renderer = SnapshotRenderer(
                loop.twin, self.names, *size, self._publish, queue_frames=1, name="cameras",
                sites=False,  # the rig's cameras: no goal marker, as on the robot
            )  # fmt: skip

    @property
    def dropped(self) -> int:
        """Snapshots the worker had no time for (the twin's loop never waits for it)."""
        return 0 if self._renderer is None else self._renderer.dropped

    def capture(self) -> None:
        """Take a snapshot of the twin now (microseconds); the worker renders and publishes."""
        if self._renderer is not None:
            self._renderer.capture(self._loop.stamp_ns)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()

    def _publish(self, images: dict[Any, np.ndarray], stamp_ns: int) -> None:
        stamp = adapters.to_time(stamp_ns)
        for name, (image_pub, info_pub) in zip(self.names, self._publishers, strict=True):
            image, info = adapters.image_msgs(images[name], self._intrinsics[name], stamp, name)
            image_pub.publish(image)
            info_pub.publish(info)
