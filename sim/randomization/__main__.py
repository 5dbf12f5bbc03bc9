"""Print every randomization parameter: path, nominal, legal range, ADR step, meaning.

Run: `python -m sim.randomization` (`--markdown` for a Markdown table).
"""

from __future__ import annotations

import sys

from sim.randomization.registry import PARAMETERS


def table(markdown: bool) -> str:
    rows = [(p.path, f"{p.nominal:g}", f"[{p.legal_low:g}, {p.legal_high:g}]", f"{p.adr_step:g}",
             p.description) for p in PARAMETERS.values()]  # fmt: skip
    header = ("path", "nominal", "legal range", "ADR step", "what it does")
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| `" + r[0] + "` | " + " | ".join(r[1:]) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in (header, *rows)
    )


if __name__ == "__main__":
    print(table("--markdown" in sys.argv[1:]))
