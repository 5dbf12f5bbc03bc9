"""Shared output of the bench scripts: table for people, JSON for machines, exit on a miss."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(report: dict[str, Any], table: str, as_json: bool, no_fail: bool) -> int:
    """Print `table` (to stderr when JSON goes to stdout) and return the exit status.

    Status 1 when the report lists missed targets under "failures", unless `no_fail`.
    """
    if as_json:
        print(table, file=sys.stderr)
        print(json.dumps(report, indent=2))
    else:
        print(table)
    for line in report["failures"]:
        print(f"TARGET MISSED: {line}", file=sys.stderr)
    return 1 if report["failures"] and not no_fail else 0
