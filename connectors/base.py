"""What every connector offers the broker: one search, one page of normalized records."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from broker.kernel.config import Library
from broker.kernel.cql import Node
from marc import Entry, Record, normalize
from marc.model import RawMarc

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A library's answer: its own hit count and the records from ``start`` on."""

    hits: int
    start: int  # 1-based position of the first record
    records: tuple[Record, ...]
    problems: tuple[str, ...] = ()  # records that came but could not be read, and why


class Connector(ABC):
    """Speaks one protocol to one member library. Built from one validated config entry.

    The broker owns deadlines, retries and merging; a connector raises ``ConnectorError``
    subclasses whose text a reader can understand.
    """

    def __init__(self, library: Library) -> None:
        if library.connector is None:
            raise ValueError(f"library {library.id} has no connector")
        self.library = library
        self.config = library.connector

    @abstractmethod
    async def search(self, query: Node, *, start: int = 1, count: int | None = None
                     ) -> SearchPage:
        """Run ``query`` and return records ``start`` .. ``start + count - 1``."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the connector may not be used afterwards."""

    def normalize_entries(self, entries: Iterable[Entry], position: int, problems: list[str],
                          raw: RawMarc | None = None) -> list[Record]:
        """Normalize what marc.read_* produced for one retrieved record; ``raw`` (its bytes
        as they came) is kept as the source instead of the parsed record."""
        out: list[Record] = []
        for entry in entries:
            if entry.record is None:
                problems.append(f"record {position}: {'; '.join(entry.problems)}")
                continue
            out.append(normalize(entry.record, flavour=entry.flavour,
                                 library=self.library.id, warnings=entry.problems,
                                 source=raw))
        return out
