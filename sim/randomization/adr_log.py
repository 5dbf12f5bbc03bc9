"""ADR progress on disk: `adr.csv` (one row per `log` call) and `adr.png` (every range over steps).

ADR's ranges are the curriculum, so when a policy fails to transfer the first question is how
wide each range was when it was saved, and which ranges stalled. The CSV is appended to (a resumed
run continues its file; the header is written once and later rows must match it), and the PNG is
redrawn from the whole CSV with matplotlib's Agg backend (no display needed; matplotlib is
imported only when plotting, as it belongs to the training extras).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

from sim.randomization.adr import AutomaticDomainRandomization
from sim.randomization.parameters import RandomizationError

FIXED_COLUMNS = ("env_steps", "entropy_nats_per_dim")
_SUFFIXES = (" low", " high")

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def columns_for(adr: AutomaticDomainRandomization) -> list[str]:
    """env_steps, entropy_nats_per_dim, then `<path> low`, `<path> high` per parameter."""
    ranges = [f"{p.path}{suffix}" for p in adr.parameters for suffix in _SUFFIXES]
    return [*FIXED_COLUMNS, *ranges]


class AdrLog:
    """Appends ADR rows to `run_dir/adr.csv`; `plot()` draws `run_dir/adr.png` from it."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "adr.csv"
        self.png_path = self.run_dir / "adr.png"
        self._nominals: dict[str, float] = {}

    def log(self, env_steps: int, adr: AutomaticDomainRandomization) -> None:
        """Append one row: the env step count, ADR entropy, and every parameter's range."""
        if isinstance(env_steps, bool) or not isinstance(env_steps, int) or env_steps < 0:
            raise RandomizationError(
                f"AdrLog env_steps must be an integer >= 0, got {env_steps!r}"
            )
        columns, header = columns_for(adr), self.header()
        if header is not None and header != columns:
            raise RandomizationError(
                f"{self.csv_path} has columns {header}, this ADR logs {columns}; "
                "log a run with other parameters to another run directory"
            )
        row = [str(env_steps), _fmt(adr.entropy())]
        row += [_fmt(x) for low, high in adr.bounds.values() for x in (low, high)]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.writer(f)
            if header is None:
                writer.writerow(columns)
            writer.writerow(row)
        self._nominals = {p.path: p.nominal for p in adr.parameters}

    def header(self) -> list[str] | None:
        """The CSV's column names, or None when nothing has been written yet."""
        if not self.csv_path.exists():
            return None
        with open(self.csv_path, newline="") as f:
            return next(csv.reader(f), None)

    def rows(self) -> list[dict[str, str]]:
        """All rows written so far, by this and earlier instances."""
        if not self.csv_path.exists():
            return []
        with open(self.csv_path, newline="") as f:
            return list(csv.DictReader(f))

    def plot(self) -> Path | None:
        """Redraw `adr.png`: ADR entropy, then one band [low, high] per parameter with its nominal
        dashed (nominals known once this instance has logged). None when there are no rows."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        rows, header = self.rows(), self.header()
        if not rows or header is None:
            return None
        paths = [c.removesuffix(" low") for c in header[len(FIXED_COLUMNS) :: 2]]
        ncols = min(4, len(paths) + 1)
        nrows = math.ceil((len(paths) + 1) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.4 * nrows), squeeze=False)
        flat: list[Axes] = list(axes.ravel())
        steps = [int(r["env_steps"]) for r in rows]
        flat[0].plot(steps, [float(r["entropy_nats_per_dim"]) for r in rows])
        flat[0].set_title("ADR entropy (nats/dim)", fontsize=8)
        for ax, path in zip(flat[1:], paths, strict=False):
            self._plot_range(ax, steps, rows, path)
        for ax in flat[len(paths) + 1 :]:
            ax.set_visible(False)
        for ax in flat:
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        fig.supxlabel("env steps", fontsize=8)
        fig.tight_layout()
        fig.savefig(self.png_path, dpi=90)
        plt.close(fig)
        return self.png_path

    def _plot_range(self, ax: Axes, steps: list[int], rows: list[dict[str, str]], path: str):
        low = [float(r[f"{path} low"]) for r in rows]
        high = [float(r[f"{path} high"]) for r in rows]
        ax.fill_between(steps, low, high, alpha=0.35, linewidth=0, color="C0")
        ax.plot(steps, low, linewidth=0.8, color="C0")
        ax.plot(steps, high, linewidth=0.8, color="C0")
        if path in self._nominals:
            ax.axhline(self._nominals[path], linestyle="--", color="k", linewidth=0.8)
        ax.set_title(path, fontsize=8)


def _fmt(value: float) -> str:
    return repr(float(value))
