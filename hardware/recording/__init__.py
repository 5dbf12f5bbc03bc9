"""Crash-safe recording of the topic contract into rosbag2-profile MCAP files (no ROS here).

One job per module:
- `writer`: `BagWriter` (+ `BagWriterConfig`): CDR messages + episode markers, chunks
  flushed on size or time so a SIGKILL loses at most one flush period.
- `reader`: `BagReader`: topics, decoded messages, episodes, identity and topic checks.
- `scan`: a record-by-record MCAP reader that stops cleanly at the first damaged record.
- `recover`: `twinbridge bag recover` (salvage a truncated file; exit 0/3/1).
- `resume`: continue an existing bag after its last complete episode (R17).
- `alignment`: a recording's episodes as arrays aligned at the control rate (`export`,
  `twinbridge replay`); `relay`: task_node's statuses -> markers.
- `episodes`: the marker format and rules; `schemas`: .msg definitions for the schemas;
  `topics`: what a recorder records with which QoS kind; `errors`: typed errors.
- CLIs: `bag_cli` (`twinbridge bag ...`), `info`, `export`, `recover`; `twinbridge record`
  starts a node, so it is ros_ws/record_bringup.py.

Submodules are imported explicitly (`from hardware.recording.reader import BagReader`), so
importing one does not pull in the others.

R17: see hardware/RELIABILITY.md.
"""
