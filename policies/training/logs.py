"""Per-epoch training logs: one CSV row per evaluation, and the learning-curve PNG.

The CSV is appended to (a resumed run continues its file); the PNG is redrawn from the
whole CSV each epoch with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

COLUMNS = (
    "epoch", "env_steps", "updates", "episodes", "wall_time_s", "success_rate", "eval_return",
    "critic_loss", "actor_loss", "alpha_loss", "alpha", "env_steps_per_s", "updates_per_s",
)  # fmt: skip


class EpochLog:
    """Appends rows to `progress.csv` and redraws `learning_curve.png` beside it."""

    def __init__(self, directory: Path, title: str, columns: tuple[str, ...] = COLUMNS):
        self.csv_path = Path(directory) / "progress.csv"
        self.png_path = Path(directory) / "learning_curve.png"
        self.title = title
        self.columns = columns  # each trainer's own (`log_columns`); COLUMNS are HER's

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (missing columns stay empty) and redraw the curve."""
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k, "")) for k in self.columns})
        self.plot()

    def rows(self) -> list[dict[str, str]]:
        """All rows written so far."""
        if not self.csv_path.exists():
            return []
        with open(self.csv_path, newline="") as f:
            return list(csv.DictReader(f))

    def plot(self) -> None:
        """Success rate against env steps (and wall time on a top axis label)."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        rows = self.rows()
        steps = [int(r["env_steps"]) for r in rows]
        success = [float(r["success_rate"]) for r in rows]
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        ax.plot(steps, success, marker="o", markersize=3)
        ax.set(xlabel="env steps", ylabel="eval success rate", ylim=(-0.02, 1.02))
        wall = float(rows[-1]["wall_time_s"]) if rows else 0.0
        ax.set_title(f"{self.title} ({wall:.0f} s wall)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.png_path)
        plt.close(fig)


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value
