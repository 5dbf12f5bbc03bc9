"""`CameraPublisher`: the twin's rendered cameras as `camera_<n>/image_raw` + `camera_info`.

Off unless `cameras` names some: software rendering costs 8-40 ms a frame here. Images
use the image QoS (best effort, newest only), so a slow reader never stalls the twin.
"""

from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from ros_ws import adapters
from ros_ws.node_configs import TwinNodeConfig
from ros_ws.qos import image_qos
from sim.errors import UnknownNameError
from sim.twin_loop import TwinLoop


class CameraPublisher:
    """Renders each named camera of the loop's twin and publishes it with its intrinsics."""

    def __init__(self, node: Node, loop: TwinLoop, config: TwinNodeConfig):
        self.names = [name.strip() for name in config.cameras.split(",") if name.strip()]
        valid = loop.twin.camera_names
        for name in self.names:  # an unknown camera fails at start, by name, not KeyError
            if name not in valid:
                raise UnknownNameError("camera", name, valid)
        self._loop, self._size = loop, (config.camera_width_px, config.camera_height_px)
        self._publishers = [
            (
                node.create_publisher(Image, f"camera_{i}/image_raw", image_qos()),
                node.create_publisher(CameraInfo, f"camera_{i}/camera_info", image_qos()),
            )
            for i in range(len(self.names))
        ]

    def publish(self) -> None:
        stamp = adapters.to_time(self._loop.stamp_ns)
        twin = self._loop.twin
        for name, (image_pub, info_pub) in zip(self.names, self._publishers, strict=True):
            rgb = twin.render(name, *self._size)
            fovy = float(twin.model.camera(name).fovy[0])
            image, info = adapters.image_msgs(rgb, fovy, stamp, name)
            image_pub.publish(image)
            info_pub.publish(info)
