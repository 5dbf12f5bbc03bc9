"""Twinbridge hardware: the robot side of the stack, plain Python (no ROS, no torch).

- `interface`: `RobotInterface`, one lifecycle and one safety layer over every backend;
  `backends` builds one by name (`serial`, `sim`; ros_ws registers the topic `bridge`).
- `protocol` and `plausibility`: the framed serial protocol of `PROTOCOL.md` and the checks
  a State passes before control uses it; `serial_backend` speaks it over pyserial.
- `safety`: limits, rate limiting, watchdog, latched e-stop, the only path to a command.
- `driver_settings`, `driver_core`, `driver_loop`, `periodic`: the driver node's work
  without ROS (settings, the robot on the topic contract, its paced control cycle).
- `sim_backend`: the MuJoCo twin as a `RobotInterface`.
- `emulator`, `emulator_cli`, `faults`, `pty_link`: the twin behind the protocol on a
  pseudo-terminal, with deviations and injected faults (`twinbridge emulate`).
- `robots`: each robot's contract names and limits as the safety layer reads them.
- `replay`: a recorded episode re-run in the twin (`twinbridge replay`).
- `recording/`: crash-safe MCAP bags, their recovery and demonstration export;
  `teleop/`: keyboard, gamepad and scripted operators.

`RELIABILITY.md` lists the reliability goals (R1...) the code above meets, and the tests
that check them.
"""
