"""`twinbridge bag ...`: tools for recorded MCAP bags, one module per action.

Run: `twinbridge bag recover FILE.mcap`, `twinbridge bag info FILE.mcap --verify`

`BAG_COMMANDS` maps each action to the module that implements it (with
`add_arguments(parser)` and `run(args)`, as `twinbridge`'s own subcommands); a module is
imported only to build its parser or when its action is chosen. Add an action by adding
an entry (e.g. "export": ("hardware.recording.export", "...")).
"""

from __future__ import annotations

import argparse
import importlib

BAG_COMMANDS: dict[str, tuple[str, str]] = {
    "recover": (
        "hardware.recording.recover",
        "salvage a truncated or unfinished MCAP (exit 0 intact, 3 recovered, 1 nothing)",
    ),
    "info": ("hardware.recording.info", "topics, counts, episodes and session of a bag"),
    "export": (
        "hardware.recording.export",
        "write a bag's whole episodes as a demonstration dataset (hardware/recording/dataset.py)",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bag_command", required=True, metavar="ACTION")
    for name, (module, help_text) in BAG_COMMANDS.items():
        action = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(action)
        action.set_defaults(_bag_module=module)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._bag_module).run(args) or 0)
