"""camera_driver_node: the emulated rig's cameras as a ROS camera driver streams a real rig's
(core: hardware.camera_rig.CameraStream).

Run: `twinbridge emulate --robot fetch --camera-feed /tmp/fetch-world &` then
`python -m ros_ws.camera_driver_node --ros-args -r __ns:=/fetch -p state_feed:=/tmp/fetch-world`
(`twinbridge sim --hardware emulator --cameras ...` and `twinbridge calibrate cameras` start
both). Publishes camera_<n>/image_raw (rgb8) and camera_<n>/camera_info at the emulator
configuration's camera rate, stamped with this host's clock when rendered; the frame id is
the camera's name. A real rig runs its cameras' own drivers on the same topics.
"""

from __future__ import annotations

from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from hardware.camera_rig import CameraStream, RigCameraConfig
from ros_ws import adapters
from ros_ws.node_configs import CameraDriverNodeConfig
from ros_ws.node_runtime import ContractNode, run_node
from ros_ws.qos import image_qos


class CameraDriverNode(ContractNode):
    def __init__(self) -> None:
        super().__init__("camera_driver_node", CameraDriverNodeConfig)
        self.stream = _stream(self.config)
        self._camera_pubs = [
            (
                self.contract_publisher(Image, f"camera_{i}/image_raw", image_qos()),
                self.contract_publisher(CameraInfo, f"camera_{i}/camera_info", image_qos()),
            )
            for i in range(len(self.stream.names))
        ]
        self.frames = 0
        self.steady_timer(1.0 / self.stream.rate_hz, self._publish)
        self.get_logger().info(
            f"streaming {', '.join(self.stream.names)} as camera_0..{len(self._camera_pubs) - 1}"
            f" at {self.stream.rate_hz:g} Hz"
        )

    def _publish(self) -> None:
        images = self.stream.capture()
        if images is None:
            self.counters["no_world_state_yet"] += 1
            return
        stamp = Time(nanoseconds=self.get_clock().now().nanoseconds).to_msg()
        for (image_pub, info_pub), name in zip(self._camera_pubs, self.stream.names, strict=True):
            image, info = adapters.image_msgs(
                images[name], self.stream.calibrations[name], stamp, name
            )
            image_pub.publish(image)
            info_pub.publish(info)
        self.frames += 1

    def diagnostics_values(self) -> dict[str, object]:
        return {"frames": self.frames, "cameras": ",".join(self.stream.names)}

    def close(self) -> None:
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.close()


def _stream(config: CameraDriverNodeConfig) -> CameraStream:
    """The core from the node's parameters: the emulator configuration's cameras (its truth),
    and the rig calibration for camera_info when one is given."""
    from dataclasses import replace

    from hardware.emulator import EmulatorConfig
    from sim.camera_calibration import load_rig

    emulator = EmulatorConfig.from_yaml(config.emulator_config) if config.emulator_config else None
    rig = emulator.cameras if emulator is not None else RigCameraConfig()
    if config.cameras:
        rig = replace(rig, names=tuple(n.strip() for n in config.cameras.split(",") if n.strip()))
    calibration = load_rig(config.calibration_path) if config.calibration_path else None
    task = config.task or (emulator.task if emulator is not None and emulator.task else "")
    scene = config.scene or (emulator.scene if emulator is not None and emulator.scene else "")
    return CameraStream(config.robot, rig, config.state_feed, task, scene, calibration)


def main(args: list[str] | None = None) -> None:
    run_node(CameraDriverNode, args)


if __name__ == "__main__":
    main()
