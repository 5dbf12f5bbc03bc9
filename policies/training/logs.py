"""Per-epoch training logs: one CSV row per evaluation, and the learning-curve PNG.

The CSV is appended to (a resumed run continues its file); the PNG (success, return and
losses against env steps) is redrawn from the whole CSV each epoch with matplotlib's Agg
backend (no display needed).
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
        """Redraw `learning_curve.png` (see `figure`)."""
        from matplotlib import pyplot as plt

        fig = self.figure()
        fig.savefig(self.png_path)
        plt.close(fig)

    def figure(self) -> Any:
        """Three panels against env steps: eval success rate, return (eval, and training
        where logged) and every `*_loss` column; wall time in the title. Success alone
        cannot tell a stalled run from one that is still learning; return and losses can."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        rows = self.rows()
        steps = [int(r["env_steps"]) for r in rows]
        fig, (success, returns, losses) = plt.subplots(1, 3, figsize=(15, 4), dpi=100)
        _lines(success, steps, rows, ["success_rate"])
        success.set(ylabel="eval success rate", ylim=(-0.02, 1.02))
        _lines(returns, steps, rows, ["eval_return", "train_return"])
        returns.set(ylabel="eval return")
        _lines(losses, steps, rows, [c for c in self.columns if c.endswith("_loss")])
        losses.set(ylabel="loss", yscale="symlog")
        for axis in (success, returns, losses):
            axis.set_xlabel("env steps")
            axis.grid(alpha=0.3)
            if len(axis.get_lines()) > 1:
                axis.legend(fontsize=8)
        wall = float(rows[-1]["wall_time_s"]) if rows else 0.0
        fig.suptitle(f"{self.title} ({wall:.0f} s wall)")
        fig.tight_layout()
        return fig


def _lines(axis: Any, steps: list[int], rows: list[dict[str, str]], columns: list[str]) -> None:
    """One line per column that has values (empty cells are skipped)."""
    for column in columns:
        points = [(x, float(r[column])) for x, r in zip(steps, rows, strict=True) if r.get(column)]
        if points:
            xs, ys = zip(*points, strict=True)
            axis.plot(xs, ys, marker="o", markersize=3, label=column)


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value
