"""What the harvests in a directory have done, read from their checkpoints.

``balis harvest status`` lists them; ``balis index build`` refuses a source whose harvest
is unfinished. Both read only: a checkpoint is never written or repaired here, and a
damaged one is reported as such (never an exception), since the point of a status is to
show what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from broker.harvest.formats import CHECKPOINT_VERSION, checkpoint_path

SUFFIX = ".checkpoint"
# A finished harvest's checkpoint is saved after its output's last write; an output more
# than this newer was written by something else afterwards.
MTIME_SLACK = 2.0

HarvestPhase = Literal["done", "unfinished", "damaged", "not-started"]


@dataclass(frozen=True, slots=True)
class HarvestState:
    """One output file and its checkpoint, as found on disk."""

    output: Path
    library: str | None  # from the checkpoint; else the file's name up to its first dot
    phase: HarvestPhase
    format: str | None = None
    records: int = 0  # written to the output, over every run
    skipped: int = 0
    hits: int | None = None  # the member's count, once it answered
    error: str | None = None  # the last run's reason for stopping, or what is damaged
    updated: float | None = None  # when the checkpoint was last written (epoch seconds)

    @property
    def unfinished(self) -> bool:
        return self.phase != "done"

    def describe(self) -> str:
        """Why an index build should not take it, in a few words."""
        if self.phase == "damaged":
            return f"damaged harvest ({self.error})"
        if self.phase == "not-started":
            return "harvest not started"
        if self.phase == "unfinished":
            return f"unfinished harvest ({self.records} records, checkpoint done: false)"
        return f"{self.records} records"

    def as_dict(self) -> dict[str, object]:
        return {"library": self.library, "output": str(self.output), "format": self.format,
                "state": self.phase, "records": self.records, "skipped": self.skipped,
                "hits": self.hits, "error": self.error,
                "updated": _iso(self.updated) if self.updated is not None else None}


def _iso(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _library_of(output: Path) -> str:
    return output.name.split(".", 1)[0]


def read_state(output: Path) -> HarvestState | None:
    """The harvest state of one output file; None when it has no checkpoint (a file not
    written by ``balis harvest``, or one whose checkpoint was deleted to start over)."""
    marker = checkpoint_path(output)
    try:
        raw = marker.read_bytes()
        updated = marker.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError as exc:
        return HarvestState(output, _library_of(output), "damaged",
                            error=f"cannot read {marker.name}: {exc.strerror or exc}")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return HarvestState(output, _library_of(output), "damaged", updated=updated,
                            error=f"{marker.name} is not JSON: {exc}")
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        return HarvestState(output, _library_of(output), "damaged", updated=updated,
                            error=f"{marker.name} is not a checkpoint of this version")
    try:
        library = str(data["library"])
        done = bool(data["done"])
        written, skipped = int(data["written"]), int(data["skipped"])
        hits = int(data["hits"])
        length = int(data["output_length"])
        fmt = str(data["format"])
        error = data.get("error")
    except (KeyError, TypeError, ValueError) as exc:
        return HarvestState(output, _library_of(output), "damaged", updated=updated,
                            error=f"{marker.name} lacks or garbles {exc}")
    state = HarvestState(output, library, "done" if done else "unfinished", fmt, written,
                         skipped, hits if hits >= 0 else None,
                         str(error) if error else None, updated)
    if done:
        changed = _changed_since(output, length, updated)
        if changed:
            return HarvestState(output, library, "damaged", fmt, written, skipped,
                                state.hits, changed, updated)
    return state


def _changed_since(output: Path, length: int, checkpointed: float) -> str | None:
    """Why a finished harvest's output is no longer what its checkpoint describes."""
    try:
        info = output.stat()
    except FileNotFoundError:
        return "the output file is missing"
    except OSError as exc:
        return f"the output cannot be read: {exc.strerror or exc}"
    if info.st_size != length:
        return (f"the output has {info.st_size} bytes, its checkpoint says {length}: "
                "changed after the harvest finished")
    if info.st_mtime > checkpointed + MTIME_SLACK:
        return "the output was written after its harvest finished"
    return None


def scan(directory: Path) -> list[HarvestState]:
    """Every harvest in ``directory`` (its ``*.checkpoint`` files), by output name; a
    single output file gives its own state."""
    if not directory.is_dir():
        state = read_state(directory)
        return [state] if state is not None else []
    found = []
    with os.scandir(directory) as entries:
        names = sorted(entry.name for entry in entries if entry.name.endswith(SUFFIX))
    for name in names:
        state = read_state(directory / name[:-len(SUFFIX)])
        if state is not None:
            found.append(state)
    return found


def unfinished_sources(paths: Iterable[Path]) -> list[HarvestState]:
    """The harvest files among ``paths`` that an index should not be built from: an
    unfinished or damaged harvest. A file without a checkpoint is not ours to judge."""
    return [state for path in paths
            if (state := read_state(Path(path))) is not None and state.unfinished]
