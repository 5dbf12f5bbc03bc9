"""Typed errors of the recording stack; each names the file (or type) and what to do.

All derive from `RecordingError` (a `TwinbridgeError`), so `twinbridge bag|record` print
them as one line instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import TwinbridgeError

RECOVER_HINT = "run `twinbridge bag recover {path}` to salvage it"


class RecordingError(TwinbridgeError):
    """Base class of every recording error."""


class SchemaNotFoundError(RecordingError, LookupError):
    """A message type whose .msg definition is not installed under any searched prefix."""

    def __init__(self, type_name: str, searched: list[Path]):
        self.type_name, self.searched = type_name, searched
        where = ", ".join(str(p) for p in searched) or "(no prefixes)"
        super().__init__(
            f"no .msg definition for message type {type_name!r}; looked in {where} "
            "(install the message package, or set AMENT_PREFIX_PATH to its prefix)"
        )


class EpisodeOrderError(RecordingError, ValueError):
    """An episode marker out of order: a start while one is open, an end for another
    episode, or a non-contiguous index."""


class UnknownTopicError(RecordingError, KeyError):
    """A message for a topic the writer has not registered."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class BagFileError(RecordingError, ValueError):
    """A file that is not an MCAP, or is truncated/unfinished (the message says which)."""

    def __init__(self, path: Path | str, detail: str, recoverable: bool = True):
        self.path, self.detail = Path(path), detail
        hint = f"; {RECOVER_HINT.format(path=path)}" if recoverable else ""
        super().__init__(f"{path}: {detail}{hint}")


class MissingTopicError(RecordingError, LookupError):
    """A bag without a topic the caller needs."""


class BagIdentityError(RecordingError, ValueError):
    """A bag recorded on another robot or for another task than the caller expects."""


class ResumeRefusedError(RecordingError, ValueError):
    """An existing bag that cannot be continued safely; the message says why and what to do."""
