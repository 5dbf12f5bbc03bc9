"""The live view: the robot, its goal and object, cameras, joint plots and episode status
on a local web page (Rerun's web viewer), fed from measurements (README "Live view").

`config` is plain data (node parameters are declared from it, the driver path may read
it); `live_view` and `server` load MuJoCo and Rerun, which the driver path never imports.
"""
