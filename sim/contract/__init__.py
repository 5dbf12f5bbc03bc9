"""The rules of the topic contract that every robot (twin or hardware) enforces alike: which
joint commands are accepted (`command_rules`) and when an episode may be reset (`episode_gate`).
Plain data and arithmetic: no physics engine, no ROS."""
