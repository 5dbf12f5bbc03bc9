"""The page's layout (a Rerun blueprint): the mirrored twin and the 3D world on the left;
episode status and the joint plots (the last `PLOT_WINDOW_S`) on the right; published
camera images in a third column."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hardware.view.config import LiveViewConfig

PLOT_WINDOW_S = 20.0


def blueprint(config: LiveViewConfig) -> Any:
    import rerun.blueprint as rrb

    window = rrb.VisibleTimeRange(
        "time",
        start=rrb.TimeRangeBoundary.cursor_relative(seconds=-PLOT_WINDOW_S),
        end=rrb.TimeRangeBoundary.cursor_relative(),
    )
    robot = rrb.Vertical(
        rrb.Spatial2DView(origin="twin", name="robot (twin mirroring the measured joints)"),
        rrb.Spatial3DView(origin="world", name="world: robot, object, goal"),
        row_shares=[3, 2],
    )
    plots = rrb.Vertical(
        rrb.TextDocumentView(origin="status", name="status"),
        rrb.TimeSeriesView(
            origin="joints/position", name="joint positions (rad, m)", time_ranges=window
        ),
        rrb.TimeSeriesView(
            origin="joints/targets", name="commands and applied commands", time_ranges=window
        ),
        row_shares=[2, 3, 3],
    )
    columns = [robot, plots]
    if config.camera_names:
        views = [rrb.Spatial2DView(origin=f"cameras/{c}", name=c) for c in config.camera_names]
        columns.append(rrb.Vertical(*views))
    return rrb.Blueprint(rrb.Horizontal(*columns), collapse_panels=True)
