"""BagWriter / BagReader / recover without ROS processes: real MCAP files read back by
independent readers (rosbags' AnyReader on the bare .mcap, the `mcap` package's reader
with mcap_ros2's decoder and full CRC validation, rclpy's deserializer), episode markers
and the writer's refusals, flushing on size and on time, and the typed errors readers get.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image, JointState

from hardware.recording import bag_cli
from hardware.recording.episodes import EPISODES_TOPIC
from hardware.recording.errors import (
    BagFileError,
    BagIdentityError,
    EpisodeOrderError,
    MissingTopicError,
    RecordingError,
    SchemaNotFoundError,
    UnknownTopicError,
)
from hardware.recording.reader import BagReader
from hardware.recording.recover import recover
from hardware.recording.schemas import ros2msg_definition
from hardware.recording.writer import BagWriter, BagWriterConfig

STORE = get_typestore(Stores.ROS2_KILTED)  # an independent CDR serializer
T0 = 1_700_000_000_000_000_000


def _messages() -> dict[str, tuple[str, object]]:
    """(type, rosbags message) per topic: several types, nested, arrays, bytes."""
    t = STORE.types
    stamp = t["builtin_interfaces/msg/Time"](sec=5, nanosec=7)
    header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="world")
    point = t["geometry_msgs/msg/Point"](x=1.0, y=2.0, z=3.0)
    quat = t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)
    pose = t["geometry_msgs/msg/PoseStamped"](header, t["geometry_msgs/msg/Pose"](point, quat))
    state = t["sensor_msgs/msg/JointState"](
        header, ["a", "b"], np.array([0.5, -1.0]), np.array([0.0, 1.0]), np.array([])
    )
    pixels = np.arange(18, dtype=np.uint8)
    image = t["sensor_msgs/msg/Image"](header, 2, 3, "rgb8", 0, 9, pixels)
    value = t["diagnostic_msgs/msg/KeyValue"](key="k", value="v")
    status = t["diagnostic_msgs/msg/DiagnosticStatus"](1, "n", "m", "", [value])
    diagnostics = t["diagnostic_msgs/msg/DiagnosticArray"](header=header, status=[status])
    return {
        "/fetch/joint_states": ("sensor_msgs/msg/JointState", state),
        "/fetch/object_pose": ("geometry_msgs/msg/PoseStamped", pose),
        "/fetch/camera_0/image_raw": ("sensor_msgs/msg/Image", image),
        "/fetch/diagnostics": ("diagnostic_msgs/msg/DiagnosticArray", diagnostics),
        "/fetch/estop_state": ("std_msgs/msg/Bool", t["std_msgs/msg/Bool"](data=True)),
    }


def _write_bag(path: Path, config: BagWriterConfig | None = None, episodes: int = 2) -> dict:
    messages = _messages()
    cdr = {topic: bytes(STORE.serialize_cdr(m, ty)) for topic, (ty, m) in messages.items()}
    with BagWriter(path, config, robot="fetch", task="fetch-pick-and-place") as writer:
        for topic, (type_name, _) in messages.items():
            writer.add_topic(topic, type_name)
        t = T0
        for episode in range(episodes):
            writer.start_episode(episode, t, seed=17 + episode, goal=[1.0, 2.0, 3.0])
            for _ in range(10):
                for topic, data in cdr.items():
                    t += 1000
                    writer.write(topic, data, t, publish_time_ns=t - 10)
            writer.end_episode(episode, t + 1, success=episode == 0, final_distance=0.01)
            t += 10
    return cdr


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_round_trip_through_three_independent_readers(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "bag.mcap"
    cdr = _write_bag(path, BagWriterConfig(chunk_size_bytes=4096, compression=compression))
    expected_types = {topic: ty for topic, (ty, _) in _messages().items()}
    with AnyReader([path]) as bag:  # rosbags reads the bare .mcap (profile ros2)
        types = {c.topic: c.msgtype for c in bag.connections}
        assert types == {**expected_types, EPISODES_TOPIC: "std_msgs/msg/String"}
        decoded = {c.topic: bag.deserialize(raw, c.msgtype) for c, _, raw in bag.messages()}
    assert list(decoded["/fetch/joint_states"].name) == ["a", "b"]
    assert decoded["/fetch/camera_0/image_raw"].data.tolist() == list(range(18))
    assert decoded["/fetch/diagnostics"].status[0].values[0].value == "v"
    assert decoded["/fetch/object_pose"].pose.position.z == 3.0
    with open(path, "rb") as f:  # the mcap package: summary, CRCs, mcap_ros2's decoder
        records = list(StreamReader(f, validate_crcs=True).records)
        assert any(type(r).__name__ == "Footer" for r in records)
        f.seek(0)
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None and summary.statistics.message_count == 104
        assert summary.statistics.chunk_count > 3  # the size limit split the chunks
        assert all(i.compression == ("" if compression == "none" else compression)
                   for i in summary.chunk_indexes)  # fmt: skip
        for schema, _, message, msg in reader.iter_decoded_messages():
            if schema.name == "sensor_msgs/msg/Image":
                assert bytes(msg.data) == bytes(range(18)) and message.publish_time > 0
    state = deserialize_message(cdr["/fetch/joint_states"], JointState)  # rclpy agrees
    assert list(state.position) == [0.5, -1.0] and state.header.frame_id == "world"
    image = next(m for t, _, m in BagReader(path).messages(["/fetch/camera_0/image_raw"]))
    assert image.width == 3
    assert deserialize_message(cdr["/fetch/camera_0/image_raw"], Image).step == 9


def test_schema_is_the_rosbag2_concatenated_msg_text() -> None:
    text = ros2msg_definition("geometry_msgs/msg/PoseStamped")
    sections = text.split("=" * 80 + "\n")
    assert sections[0].startswith("# A Pose with reference coordinate frame and timestamp")
    names = [s.splitlines()[0] for s in sections[1:]]
    assert names == ["MSG: std_msgs/Header", "MSG: geometry_msgs/Pose",
                     "MSG: builtin_interfaces/Time", "MSG: geometry_msgs/Point",
                     "MSG: geometry_msgs/Quaternion"]  # fmt: skip
    with pytest.raises(SchemaNotFoundError, match=r"'foo_msgs/msg/Bar'; looked in .*foo_msgs/msg"):
        ros2msg_definition("foo_msgs/msg/Bar")


def test_episodes_markers_and_identity(tmp_path: Path) -> None:
    path = tmp_path / "bag.mcap"
    _write_bag(path)
    reader = BagReader(path)
    spans = reader.episodes()
    assert [(s.index, s.complete, s.success) for s in spans] == [(0, True, True), (1, True, False)]
    assert spans[1].start_fields["seed"] == 18 and spans[1].start_fields["goal"] == [1, 2, 3]
    assert spans[0].end_fields["final_distance"] == 0.01 and spans[0].end_ns > spans[0].start_ns
    session = reader.session()
    assert session["robot"] == "fetch" and json.loads(session["writer_config"])["fsync"] is True
    reader.check_identity(robot="fetch", task="fetch-pick-and-place")
    with pytest.raises(BagIdentityError, match=rf"{path}.*robot 'fetch', not 'shadow_hand'"):
        reader.check_identity(robot="shadow_hand")
    with pytest.raises(BagIdentityError, match="task 'fetch-pick-and-place', not 'fetch-push'"):
        reader.check_identity(task="fetch-push")
    reader.require_topics(["/fetch/joint_states"])
    with pytest.raises(MissingTopicError, match=rf"{path}: no messages on /fetch/goal"):
        reader.require_topics(["/fetch/joint_states", "/fetch/goal"])


def test_the_writer_refuses_out_of_order_markers_and_unknown_topics(tmp_path: Path) -> None:
    writer = BagWriter(tmp_path / "bag.mcap", robot="fetch")
    with pytest.raises(EpisodeOrderError, match="next episode of this bag is 0"):
        writer.start_episode(1, T0)
    with pytest.raises(EpisodeOrderError, match="open episode is none"):
        writer.end_episode(0, T0, success=True)
    writer.start_episode(0, T0)
    with pytest.raises(EpisodeOrderError, match="episode 0 is still open"):
        writer.start_episode(1, T0)
    with pytest.raises(EpisodeOrderError, match="cannot end episode 1"):
        writer.end_episode(1, T0, success=True)
    with pytest.raises(UnknownTopicError, match="'/fetch/goal' is not registered"):
        writer.write("/fetch/goal", b"\x00\x01\x00\x00", T0)
    with pytest.raises(RecordingError, match="start_episode/end_episode"):
        writer.write(EPISODES_TOPIC, b"", T0)
    writer.end_episode(0, T0 + 1, success=True)
    writer.close()
    with pytest.raises(RecordingError, match="closed"):
        writer.start_episode(1, T0 + 2)
    with pytest.raises(BagFileError, match="already exists: resume it"):
        BagWriter(tmp_path / "bag.mcap", robot="fetch")
    assert [s.index for s in BagReader(tmp_path / "bag.mcap").episodes()] == [0]


def test_chunks_are_flushed_by_time_while_the_file_is_open(tmp_path: Path) -> None:
    """A message is on disk (a finished chunk) one flush period after it was written, with
    no further writes: what bounds a SIGKILL's loss. Fails if `mcap.writer.Writer.flush`
    (the public call this relies on, mcap==1.6.0) stops finishing chunks."""
    path = tmp_path / "open.mcap"
    writer = BagWriter(path, BagWriterConfig(flush_period_s=0.2), robot="fetch")
    writer.add_topic("/fetch/estop_state", "std_msgs/msg/Bool")
    writer.write("/fetch/estop_state", b"\x00\x01\x00\x00\x01", T0)
    assert not writer.flush_if_due()  # too early
    time.sleep(0.25)
    assert writer.flush_if_due()
    snapshot = tmp_path / "snapshot.mcap"
    shutil.copyfile(path, snapshot)  # the file as a SIGKILL would leave it
    report = recover(snapshot)
    assert report.exit_code == 3 and report.messages == 1 and report.last_log_ns == T0
    writer.close()


def test_readers_name_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "bag.mcap"
    _write_bag(path)
    torn = tmp_path / "torn.mcap"
    torn.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BagFileError, match=rf"{torn}: truncated.*twinbridge bag recover {torn}"):
        BagReader(torn)
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(BagFileError, match=rf"{junk}: not an MCAP file") as error:
        BagReader(junk)
    assert "recover" not in str(error.value)


def test_bag_recover_exit_codes_and_in_place(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    bag_cli.add_arguments(parser)

    def bag(*argv: str) -> int:
        return bag_cli.run(parser.parse_args(list(argv)))

    path = tmp_path / "bag.mcap"
    _write_bag(path, BagWriterConfig(chunk_size_bytes=2048))
    assert bag("recover", str(path)) == 0  # intact: nothing written
    assert not (tmp_path / "bag.recovered.mcap").exists()
    torn = tmp_path / "torn.mcap"
    data = path.read_bytes()[: int(path.stat().st_size * 0.3)]
    torn.write_bytes(data)
    assert bag("recover", str(torn), "-o", str(tmp_path / "out.mcap")) == 3
    assert torn.read_bytes() == data  # the input is never modified without --in-place
    kept = BagReader(tmp_path / "out.mcap").verify()
    assert 0 < kept < 104
    assert bag("recover", str(torn), "--in-place") == 3
    assert BagReader(torn).verify() == kept
    assert bag("recover", str(torn), "--in-place") == 0
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"\x00" * 100)
    assert bag("recover", str(junk)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bag.mcap", "junk.mcap", "out.mcap", "torn.mcap"
    ]  # fmt: skip
