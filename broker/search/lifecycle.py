"""What a serving process needs of the broker when it reloads its libraries file or stops:
the difference between two consortia, and what a drain did.

``Broker.reload`` and ``Broker.drain`` (broker.search.fanout) use these; the web logs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.kernel.config import Consortium
from broker.search.session import SearchSession

# What a library still pending is told when its process stops before it answered: the
# drain limit passed (the search's own deadline had not).
STOPPED_ERROR = ("the server stopped before this library answered (it was shutting down "
                 "and its drain limit passed)")


@dataclass(frozen=True, slots=True)
class ConsortiumChanges:
    """Library ids added, removed, and changed (any field) by a reload, each sorted."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def describe(self) -> str:
        """``added 1 (newlib), removed 0, changed 2 (bupt, pku)``: for the log."""
        def part(word: str, ids: tuple[str, ...]) -> str:
            return f"{word} {len(ids)}" + (f" ({', '.join(ids)})" if ids else "")
        return ", ".join((part("added", self.added), part("removed", self.removed),
                          part("changed", self.changed)))


def consortium_changes(old: Consortium, new: Consortium) -> ConsortiumChanges:
    before = {lib.id: lib for lib in old.libraries}
    after = {lib.id: lib for lib in new.libraries}
    return ConsortiumChanges(
        added=tuple(sorted(after.keys() - before.keys())),
        removed=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(sorted(lid for lid in before.keys() & after.keys()
                             if before[lid] != after[lid])))


@dataclass(frozen=True, slots=True)
class DrainReport:
    """A drain: live searches that finished by themselves, those given up on at the limit,
    and how long it took."""

    drained: int
    gave_up: int
    seconds: float


def give_up(session: SearchSession) -> None:
    """Mark the libraries of ``session`` still pending as timed out because the process is
    stopping, so the state saved for other processes is final (every library's state)."""
    for state in session.states.values():
        if not state.finished:
            state.status, state.reason, state.error = "timeout", "timeout", STOPPED_ERROR
    session.touch()
